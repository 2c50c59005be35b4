"""The minimal work of the uploader's hot paths: a bare Falcon app, no hepcore.

Served by ``bench/uploader.py`` with the same server software and settings
as hepcore (gunicorn gthread x8 / uvicorn, 1 worker, access log on):

* ``POST /upload``: the raw body (no multipart parsing) streamed to a
  temporary file in 1 MiB reads, fsync, rename into place, directory fsync
  (``bare_app.py``), then ONE row ``INSERT`` (autocommit), and a tiny JSON
  answer. No auth, rate limit, hashing or slug checks.
* ``GET /{item_id}``: one ``SELECT`` by primary key, then for a link the
  view-count ``UPDATE`` and a 302 with ``Location``; for a file the same
  ``UPDATE`` and the file as the body: ``wsgi.file_wrapper`` under
  gunicorn (``sendfile``), 1 MiB chunks read on the event loop under uvicorn.

SQLite like hepcore's: WAL; the row that acknowledges an upload commits with
``synchronous=FULL`` (durable), view counts with ``NORMAL``: two connections
per thread, one for each level.
``$BARE_DB`` is the database (table ``items``, made by the benchmark),
``$BARE_STORE`` the directory uploads land in.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import falcon
import falcon.asgi
from bare_app import CHUNK, AsyncRoot, Root, _finish, _new_paths, _reply, _store_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    link TEXT,
    path TEXT,
    size INTEGER,
    views INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)
"""
_local = threading.local()
# Threads take turns here rather than in SQLite's busy handler, which sleeps
# in steps of milliseconds while another thread's commit waits for the disk.
_write_lock = threading.Lock()


def connect(path: str, synchronous: str = "NORMAL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def _db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect(os.environ["BARE_DB"])
    return conn


def _durable_db() -> sqlite3.Connection:
    conn = getattr(_local, "durable", None)
    if conn is None:
        conn = _local.durable = connect(os.environ["BARE_DB"], "FULL")
    return conn


def _store_row(name: str, path: str, size: int) -> None:
    with _write_lock:
        _durable_db().execute("INSERT INTO items (id, kind, path, size, created_at)"
                              " VALUES (?, 'file', ?, ?, ?)", (name, path, size, time.time()))


def _lookup(item_id: str) -> tuple[str, str | None, str | None, int | None] | None:
    db = _db()
    row = db.execute("SELECT kind, link, path, size FROM items WHERE id = ?",
                     (item_id,)).fetchone()
    if row is not None:
        db.execute("UPDATE items SET views = views + 1 WHERE id = ?", (item_id,))
    return row


def _finish_and_insert(fh: Any, tmp: str, final: str, root: str, name: str, size: int) -> None:
    _finish(fh, tmp, final, root)
    _store_row(name, final, size)


class Upload:
    def __init__(self) -> None:
        self.root = _store_dir()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        name, tmp, final = _new_paths(self.root)
        stream = req.bounded_stream
        size = 0
        with open(tmp, "xb", buffering=0) as fh:
            while chunk := stream.read(CHUNK):
                fh.write(chunk)
                size += len(chunk)
            _finish_and_insert(fh, tmp, final, self.root, name, size)
        _reply(resp, name, size)


class AsyncUpload:
    """Reads on the event loop; fsync, rename and the row insert in a thread."""

    def __init__(self) -> None:
        self.root = _store_dir()

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        name, tmp, final = _new_paths(self.root)
        stream = req.stream
        size = 0
        fh = open(tmp, "xb", buffering=0)  # noqa: SIM115, ASYNC230 - closed by _finish
        try:
            while chunk := await stream.read(CHUNK):
                fh.write(chunk)
                size += len(chunk)
            await asyncio.get_running_loop().run_in_executor(
                None, _finish_and_insert, fh, tmp, final, self.root, name, size)
        finally:
            fh.close()
        _reply(resp, name, size)


class Item:
    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        row = _lookup(item_id)
        if row is None:
            raise falcon.HTTPNotFound()
        kind, link, path, size = row
        if kind == "link":
            resp.status = falcon.HTTP_302
            resp.location = link
            return
        resp.content_type = "application/octet-stream"
        resp.content_length = size
        resp.stream = open(path, "rb")  # noqa: SIM115 - the server closes it


async def _chunks(path: str) -> AsyncIterator[bytes]:
    with open(path, "rb") as fh:  # noqa: ASYNC230 - page-cache reads, the minimal work
        while chunk := fh.read(CHUNK):
            yield chunk


class AsyncItem:
    """SQLite on the event loop (no thread hop); the file in 1 MiB chunks."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response,
                     item_id: str) -> None:
        row = _lookup(item_id)
        if row is None:
            raise falcon.HTTPNotFound()
        kind, link, path, size = row
        if kind == "link":
            resp.status = falcon.HTTP_302
            resp.location = link
            return
        resp.content_type = "application/octet-stream"
        resp.content_length = size
        resp.stream = _chunks(path)


def wsgi_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/", Root())
    app.add_route("/upload", Upload())
    app.add_route("/{item_id}", Item())
    return app


def asgi_app() -> falcon.asgi.App:
    app = falcon.asgi.App()
    app.add_route("/", AsyncRoot())
    app.add_route("/upload", AsyncUpload())
    app.add_route("/{item_id}", AsyncItem())
    return app
