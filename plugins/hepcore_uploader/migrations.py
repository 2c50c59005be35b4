"""The uploader's tables. Migrations only add."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

uploader = Migrations("hepcore_uploader")


@uploader()
def m001_items(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE uploader_items (
            id TEXT PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            account_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            alias TEXT UNIQUE,
            favourite INTEGER NOT NULL DEFAULT 0,
            link TEXT,
            name TEXT,
            type TEXT,
            size INTEGER,
            sha256 TEXT,
            width INTEGER,
            height INTEGER,
            storage_key TEXT,
            views INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            deleted_at REAL
        );
        CREATE INDEX uploader_items_account_created ON uploader_items(account_id, created_at);
        -- Every ID, slug and alias ever issued: one namespace, never reissued.
        CREATE TABLE uploader_names (
            name TEXT PRIMARY KEY,
            item_id TEXT NOT NULL
        );
        """
    )
