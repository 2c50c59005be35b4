"""The paste service's tables. Migrations only add."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

paste = Migrations("hepcore_paste")


@paste()
def m001_pastes(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE paste_pastes (
            id TEXT PRIMARY KEY,
            account_id TEXT,
            key_id TEXT,
            anonymous INTEGER NOT NULL DEFAULT 0,
            title TEXT,
            language TEXT NOT NULL,
            visibility TEXT NOT NULL,
            is_permanent INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            -- Small contents live in the row; larger ones in storage under storage_key.
            content BLOB,
            storage_key TEXT,
            views INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            expires_at REAL,
            deleted_at REAL
        );
        CREATE INDEX paste_pastes_account_created ON paste_pastes(account_id, created_at);
        CREATE INDEX paste_pastes_expires ON paste_pastes(expires_at)
            WHERE deleted_at IS NULL AND expires_at IS NOT NULL;
        -- Storage objects whose paste is gone but whose delete has not succeeded yet.
        CREATE TABLE paste_orphans (
            storage_key TEXT PRIMARY KEY,
            since REAL NOT NULL
        );
        """
    )
