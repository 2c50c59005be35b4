"""Pieces of the CDN's OpenAPI description (spec shared/spec/cdn.md): the
named schemas, the security schemes, the error envelope's schema and the
replies several routes share. The routes' own ``Doc`` declarations (in
:mod:`.service`, :mod:`.serving`) assemble them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hepcore.apidoc import JSON, Body, Param, Reply, Schema, ref
from hepcore.envelope import ErrorEnvelope

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
MULTIPART = "multipart/form-data"
FORM = "application/x-www-form-urlencoded"
EMPTY: Schema = {"type": "string", "maxLength": 0}
"""A body with nothing in it (the serving routes' plain 4xx answers)."""
EMPTY_TEXT = {"text/plain": EMPTY}

_INTEGER: Schema = {"type": "integer", "minimum": 0}

SCHEMAS: dict[str, Schema] = {
    "Upload": {
        "type": "object",
        "description": "An upload (spec 4.1).",
        "required": ["id", "filename", "size", "content_type", "url", "created_at"],
        "properties": {
            "id": {"type": "string", "pattern": UUID7_PATTERN,
                   "description": "lowercase UUID version 7"},
            "filename": {"type": "string", "maxLength": 255,
                         "description": "display filename, sanitised, cut to 255 characters"},
            "size": {**_INTEGER, "description": "bytes"},
            "content_type": {"type": "string",
                             "description": "detected type; text/* types carry a charset"},
            "url": {"type": "string", "format": "uri",
                    "description": "<public base>/<id>/<filename percent-encoded>"},
            "created_at": {"type": "string", "format": "date-time",
                           "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
                           "description": "UTC, second precision"},
        },
    },
    "Me": {
        "type": "object",
        "required": ["id", "email", "name", "storage_used", "storage_limit", "quota_tier"],
        "properties": {
            "id": {"type": "string", "pattern": "^usr_[A-Za-z0-9]{6,}$",
                   "description": "stable public id of the account"},
            "email": {"type": ["string", "null"]},
            "name": {"type": "string"},
            "storage_used": {**_INTEGER, "description": "bytes"},
            "storage_limit": {**_INTEGER, "description": "bytes"},
            "quota_tier": {"type": "string",
                           "examples": ["unverified", "verified", "functionally_unlimited"]},
        },
    },
    "Quota": {
        "type": "object",
        "required": ["storage_used", "storage_limit", "quota_tier", "percentage_used"],
        "properties": {
            "storage_used": _INTEGER,
            "storage_limit": _INTEGER,
            "quota_tier": {"type": "string"},
            "percentage_used": {"type": "number", "minimum": 0,
                                "description": "used / limit x 100, 2 decimals; 0 when the"
                                               " limit is 0"},
        },
    },
    "BatchResult": {
        "type": "object",
        "required": ["uploads", "failed"],
        "properties": {
            "uploads": {"type": "array", "items": ref("Upload")},
            "failed": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["filename", "reason"],
                    "properties": {
                        "filename": {"type": "string",
                                     "description": "the name as sent (the stored name for"
                                                    " files removed after storing)"},
                        "reason": {"type": "string", "examples": [
                            "File size (120 MB) exceeds limit of 100 MB",
                            "Would exceed storage quota (1 MB remaining)",
                            "Storage quota already exceeded",
                            "Upload failed due to an internal error",
                            "Removed: concurrent uploads exceeded quota"]},
                    },
                },
            },
        },
    },
    "Deleted": {
        "type": "object",
        "required": ["id", "deleted"],
        "properties": {"id": {"type": "string", "pattern": UUID_PATTERN},
                       "deleted": {"const": True}},
    },
    "BatchDeleted": {
        "type": "object",
        "required": ["deleted"],
        "properties": {
            "deleted": {"type": "array", "items": {
                "type": "object", "required": ["id", "filename"],
                "properties": {"id": {"type": "string", "pattern": UUID_PATTERN},
                               "filename": {"type": "string"}}}},
            "not_found": {"type": "array", "minItems": 1, "items": {"type": "string"},
                          "description": "the ids given that are not the caller's uploads;"
                                         " absent when there are none"},
        },
    },
    "Revoked": {
        "type": "object",
        "required": ["success", "owner_email", "key_name", "status"],
        "properties": {"success": {"const": True},
                       "owner_email": {"type": ["string", "null"]},
                       "key_name": {"type": ["string", "null"]},
                       "status": {"const": "complete"}},
    },
    "AuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"const": "invalid_auth"}},
    },
    "QuotaError": {
        "type": "object",
        "required": ["error", "quota"],
        "properties": {"error": {"type": "string", "examples": [
                           "Storage quota exceeded",
                           "File size exceeds your limit of 10 MB per file"]},
                       "quota": ref("Quota")},
    },
    "InternalError": {
        "type": "object",
        "required": ["error", "error_id"],
        "properties": {"error": {"const": "Internal server error"},
                       "error_id": {"type": "string", "pattern": "^[0-9a-f]{16}$",
                                    "description": "the id logged with the traceback"}},
    },
}


