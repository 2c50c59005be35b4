"""Webhook tables of the images service: endpoints, signing secrets and the outbox.

Outbox rows are written inside the upload's own transaction (F10), so an
event exists exactly when its upload does. A delivery worker claims due rows
with a lease that expires: a worker that dies mid-delivery leaves a lease
that runs out, and the row is claimed again (at least once).
"""

from __future__ import annotations

import builtins
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import sqlite_utils
from sqlite_utils.migrations import Migrations

from hepcore.clock import Clock
from hepcore.db import Database

webhook_migrations = Migrations("images_webhooks")


@webhook_migrations()
def m001_webhooks(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE images_webhook_endpoints (
            id TEXT PRIMARY KEY,
            account_id TEXT NOT NULL,
            url TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            created_at REAL NOT NULL,
            failure_count INTEGER NOT NULL DEFAULT 0,
            last_status INTEGER,
            last_error TEXT,
            last_failure_at REAL
        );
        CREATE INDEX images_webhook_endpoints_account
            ON images_webhook_endpoints(account_id, created_at);
        -- Keying material, so stored in usable form (G2).
        CREATE TABLE images_webhook_secrets (
            account_id TEXT PRIMARY KEY,
            secret TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE images_webhook_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            endpoint_id TEXT NOT NULL,
            account_id TEXT NOT NULL,
            event TEXT NOT NULL,
            body BLOB NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            leased_until REAL
        );
        CREATE INDEX images_webhook_outbox_due ON images_webhook_outbox(next_attempt_at);
        CREATE INDEX images_webhook_outbox_endpoint ON images_webhook_outbox(endpoint_id);
        """
    )


@webhook_migrations()
def m002_fair_claim(db: sqlite_utils.Database) -> None:
    # What the fair claim reads: each endpoint's due rows in order, the rows
    # leased now (few: the deliveries in flight, and leases of dead workers) and
    # whose turn it is. The first two replace the indexes of the first-come claim.
    # last_claim: the number of the last claim that leased a row of the endpoint.
    db.executescript(
        """
        ALTER TABLE images_webhook_endpoints ADD COLUMN last_claim INTEGER;
        CREATE INDEX images_webhook_endpoints_last_claim
            ON images_webhook_endpoints(last_claim);
        CREATE INDEX images_webhook_outbox_endpoint_due
            ON images_webhook_outbox(endpoint_id, next_attempt_at);
        CREATE INDEX images_webhook_outbox_leased
            ON images_webhook_outbox(leased_until) WHERE leased_until IS NOT NULL;
        DROP INDEX images_webhook_outbox_endpoint;
        DROP INDEX images_webhook_outbox_due;
        """
    )


# The ids of the due rows a claim leases, fairest first. An account's load for a
# row is its rows in flight (leased now, by any worker) plus its rows ahead of
# that one in this claim. Rows go out by load, so the accounts with fewer
# deliveries in flight go first; among equal loads, the account served longest
# ago (last_claim) goes first, so accounts take turns. The endpoints of one
# account share its rows the same way, and each endpoint's rows keep their order
# (next_attempt_at, id). Nobody is capped: an account alone gets every free slot.
# Reads only the endpoints with rows (one index seek each, "queued") and the
# first :limit due rows of each (CROSS JOIN keeps the endpoint the outer loop).
FAIR_DUE_ROWS = """
    WITH RECURSIVE queued(endpoint_id) AS (
        SELECT min(endpoint_id) FROM images_webhook_outbox
        UNION ALL
        SELECT (SELECT min(endpoint_id) FROM images_webhook_outbox
                WHERE endpoint_id > q.endpoint_id)
        FROM queued q WHERE q.endpoint_id IS NOT NULL),
    busy AS (
        SELECT account_id, endpoint_id, count(*) AS n FROM images_webhook_outbox
        WHERE leased_until > :now GROUP BY account_id, endpoint_id),
    account_busy AS (SELECT account_id, sum(n) AS n FROM busy GROUP BY account_id),
    due AS (
        SELECT o.id, o.account_id, o.next_attempt_at, e.last_claim, coalesce(b.n, 0)
                   + row_number() OVER (PARTITION BY o.endpoint_id
                                        ORDER BY o.next_attempt_at, o.id) AS load
        FROM queued q
        JOIN images_webhook_endpoints e ON e.id = q.endpoint_id AND e.enabled = 1
        CROSS JOIN images_webhook_outbox o ON o.id IN (
            SELECT id FROM images_webhook_outbox
            WHERE endpoint_id = e.id AND next_attempt_at <= :now AND attempts < :max
            AND (leased_until IS NULL OR leased_until <= :now)
            ORDER BY next_attempt_at, id LIMIT :limit)
        LEFT JOIN busy b ON b.endpoint_id = e.id),
    ranked AS (
        SELECT id, account_id, next_attempt_at, row_number() OVER (
                   PARTITION BY account_id ORDER BY load, last_claim, next_attempt_at, id) AS k
        FROM due)
    SELECT r.id FROM ranked r LEFT JOIN account_busy a ON a.account_id = r.account_id
    WHERE r.k <= :limit
    ORDER BY coalesce(a.n, 0) + r.k,
             (SELECT max(last_claim) FROM images_webhook_endpoints
              WHERE account_id = r.account_id),
             r.next_attempt_at, r.id
    LIMIT :limit
"""


@dataclass(frozen=True)
class Endpoint:
    """One subscriber URL of an account, with its failure record."""

    id: str
    account_id: str
    url: str
    enabled: bool
    created_at: float
    failure_count: int
    last_status: int | None
    last_error: str | None
    last_failure_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Endpoint:
        return cls(row["id"], row["account_id"], row["url"], bool(row["enabled"]),
                   row["created_at"], row["failure_count"], row["last_status"],
                   row["last_error"], row["last_failure_at"])


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row: ``attempt`` is its 1-based attempt number; ``url``
    and ``secret`` are the endpoint's URL and the account's signing secret when
    it was claimed (so a rotated secret signs from the next claim on)."""

    id: int
    endpoint_id: str
    account_id: str
    event: str
    body: bytes
    attempt: int
    url: str
    secret: str | None


def new_endpoint_id() -> str:
    return "wh_" + secrets.token_hex(8)


def new_signing_secret() -> str:
    return secrets.token_hex(32)


class WebhookStore:
    """SQL of the webhook tables; every method is one short transaction, or joins
    the caller's (``db.write()`` nests)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    # --- endpoints and secrets ---------------------------------------------------

    def list(self, account_id: str) -> list[Endpoint]:
        rows = self.db.all(
            "SELECT * FROM images_webhook_endpoints WHERE account_id = ?"
            " ORDER BY created_at, rowid", (account_id,))
        return [Endpoint.from_row(r) for r in rows]

    def get(self, account_id: str, endpoint_id: str) -> Endpoint | None:
        """The account's endpoint ``endpoint_id``; ``None`` when absent or foreign."""
        row = self.db.one(
            "SELECT * FROM images_webhook_endpoints WHERE id = ? AND account_id = ?",
            (endpoint_id, account_id))
        return Endpoint.from_row(row) if row else None

    def by_id(self, endpoint_id: str) -> Endpoint | None:
        row = self.db.one("SELECT * FROM images_webhook_endpoints WHERE id = ?", (endpoint_id,))
        return Endpoint.from_row(row) if row else None

    def secret(self, account_id: str) -> str | None:
        row = self.db.one("SELECT secret FROM images_webhook_secrets WHERE account_id = ?",
                          (account_id,))
        return str(row[0]) if row else None

    def create(self, account_id: str, url: str, enabled: bool,
               limit: int) -> tuple[Endpoint, str] | None:
        """Add an endpoint and make sure the account has a signing secret.

        Returns the endpoint and the secret, or ``None`` when the account
        already has ``limit`` endpoints (checked in the same transaction).
        """
        now = self.clock()
        with self.db.write() as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM images_webhook_endpoints WHERE account_id = ?",
                (account_id,)).fetchone()
            if count >= limit:
                return None
            endpoint_id = new_endpoint_id()
            conn.execute(
                "INSERT INTO images_webhook_endpoints (id, account_id, url, enabled, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (endpoint_id, account_id, url, int(enabled), now))
            conn.execute(
                "INSERT INTO images_webhook_secrets (account_id, secret, created_at)"
                " VALUES (?, ?, ?) ON CONFLICT(account_id) DO NOTHING",
                (account_id, new_signing_secret(), now))
            (secret,) = conn.execute(
                "SELECT secret FROM images_webhook_secrets WHERE account_id = ?",
                (account_id,)).fetchone()
        endpoint = self.by_id(endpoint_id)
        assert endpoint is not None
        return endpoint, str(secret)

    def update(self, endpoint: Endpoint, *, url: str | None = None,
               enabled: bool | None = None) -> Endpoint:
        """Change the URL and/or the enabled flag; disabling cancels pending deliveries."""
        with self.db.write() as conn:
            if url is not None:
                conn.execute("UPDATE images_webhook_endpoints SET url = ? WHERE id = ?",
                             (url, endpoint.id))
            if enabled is not None:
                conn.execute("UPDATE images_webhook_endpoints SET enabled = ? WHERE id = ?",
                             (int(enabled), endpoint.id))
                if not enabled:
                    conn.execute("DELETE FROM images_webhook_outbox WHERE endpoint_id = ?",
                                 (endpoint.id,))
        updated = self.by_id(endpoint.id)
        if updated is None:  # deleted meanwhile
            return endpoint
        return updated

    def delete(self, endpoint: Endpoint) -> bool:
        """Remove the endpoint and cancel its pending deliveries; ``False`` if it was gone."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM images_webhook_outbox WHERE endpoint_id = ?",
                         (endpoint.id,))
            gone = conn.execute("DELETE FROM images_webhook_endpoints WHERE id = ?",
                                (endpoint.id,)).rowcount
        return bool(gone)

    def rotate_secret(self, account_id: str) -> str:
        """A fresh signing secret for the account; the old one stops signing at once."""
        secret = new_signing_secret()
        self.db.write_one(
            "INSERT INTO images_webhook_secrets (account_id, secret, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT(account_id) DO UPDATE SET secret = excluded.secret,"
            " created_at = excluded.created_at", (account_id, secret, self.clock()))
        return secret

    def pending_counts(self, account_id: str) -> dict[str, int]:
        """Undelivered events per endpoint of the account."""
        rows = self.db.all(
            "SELECT endpoint_id, count(*) FROM images_webhook_outbox WHERE account_id = ?"
            " GROUP BY endpoint_id", (account_id,))
        return {str(r[0]): int(r[1]) for r in rows}

    # --- the outbox ------------------------------------------------------------------

    def enqueue(self, conn: sqlite3.Connection, account_id: str, event: str, body: bytes,
                now: float) -> int:
        """Write one outbox row per enabled endpoint of the account on ``conn`` (the
        caller's open transaction); the number of rows written."""
        return conn.execute(
            "INSERT INTO images_webhook_outbox"
            " (endpoint_id, account_id, event, body, created_at, next_attempt_at)"
            " SELECT id, account_id, ?, ?, ?, ? FROM images_webhook_endpoints"
            " WHERE account_id = ? AND enabled = 1 ORDER BY created_at, rowid",
            (event, body, now, now, account_id)).rowcount

    def claim(self, limit: int, lease_seconds: float,
              max_attempts: int) -> builtins.list[Delivery]:
        """Lease up to ``limit`` due rows and count the attempt.

        The rows are shared out fairly (see :data:`FAIR_DUE_ROWS`): accounts,
        then endpoints, with fewer deliveries in flight go first and take turns,
        so one with a backlog or slow receivers cannot keep the others waiting.

        Runs as a write transaction from its first statement, so it waits for
        an upload transaction that is adding rows and then sees them. Rows
        whose last lease ran out after their final attempt (the worker died)
        are dropped here.
        """
        now = self.clock()
        # Delivery bookkeeping is not durable: after a power cut an event may be
        # delivered again, which receivers already see on retries.
        with self.db.write(durable=False) as conn:
            conn.execute(
                "DELETE FROM images_webhook_outbox WHERE attempts >= ? AND leased_until <= ?",
                (max_attempts, now))
            rows = conn.execute(
                "UPDATE images_webhook_outbox SET attempts = attempts + 1,"
                f" leased_until = :until WHERE id IN ({FAIR_DUE_ROWS})"
                " RETURNING id, endpoint_id, account_id, event, body, attempts",
                {"until": now + lease_seconds, "now": now, "max": max_attempts,
                 "limit": limit}).fetchall()
            if rows:  # their endpoints had the latest turn
                (turn,) = conn.execute("SELECT coalesce(max(last_claim), 0) + 1"
                                       " FROM images_webhook_endpoints").fetchone()
                conn.executemany("UPDATE images_webhook_endpoints SET last_claim = ?"
                                 " WHERE id = ?",
                                 [(turn, e) for e in {r["endpoint_id"] for r in rows}])
            urls = _column(conn, "images_webhook_endpoints", "id", "url",
                           {r["endpoint_id"] for r in rows})
            keys = _column(conn, "images_webhook_secrets", "account_id", "secret",
                           {r["account_id"] for r in rows})
        deliveries = [Delivery(r["id"], r["endpoint_id"], r["account_id"], r["event"],
                               bytes(r["body"]), r["attempts"], urls[r["endpoint_id"]],
                               keys.get(r["account_id"]))
                      for r in rows]
        deliveries.sort(key=lambda d: d.id)
        return deliveries

    def delivered(self, delivery: Delivery) -> None:
        self.db.write_one("DELETE FROM images_webhook_outbox WHERE id = ?", (delivery.id,),
                          durable=False)

    def failed(self, delivery: Delivery, status: int | None, error: str,
               retry_at: float | None) -> None:
        """Record a failed attempt on the endpoint; retry at ``retry_at`` or, when
        ``None`` (attempts used up), drop the row."""
        now = self.clock()
        with self.db.write(durable=False) as conn:
            conn.execute(
                "UPDATE images_webhook_endpoints SET failure_count = failure_count + 1,"
                " last_status = ?, last_error = ?, last_failure_at = ? WHERE id = ?",
                (status, error, now, delivery.endpoint_id))
            if retry_at is None:
                conn.execute("DELETE FROM images_webhook_outbox WHERE id = ?", (delivery.id,))
            else:
                conn.execute(
                    "UPDATE images_webhook_outbox SET next_attempt_at = ?, leased_until = NULL"
                    " WHERE id = ?", (retry_at, delivery.id))

    def next_due(self) -> float | None:
        """When the earliest undelivered row is due (for tests and the CLI)."""
        row = self.db.one("SELECT min(max(next_attempt_at, coalesce(leased_until, 0)))"
                          " FROM images_webhook_outbox")
        return None if row is None or row[0] is None else float(row[0])


def _column(conn: sqlite3.Connection, table: str, key: str, value: str,
            keys: Sequence[str] | set[str]) -> dict[str, str]:
    """``{key: value}`` of ``table``'s rows whose ``key`` is in ``keys`` (fixed names only)."""
    wanted = list(keys)
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(f"SELECT {key}, {value} FROM {table} WHERE {key} IN ({marks})",
                        wanted).fetchall()
    return {r[0]: r[1] for r in rows}
