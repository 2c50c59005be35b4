"""The WSGI shell: reads the body from ``wsgi.input`` and hands file bodies to
``wsgi.file_wrapper`` (``sendfile`` under gunicorn)."""

from __future__ import annotations

import time
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
)


class WsgiBody:
    """``wsgi.input`` as a :class:`~hepcore.http.BodyReader`; server errors mid-read
    (a client that went away) become :class:`ClientDisconnected`."""

    __slots__ = ("_stream",)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, n: int) -> bytes:
        try:
            data: bytes = self._stream.read(n)
            return data
        except BodyError:
            raise
        except Exception as exc:
            raise ClientDisconnected(str(exc)) from exc


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
            body = LengthLimitedBody(WsgiBody(req.stream), length)
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
