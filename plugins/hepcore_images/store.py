"""Image uploads in SQLite: insert with a unique creation time, find, list, soft-delete."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hepcore.clock import Clock, parse_iso_datetime
from hepcore.db import Database, next_creation_time

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The digits of a time's fraction past the microsecond, which fromisoformat() drops.
_FRACTION = re.compile(r"[T ][0-9:]+[.,][0-9]{6}([0-9]+)")


@dataclass(frozen=True)
class Upload:
    filename: str
    account_id: str
    key_id: str | None
    mime: str
    size: int
    width: int
    height: int
    hash_sha256: str
    stored_sha256: str
    storage_key: str
    tags: list[str]
    created_at: float
    deleted_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Upload:
        return cls(
            filename=row["filename"], account_id=row["account_id"], key_id=row["key_id"],
            mime=row["mime"], size=row["size"], width=row["width"], height=row["height"],
            hash_sha256=row["hash_sha256"], stored_sha256=row["stored_sha256"],
            storage_key=row["storage_key"], tags=list(json.loads(row["tags"] or "[]")),
            created_at=row["created_at"], deleted_at=row["deleted_at"],
        )


def page_before(value: str) -> float:
    """The ``before`` cursor ``value`` (ISO-8601 as :func:`hepcore.clock.parse_iso`
    reads it) as the bound of :meth:`UploadStore.page`.

    Creation times are whole milliseconds (``next_creation_time``), so
    "created strictly earlier than ``value``" is "created earlier than ``value``
    rounded up to a whole millisecond", computed in integer microseconds.
    ``fromisoformat`` drops digits past the microsecond; when any of them is not
    zero, the instant is past that microsecond (``19:03:50.8770001Z`` lists an
    upload of ``19:03:50.877Z``). Raises :class:`ValueError` for anything that
    is not an ISO-8601 timestamp.
    """
    micros = (parse_iso_datetime(value) - _EPOCH) // _MICROSECOND
    fraction = _FRACTION.search(value)
    past = fraction is not None and fraction.group(1).strip("0") != ""
    millis = micros // 1000 + 1 if past else -(-micros // 1000)
    return millis / 1000


class UploadStore:
    """Reads and writes ``images_uploads``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def insert(self, conn: sqlite3.Connection, *, filename: str, account_id: str,
               key_id: str | None, mime: str, size: int, width: int, height: int,
               hash_sha256: str, stored_sha256: str, storage_key: str,
               delete_token_hash: str | None) -> Upload:
        """Insert inside the caller's write transaction; the creation time comes
        from ``next_creation_time``. Raises
        :class:`sqlite3.IntegrityError` when a live upload has the same hash."""
        created = next_creation_time(conn, "images_uploads", account_id, self.clock())
        conn.execute(
            "INSERT INTO images_uploads (filename, account_id, key_id, mime, size, width, height,"
            " hash_sha256, stored_sha256, storage_key, delete_token_hash, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (filename, account_id, key_id, mime, size, width, height, hash_sha256,
             stored_sha256, storage_key, delete_token_hash, created))
        return Upload(filename=filename, account_id=account_id, key_id=key_id, mime=mime,
                      size=size, width=width, height=height, hash_sha256=hash_sha256,
                      stored_sha256=stored_sha256, storage_key=storage_key, tags=[],
                      created_at=created, deleted_at=None)

    def live(self, filename: str, account_id: str | None = None) -> Upload | None:
        """The upload named ``filename`` unless deleted (and owned by ``account_id`` if given)."""
        sql = "SELECT * FROM images_uploads WHERE filename = ? AND deleted_at IS NULL"
        params: list[Any] = [filename]
        if account_id is not None:
            sql += " AND account_id = ?"
            params.append(account_id)
        row = self.db.one(sql, params)
        return Upload.from_row(row) if row else None

    def by_hash(self, account_id: str, hash_sha256: str) -> Upload | None:
        row = self.db.one(
            "SELECT * FROM images_uploads WHERE account_id = ? AND hash_sha256 = ?"
            " AND deleted_at IS NULL", (account_id, hash_sha256))
        return Upload.from_row(row) if row else None

    def page(self, account_id: str, limit: int, before: float | None) -> tuple[list[Upload], bool]:
        """Live uploads newest first, and whether more follow."""
        sql = "SELECT * FROM images_uploads WHERE account_id = ? AND deleted_at IS NULL"
        params: list[Any] = [account_id]
        if before is not None:
            sql += " AND created_at < ?"
            params.append(before)
        rows = self.db.all(sql + " ORDER BY created_at DESC LIMIT ?", [*params, limit + 1])
        return [Upload.from_row(r) for r in rows[:limit]], len(rows) > limit

    def stats(self, account_id: str) -> tuple[int, int]:
        """``(uploads_active, storage_used_bytes)`` of an account."""
        row = self.db.one(
            "SELECT count(*), coalesce(sum(size), 0) FROM images_uploads"
            " WHERE account_id = ? AND deleted_at IS NULL", (account_id,))
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def soft_delete(self, filename: str) -> bool:
        """Mark the upload deleted; ``False`` when it already was (or does not exist)."""
        return self.db.write_one(
            "UPDATE images_uploads SET deleted_at = ? WHERE filename = ? AND deleted_at IS NULL",
            (self.clock(), filename)) == 1

    def delete_by_token(self, token_hash: str) -> str | None:
        """Soft-delete the live upload whose delete token hashes to ``token_hash``
        and consume the token; its filename, or ``None``."""
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT filename FROM images_uploads WHERE delete_token_hash = ?"
                " AND deleted_at IS NULL", (token_hash,)).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE images_uploads SET deleted_at = ?, delete_token_hash = NULL"
                " WHERE filename = ?", (self.clock(), row["filename"]))
        return str(row["filename"])

    def set_tags(self, filename: str, tags: list[str]) -> None:
        self.db.write_one("UPDATE images_uploads SET tags = ? WHERE filename = ?",
                          (json.dumps(tags), filename))

    def unpurged(self, limit: int = 500) -> list[tuple[str, str]]:
        """``(filename, storage_key)`` of deleted uploads whose bytes are still stored."""
        rows = self.db.all(
            "SELECT filename, storage_key FROM images_uploads WHERE deleted_at IS NOT NULL"
            " AND purged_at IS NULL LIMIT ?", (limit,))
        return [(r["filename"], r["storage_key"]) for r in rows]

    def mark_purged(self, filename: str) -> None:
        self.db.write_one("UPDATE images_uploads SET purged_at = ? WHERE filename = ?",
                          (self.clock(), filename))
