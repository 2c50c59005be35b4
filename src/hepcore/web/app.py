"""Building Falcon apps: the whole host, or one service inside your own app."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

import falcon
import falcon.asgi
from falcon.routing import CompiledRouter
from falcon.util.misc import code_to_http_status

from .. import observe
from ..clock import Clock, system_clock
from ..config import Config
from ..errors import ClientDisconnected
from ..runtime import Runtime, build_runtime
from ..service import group_routes
from .asgi import AsyncServiceResource, AsyncServiceSink
from .mounts import Mount, MountRouter
from .ops import add_ops_routes
from .shell import error_serializer
from .wsgi import ServiceResource, ServiceSink, drain_after

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from falcon._typing import AsgiReceive, AsgiSend
    from falcon.asgi_spec import AsgiEvent

log = logging.getLogger("hepcore.web")
STREAM_BLOCK = 1024 * 1024
ASGI_THREADS = 64


class App(falcon.App[falcon.Request, falcon.Response]):
    """``falcon.App`` sending file bodies in 1 MiB blocks where ``sendfile`` is not
    used, with the status lines uvicorn sends for :class:`AsgiApp`. Under
    gunicorn, what a response leaves unread of the request body is read once
    the response is out (:func:`~hepcore.web.wsgi.drain_after`)."""

    _STREAM_BLOCK_SIZE = STREAM_BLOCK

    def __call__(self, env: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(_ASGI_STATUS_LINES.get(status, status), headers, exc_info)

        result = super().__call__(env, respond)
        if env.get("CONTENT_LENGTH") or env.get("HTTP_TRANSFER_ENCODING"):
            return drain_after(env, result)
        return result


class AsgiApp(falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]):
    """``falcon.asgi.App`` for hepcore; identical responses to :class:`App`."""

    _STREAM_BLOCK_SIZE = STREAM_BLOCK

    async def __call__(  # type: ignore[override]  # falcon.asgi.App's own override of the WSGI call
            self, scope: dict[str, Any], receive: AsgiReceive, send: AsgiSend) -> None:
        if scope.get("type") == "http":
            if scope.get("http_version") not in _HTTP_VERSIONS:
                # Falcon refuses the scope (a bare 500); gunicorn serves such a
                # request line (HTTP/1.2, say) as HTTP/1.x, and so does this.
                scope["http_version"] = "1.1"
            raw_path = scope.get("raw_path")
            if (raw_path and b"#" in raw_path) or b"#" in scope.get("query_string", b""):
                _drop_fragment(scope)
            path = scope.get("path") or "/"
            if path[0] != "/" and not _to_origin_form(scope, path):
                await _invalid_request(send)
                return
            # Iterables of two-item iterables, which may be one-shot iterators.
            headers = scope["headers"] = [(name, value) for name, value in
                                          scope.get("headers") or ()]
            if _announces_body(headers):
                receive = _body_receiver(receive)
        await super().__call__(scope, receive, send)


# uvicorn words a status as Python's http.HTTPStatus does; Falcon words a few
# (413, 414, 416, 418) after RFC 9110, which Python adopted only in 3.13.
_ASGI_STATUS_LINES = {
    line: f"{status.value} {status.phrase}" for status in HTTPStatus
    if (line := code_to_http_status(status.value)) != f"{status.value} {status.phrase}"}
_HTTP_VERSIONS = frozenset({"1.0", "1.1", "2", "3"})


def _to_origin_form(scope: dict[str, Any], path: str) -> bool:
    """An absolute-form target (``GET http://host/x``, as sent to a proxy) as the
    path it names, which is what gunicorn passes to WSGI; uvicorn passes it whole.
    ``False`` for a target that is no URL (``http://[::1/x``), which gunicorn
    refuses with a 400."""
    try:
        parts = urlsplit(path)
        raw = scope.get("raw_path")
        raw_path = urlsplit(raw).path if raw else None
    except ValueError:
        return False
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        scope["path"] = parts.path or "/"
        if raw:
            scope["raw_path"] = raw_path or b"/"
    return True


async def _invalid_request(send: AsgiSend) -> None:
    """uvicorn's own answer to a request it cannot parse."""
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b"Invalid HTTP request received."})


def _drop_fragment(scope: dict[str, Any]) -> None:
    """A target with a ``#fragment`` (which clients do not send, but may) as
    the path and query before it, which is what gunicorn passes to WSGI;
    uvicorn leaves the fragment in the path, or in the query after a ``?``."""
    raw_path = scope.get("raw_path") or b""
    if b"#" in raw_path:  # "/a#f?x": all after the "#" is the fragment, query included
        raw_path = raw_path.split(b"#", 1)[0] or b"/"
        scope["raw_path"] = raw_path
        scope["path"] = unquote(raw_path.decode("latin-1"))
        scope["query_string"] = b""
    else:
        scope["query_string"] = scope["query_string"].split(b"#", 1)[0]


def _announces_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


