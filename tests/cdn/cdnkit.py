"""Helpers of the CDN tests: a host builder, multipart requests, quota reads,
and a real HTTP origin on 127.0.0.1 for URL uploads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import falcon.testing
from httpkit import FilePart, multipart

from hepcore import Config, Runtime, ServiceConfig, build_runtime

OTHER_PLUGINS = ("uploader", "paste", "images", "phash_blocklist", "login")
UUID7_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
MB = 1024 * 1024


def post_files(client: falcon.testing.TestClient, path: str, parts: Sequence[FilePart],
               headers: dict[str, str] | None = None) -> falcon.testing.Result:
    body, ctype = multipart(parts)
    return client.simulate_post(path, body=body,
                                headers={**(headers or {}), "Content-Type": ctype})


def upload(client: falcon.testing.TestClient, auth: dict[str, str], name: str = "test.png",
           data: bytes = b"hello", ctype: str | None = None) -> falcon.testing.Result:
    return post_files(client, "/api/v4/upload", [("file", name, ctype, data)], auth)


def batch(client: falcon.testing.TestClient, auth: dict[str, str],
          files: Sequence[tuple[str, bytes]]) -> falcon.testing.Result:
    return post_files(client, "/api/v4/uploads",
                      [("files[]", name, None, data) for name, data in files], auth)


def usage(runtime: Runtime, account_id: str) -> tuple[int, int]:
    """(bytes, count) charged to the account's CDN quota."""
    got = runtime.quotas.usage(f"cdn:{account_id}")
    return got.bytes, got.count


def rows(runtime: Runtime, account_id: str | None = None) -> list[Any]:
    if account_id is None:
        return runtime.db.all("SELECT * FROM cdn_uploads ORDER BY created_at, id")
    return runtime.db.all("SELECT * FROM cdn_uploads WHERE account_id = ?"
                          " ORDER BY created_at, id", (account_id,))


def stored_files(runtime: Runtime) -> list[str]:
    """Committed objects under ``cdn/``, and any partial write left in the temp dir."""
    keys = sorted(runtime.storage.keys("cdn/"))
    tmp = getattr(runtime.storage, "tmp_dir", None)
    partial = sorted(p.name for p in Path(tmp).iterdir()) if tmp is not None else []
    return keys + [f".tmp/{p}" for p in partial]


def path_of(url: str) -> str:
    """The path of a URL the app built from the test client's host."""
    from urllib.parse import urlsplit

    return urlsplit(url).path


@dataclass
class CdnHost:
    """A runtime over its own data directory with the CDN at ``prefix``, an
    account ``carol`` with ``settings`` and one key."""

    __test__ = False

    runtime: Runtime
    account: Any
    key: str
    asgi: bool

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def client(self) -> falcon.testing.TestClient:
        from hepcore.web import create_app

        return falcon.testing.TestClient(create_app(self.runtime, asgi=self.asgi))

    @classmethod
    def build(cls, data_dir: Path, clock: Any, *, asgi: bool,
              options: dict[str, Any] | None = None, settings: dict[str, Any] | None = None,
              outbound_allow: Sequence[str] = ("127.0.0.1",), prefix: str = "/",
              public_base_url: str | None = None, plugins: Sequence[object] = (),
              **config: Any) -> CdnHost:
        from hepcore_cdn.keys import create_key

        cfg = Config(
            data_dir=data_dir, secrets=["test-secret"],
            services={"cdn": ServiceConfig("cdn", prefix=prefix, options=dict(options or {}),
                                           public_base_url=public_base_url)},
            blocked_plugins=list(OTHER_PLUGINS), outbound_allow=list(outbound_allow), **config)
        runtime = build_runtime(cfg, clock=clock, plugins=plugins)
        account = runtime.accounts.create("carol", email="carol@example.org",
                                          settings=settings or {})
        key, _ = create_key(runtime, account.id, "test")
        return cls(runtime, account, key, asgi)


# --- a real origin on 127.0.0.1 ----------------------------------------------


@dataclass
class Seen:
    """One request the origin received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Callable[[Any], None] | None = None  # writes the body itself


class Origin:
    """A threaded HTTP server on 127.0.0.1 answering with canned replies per path
    and recording every request (method, path, headers)."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.seen: list[Seen] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                origin.seen.append(Seen("GET", self.path, {k.lower(): v for k, v in
                                                           self.headers.items()}))
                reply = origin.replies.get(self.path.split("?", 1)[0], Reply(404, body=b"no"))
                self.send_response(reply.status)
                names = {k.lower() for k, _ in reply.headers}
                for name, value in reply.headers:
                    self.send_header(name, value)
                if reply.stream is None and "content-length" not in names:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if reply.stream is not None:
                    reply.stream(self.wfile)
                else:
                    self.wfile.write(reply.body)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                        daemon=True)

    def reply(self, path: str, body: bytes = b"", status: int = 200,
              headers: Sequence[tuple[str, str]] = (), stream: Callable[[Any], None] | None = None
              ) -> str:
        self.replies[path] = Reply(status, list(headers), body, stream)
        return self.url + path

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
