"""Response envelopes: how each service shapes success and error bodies (G4).

An envelope turns a :class:`~hepcore.errors.ServiceError` into a
:class:`~hepcore.http.Response`. Services pick one of these or write their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .errors import ServiceError
from .http import Response


class Envelope(Protocol):
    """Renders errors in one service's shape; ``error`` never raises.

    An envelope may also carry ``error_schema``, the JSON Schema of its error
    bodies, for the service's OpenAPI document.
    """

    def error(self, err: ServiceError) -> Response: ...


def _headers(err: ServiceError) -> list[tuple[str, str]]:
    return list(err.headers.items())


class OkEnvelope:
    """Hep.gg uploader and paste: ``{"ok": false, "error": ..., "code": ...}``.

    ``code`` is present only when the error has one. Success bodies are
    ``{"ok": true, "data": ...}`` (:meth:`success`).
    """

    error_schema: Mapping[str, Any] = {
        "type": "object",
        "required": ["ok", "error"],
        "properties": {"ok": {"const": False}, "error": {"type": "string"},
                       "code": {"type": "string"}},
    }

    def error(self, err: ServiceError) -> Response:
        body: dict[str, Any] = {"ok": False, "error": err.message}
        if err.code:
            body["code"] = err.code
        body.update(err.extra)
        return Response.json(body, err.status, _headers(err))

    @staticmethod
    def success(data: Any, status: int = 200) -> Response:
        return Response.json({"ok": True, "data": data}, status)


class ErrorEnvelope:
    """Hack Club CDN: bare success objects; errors ``{"error": ...}`` plus extra members."""

    error_schema: Mapping[str, Any] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    }

    def error(self, err: ServiceError) -> Response:
        body: dict[str, Any] = {"error": err.message}
        body.update(err.extra)
        return Response.json(body, err.status, _headers(err))


class CodeEnvelope:
    """Fixitfy images: flat ``{"ok": true, ...}``; errors ``{"ok": false, "code": ..., "error": ...}``."""

    error_schema: Mapping[str, Any] = {
        "type": "object",
        "required": ["ok", "code", "error"],
        "properties": {"ok": {"const": False}, "code": {"type": "string"},
                       "error": {"type": "string"}},
    }

    def error(self, err: ServiceError) -> Response:
        body: dict[str, Any] = {"ok": False, "code": err.code or "error", "error": err.message}
        body.update(err.extra)
        return Response.json(body, err.status, _headers(err))

    @staticmethod
    def success(**members: Any) -> Response:
        return Response.json({"ok": True, **members})
