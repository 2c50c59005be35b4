"""The ASGI shell: the sync service core runs in a worker thread (quick
``inline`` routes of requests without a body run on the event loop); the
body is read from the event loop in large chunks, and files are sent in
large chunks read in the thread pool."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from ..db import WriteWouldBlock
from ..errors import ClientDisconnected, ServiceError
from ..http import BytesBody, LengthLimitedBody, Response, StreamBody
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
from .wsgi import DRAIN_MAX_BYTES

SEND_CHUNK = 1024 * 1024
# In the ASGI scope: (the AsgiBody, its Content-Length) of a body larger than
# DRAIN_MAX_BYTES, for _leaves_too_much_unread.
LARGE_BODY_KEY = "hepcore.large_body"
PREFETCH_MAX = 64 * 1024
"""A body of at most this many bytes (by Content-Length) is read on the loop
before the handler runs, sparing the worker thread two round trips to it."""


async def _read_at_least(stream: Any, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the body."""
    first: bytes = await stream.read(n)
    if len(first) >= n or not first:
        return first
    parts = [first]
    got = len(first)
    while got < n:
        chunk = await stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class AsgiBody:
    """The ASGI request stream as a blocking :class:`~hepcore.http.BodyReader`
    for code running in a worker thread: each read is one hop to the loop.
    Counts the bytes read (``received``). A read that waits more than ``stall``
    seconds for the client's next bytes ends in :class:`ClientDisconnected`, so
    that an idle client does not hold a worker thread for ever."""

    __slots__ = ("_loop", "_stall", "_stream", "received")

    def __init__(self, stream: Any, loop: asyncio.AbstractEventLoop,
                 stall: float | None = None) -> None:
        self._stream = stream
        self._loop = loop
        self._stall = stall
        self.received = 0

    def read(self, n: int) -> bytes:
        future = asyncio.run_coroutine_threadsafe(_read_at_least(self._stream, n), self._loop)
        try:
            data = future.result(self._stall)
        except FutureTimeout as exc:
            future.cancel()
            raise ClientDisconnected(stalled(self._stall)) from exc
        except Exception as exc:
            raise ClientDisconnected(str(exc)) from exc
        self.received += len(data)
        return data


class _BrokenBody:
    """A body whose reading on the loop failed: the handler sees the failure
    as :class:`ClientDisconnected` on its first read, as it would have."""

    __slots__ = ("_message",)

    def __init__(self, message: str) -> None:
        self._message = message

    def read(self, n: int) -> bytes:
        raise ClientDisconnected(self._message)


async def _prefetch(stream: Any, length: int) -> Any:
    try:
        data = await _read_at_least(stream, length)
    except Exception as exc:  # noqa: BLE001 - AsgiBody.read turns the same into ClientDisconnected
        return _BrokenBody(str(exc))
    # A short body still ends in ClientDisconnected, at the same point.
    return LengthLimitedBody(BytesBody(data), length)


async def _send_stream(body: StreamBody, loop: asyncio.AbstractEventLoop,
                       executor: Executor) -> AsyncIterator[bytes]:
    """The body in blocks read in the thread pool; the next block is read
    while the loop sends this one (two blocks in memory at most)."""
    stream = body.stream
    read = functools.partial(stream.read, SEND_CHUNK)
    pending: Future[bytes] | None = executor.submit(read)
    try:
        while pending is not None:
            chunk = await asyncio.wrap_future(pending, loop=loop)
            pending = None
            if not chunk:
                return
            pending = executor.submit(read)
            yield chunk
    finally:
        if pending is not None and not pending.done():
            # Never close the file under a read in flight: close it after.
            pending.add_done_callback(lambda _: stream.close())
        else:
            await loop.run_in_executor(executor, stream.close)


def _leaves_too_much_unread(req: Any) -> bool:
    """Whether the service left more of a ``Content-Length`` body unread than
    the WSGI shell would drain (``DRAIN_MAX_BYTES``, a refusal before the body
    was read, G5). uvicorn reads and discards the rest of a body itself, as
    long as the client sends it; ``Connection: close`` makes it close the
    connection after the answer instead, as gunicorn does."""
    seen: tuple[AsgiBody, int] | None = req.scope.get(LARGE_BODY_KEY)
    return seen is not None and seen[1] - seen[0].received > DRAIN_MAX_BYTES


@answer_every_method
class AsyncServiceResource:
    """The ASGI twin of :class:`hepcore.web.wsgi.ServiceResource`."""

    def __init__(self, runtime: Runtime, mount: Mount, group: RouteGroup | None,
                 executor: Executor) -> None:
        self.runtime = runtime
        self.mount = mount
        self.group = group
        self.executor = executor

    async def _respond(self, req: Any, resp: Any, **params: Any) -> None:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        response = await self.dispatch(req, params, loop)
        apply_headers(resp, response)
        if _leaves_too_much_unread(req):
            resp.set_header("Connection", "close")
        finish(self.runtime, self.mount, self.group, req, resp, response, params, started)
        stream = apply_simple_body(resp, response)
        if stream is not None:
            resp.stream = _send_stream(stream, loop, self.executor)

    async def dispatch(self, req: Any, params: dict[str, Any],
                       loop: asyncio.AbstractEventLoop) -> Response:
        service = self.mount.service
        try:
            length = content_length(req)
        except ServiceError as err:
            return service.render_error(err)
        inline = (self.group is not None and self.group.is_inline(req.method)
                  and (length == 0 or (length is None and req.get_header("Transfer-Encoding")
                                       is None)))
        body: Any
        if inline:  # runs on the loop: its (empty) body must not hop to the loop
            body = BytesBody(b"")
        elif (length is not None and 0 < length <= PREFETCH_MAX
              and self.group is not None and self.group.handler_for(req.method) is not None
              and req.get_header("Expect") is None):
            body = await _prefetch(req.stream, length)
        else:
            raw = AsgiBody(req.stream, loop, self.runtime.config.body_timeout)
            if length is not None and length > DRAIN_MAX_BYTES:
                req.scope[LARGE_BODY_KEY] = (raw, length)
            body = LengthLimitedBody(raw, length)
        try:
            request = build_request(req, self.mount, params, body, length, self.runtime.config)
        except ServiceError as err:
            return service.render_error(err)
        if self.group is None:
            return service.not_found(request)
        handler = self.group.handler_for(req.method)
        if handler is None:
            return service.method_not_allowed(request, self.group.allowed())
        if inline:
            # A quick handler (Route.inline) of a request without a body: the
            # round trip to a worker thread would cost more than the handler.
            try:
                with self.runtime.db.no_wait():
                    return service.handle(handler, request)
            except WriteWouldBlock:
                pass  # a write would have waited for another writer: not on the loop
        return await loop.run_in_executor(self.executor, service.handle, handler, request)


class AsyncServiceSink:
    def __init__(self, resource: AsyncServiceResource) -> None:
        self.resource = resource

    async def __call__(self, req: Any, resp: Any, **params: Any) -> None:
        await self.resource._respond(req, resp)