class CdnEnvelope(ErrorEnvelope):
    """The CDN's ``{"error": ...}`` envelope, with the extra members its errors
    carry in the schema: ``quota`` (402), ``detail`` (400 Too many files) and
    ``error_id`` (500)."""

    error_schema: Mapping[str, Any] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"},
                       "detail": {"type": "string"},
                       "quota": ref("Quota"),
                       "error_id": {"type": "string"}},
    }


AUTH_SCHEMES: dict[str, dict[str, Schema]] = {"cdn": {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "`Authorization: Bearer sk_cdn_<64 hex>`; the scheme word is"
                              " case-sensitive (`Bearer` exactly)."},
    "token": {"type": "http", "scheme": "Token",
              "description": "`Authorization: Token sk_cdn_<64 hex>` or"
                             " `Authorization: Token token=\"sk_cdn_<64 hex>\"`; the scheme"
                             " word is case-sensitive (`Token` exactly). A bare key, without"
                             " a scheme, is refused."},
}}

# --- replies shared by several routes -------------------------------------------

UNAUTHORIZED = Reply(401, "No key, a malformed Authorization header, an unknown or revoked key,"
                     " or a suspended account: `{\"error\": \"invalid_auth\"}`, with no"
                     " WWW-Authenticate; checked before anything else",
                     {JSON: ref("AuthError")})
INTERNAL = Reply(500, "An unexpected failure; `error_id` matches the server log",
                 {JSON: ref("InternalError")})
QUOTA = Reply(402, "A storage quota would be exceeded", {JSON: ref("QuotaError")})
UPLOADED = Reply(201, "Stored", {JSON: ref("Upload")})
RATE_LIMITED = Reply(429, "`Too many requests`: more URL uploads than the per-key limit"
                     " (default 10 a minute)", {JSON: ref("Error")},
                     headers={"Retry-After": {"type": "integer", "minimum": 1}})
API_REPLIES = (UNAUTHORIZED, INTERNAL)
"""Replies every ``/api/v4/*`` route can give."""


def json_params(properties: dict[str, Schema]) -> Schema:
    """A JSON body of parameters. As in upstream's framework, a JSON value
    other than an object is accepted and carries none (the query's parameters
    still count)."""
    return {"anyOf": [{"type": "object", "properties": properties},
                      {"not": {"type": "object"}}]}


def form_body(properties: dict[str, Schema], description: str = "") -> Body:
    """Optional parameters as a JSON, urlencoded or multipart body (spec section 3)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    return Body({JSON: json_params(properties), FORM: schema, MULTIPART: schema},
                required=False, description=description)


UPLOAD_ID = Param("upload_id", "path", {"type": "string"},
                  description="the upload's id; anything but one of the caller's uploads is a"
                              " 404")


def query_param(name: str, schema: Schema, description: str) -> Param:
    return Param(name, "query", schema, description=description)


FILE_HEADERS: dict[str, Schema] = {
    "Cache-Control": {"const": "max-age=31536000, public"},
    "Access-Control-Allow-Origin": {"const": "*"},
}
SERVED_HEADERS: dict[str, Schema] = {
    **FILE_HEADERS,
    "Content-Length": {"type": "integer", "minimum": 0},
    "ETag": {"type": "string",
             "pattern": '^"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"$',
             "description": "the upload's id, which names bytes that never change"},
    "Accept-Ranges": {"const": "bytes"},
    "Content-Disposition": {"type": "string", "pattern": "^inline; filename=",
                            "description": "inline, with the display filename"},
    "X-Content-Type-Options": {"const": "nosniff"},
    "Content-Security-Policy": {"const": "default-src 'none'; sandbox",
                                "description": "only for active types (HTML, SVG, XML,"
                                               " JavaScript)"},
}
PREFLIGHT_HEADERS: dict[str, Schema] = {
    "Access-Control-Allow-Origin": {"const": "*"},
    "Access-Control-Allow-Headers": {"const": "*"},
    "Access-Control-Allow-Methods": {"const": "GET, HEAD"},
    "Access-Control-Max-Age": {"const": "86400"},
}
