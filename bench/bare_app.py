"""The upper bound for "receive and store": a bare Falcon app, no hepcore.

``POST`` (any path) streams the raw request body to a temporary file in
1 MiB reads, fsyncs it, renames it into place, fsyncs the directory (the
same durability hepcore gives an upload) and answers a tiny JSON
document. No multipart parsing, hashing, authentication or database.

Served by ``bench/upload.py`` with the same server software and settings
as hepcore::

    gunicorn -k gthread --workers 1 --threads 8 bare_app:wsgi_app
    uvicorn --factory bare_app:asgi_app

``$BARE_STORE`` is the directory files land in.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from typing import Any

import falcon
import falcon.asgi

CHUNK = 1024 * 1024


def _store_dir() -> str:
    path = os.environ.get("BARE_STORE") or "bare-store"
    os.makedirs(os.path.join(path, ".tmp"), exist_ok=True)
    return path


def _new_paths(root: str) -> tuple[str, str, str]:
    name = secrets.token_hex(8)
    return name, os.path.join(root, ".tmp", name + ".part"), os.path.join(root, name)


def _finish(fh: Any, tmp: str, final: str, root: str) -> None:
    """fsync the file, rename it into place, fsync the directory."""
    os.fsync(fh.fileno())
    fh.close()
    os.replace(tmp, final)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reply(resp: Any, name: str, size: int) -> None:
    resp.content_type = "application/json"
    resp.data = json.dumps({"ID": name, "size": size}).encode()


class Upload:
    def __init__(self) -> None:
        self.root = _store_dir()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        name, tmp, final = _new_paths(self.root)
        stream = req.bounded_stream
        size = 0
        with open(tmp, "xb", buffering=0) as fh:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                size += len(chunk)
            _finish(fh, tmp, final, self.root)
        _reply(resp, name, size)


class AsyncUpload:
    """Reads on the event loop (falcon gathers up to 1 MiB per read), writes
    the page cache there too, and runs fsync + rename in a thread."""

    def __init__(self) -> None:
        self.root = _store_dir()

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        name, tmp, final = _new_paths(self.root)
        stream = req.stream
        size = 0
        fh = open(tmp, "xb", buffering=0)  # noqa: SIM115, ASYNC230 - closed by _finish
        try:
            while True:
                chunk = await stream.read(CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                size += len(chunk)
            await asyncio.get_running_loop().run_in_executor(
                None, _finish, fh, tmp, final, self.root)
        finally:
            fh.close()
        _reply(resp, name, size)


class Root:
    def on_get(self, req: Any, resp: Any) -> None:
        resp.content_type = "application/json"
        resp.data = b'{"ok":true}'


class AsyncRoot:
    async def on_get(self, req: Any, resp: Any) -> None:
        resp.content_type = "application/json"
        resp.data = b'{"ok":true}'


def wsgi_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/", Root())
    app.add_route("/upload", Upload())
    return app


def asgi_app() -> falcon.asgi.App:
    app = falcon.asgi.App()
    app.add_route("/", AsyncRoot())
    app.add_route("/upload", AsyncUpload())
    return app
