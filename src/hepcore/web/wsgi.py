"""The WSGI shell: reads the body from ``wsgi.input`` and hands file bodies to
``wsgi.file_wrapper`` (``sendfile`` under gunicorn)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import BodyError, ClientDisconnected, ServiceError
from ..http import LengthLimitedBody, Response
from ..runtime import Runtime
from ..service import RouteGroup
from .mounts import Mount
from .shell import (
    answer_every_method,
    apply_headers,
    apply_simple_body,
    build_request,
    content_length,
    finish,
    stalled,
)

# Where :meth:`ServiceResource.dispatch` leaves the request's :class:`WsgiBody`,
# which counts what the service read of the body (see :func:`drain_after`).
BODY_KEY = "hepcore.body"

# Bounds of reading what a response left unread of the request body (drain_after).
DRAIN_MAX_BYTES = 256 * 1024 * 1024  # what is left of the body; more is not read
DRAIN_STALL = 5.0  # seconds one read may wait for the client's next bytes
DRAIN_TIME = 30.0  # seconds the whole drain may take
_DRAIN_BLOCK = 1024 * 1024


class WsgiBody:
    """``wsgi.input`` as a :class:`~hepcore.http.BodyReader`; server errors mid-read
    (a client that went away) become :class:`ClientDisconnected`. Counts the bytes
    read (``received``) and whether the end was reached (``ended``).

    With the connection's socket (gunicorn's ``gunicorn.socket``), a read that
    waits more than ``stall`` seconds for the client's next bytes ends in
    :class:`ClientDisconnected` too: an idle client must not hold a worker
    thread for ever. The bound is the kernel's ``SO_RCVTIMEO``, set at the
    first read: a Python socket timeout would add a ``poll`` to every
    ``recv`` of every upload."""

    __slots__ = ("_sock", "_stall", "_stream", "ended", "received")

    def __init__(self, stream: Any, sock: Any = None, stall: float | None = None) -> None:
        self._stream = stream
        self._sock = sock if isinstance(sock, socket.socket) and stall else None
        self._stall = stall
        self.received = 0
        self.ended = False

    def read(self, n: int) -> bytes:
        if self._sock is not None:
            _bound_reads(self._sock, self._stall or 0.0)
            self._sock = None
        try:
            data: bytes = self._stream.read(n)
        except BodyError:
            raise
        except (TimeoutError, BlockingIOError) as exc:  # SO_RCVTIMEO: EAGAIN
            raise ClientDisconnected(stalled(self._stall)) from exc
        except Exception as exc:
            raise ClientDisconnected(str(exc)) from exc
        if data:
            self.received += len(data)
        elif n:
            self.ended = True
        return data


_TIMEVAL = struct.Struct("@ll")


def _bound_reads(sock: socket.socket, seconds: float) -> None:
    """Make each blocking ``recv`` on ``sock`` fail (``EAGAIN``) after ``seconds``
    without data; it stays so for the connection's later requests, whose
    reads the same bound suits."""
    whole = int(seconds)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                        _TIMEVAL.pack(whole, int((seconds - whole) * 1_000_000)))


def drain_after(env: dict[str, Any], result: Iterable[bytes]) -> Iterable[bytes]:
    """``result``, the response to a request that announced a body, made to read
    and discard what is left of that body once the response has been written.

    Why: a service refuses some requests before reading their body (a 401,
    403 or 429, a 413 for a ``Content-Length`` over the limit: G5), and the
    answer goes out at once. A client that sends its whole body before it
    reads the answer (Python's http.client, .NET's HttpClient) keeps
    sending; gunicorn reads at most 64 KiB of the rest, then closes, and the
    kernel answers the client's further bytes with a reset: the client gets
    a broken pipe instead of the answer. Reading the rest after the answer
    lets the client finish sending and then read it, and the connection
    stays usable. The answer itself is never delayed: the server calls the
    iterable's ``close()`` only after writing the response.

    When: whatever the status, for an HTTP/1.x request that announced a body
    (``Content-Length`` above 0, or ``Transfer-Encoding``: chunked) of which
    the services read less than all (counted by :class:`WsgiBody`: fewer
    bytes than the ``Content-Length``, or a chunked body whose end no read
    met), under a server that hands over the connection's socket as
    ``gunicorn.socket`` (a :class:`socket.socket`). Elsewhere (a test
    client, another server, HTTP/2) nothing changes. A route that reads
    ``wsgi.input`` itself is taken for one that read nothing: the drain then
    finds the body at its end at the first read. A request without a body,
    or whose body was read to its end, costs a few dictionary look-ups.

    Bounds: a ``Content-Length`` body with more than ``DRAIN_MAX_BYTES``
    (256 MiB) left is not read at all (gunicorn closes the connection as
    before); a chunked one is read up to 256 MiB. Each read waits at most
    ``DRAIN_STALL`` (5 s) for the client's next bytes, and the drain ends at
    most ``DRAIN_TIME`` (30 s) after its first bytes arrive. A drain that stops short of the end
    of the body shuts the socket down (the answer has been sent) so that
    gunicorn closes it at once; the socket's own timeout is restored.
    """
    body: WsgiBody | None = env.get(BODY_KEY)
    length = env.get("CONTENT_LENGTH")
    left: int | None
    if length:
        if not length.isdigit():
            return result  # answered with a 400; gunicorn refuses such a request first
        left = int(length) - (body.received if body is not None else 0)
        if left <= 0 or left > DRAIN_MAX_BYTES:
            return result
    elif env.get("HTTP_TRANSFER_ENCODING"):
        if body is not None and body.ended:
            return result
        left = None
    else:
        return result
    sock = env.get("gunicorn.socket")
    if not isinstance(sock, socket.socket) or not str(
            env.get("SERVER_PROTOCOL", "")).startswith("HTTP/1."):
        return result
    return _DrainAfter(result, env["wsgi.input"], sock, left)


class _DrainAfter:
    """A response iterable whose ``close()`` also discards the unread body."""

    __slots__ = ("_left", "_result", "_sock", "_stream")

    def __init__(self, result: Iterable[bytes], stream: Any, sock: socket.socket,
                 left: int | None) -> None:
        self._result = result
        self._stream = stream
        self._sock = sock
        self._left = left

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            discard_body(self._stream, self._sock, self._left)


def discard_body(stream: Any, sock: socket.socket, left: int | None) -> bool:
    """Read and drop ``left`` bytes of ``stream`` (``None``: to its end, at most
    ``DRAIN_MAX_BYTES``) within the bounds of :func:`drain_after`; whether the
    body ended. When it did not, ``sock`` is shut down."""
    try:
        prior = sock.gettimeout()
        sock.settimeout(DRAIN_STALL)
    except OSError:
        return False
    budget = DRAIN_MAX_BYTES if left is None else left
    # Started on the first byte: most drains find the body at its end at once
    # (a chunked upload read up to its closing boundary, say), and those should
    # not cost a thread. That first read asks for one byte, because one read
    # of the body's stream returns only once it has all it asked for.
    watchdog: _Watchdog | None = None
    ended = False
    try:
        while budget > 0 and not (watchdog is not None and watchdog.fired):
            data = stream.read(1 if watchdog is None else min(_DRAIN_BLOCK, budget))
            if not data:
                # The body ended, or was read elsewhere, or the client went
                # away: gunicorn's own end-of-request check tells which.
                ended = True
                break
            if watchdog is None:
                watchdog = _Watchdog(sock)
            budget -= len(data)
        else:
            # All of a Content-Length body; a chunked one must end right here.
            ended = left is not None or not stream.read(1)
    except Exception:  # noqa: BLE001 - a stall (socket timeout), a bad chunk, a reset
        ended = False
    finally:
        if watchdog is not None:
            watchdog.stop()
    if watchdog is not None and watchdog.fired:
        ended = False
    if not ended:
        _shut(sock)
    with contextlib.suppress(OSError):
        sock.settimeout(prior)
    return ended


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown: an SSLSocket's would also drop its TLS state,
    # under the feet of a read in progress in another thread.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """Shuts ``sock`` down after ``DRAIN_TIME`` unless stopped first: a read
    in progress then returns at once. Socket timeouts alone bound each
    ``recv()``, and a client sending a byte every few seconds would keep one
    read of the body going for long."""

    __slots__ = ("_done", "_lock", "_sock", "_timer", "fired")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._done = False
        self.fired = False
        self._timer = threading.Timer(DRAIN_TIME, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self.fired = True
                _shut(self._sock)

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


@answer_every_method
class ServiceResource:
    """One route template of one mount; every HTTP method goes through here so
    that unknown methods and paths get the service's envelope."""

    def __init__(self, runtime: Runtime, mount: Mount, group: RouteGroup | None) -> None:
        self.runtime = runtime
        self.mount = mount
        self.group = group

    def _respond(self, req: Any, resp: Any, **params: Any) -> None:
        started = time.perf_counter()
        response = self.dispatch(req, params)
        apply_headers(resp, response)
        finish(self.runtime, self.mount, self.group, req, resp, response, params, started)
        stream = apply_simple_body(resp, response)
        if stream is not None:
            resp.stream = stream.stream

    def dispatch(self, req: Any, params: dict[str, Any]) -> Response:
        service = self.mount.service
        try:
            length = content_length(req)
            raw = req.env[BODY_KEY] = WsgiBody(req.stream, req.env.get("gunicorn.socket"),
                                               self.runtime.config.body_timeout)
            body = LengthLimitedBody(raw, length)
            request = build_request(req, self.mount, params, body, length, self.runtime.config)
        except ServiceError as err:
            return service.render_error(err)
        if self.group is None:
            return service.not_found(request)
        handler = self.group.handler_for(req.method)
        if handler is None:
            return service.method_not_allowed(request, self.group.allowed())
        return service.handle(handler, request)


class ServiceSink:
    """Catches paths under a service prefix that no route matches (embedding)."""

    def __init__(self, resource: ServiceResource) -> None:
        self.resource = resource

    def __call__(self, req: Any, resp: Any, **params: Any) -> None:
        self.resource._respond(req, resp)
