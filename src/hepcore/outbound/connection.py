"""Resolution and connections: every wait bounded, every socket pinned to a checked IP."""

from __future__ import annotations

import functools
import http.client
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from .addresses import IPAddress
from .errors import FetchTimeout
from .policy import OutboundPolicy
from .urls import Target

Resolver = Callable[[str, int], list[str]]
"""``resolver(host, port)`` returns the host's addresses as strings."""


def default_resolver(host: str, port: int) -> list[str]:
    """Every A and AAAA address of ``host``, in the system's preferred order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


class Deadline:
    """An end time on the monotonic clock (of the whole exchange, or of one connect)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def bound(self, seconds: float, what: str) -> float:
        """``seconds`` cut to what is left; raises :class:`FetchTimeout` when nothing is."""
        left = self.remaining()
        if left <= 0:
            raise FetchTimeout(detail=f"time limit reached before {what}")
        return min(seconds, left)


def call_with_timeout(fn: Callable[[], list[str]], timeout: float) -> list[str]:
    """Run a blocking lookup in a daemon thread; getaddrinfo itself has no timeout."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="hepcore-resolve", daemon=True).start()
    if not done.wait(timeout):
        raise FetchTimeout(detail="name resolution timed out")
    if "error" in outcome:
        raise outcome["error"]
    addresses: list[str] = outcome["value"]
    return addresses


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The system's trust store with hostname checks; built once, shared by all threads."""
    return ssl.create_default_context()


class _DeadlineReader(io.RawIOBase):
    """Socket reads that never wait longer than the read timeout or past the deadline.

    http.client reads status, headers and chunk sizes with loops of its own, so the
    limits live here, below it: every single ``recv`` is bounded.
    """

    def __init__(self, owner: _DeadlineSocket) -> None:
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        owner = self._owner
        if owner.cap is not None and owner.received > owner.cap[0]:
            raise owner.cap[1]
        owner.sock.settimeout(owner.deadline.bound(owner.read_timeout, "a read"))
        try:
            n: int = owner.sock.recv_into(buffer)
        except TimeoutError as exc:
            raise FetchTimeout(detail="read timed out") from exc
        owner.received += n
        return n

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._owner.release()


class _DeadlineSocket:
    """The parts of a socket http.client uses, with every wait bounded.

    Like a real socket, it stays open while a reader made by :meth:`makefile` is
    (http.client closes the connection before the response body is read).
    """

    def __init__(self, sock: socket.socket, deadline: Deadline, read_timeout: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.read_timeout = read_timeout
        self.received = 0
        self.cap: tuple[int, Exception] | None = None
        self._readers = 0
        self._closed = False

    def limit_reads(self, more: int, error: Exception) -> None:
        """Raise ``error`` from reads once more than ``more`` further bytes have
        come off the wire (body framing and compression included)."""
        self.cap = (self.received + more, error)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        if "w" in mode:
            raise ValueError("write through sendall")
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def sendall(self, data: bytes) -> None:
        self.sock.settimeout(self.deadline.bound(self.read_timeout, "sending"))
        try:
            self.sock.sendall(data)
        except TimeoutError as exc:
            raise FetchTimeout(detail="send timed out") from exc

    def release(self) -> None:
        self._readers -= 1
        if self._closed and self._readers <= 0:
            self.sock.close()

    def close(self) -> None:
        self._closed = True
        if self._readers <= 0:
            self.sock.close()


class _FinalResponse(http.client.HTTPResponse):
    """Skips interim responses (``103 Early Hints`` and the like) as RFC 9110 asks.

    http.client skips only ``100 Continue`` by itself.
    """

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(20):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 102 <= status < 200:
                return version, status, reason
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]
        raise http.client.HTTPException("too many interim responses")


class PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to one checked IP address; it never resolves names.

    ``host`` stays the URL's hostname (for ``Host``, SNI and certificate checks).
    """

    response_class = _FinalResponse

    def __init__(self, target: Target, address: IPAddress, *, deadline: Deadline,
                 policy: OutboundPolicy, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__(target.host, target.port)
        self.target = target
        self.address = address
        self._deadline = deadline
        self._policy = policy
        self._ssl_context = ssl_context
        self.raw_sock: socket.socket | None = None
        self.wire: _DeadlineSocket | None = None

    def connect(self) -> None:
        """TCP to the pinned address, then TLS for the URL's hostname, in ``connect_timeout``."""
        budget = Deadline(self._deadline.bound(self._policy.connect_timeout, "connecting"))
        family = socket.AF_INET if self.address.version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_STREAM)
        step = f"connecting to {self.address} port {self.target.port}"
        try:
            sock.settimeout(budget.bound(self._policy.connect_timeout, step))
            sock.connect((str(self.address), self.target.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.target.scheme == "https":
                step = f"TLS handshake with {self.target.host} at {self.address}"
                context = self._ssl_context or default_ssl_context()
                sock.settimeout(budget.bound(self._policy.connect_timeout, step))
                sock = context.wrap_socket(sock, server_hostname=self.target.host)
        except TimeoutError as exc:
            sock.close()
            raise FetchTimeout(detail=f"{step}: timed out") from exc
        except BaseException:
            sock.close()
            raise
        self.raw_sock = sock
        self.sock = self.wire = _DeadlineSocket(sock, self._deadline, self._policy.read_timeout)
