"""Pastes in SQLite: insert, find live ones, list, update, delete, purge.

A paste is *live* while it is not deleted and not expired. Deleting or
purging wipes the user's data from the row (title, content) and queues the
storage object in ``paste_orphans``, in the same transaction, with the time
it stopped being readable. :meth:`PasteStore.drain_orphans` removes queued
objects only after :data:`ORPHAN_GRACE` seconds, so a reader that fetched the
row just before the change still finds its bytes; failed removals stay
queued. The row stays as a tombstone, so an ID is never reissued.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from hepcore.clock import ALNUM, Clock, random_string
from hepcore.db import Database, next_creation_time
from hepcore.storage import Storage

log = logging.getLogger("hepcore.paste")

ID_LENGTH = 8
ORPHAN_GRACE = 300.0  # seconds a replaced or deleted object outlives its row
ID_RE = re.compile(r"[A-Za-z0-9_-]{4,80}")
LIVE = "deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
_COLUMNS = ("id, account_id, key_id, anonymous, title, language, visibility, is_permanent,"
            " size, sha256, storage_key, views, created_at, updated_at, expires_at, deleted_at")


@dataclass(frozen=True)
class Paste:
    """A paste's metadata (its content is read with :meth:`PasteStore.open_content`)."""

    id: str
    account_id: str | None
    key_id: str | None
    anonymous: bool
    title: str | None
    language: str
    visibility: str
    is_permanent: bool
    size: int
    sha256: str
    storage_key: str | None
    views: int
    created_at: float
    updated_at: float
    expires_at: float | None
    deleted_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Paste:
        return cls(
            id=row["id"], account_id=row["account_id"], key_id=row["key_id"],
            anonymous=bool(row["anonymous"]), title=row["title"], language=row["language"],
            visibility=row["visibility"], is_permanent=bool(row["is_permanent"]),
            size=row["size"], sha256=row["sha256"], storage_key=row["storage_key"],
            views=row["views"], created_at=row["created_at"], updated_at=row["updated_at"],
            expires_at=row["expires_at"], deleted_at=row["deleted_at"],
        )

    def live(self, now: float) -> bool:
        return self.deleted_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class NewContent:
    """Content ready to be recorded: inline bytes, or a committed storage object."""

    size: int
    sha256: str
    inline: bytes | None
    storage_key: str | None


