"""The image service's tables. Migrations only add."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

images = Migrations("hepcore_images")


@images()
def m001_uploads(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE images_uploads (
            filename TEXT PRIMARY KEY,
            account_id TEXT NOT NULL,
            key_id TEXT,
            mime TEXT NOT NULL,
            size INTEGER NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            hash_sha256 TEXT NOT NULL,
            stored_sha256 TEXT NOT NULL,
            storage_key TEXT NOT NULL,
            delete_token_hash TEXT UNIQUE,
            tags TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL,
            deleted_at REAL,
            purged_at REAL
        );
        -- Creation times are unique per account, so cursor paging never skips (F5).
        CREATE UNIQUE INDEX images_uploads_account_created
            ON images_uploads(account_id, created_at);
        -- At most one live upload per account and received-bytes hash (F1).
        CREATE UNIQUE INDEX images_uploads_live_hash
            ON images_uploads(account_id, hash_sha256) WHERE deleted_at IS NULL;
        CREATE INDEX images_uploads_purge ON images_uploads(deleted_at) WHERE purged_at IS NULL;
        """
    )
