"""The core's own tables: accounts, keys, rate-limit hits, quota usage, counters.

Migrations only ever add; they never drop data.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

core = Migrations("hepcore")


@core()
def m001_accounts_and_keys(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            email TEXT,
            plan TEXT NOT NULL DEFAULT 'free',
            status TEXT NOT NULL DEFAULT 'active',
            settings TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        );
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            account_id TEXT NOT NULL REFERENCES accounts(id),
            token_hash TEXT NOT NULL UNIQUE,
            display TEXT NOT NULL,
            label TEXT,
            status TEXT NOT NULL DEFAULT 'active',
            created_at REAL NOT NULL,
            last_used_at REAL,
            request_count INTEGER NOT NULL DEFAULT 0,
            revoked_at REAL
        );
        CREATE INDEX api_keys_account ON api_keys(account_id, service);
        CREATE TABLE rate_hits (
            scope TEXT NOT NULL,
            ts REAL NOT NULL
        );
        CREATE INDEX rate_hits_scope_ts ON rate_hits(scope, ts);
        CREATE TABLE quota_usage (
            scope TEXT PRIMARY KEY,
            bytes INTEGER NOT NULL DEFAULT 0,
            count INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            action TEXT NOT NULL,
            account_id TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        """
    )


@core()
def m002_rate_counts(db: sqlite_utils.Database) -> None:
    # How many rows rate_hits holds per scope, kept with every insert and
    # delete, so a limit over the whole kept window needs no count(*).
    db.execute("""
        CREATE TABLE rate_counts (
            scope TEXT PRIMARY KEY,
            n INTEGER NOT NULL
        )""")
    db.execute("INSERT INTO rate_counts (scope, n) SELECT scope, count(*) FROM rate_hits"
               " GROUP BY scope")


@core()
def m003_rate_count_triggers(db: sqlite_utils.Database) -> None:
    # rate_counts follows every insert and delete of rate_hits, whoever makes
    # it (an older worker during a rolling restart, an operator), and is
    # recounted here once, so it cannot drift.
    db.executescript("""
        CREATE TRIGGER rate_hits_counted AFTER INSERT ON rate_hits BEGIN
            INSERT INTO rate_counts (scope, n) VALUES (NEW.scope, 1)
                ON CONFLICT(scope) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER rate_hits_uncounted AFTER DELETE ON rate_hits BEGIN
            UPDATE rate_counts SET n = max(n - 1, 0) WHERE scope = OLD.scope;
        END;
        DELETE FROM rate_counts;
        INSERT INTO rate_counts (scope, n) SELECT scope, count(*) FROM rate_hits GROUP BY scope;
    """)


@core()
def m004_pending_objects(db: sqlite_utils.Database) -> None:
    # Keys whose bytes may be committed to storage while their row is not yet
    # (hepcore.pending): what a killed process leaves behind, found and swept.
    db.execute("""
        CREATE TABLE pending_objects (
            key TEXT PRIMARY KEY,
            created_at REAL NOT NULL
        )""")
