"""Test helpers for the web layer: multipart bodies, real images, and raw
WSGI/ASGI calls that keep the exact header list (and allow chunked bodies)."""

from __future__ import annotations

import asyncio
import io
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import falcon.asgi
from PIL import Image

FilePart = tuple[str, str | None, str | None, bytes]
"""``(field name, filename or None for a plain field, Content-Type or None, bytes)``."""


def multipart(parts: Sequence[FilePart], boundary: str | None = None) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its ``Content-Type`` header value."""
    boundary = boundary or "hepcore-test-" + secrets.token_hex(8)
    out = bytearray()
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def png_bytes(width: int = 3, height: int = 2) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 4, height: int = 4) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 10)).save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class RawResponse:
    """Status, the header list exactly as the app produced it, and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def call(app: Any, method: str, path: str, *, headers: Sequence[tuple[str, str]] = (),
         body: bytes | Sequence[bytes] = b"", chunked: bool = False, host: str = "testhost",
         scheme: str = "http", query: str = "") -> RawResponse:
    """Call a Falcon app (WSGI or ASGI) directly.

    ``body`` may be a list of chunks. With ``chunked=True`` no
    ``Content-Length`` is sent (as behind a server decoding
    ``Transfer-Encoding: chunked``); otherwise it is the body's length
    unless ``headers`` set one.
    """
    chunks = [body] if isinstance(body, bytes) else list(body)
    data = b"".join(chunks)
    hdrs = [("Host", host), *headers]
    # A fixed request id, so that WSGI and ASGI answers can be compared byte for byte.
    if not any(k.lower() == "x-request-id" for k, _ in hdrs):
        hdrs.append(("X-Request-Id", "test-request"))
    if not chunked and data and not any(k.lower() == "content-length" for k, _ in hdrs):
        hdrs.append(("Content-Length", str(len(data))))
    if isinstance(app, falcon.asgi.App):
        return asyncio.run(_call_asgi(app, method, path, hdrs, chunks, scheme, query))
    return _call_wsgi(app, method, path, hdrs, data, scheme, query)


def _call_wsgi(app: Any, method: str, path: str, headers: list[tuple[str, str]], data: bytes,
               scheme: str, query: str) -> RawResponse:
    host = {k.lower(): v for k, v in headers}["host"]
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": host.split(":")[0], "SERVER_PORT": "443" if scheme == "https" else "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": scheme, "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        env[key] = value
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"], started["headers"] = status, headers
        return lambda _data: None

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return RawResponse(int(started["status"][:3]), list(started["headers"]), body)


async def _call_asgi(app: Any, method: str, path: str, headers: list[tuple[str, str]],
                     chunks: list[bytes], scheme: str, query: str) -> RawResponse:
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": method, "scheme": scheme, "path": path,
        "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000), "server": ("testhost", 80),
    }
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    if messages:
        messages[-1]["more_body"] = False
    else:
        messages.append({"type": "http.request", "body": b"", "more_body": False})
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    return RawResponse(int(start["status"]), hdrs, body)


@dataclass
class TestHost:
    """A runtime over its own data directory with one account and its uploader token."""

    __test__ = False

    runtime: Any
    account: Any
    token: str
    asgi: bool

    def app(self) -> Any:
        from hepcore.web import create_app

        return create_app(self.runtime, asgi=self.asgi)

    def client(self) -> Any:
        import falcon.testing

        return falcon.testing.TestClient(self.app())


def make_host(data_dir: Any, clock: Any, *, asgi: bool, options: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None, **uploader: Any) -> TestHost:
    """Build a host whose uploader is mounted at ``/`` with ``options`` and
    ``ServiceConfig`` fields from ``uploader``; the account gets ``settings``."""
    from hepcore import Config, ServiceConfig, build_runtime

    server = {k: uploader.pop(k) for k in ("trust_proxy", "multipart_overhead") if k in uploader}
    uploader.setdefault("prefix", "/")
    config = Config(
        data_dir=data_dir, secrets=["test-secret"],
        services={"uploader": ServiceConfig("uploader", options=dict(options or {}), **uploader)},
        **server,
    )
    runtime = build_runtime(config, clock=clock)
    account = runtime.accounts.create("bob", settings=settings or {})
    token, _ = runtime.keys.create("uploader", account.id, label="test")
    return TestHost(runtime, account, token, asgi)