def _body_receiver(receive: AsgiReceive) -> AsgiReceive:
    """``receive`` for a request that announces a body: its first call answers at
    once with an empty body chunk, and a disconnect before the last body chunk
    raises :class:`~hepcore.errors.ClientDisconnected`.

    Falcon awaits the first body event before it routes a request, and
    servers answer ``Expect: 100-continue`` when that await starts: the
    client would send (and a plain client would have started sending) a body
    that a 401, 413 or 429 refuses unread. WSGI asks for no byte before the
    service reads one; this makes ASGI do the same (G5).

    Falcon's request stream takes ``http.disconnect`` for the end of the
    body. For a chunked body nothing else tells a cut-off body from a whole
    one, and a service would store what came before the cut; gunicorn raises
    on the same read (G3).
    """
    pending = True
    ended = False

    async def deferred() -> AsgiEvent:
        nonlocal pending, ended
        if pending:
            pending = False
            return {"type": "http.request", "body": b"", "more_body": True}
        event = await receive()
        if not ended:
            if event["type"] == "http.disconnect":
                raise ClientDisconnected("the client disconnected before the body ended")
            ended = not event.get("more_body", False)
        return event

    return deferred


_shared_executor: Executor | None = None


def _executor(app: Any) -> Executor:
    """The thread pool running the sync core for ``app``: its own for a hepcore
    :class:`AsgiApp`; one shared pool for a plain ``falcon.asgi.App`` (``add_service``),
    which has ``__slots__`` and cannot hold one."""
    global _shared_executor
    own: Executor | None = getattr(app, "_hepcore_executor", None)
    if own is not None:
        return own
    if hasattr(app, "__dict__"):
        executor = ThreadPoolExecutor(max_workers=ASGI_THREADS, thread_name_prefix="hepcore")
        app._hepcore_executor = executor
        return executor
    if _shared_executor is None:
        _shared_executor = ThreadPoolExecutor(max_workers=ASGI_THREADS,
                                              thread_name_prefix="hepcore")
    return _shared_executor


def _resource(runtime: Runtime, mount: Mount, group: Any, asgi: bool, app: Any) -> Any:
    if asgi:
        return AsyncServiceResource(runtime, mount, group, _executor(app))
    return ServiceResource(runtime, mount, group)


def create_app(
    config: Config | Runtime,
    asgi: bool = False,
    *,
    clock: Clock = system_clock,
    plugins: Iterable[object] = (),
) -> falcon.App[Any, Any]:
    """A Falcon app (``falcon.App``, or ``falcon.asgi.App`` with ``asgi=True``)
    serving every enabled service at its configured mount.

    ``config`` may be a :class:`Config` (a runtime is built from it) or a
    ready :class:`Runtime`. Both app kinds answer byte-for-byte the same.
    The runtime is available as ``app.hepcore``.
    """
    runtime = config if isinstance(config, Runtime) else build_runtime(
        config, clock=clock, plugins=plugins)
    router = MountRouter(trust_proxy=runtime.config.trust_proxy)
    # Falcon takes any object with the router interface, but annotates the
    # parameter as its own CompiledRouter.
    app: falcon.App[Any, Any] = (AsgiApp if asgi else App)(router=cast(CompiledRouter, router))
    app.req_options.auto_parse_form_urlencoded = False
    app.set_error_serializer(error_serializer)
    for name, service in runtime.services.items():
        svc_config = runtime.config.service(name)
        if not svc_config.enabled:
            continue
        mount = Mount(service, svc_config.prefix, frozenset(svc_config.hosts))
        groups = group_routes(service)
        mount.secret_prefixes = observe.secret_prefixes(mount.prefix + g.path for g in groups)
        for group in groups:
            mount.router.add_route(group.path, _resource(runtime, mount, group, asgi, app),
                                   _asgi=asgi)
        mount.set_fallback(_resource(runtime, mount, None, asgi, app))
        router.add_mount(mount)
        log.debug("mounted %s at %s%s", name, ",".join(svc_config.hosts) or "*",
                  svc_config.prefix)
    add_ops_routes(app, runtime)
    app.hepcore = runtime  # type: ignore[attr-defined]
    return app


def add_service(app: falcon.App[Any, Any], runtime: Runtime, name: str, *, prefix: str | None = None) -> None:
    """Add one hepcore service's routes to your own Falcon app (WSGI or ASGI).

    Routes go under ``prefix`` (default: the service's configured prefix).
    A sink under the prefix answers unknown paths in the service's envelope,
    so the service behaves as it does in a hepcore host; your app's other
    routes and error handlers are untouched.
    """
    service = runtime.services[name]
    asgi = isinstance(app, falcon.asgi.App)
    mount = Mount(service, prefix if prefix is not None else runtime.config.service(name).prefix)
    groups = group_routes(service)
    mount.secret_prefixes = observe.secret_prefixes(mount.prefix + g.path for g in groups)
    for group in groups:
        app.add_route(mount.prefix + group.path, _resource(runtime, mount, group, asgi, app))
    fallback = _resource(runtime, mount, None, asgi, app)
    pattern = re.compile(re.escape(mount.prefix) + r"(/.*)?$") if mount.prefix else re.compile(r"/")
    if isinstance(app, falcon.asgi.App):  # `asgi`, spelled out so that mypy narrows `app`
        app.add_sink(AsyncServiceSink(fallback), pattern)
    else:
        app.add_sink(ServiceSink(fallback), pattern)
