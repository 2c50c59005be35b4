"""The minimal work of paste creation: a bare Falcon app, no hepcore.

Served by ``bench/paste.py`` with the same server software and settings as
hepcore. ``POST /api/paste`` reads the JSON body, takes ``content`` and
``title``, does ONE SQLite ``INSERT`` (autocommit; WAL, ``synchronous=FULL``
so that the acknowledged row is durable, as hepcore's; a connection per thread) and answers the same envelope shape.
No auth, rate limit, validation, detection or key counting.
``$BARE_DB`` is the database (table ``pastes``, made by the benchmark).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import threading
import time

import falcon
import falcon.asgi
from bare_app import AsyncRoot, Root

SCHEMA = """
CREATE TABLE IF NOT EXISTS pastes (
    id TEXT PRIMARY KEY,
    title TEXT,
    language TEXT,
    content BLOB NOT NULL,
    created_at REAL NOT NULL
)
"""
_local = threading.local()
# Threads take turns here rather than in SQLite's busy handler, which sleeps
# in steps of milliseconds while another thread's commit waits for the disk.
_write_lock = threading.Lock()


def _db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ["BARE_DB"], isolation_level=None,
                               check_same_thread=False, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        _local.conn = conn
    return conn


def _store(raw: bytes) -> bytes:
    doc = json.loads(raw)
    paste_id = secrets.token_urlsafe(6)
    with _write_lock:
        _db().execute("INSERT INTO pastes (id, title, language, content, created_at)"
                      " VALUES (?, ?, ?, ?, ?)",
                      (paste_id, doc.get("title"), doc.get("language"),
                       doc["content"].encode("utf-8"), time.time()))
    return json.dumps({"ok": True, "data": {"id": paste_id, "url": f"/{paste_id}",
                                            "expiresAt": None, "anonymous": False}},
                      separators=(",", ":")).encode()


class Create:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = _store(req.bounded_stream.read())
        resp.content_type = "application/json"


class AsyncCreate:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raw = await req.stream.read()
        resp.data = await asyncio.get_running_loop().run_in_executor(None, _store, raw)
        resp.content_type = "application/json"


def wsgi_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/", Root())
    app.add_route("/api/paste", Create())
    return app


def asgi_app() -> falcon.asgi.App:
    app = falcon.asgi.App()
    app.add_route("/", AsyncRoot())
    app.add_route("/api/paste", AsyncCreate())
    return app
