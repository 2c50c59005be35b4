"""Origins on 127.0.0.1 for the fetcher tests: an HTTP server that records what it
receives, and a raw TCP server for origins that do not speak HTTP properly."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[["OriginHandler"], None]


@dataclass
class Seen:
    """One request as the origin received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class OriginHandler(BaseHTTPRequestHandler):
    server: OriginServer
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.origin.seen.append(Seen(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        route = self.server.origin.routes.get(self.path.split("?", 1)[0])
        try:
            if route is None:
                self.reply(404, b"no such route")
            else:
                route(self)
        except OSError:
            pass  # the fetcher hung up, as it should when it gives up

    do_GET = do_POST = do_HEAD = do_PUT = _handle

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
              ) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def redirect(self, status: int, location: str) -> None:
        self.reply(status, b"", {"Location": location})

    def log_message(self, *args: object) -> None:
        pass


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True
    origin: Origin


@dataclass
class Origin:
    """A live HTTP origin; ``routes`` maps a path to a handler, ``seen`` lists requests."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    server: OriginServer | None = None
    tls: ssl.SSLContext | None = None

    def start(self) -> Origin:
        self.server = OriginServer(("127.0.0.1", 0), OriginHandler)
        self.server.origin = self
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class RawServer:
    """A TCP listener on 127.0.0.1 that runs ``talk(conn, stop)`` for each connection."""

    def __init__(self, talk: Callable[[socket.socket, threading.Event], None]) -> None:
        self.talk = talk
        self.stop = threading.Event()
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                read_request_head(conn)
                self.talk(conn, self.stop)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self._thread.join(timeout=5)


def read_request_head(conn: socket.socket) -> bytes:
    """Read up to the blank line that ends a request's head."""
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def drip(conn: socket.socket, stop: threading.Event, data: bytes, pause: float) -> None:
    """Send ``data`` one byte at a time, ``pause`` seconds apart, until stopped."""
    for i in range(len(data)):
        if stop.wait(pause):
            return
        conn.sendall(data[i:i + 1])


class CountingResolver:
    """A resolver the test controls: a fixed table, and a log of every lookup."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])
