"""The blocklist table and the moderator that checks uploads against it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from hepcore import Rejection, UploadCandidate, hookimpl
from hepcore.clock import Clock
from hepcore.db import Database

from .phash import distance, frame_hashes, from_hex, to_hex

log = logging.getLogger("hepcore.phash")

DEFAULT_DISTANCE = 10
MAX_DISTANCE = 32
# The code and message the image service prescribes for moderation refusals.
REJECTION = Rejection("nsfw_rejected", "Explicit content detected. This image cannot be hosted.",
                      status=415)

blocklist_migrations = Migrations("hepcore_phash")


@blocklist_migrations()
def m001_blocklist(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE phash_blocklist (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            hash TEXT NOT NULL,
            distance INTEGER NOT NULL,
            label TEXT,
            created_at REAL NOT NULL
        );
        """
    )


@dataclass(frozen=True)
class Entry:
    """A blocked hash: images within ``distance`` bits of it are refused."""

    id: int
    hash: int
    distance: int
    label: str | None
    created_at: float

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "hash": to_hex(self.hash), "distance": self.distance,
                "label": self.label, "created_at": self.created_at}


class Blocklist:
    """Reads and writes ``phash_blocklist``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def add(self, value: int, max_distance: int = DEFAULT_DISTANCE,
            label: str | None = None) -> Entry:
        if not 0 <= max_distance <= MAX_DISTANCE:
            raise ValueError(f"distance must be between 0 and {MAX_DISTANCE}")
        now = self.clock()
        with self.db.write() as conn:
            entry_id = conn.execute(
                "INSERT INTO phash_blocklist (hash, distance, label, created_at)"
                " VALUES (?, ?, ?, ?)", (to_hex(value), max_distance, label, now)).lastrowid
        assert entry_id is not None
        return Entry(entry_id, value, max_distance, label, now)

    def entries(self) -> list[Entry]:
        rows = self.db.all("SELECT id, hash, distance, label, created_at FROM phash_blocklist"
                           " ORDER BY id")
        return [Entry(r[0], from_hex(r[1]), r[2], r[3], r[4]) for r in rows]

    def remove(self, entry_id: int) -> bool:
        return bool(self.db.write_one("DELETE FROM phash_blocklist WHERE id = ?", (entry_id,)))

    def match(self, hashes: Iterable[int], entries: list[Entry] | None = None
              ) -> tuple[Entry, int] | None:
        """The first of ``entries`` (default: all) near one of ``hashes``, with the
        distance; ``None`` if none is."""
        if entries is None:
            entries = self.entries()
        for value in hashes:
            for entry in entries:
                gap = distance(value, entry.hash)
                if gap <= entry.distance:
                    return entry, gap
        return None


class BlocklistModerator:
    """The ``hepcore_inspect_upload`` implementation of one host (one per runtime)."""

    def __init__(self, blocklist: Blocklist) -> None:
        self.blocklist = blocklist

    @hookimpl
    def hepcore_inspect_upload(self, candidate: UploadCandidate) -> Rejection | None:
        """Refuse a decoded image with a frame near a blocklist entry; let anything
        else through (uploads that were not decoded carry no image)."""
        if candidate.image is None:
            return None
        entries = self.blocklist.entries()
        if not entries:
            return None
        frames = candidate.image if isinstance(candidate.image, list | tuple) else [
            candidate.image]
        hashes = (h for frame in frames for h in frame_hashes(frame))
        found = self.blocklist.match(hashes, entries)
        if found is None:
            return None
        entry, gap = found
        log.info("refused a %s upload of account %s: %d bits from blocklist entry %d",
                 candidate.service, candidate.account_id, gap, entry.id)
        return REJECTION
