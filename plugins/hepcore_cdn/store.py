"""CDN uploads in SQLite, and their UUIDv7 ids."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from hepcore.clock import Clock
from hepcore.db import Database
from hepcore.storage import ObjectWriter, Storage

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def new_writer(storage: Storage, max_size: int | None) -> ObjectWriter:
    """A writer for an upload's bytes. The CDN keeps no digest of them (its
    ``ETag`` is the upload id, whose bytes never change), so the writer hashes
    only if a moderation plugin reads ``candidate.sha256``: SHA-256 would
    otherwise take as much CPU as receiving the body."""
    writer = storage.writer(max_size=max_size)
    writer.hash_on_demand()
    return writer


def uuid7(now: float) -> str:
    """A lowercase UUID version 7: 48 bits of UNIX milliseconds, then random bits."""
    value = (int(now * 1000) & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= secrets.randbits(12) << 64
    value |= 0b10 << 62
    value |= secrets.randbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Upload:
    id: str
    account_id: str
    filename: str
    size: int
    content_type: str
    storage_key: str
    original_url: str | None
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Upload:
        return cls(id=row["id"], account_id=row["account_id"], filename=row["filename"],
                   size=row["size"], content_type=row["content_type"],
                   storage_key=row["storage_key"],
                   original_url=row["original_url"], created_at=row["created_at"])


class UploadStore:
    """Reads and writes ``cdn_uploads``. Writers run inside the caller's
    ``db.write()`` transaction, so a row commits with its quota charge."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def insert(self, upload: Upload) -> None:
        self.db.conn.execute(
            "INSERT INTO cdn_uploads (id, account_id, filename, size, content_type, storage_key,"
            " original_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (upload.id, upload.account_id, upload.filename, upload.size, upload.content_type,
             upload.storage_key, upload.original_url, upload.created_at))

    def get(self, upload_id: str) -> Upload | None:
        if not UUID_RE.match(upload_id):
            return None
        row = self.db.one("SELECT * FROM cdn_uploads WHERE id = ?", (upload_id,))
        return Upload.from_row(row) if row else None

    def own(self, account_id: str, upload_id: str) -> Upload | None:
        """The account's upload ``upload_id``; ``None`` when missing, foreign or malformed."""
        upload = self.get(upload_id)
        return upload if upload is not None and upload.account_id == account_id else None

    def own_many(self, account_id: str, ids: Sequence[str]) -> dict[str, Upload]:
        wanted = sorted({i for i in ids if UUID_RE.match(i)})
        found: dict[str, Upload] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.all(
                f"SELECT * FROM cdn_uploads WHERE account_id = ? AND id IN ({marks})",
                [account_id, *chunk]):
                found[row["id"]] = Upload.from_row(row)
        return found

    def by_original_url(self, url: str) -> Upload | None:
        """The first upload recorded with exactly this ``original_url``."""
        row = self.db.one("SELECT * FROM cdn_uploads WHERE original_url = ?"
                          " ORDER BY created_at, id LIMIT 1", (url,))
        return Upload.from_row(row) if row else None

    def rename(self, upload_id: str, filename: str) -> None:
        self.db.conn.execute("UPDATE cdn_uploads SET filename = ? WHERE id = ?",
                             (filename, upload_id))

    def delete(self, upload_id: str) -> bool:
        cur = self.db.conn.execute("DELETE FROM cdn_uploads WHERE id = ?", (upload_id,))
        return cur.rowcount > 0

    def list(self, account_id: str, limit: int = 50) -> list[Upload]:
        return [Upload.from_row(r) for r in self.db.all(
            "SELECT * FROM cdn_uploads WHERE account_id = ? ORDER BY created_at DESC, id DESC"
            " LIMIT ?", (account_id, limit))]

    def usage(self, account_id: str) -> tuple[int, int]:
        """(bytes, count) summed over the account's rows."""
        row = self.db.one("SELECT coalesce(sum(size), 0), count(*) FROM cdn_uploads"
                          " WHERE account_id = ?", (account_id,))
        assert row is not None  # an aggregate query always returns one row
        return int(row[0]), int(row[1])
