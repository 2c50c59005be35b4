"""Services: a named set of routes (as data), an envelope and migrations.

A plugin's ``hepcore_register_services`` hook returns :class:`Service`
objects. The web layer mounts their routes on both app kinds; requests reach
:meth:`Service.handle`, which never raises: every failure becomes a
response in the service's envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sqlite_utils.migrations import Migrations

from .apidoc import OPENAPI_PATH, Doc, OpenApiHandler, Reply, Schema
from .config import ServiceConfig
from .envelope import Envelope, OkEnvelope
from .errors import InternalError, MethodNotAllowed, NotFound, ServiceError
from .http import Request, Response
from .observe import count_refusal, request_id

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger("hepcore.service")

Handler = Callable[[Request], Response]
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Route:
    """One endpoint: ``methods`` on ``path`` (a Falcon URI template relative to
    the mount, e.g. ``/{item_id}``) answered by ``handler``.

    ``auth`` names the credential it needs (``None`` for public routes; a key
    of the service's ``auth_schemes``), ``summary`` describes it and ``doc``
    (:class:`~hepcore.apidoc.Doc`) says what it takes and answers; all three
    feed the service's OpenAPI document.

    ``inline`` marks a handler that reads no request body and does only quick
    local work (indexed SQLite reads, at most a short write, opening a local
    file). The ASGI shell then calls it on the event loop, for requests
    without a body, instead of in a worker thread; a write that would wait for
    another writer raises :class:`~hepcore.db.WriteWouldBlock` there, and the
    shell runs the handler again in a worker thread. So an inline handler must
    do nothing before its first write that it cannot do twice.
    """

    methods: tuple[str, ...]
    path: str
    handler: Handler
    name: str
    summary: str = ""
    auth: str | None = None
    inline: bool = False
    doc: Doc | None = None


class Service:
    """Base class of a mounted service.

    Subclasses set ``name``, ``envelope`` and ``migrations`` and return their
    routes from :meth:`routes`. They receive the :class:`Runtime` (database,
    storage, limiter, keys, hooks) and their own :class:`ServiceConfig`.

    For the API description: ``title`` names the API; ``auth_schemes`` maps
    each ``Route.auth`` name to the OpenAPI security schemes that carry that
    credential (alternatives, by scheme name); ``api_schemas`` holds named
    schemas that route docs reference with :func:`hepcore.apidoc.ref`.

    ``strict_options`` (off by default) makes the host refuse a misspelt
    option: after :meth:`start` returns, a key of the ``[services.NAME]``
    table that no typed reader of :class:`ServiceConfig` (``flag``,
    ``integer``, ``number``, ``text``, ``texts``, ``raw``) has asked for stops
    the host with ``unknown settings in [services.NAME]: ...``. A service
    that turns it on must read every option it understands through those
    readers by the end of :meth:`start` (reading ``config.options`` directly
    does not count), even the ones it uses only later.
    """

    name: str = "service"
    title: str = ""
    envelope: Envelope = OkEnvelope()
    migrations: Sequence[Migrations] = ()
    auth_schemes: Mapping[str, Mapping[str, Schema]] = {}
    api_schemas: Mapping[str, Schema] = {}
    strict_options: ClassVar[bool] = False

    def __init__(self, runtime: Runtime, config: ServiceConfig) -> None:
        self.runtime = runtime
        self.config = config

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def start(self) -> None:
        """Called once after migrations, before the first request; reads and
        checks the service's options (see ``strict_options``)."""

    def stored_objects(self) -> Iterable[str]:
        """Every storage key this service's rows reference (``hepcore check``).

        Keys of a service start with ``<name>/``; a service that stores
        nothing in the storage backend keeps the default (none).
        """
        return ()

    def forget_objects(self, keys: set[str]) -> int:
        """Drop the rows whose stored objects (``keys``) are gone for good
        (``hepcore check --repair``); return how many rows went."""
        return 0

    def public_base(self, request: Request) -> str:
        """The configured public base URL, else the request's own scheme, host and prefix (G7)."""
        return self.config.public_base_url or request.base_url

    def render_error(self, err: ServiceError) -> Response:
        return self.envelope.error(err)

    def not_found(self, request: Request) -> Response:
        """The answer for a path inside the mount that no route matches."""
        return self.render_error(NotFound())

    def method_not_allowed(self, request: Request, allowed: Sequence[str]) -> Response:
        return self.render_error(
            MethodNotAllowed(headers={"Allow": ", ".join(allowed)}))

    def handle(self, handler: Handler, request: Request) -> Response:
        """Run ``handler``; a :class:`ServiceError` becomes its envelope, anything
        else is logged with an id and becomes a 500 in the envelope."""
        try:
            return handler(request)
        except ServiceError as err:
            count_refusal(self.name, err)
            return self.render_error(err)
        except Exception:
            # The request's own id, so that the traceback, the access-log line and
            # the answer's X-Request-Id (and the CDN's error_id) name it alike.
            error_id = request.context["request_id"] = request_id(request.header("x-request-id"))
            log.exception("unhandled error %s in %s %s%s", error_id, request.method,
                          request.prefix, request.path)
            return self.render_error(InternalError(extra=self.internal_error_extra(error_id)))

    def internal_error_extra(self, error_id: str) -> dict[str, Any]:
        """Members added to a 500 body (the CDN adds ``error_id``)."""
        return {}


@dataclass
class RouteGroup:
    """The routes of one path template, by method (built by the web layer)."""

    service: Service
    path: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    inline: set[str] = field(default_factory=set)  # methods of inline routes

    def allowed(self) -> list[str]:
        """The methods for ``Allow``: the declared ones, and HEAD wherever GET is."""
        methods = set(self.handlers)
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    def handler_for(self, method: str) -> Handler | None:
        handler = self.handlers.get(method)
        if handler is None and method == "HEAD":
            handler = self.handlers.get("GET")
        return handler

    def is_inline(self, method: str) -> bool:
        """Whether the handler for ``method`` was declared ``inline``."""
        if method in self.handlers:
            return method in self.inline
        return method == "HEAD" and "GET" in self.inline


def all_routes(service: Service) -> list[Route]:
    """The service's routes, and ``GET /openapi.json`` unless it declares that path."""
    routes = list(service.routes())
    if not any(route.path == OPENAPI_PATH for route in routes):
        routes.append(Route(("GET",), OPENAPI_PATH, OpenApiHandler(service), "openapi",
                            "This API's OpenAPI 3.1 description", inline=True,
                            doc=Doc(replies=(Reply(200, "The OpenAPI document",
                                                   {"application/json": {"type": "object"}}),))))
    return routes


def group_routes(service: Service) -> list[RouteGroup]:
    """Group a service's routes by path template, keeping declaration order."""
    groups: dict[str, RouteGroup] = {}
    for route in all_routes(service):
        group = groups.setdefault(route.path, RouteGroup(service, route.path))
        for method in route.methods:
            method = method.upper()
            if method not in HTTP_METHODS:
                raise ValueError(f"{service.name}: unsupported method {method}")
            if method in group.handlers:
                raise ValueError(f"{service.name}: {method} {route.path} declared twice")
            group.handlers[method] = route.handler
            if route.inline:
                group.inline.add(method)
    return list(groups.values())
