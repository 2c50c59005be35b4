"""What the WSGI and ASGI shells share: turning a Falcon request into a core
:class:`~hepcore.http.Request` and a core :class:`~hepcore.http.Response`
into Falcon's response. Only reading the body and sending a streamed body
differ between the two, and live in ``wsgi.py`` / ``asgi.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import falcon

from .. import observe
from ..config import Config
from ..errors import BadRequest, ServiceError
from ..http import NOSNIFF, BodyReader, Request, Response, StreamBody, dumps
from ..runtime import Runtime
from ..service import RouteGroup
from .mounts import Mount


def answer_every_method(cls: type) -> type:
    """Route every method Falcon knows (WebDAV included) to ``cls._respond``, so an
    unsupported one gets the service's own 405 and ``Allow``, not Falcon's."""
    for method in falcon.constants.COMBINED_METHODS:
        setattr(cls, "on_" + method.lower(), cls._respond)  # type: ignore[attr-defined]
    return cls


def stalled(seconds: float | None) -> str:
    """Why a body read ended when the client sent nothing for ``seconds``
    (``[server] body_timeout``); both shells say it alike."""
    return f"no bytes of the body for {seconds:g} s"


def content_length(req: Any) -> int | None:
    """``Content-Length`` as an int, ``None`` when absent; a bad value is a 400,
    and so is one sent with ``Transfer-Encoding``, which frames the body
    instead (RFC 9112 6.3; gunicorn refuses such a request itself, uvicorn
    passes it on)."""
    raw = req.get_header("Content-Length")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise BadRequest("Invalid Content-Length header")
    if req.get_header("Transfer-Encoding") is not None:
        raise BadRequest("Content-Length and Transfer-Encoding must not both be sent")
    return int(raw)


class FalconHeaders(Mapping[str, str]):
    """A Falcon request's headers by lower-case name, as :attr:`Request.headers`.

    Looking one up asks Falcon for that header alone; only iterating builds
    Falcon's dict of them all (``headers_lower``), which costs more than the
    few lookups a request usually needs.
    """

    __slots__ = ("_req",)

    def __init__(self, req: Any) -> None:
        self._req = req

    def get(self, name: str, default: Any = None) -> Any:
        if "_" in name or not name.islower():  # keys are lower-case, with dashes
            return self._req.headers_lower.get(name, default)
        value = self._req.get_header(name)
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value: str | None = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._req.headers_lower)

    def __len__(self) -> int:
        return len(self._req.headers_lower)

    def __repr__(self) -> str:
        return f"FalconHeaders({dict(self._req.headers_lower)!r})"


# RFC 3986 host (a name, IPv4, or an IPv6 literal) and optional port; names are
# kept to the characters hostnames use, so that nothing of a URL built on one
# (a path, a query, userinfo, quotes, spaces) can come from the header.
_HOST_RE = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?\Z")


def build_request(req: Any, mount: Mount, params: dict[str, Any], body: BodyReader,
                  length: int | None, config: Config) -> Request:
    """The service's view of ``req``; :class:`BadRequest` when the host the
    request names (``Host``, or ``X-Forwarded-Host`` behind a trusted proxy) is
    not a host and port, since replies build URLs from it."""
    trust = config.trust_proxy
    path = req.path
    sub = mount.subpath(path)
    if trust:
        scheme, netloc = req.forwarded_scheme, req.forwarded_host
        route = req.access_route
        client_ip = route[0] if route else (req.remote_addr or "")
    else:
        scheme, netloc, client_ip = req.scheme, req.netloc, req.remote_addr or ""
    host = _HOST_RE.match(netloc)
    if host is None or (host["port"] is not None and int(host["port"]) > 65535):
        raise BadRequest("Invalid Host header")
    request = Request(
        method=req.method,
        path=sub if sub is not None else path,
        headers=FalconHeaders(req),
        body=body,
        query_string=req.query_string,
        params={k: str(v) for k, v in params.items()},
        content_length=length,
        scheme=scheme,
        host=netloc,
        prefix=mount.prefix,
        client_ip=client_ip,
        read_chunk_size=config.read_chunk_size,
    )
    req.context.hepcore_request = request  # for the access log and metrics
    return request


def finish(runtime: Runtime, mount: Mount, group: RouteGroup | None, req: Any, resp: Any,
           response: Response, params: dict[str, Any], started: float) -> None:
    """Tag the response with its request id, count it and write its access-log line."""
    request: Request | None = getattr(req.context, "hepcore_request", None)
    rid = (request is not None and request.context.get("request_id")) or \
        observe.request_id(req.get_header("X-Request-Id"))
    resp.set_header("X-Request-Id", rid)
    body = response.body
    observe.record(
        service=mount.service.name, route=group.path if group is not None else "(none)",
        method=req.method, status=response.status, seconds=time.perf_counter() - started,
        uploaded=getattr(request.body, "consumed", 0) if request is not None else 0,
        served=body.length if isinstance(body, StreamBody) else None,
        rid=rid, path=(observe.redacted_path(req.path, params) if group is not None
                       else observe.unmatched_path(req.path, mount.secret_prefixes)),
        client_ip=request.client_ip if request is not None else (req.remote_addr or ""),
        log=runtime.config.access_log)


# RFC 9110 8.6: no Content-Length on these (a 304's would have to be the 200's).
# gunicorn drops a 204's and keeps a 304's, uvicorn keeps both: never set one.
_NO_CONTENT_LENGTH = frozenset({204, 304})


def apply_headers(resp: Any, response: Response) -> None:
    """Copy status and headers; the body is the shell's business."""
    status = resp.status = response.status
    for name, value in response.headers:
        lower = name.lower()
        if lower == "set-cookie":
            resp.append_header(name, value)
        elif lower != "content-length" or status not in _NO_CONTENT_LENGTH:
            resp.set_header(name, value)


def apply_simple_body(resp: Any, response: Response) -> StreamBody | None:
    """Set a bytes or empty body; return the :class:`StreamBody` for the shell to send."""
    body = response.body
    if isinstance(body, StreamBody):
        resp.content_length = body.length
        return body
    if body is None:
        resp.data = None
        if response.status not in _NO_CONTENT_LENGTH and response.header("Content-Length") is None:
            resp.content_length = 0
        return None
    resp.data = body
    return None


def choose_handler(group: RouteGroup | None, method: str) -> tuple[Any, list[str]]:
    if group is None:
        return None, []
    return group.handler_for(method), group.allowed()


def error_serializer(req: Any, resp: Any, exc: falcon.HTTPError) -> None:
    """Render Falcon's own errors in the owning service's envelope (by mount),
    or as ``{"error": message}`` outside any mount."""
    mount = getattr(req.context, "hepcore_mount", None)
    code = exc.status_code
    resp.content_type = "application/json"
    resp.set_header(*NOSNIFF)
    if mount is not None:
        out = mount.service.render_error(ServiceError(_falcon_message(code, exc), status=code))
        resp.content_type = out.header("Content-Type") or "application/json"
        resp.data = out.body if isinstance(out.body, bytes) else b""
        return
    resp.data = dumps({"error": _falcon_message(code, exc)})


def _falcon_message(code: int, exc: falcon.HTTPError) -> str:
    return {400: "Bad request", 404: "Not found", 405: "Method not allowed",
            500: "Internal server error"}.get(code, exc.title or "Error")
