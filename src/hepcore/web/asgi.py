"""The ASGI shell: the sync service core runs in a worker thread; the body is
read from the event loop in large chunks, and files are sent in large
chunks read in the thread pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any

from ..errors import ClientDisconnected, ServiceError
from ..http import LengthLimitedBody, Response, StreamBody
from ..runtime import Runtime
from ..service import RouteGroup
from .mounts import Mount
from .shell import (
    answer_every_method,
    apply_headers,
    apply_simple_body,
    build_request,
    content_length,
)

SEND_CHUNK = 1024 * 1024


async def _read_at_least(stream: Any, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the body."""
    first = await stream.read(n)
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
    for code running in a worker thread: each read is one hop to the loop."""

    __slots__ = ("_stream", "_loop")

    def __init__(self, stream: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = stream
        self._loop = loop

    def read(self, n: int) -> bytes:
        future = asyncio.run_coroutine_threadsafe(_read_at_least(self._stream, n), self._loop)
        try:
            return future.result()
        except Exception as exc:
            raise ClientDisconnected(str(exc)) from exc


async def _send_stream(body: StreamBody, loop: asyncio.AbstractEventLoop,
                       executor: Executor) -> AsyncIterator[bytes]:
    stream = body.stream
    try:
        while True:
            chunk = await loop.run_in_executor(executor, stream.read, SEND_CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        await loop.run_in_executor(executor, stream.close)


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
        loop = asyncio.get_running_loop()
        response = await self.dispatch(req, params, loop)
        apply_headers(resp, response)
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
        body = LengthLimitedBody(AsgiBody(req.stream, loop), length)
        request = build_request(req, self.mount, params, body, length, self.runtime.config)
        if self.group is None:
            return service.not_found(request)
        handler = self.group.handler_for(req.method)
        if handler is None:
            return service.method_not_allowed(request, self.group.allowed())
        return await loop.run_in_executor(self.executor, service.handle, handler, request)


class AsyncServiceSink:
    def __init__(self, resource: AsyncServiceResource) -> None:
        self.resource = resource

    async def __call__(self, req: Any, resp: Any, **params: Any) -> None:
        await self.resource._respond(req, resp)
