"""The CDN's tables. Migrations are never edited once released; new ones are appended."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

cdn = Migrations("hepcore_cdn")


@cdn()
def m001_uploads(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE cdn_uploads (
            id TEXT PRIMARY KEY,
            account_id TEXT NOT NULL,
            filename TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            storage_key TEXT NOT NULL UNIQUE,
            sha256 TEXT NOT NULL,
            original_url TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX cdn_uploads_account ON cdn_uploads(account_id, created_at);
        CREATE INDEX cdn_uploads_original_url ON cdn_uploads(original_url);
        """
    )


@cdn()
def m002_no_content_digest(db: sqlite_utils.Database) -> None:
    # The ETag is the upload id now, and nothing else read the digest, whose
    # computation cost as much CPU as receiving the upload.
    db.table("cdn_uploads").transform(drop={"sha256"})
