"""API descriptions: what each route takes and answers, as data, and the
OpenAPI 3.1 document built from it.

A :class:`~hepcore.service.Route` carries a :class:`Doc`; a service's
document is generated from its routes, its envelope's error schema
(``error_schema``), its ``auth_schemes`` and its ``api_schemas``. Nothing
else describes the API, so the description cannot drift from the routes.
Every mounted service answers ``GET <mount>/openapi.json`` with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .http import Request, Response, dumps

if TYPE_CHECKING:
    from .service import Route, Service

JSON = "application/json"
OPENAPI_PATH = "/openapi.json"
Schema = Mapping[str, Any]

STRING: Schema = {"type": "string"}
ANY_BYTES: Schema = {"type": "string", "format": "binary"}


def ref(name: str) -> Schema:
    """A reference to one of the service's ``api_schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Param:
    """A parameter: ``location`` is ``path``, ``query``, ``header`` or ``cookie``."""

    name: str
    location: str = "query"
    schema: Schema = field(default_factory=lambda: dict(STRING))
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Body:
    """A request body: its schema by media type."""

    content: Mapping[str, Schema]
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class Reply:
    """One documented answer. ``status`` is a code, ``"2XX"`` or ``"default"``;
    ``content`` maps media types to schemas (``{}`` accepts any body of that
    type); ``headers`` maps header names to schemas."""

    status: int | str
    description: str
    content: Mapping[str, Schema] = field(default_factory=dict)
    headers: Mapping[str, Schema] = field(default_factory=dict)


@dataclass(frozen=True)
class Doc:
    """What one route takes and answers.

    ``errors`` lists the statuses answered in the service's error envelope;
    401 is added for routes with ``auth`` unless ``auth_optional`` (the
    credential may be left out, and the route then answers anonymously).
    Path parameters not listed in ``params`` are documented as strings.
    """

    params: tuple[Param, ...] = ()
    body: Body | None = None
    replies: tuple[Reply, ...] = ()
    errors: tuple[int, ...] = ()
    auth_optional: bool = False
    description: str = ""
    tags: tuple[str, ...] = ()


_FIELD_RE = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)[^}]*)?}")
_CONVERTER_SCHEMAS: dict[str, Schema] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}


def openapi_path(template: str) -> tuple[str, dict[str, Schema]]:
    """A Falcon URI template as an OpenAPI path, and its fields' schemas
    (from their converters: ``{n:int}`` is an integer, plain fields strings)."""
    fields = {name: _CONVERTER_SCHEMAS.get(converter, STRING)
              for name, converter in _FIELD_RE.findall(template)}
    return _FIELD_RE.sub(lambda m: "{" + m.group(1) + "}", template), fields


def error_schema(service: Service) -> Schema:
    return getattr(service.envelope, "error_schema", None) or {"type": "object"}


def _operation(service: Service, route: Route, method: str,
               path_fields: Mapping[str, Schema]) -> dict[str, Any]:
    doc = route.doc or Doc()
    op: dict[str, Any] = {"operationId": route.name if len(route.methods) == 1
                          else f"{route.name}_{method.lower()}"}
    if route.summary:
        op["summary"] = route.summary
    if doc.description:
        op["description"] = doc.description
    if doc.tags:
        op["tags"] = list(doc.tags)
    params = {(p.name, p.location): p for p in doc.params}
    for name, schema in path_fields.items():
        params.setdefault((name, "path"), Param(name, "path", schema, required=True))
    if params:
        op["parameters"] = [_param(p) for p in params.values()]
    if doc.body is not None and method not in ("GET", "HEAD", "OPTIONS"):
        op["requestBody"] = {
            "required": doc.body.required,
            "content": {media: {"schema": dict(schema)}
                        for media, schema in doc.body.content.items()},
        }
        if doc.body.description:
            op["requestBody"]["description"] = doc.body.description
    responses: dict[str, Any] = {}
    for reply in doc.replies:
        answer: dict[str, Any] = {"description": reply.description}
        if reply.content and method != "HEAD":
            answer["content"] = {media: ({"schema": dict(schema)} if schema else {})
                                 for media, schema in reply.content.items()}
        if reply.headers:
            answer["headers"] = {name: {"schema": dict(schema)}
                                 for name, schema in reply.headers.items()}
        responses[str(reply.status)] = answer
    if not responses and not doc.errors:
        responses["default"] = {"description": "See the service's documentation"}
    # The web layer answers a malformed Content-Length with 400 in the
    # service's envelope before any handler runs, on every route.
    errors = {*doc.errors, 400}
    if route.auth and not doc.auth_optional:
        errors.add(401)
    for status in sorted(errors):
        answer = {"description": _REASONS.get(status, "Error")}
        if method != "HEAD":
            answer["content"] = {JSON: {"schema": ref("Error")}}
        responses.setdefault(str(status), answer)
    op["responses"] = responses
    if route.auth:
        schemes = service.auth_schemes.get(route.auth, {})
        security: list[dict[str, list[str]]] = [{name: []} for name in schemes]
        if doc.auth_optional:
            security.append({})
        op["security"] = security
    return op


def _param(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.location, "schema": dict(p.schema)}
    if p.required or p.location == "path":
        out["required"] = True
    if p.description:
        out["description"] = p.description
    return out


_REASONS = {
    400: "Bad request", 401: "Missing or invalid credentials", 403: "Forbidden",
    404: "Not found", 405: "Method not allowed", 409: "Conflict", 410: "Gone",
    411: "Length required", 413: "Too large", 415: "Unsupported media type",
    422: "Unprocessable", 429: "Too many requests", 500: "Internal error",
    502: "Upstream failed", 503: "Unavailable", 507: "Storage quota exceeded",
}


def build_openapi(service: Service, base: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``service`` mounted at ``base``."""
    from . import __version__
    from .service import all_routes

    paths: dict[str, dict[str, Any]] = {}
    for route in all_routes(service):
        path, fields = openapi_path(route.path)
        item = paths.setdefault(path, {})
        for method in route.methods:
            item[method.lower()] = _operation(service, route, method.upper(), fields)
    schemes: dict[str, Any] = {}
    for alternatives in service.auth_schemes.values():
        for name, scheme in alternatives.items():
            schemes[name] = dict(scheme)
    components: dict[str, Any] = {"schemas": {"Error": dict(error_schema(service)),
                                              **{k: dict(v) for k, v in
                                                 service.api_schemas.items()}}}
    if schemes:
        components["securitySchemes"] = schemes
    return {
        "openapi": "3.1.0",
        "info": {"title": service.title or service.name, "version": __version__},
        "servers": [{"url": base or "/"}],
        "paths": paths,
        "components": components,
    }


class OpenApiHandler:
    """``GET <mount>/openapi.json``: the document, built once per mount prefix."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._cache: dict[str, bytes] = {}

    def __call__(self, request: Request) -> Response:
        base = request.prefix or "/"
        body = self._cache.get(base)
        if body is None:
            body = self._cache[base] = dumps(build_openapi(self.service, base))
        return Response(200, [("Content-Type", JSON)], body)
