"""Uploader items in SQLite: insert with a fresh unique name, resolve, count views."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from hepcore.clock import URLSAFE, Clock, random_string
from hepcore.db import Database, next_creation_time

SLUG_LENGTH = 9


@dataclass(frozen=True)
class Item:
    id: str
    slug: str
    account_id: str
    kind: str
    alias: str | None
    favourite: bool
    link: str | None
    name: str | None
    type: str | None
    size: int | None
    sha256: str | None
    width: int | None
    height: int | None
    storage_key: str | None
    views: int
    created_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Item:
        return cls(
            id=row["id"], slug=row["slug"], account_id=row["account_id"], kind=row["kind"],
            alias=row["alias"], favourite=bool(row["favourite"]), link=row["link"],
            name=row["name"], type=row["type"], size=row["size"], sha256=row["sha256"],
            width=row["width"], height=row["height"], storage_key=row["storage_key"],
            views=row["views"], created_at=row["created_at"],
        )


class ItemStore:
    """Reads and writes ``uploader_items``; IDs, slugs and aliases share ``uploader_names``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def new_slug(self) -> str:
        """A 9-character slug not yet issued (checked again, atomically, on insert)."""
        while True:
            slug = random_string(SLUG_LENGTH, URLSAFE)
            if self.db.one("SELECT 1 FROM uploader_names WHERE name = ?", (slug,)) is None:
                return slug

    def insert(self, *, slug: str, ext: str, account_id: str, kind: str, link: str | None = None,
               name: str | None = None, type: str | None = None, size: int | None = None,
               sha256: str | None = None, width: int | None = None, height: int | None = None,
               storage_key: str | None = None) -> Item | None:
        """Insert the item inside the caller's write transaction.

        Returns ``None`` when the slug or ID was taken meanwhile (the caller
        picks another); creation times are unique per account (+1 ms on a clash).
        """
        item_id = slug + ext
        conn = self.db.conn
        # Claim the names first: the primary key refuses a name issued before,
        # and a refused statement changes nothing (the caller's transaction goes on).
        try:
            if ext:
                conn.execute("INSERT INTO uploader_names (name, item_id) VALUES (?, ?), (?, ?)",
                             (slug, item_id, item_id, item_id))
            else:
                conn.execute("INSERT INTO uploader_names (name, item_id) VALUES (?, ?)",
                             (slug, item_id))
        except sqlite3.IntegrityError:
            return None
        created = next_creation_time(conn, "uploader_items", account_id, self.clock())
        conn.execute(
            "INSERT INTO uploader_items (id, slug, account_id, kind, link, name, type, size,"
            " sha256, width, height, storage_key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item_id, slug, account_id, kind, link, name, type, size, sha256, width, height,
             storage_key, created),
        )
        return Item(id=item_id, slug=slug, account_id=account_id, kind=kind, alias=None,
                    favourite=False, link=link, name=name, type=type, size=size, sha256=sha256,
                    width=width, height=height, storage_key=storage_key, views=0,
                    created_at=created)

    def get(self, item_id: str) -> Item | None:
        row = self.db.one("SELECT * FROM uploader_items WHERE id = ?", (item_id,))
        return Item.from_row(row) if row else None

    def resolve(self, name: str, account_id: str | None = None) -> Item | None:
        """A live item by ID or alias, else by the slug of an ID with an extension (section 5)."""
        params: tuple[str, ...]
        extra, params = "", (name,)
        if account_id is not None:
            extra, params = " AND account_id = ?", (name, account_id)
        # IDs, slugs and aliases share one namespace (uploader_names), so at most
        # one live item answers to a name: the primary key first, the hot case.
        row = self.db.one(
            "SELECT * FROM uploader_items WHERE id = ? AND deleted_at IS NULL" + extra, params)
        if row is None:
            row = self.db.one(
                "SELECT * FROM uploader_items WHERE alias = ? AND deleted_at IS NULL" + extra,
                params)
        if row is None and "." not in name:
            row = self.db.one(
                "SELECT * FROM uploader_items WHERE slug = ? AND id != slug"
                " AND deleted_at IS NULL" + extra, params)
        return Item.from_row(row) if row else None

    def add_view(self, item_id: str) -> None:
        self.db.write_one("UPDATE uploader_items SET views = views + 1 WHERE id = ?", (item_id,),
                          durable=False)