class PasteStore:
    """Reads and writes ``paste_pastes``. Methods that write join the caller's
    transaction when there is one."""

    def __init__(self, db: Database, storage: Storage, clock: Clock) -> None:
        self.db = db
        self.storage = storage
        self.clock = clock

    @staticmethod
    def valid_id(paste_id: str) -> bool:
        return ID_RE.fullmatch(paste_id) is not None

    @staticmethod
    def random_id() -> str:
        return random_string(ID_LENGTH, ALNUM)

    def new_id(self) -> str:
        """An 8-character ID not issued before (checked again by the primary key)."""
        while True:
            candidate = random_string(ID_LENGTH, ALNUM)
            if self.db.one("SELECT 1 FROM paste_pastes WHERE id = ?", (candidate,)) is None:
                return candidate

    def get(self, paste_id: str) -> Paste | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM paste_pastes WHERE id = ?", (paste_id,))
        return Paste.from_row(row) if row else None

    def live(self, paste_id: str) -> Paste | None:
        """The live paste with this ID; ``None`` for a malformed, missing, deleted or expired one."""
        if not self.valid_id(paste_id):
            return None
        row = self.db.one(f"SELECT {_COLUMNS} FROM paste_pastes WHERE id = ? AND {LIVE}",
                          (paste_id, self.clock()))
        return Paste.from_row(row) if row else None

    def live_with_content(self, paste_id: str) -> tuple[Paste, bytes | None] | None:
        """:meth:`live` and the inline content (``None`` when stored as an object),
        in one query."""
        if not self.valid_id(paste_id):
            return None
        row = self.db.one(f"SELECT {_COLUMNS}, content FROM paste_pastes WHERE id = ?"
                          f" AND {LIVE}", (paste_id, self.clock()))
        if row is None:
            return None
        return Paste.from_row(row), None if row["content"] is None else bytes(row["content"])

    def count_live(self, account_id: str) -> int:
        row = self.db.one(f"SELECT count(*) FROM paste_pastes WHERE account_id = ? AND {LIVE}",
                          (account_id, self.clock()))
        assert row is not None  # an aggregate query always returns one row
        (n,) = row
        return int(n)

    def first_expiry(self, account_id: str) -> float | None:
        """When the account's first live paste with an expiry expires, if any."""
        row = self.db.one("SELECT min(expires_at) FROM paste_pastes WHERE account_id = ?"
                          " AND deleted_at IS NULL AND expires_at > ?", (account_id, self.clock()))
        return None if row is None or row[0] is None else float(row[0])

    def count_permanent(self, account_id: str) -> int:
        row = self.db.one(
            f"SELECT count(*) FROM paste_pastes WHERE account_id = ? AND is_permanent = 1"
            f" AND {LIVE}", (account_id, self.clock()))
        assert row is not None  # an aggregate query always returns one row
        (n,) = row
        return int(n)

    def insert(self, paste_id: str, *, account_id: str | None, key_id: str | None,
               anonymous: bool, title: str | None, language: str, visibility: str,
               is_permanent: bool, content: NewContent, expires_after: float | None) -> Paste:
        """Insert in the caller's write transaction. Creation times are unique and
        increasing per account (+1 ms on a clash), so ``before`` cursors never skip
        a paste; ``expiresAt`` is ``expires_after`` seconds after the creation time
        (``None``: never). Raises :class:`sqlite3.IntegrityError` when the ID is taken."""
        conn = self.db.conn
        created = round(self.clock(), 3) if account_id is None else \
            next_creation_time(conn, "paste_pastes", account_id, self.clock())
        expires_at = None if expires_after is None else created + expires_after
        conn.execute(
            "INSERT INTO paste_pastes (id, account_id, key_id, anonymous, title, language,"
            " visibility, is_permanent, size, sha256, content, storage_key, created_at,"
            " updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (paste_id, account_id, key_id, int(anonymous), title, language, visibility,
             int(is_permanent), content.size, content.sha256, content.inline,
             content.storage_key, created, created, expires_at))
        return Paste(id=paste_id, account_id=account_id, key_id=key_id, anonymous=anonymous,
                     title=title, language=language, visibility=visibility,
                     is_permanent=is_permanent, size=content.size, sha256=content.sha256,
                     storage_key=content.storage_key, views=0, created_at=created,
                     updated_at=created, expires_at=expires_at, deleted_at=None)

    def list_live(self, account_id: str, *, limit: int, before: float | None) -> list[Paste]:
        sql = f"SELECT {_COLUMNS} FROM paste_pastes WHERE account_id = ? AND {LIVE}"
        params: list[Any] = [account_id, self.clock()]
        if before is not None:
            sql += " AND created_at < ?"
            params.append(before)
        sql += " ORDER BY created_at DESC LIMIT ?"
        params.append(limit)
        return [Paste.from_row(r) for r in self.db.all(sql, params)]

    def update(self, paste: Paste, *, content: NewContent | None = None,
               **fields: Any) -> Paste:
        """Change ``fields`` (column names) and optionally the content, in the
        caller's transaction; a replaced storage object is queued for removal."""
        now = self.clock()
        columns: dict[str, Any] = dict(fields)
        if content is not None:
            columns.update(size=content.size, sha256=content.sha256, content=content.inline,
                           storage_key=content.storage_key)
            if paste.storage_key:
                self._orphan(paste.storage_key, now)
        columns["updated_at"] = now
        sets = ", ".join(f"{name} = ?" for name in columns)
        self.db.conn.execute(f"UPDATE paste_pastes SET {sets} WHERE id = ?",
                             (*(_sql_value(v) for v in columns.values()), paste.id))
        columns.pop("content", None)
        for flag in ("is_permanent", "anonymous"):
            if flag in columns:
                columns[flag] = bool(columns[flag])
        return replace(paste, **columns)

    def delete(self, paste: Paste, *, unread_since: float | None = None) -> None:
        """Mark deleted and wipe the content, in the caller's transaction.
        ``unread_since``: when the paste stopped being readable (its expiry), if
        before now; its object's grace counts from then."""
        now = self.clock()
        if paste.storage_key:
            self._orphan(paste.storage_key, min(now, unread_since or now))
        self.db.conn.execute(
            "UPDATE paste_pastes SET deleted_at = ?, title = NULL, content = NULL,"
            " storage_key = NULL WHERE id = ?", (now, paste.id))

    def _orphan(self, key: str, now: float) -> None:
        self.db.conn.execute(
            "INSERT OR IGNORE INTO paste_orphans (storage_key, since) VALUES (?, ?)", (key, now))

    def add_view(self, paste_id: str) -> None:
        self.db.write_one("UPDATE paste_pastes SET views = views + 1 WHERE id = ?", (paste_id,),
                          durable=False)

    def inline_content(self, paste_id: str) -> bytes | None:
        row = self.db.one("SELECT content FROM paste_pastes WHERE id = ?", (paste_id,))
        return None if row is None or row[0] is None else bytes(row[0])

    def read_content(self, paste: Paste, inline: bytes | None = None, *,
                     limit: int | None = None) -> bytes:
        """The whole content (for pages and JSON answers that must hold it anyway),
        or its first ``limit`` bytes; ``inline``: the row's content when the
        caller has it already. Raises :class:`FileNotFoundError` when the
        stored object is gone."""
        if paste.storage_key is None:
            data = inline if inline is not None else self.inline_content(paste.id) or b""
            return data if limit is None else data[:limit]
        with self.storage.open(paste.storage_key) as fh:
            return fh.read() if limit is None else fh.read(limit)

    def iter_content(self, paste: Paste, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        if paste.storage_key is None:
            yield self.inline_content(paste.id) or b""
            return
        with self.storage.open(paste.storage_key) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    # --- purge ------------------------------------------------------------

    def expire_prime_downgrades(self, grace: float, free_days: float,
                                account_id: str | None = None) -> int:
        """Pastes with no expiry, not permanent, owned by a Free account (only
        ``account_id``'s when given): set ``expiresAt = max(now + grace,
        createdAt + free_days)`` (section 1). Joins the caller's write transaction."""
        now = self.clock()
        owners = "(SELECT id FROM accounts WHERE plan = 'free'"
        params: tuple[Any, ...] = (now + grace, free_days * 86400)
        if account_id is not None:
            owners += " AND id = ?"
            params += (account_id,)
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE paste_pastes SET expires_at = max(?, created_at + ?)"
                " WHERE expires_at IS NULL AND is_permanent = 0 AND deleted_at IS NULL"
                f" AND account_id IN {owners})", params)
        return cur.rowcount

    def purge_expired(self, batch: int = 500) -> int:
        """Delete expired pastes (tombstones stay); their bytes follow in :meth:`drain_orphans`."""
        purged = 0
        while True:
            now = self.clock()
            with self.db.write() as conn:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM paste_pastes WHERE deleted_at IS NULL"
                    " AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?",
                    (now, batch)).fetchall()
                for row in rows:
                    self.delete(Paste.from_row(row), unread_since=row["expires_at"])
            purged += len(rows)
            if len(rows) < batch:
                return purged

    def drain_orphans(self, grace: float = ORPHAN_GRACE) -> int:
        """Remove the queued storage objects unread for ``grace`` seconds; the
        ones that fail stay queued."""
        removed = 0
        for (key,) in self.db.all("SELECT storage_key FROM paste_orphans WHERE since <= ?",
                                  (self.clock() - grace,)):
            try:
                self.storage.delete(key)
            except OSError:
                log.warning("could not remove %s; will retry", key, exc_info=True)
                continue
            self.db.write_one("DELETE FROM paste_orphans WHERE storage_key = ?", (key,))
            removed += 1
        return removed


    # --- hepcore check ----------------------------------------------------------

    def referenced_objects(self) -> Iterator[str]:
        """Storage keys of rows not deleted, and the queued ones not drained yet."""
        for (key,) in self.db.all("SELECT storage_key FROM paste_pastes"
                                  " WHERE storage_key IS NOT NULL AND deleted_at IS NULL"
                                  " UNION SELECT storage_key FROM paste_orphans"):
            yield key

    def forget_objects(self, keys: set[str]) -> int:
        """Pastes whose objects (``keys``) are gone for good become tombstones, as
        a delete leaves them, and queued keys among them are dropped; the count."""
        now = self.clock()
        forgotten = 0
        with self.db.write() as conn:
            for key in sorted(keys):
                forgotten += conn.execute(
                    "UPDATE paste_pastes SET deleted_at = ?, title = NULL, content = NULL,"
                    " storage_key = NULL WHERE storage_key = ? AND deleted_at IS NULL",
                    (now, key)).rowcount
                forgotten += conn.execute("DELETE FROM paste_orphans WHERE storage_key = ?",
                                          (key,)).rowcount
        return forgotten


def _sql_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value
