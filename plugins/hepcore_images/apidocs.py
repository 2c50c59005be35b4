"""The image service's API description (images.md): its named schemas, its
security schemes, and the documented error answers of each route.

The routes (:mod:`.service`, :mod:`.webhooks`) carry their own
:class:`~hepcore.apidoc.Doc`; this module holds what they share. Error
answers are :class:`~hepcore.apidoc.Reply` objects whose schema pins the
``code`` values that route can answer and whose description quotes the
messages (section 3 of the spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hepcore.apidoc import JSON, Param, Reply, Schema, ref

from .errors import (
    BANNED,
    DB_FAILED,
    DELETE_LINK_INVALID,
    EMPTY_FILE,
    EXPECTED_MULTIPART,
    IMAGE_NOT_FOUND,
    INVALID_KEY,
    INVALID_TOKEN,
    MALFORMED_AUTH,
    MALFORMED_MULTIPART,
    MISSING_AUTH,
    MISSING_FILE,
    NSFW_REJECTED,
    PROCESSING_FAILED,
    RANGE_NOT_SATISFIABLE,
    STORAGE_FAILED,
    TOKEN_EXPIRED,
    TOKEN_UPLOAD_ONLY,
    UNSUPPORTED_TYPE,
    UPLOAD_NOT_FOUND,
    WEBHOOK_NOT_FOUND,
)

TITLE = "Fixitfy image upload"
KEY_AUTH = "key"        # Route.auth of routes that take an fxf_ key only
UPLOAD_AUTH = "upload"  # Route.auth of POST /api/v1/upload: an fxf_ key or a ut_ token

_FXF = {
    "type": "http", "scheme": "bearer", "bearerFormat": "fxf_ API key",
    "description": "`Authorization: Bearer fxf_<64 lowercase hex>` (the scheme word is "
                   "case-insensitive). Keys are issued with the admin CLI.",
}
_UT = {
    "type": "http", "scheme": "bearer", "bearerFormat": "ut_ upload token",
    "description": "`Authorization: Bearer ut_<payload>.<signature>`, minted by "
                   "`POST /api/v1/upload-token`; accepted by `POST /api/v1/upload` only.",
}
AUTH_SCHEMES: Mapping[str, Mapping[str, Schema]] = {
    KEY_AUTH: {"fxfKey": _FXF},
    UPLOAD_AUTH: {"fxfKey": _FXF, "uploadToken": _UT},
}

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/avif")
_G1 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
_HEX64 = "^[0-9a-f]{64}$"


def _object(properties: Mapping[str, Schema], optional: tuple[str, ...] = (),
            description: str = "") -> dict[str, Any]:
    """A closed object whose members are all required except ``optional``."""
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "required": [name for name in properties if name not in optional],
        "properties": dict(properties),
    }
    if description:
        schema["description"] = description
    return schema


OK: Schema = {"const": True}
TIMESTAMP: Schema = {"type": "string", "pattern": _G1,
                     "description": "UTC, milliseconds, `Z` (e.g. `2026-05-01T11:59:00.000Z`)"}
COUNT: Schema = {"type": "integer", "minimum": 0}
PIXELS: Schema = {"type": "integer", "minimum": 1}

SCHEMAS: Mapping[str, Schema] = {
    "Filename": {"type": "string", "pattern": r"^[A-Za-z0-9._-]*\.(png|jpg|gif|webp|avif)$",
                 "description": "The configured prefix (`FIXITFY-`), 12 letters or digits "
                                "and the format's extension."},
    "Mime": {"enum": list(IMAGE_TYPES)},
    "Sha256": {"type": "string", "pattern": _HEX64},
    "Timestamp": TIMESTAMP,
    "UploadResult": _object({
        "ok": OK,
        "duplicate": {"const": True, "description": "Present only on a dedupe hit (5.4)."},
        "filename": ref("Filename"),
        "url": {"type": "string", "description": "`<public base>/images/<filename>`"},
        "delete_url": {"type": ["string", "null"],
                       "description": "The one-shot delete link; `null` on a dedupe hit."},
        "size": {"type": "integer", "minimum": 1,
                 "description": "Bytes of the stored (cleaned) image."},
        "mime": ref("Mime"),
        "width": PIXELS,
        "height": PIXELS,
        "hash_sha256": {**ref("Sha256"), "description": "SHA-256 of the received bytes."},
    }, optional=("duplicate",), description="A stored upload (5.3) or a dedupe hit (5.4)."),
    "UploadSummary": _object({
        "filename": ref("Filename"), "url": {"type": "string"}, "mime": ref("Mime"),
        "size": {"type": "integer", "minimum": 1}, "width": PIXELS, "height": PIXELS,
        "tags": {"type": "array", "items": {"type": "string"}},
        "created_at": ref("Timestamp"),
    }),
    "UploadDetail": _object({
        "filename": ref("Filename"), "url": {"type": "string"}, "mime": ref("Mime"),
        "size": {"type": "integer", "minimum": 1}, "width": PIXELS, "height": PIXELS,
        "hash_sha256": ref("Sha256"), "tags": {"type": "array", "items": {"type": "string"}},
        "created_at": ref("Timestamp"),
    }),
    "UploadList": _object({
        "ok": OK,
        "count": {**COUNT, "maximum": 100, "description": "Items on this page."},
        "next_before": {"type": ["string", "null"], "pattern": _G1,
                        "description": "`created_at` of the last item; pass it back as "
                                       "`?before=`. `null` on the last page."},
        "uploads": {"type": "array", "maxItems": 100, "items": ref("UploadSummary")},
    }, description="One page of the caller's live uploads, newest first (8.1)."),
    "UploadReply": _object({"ok": OK, "upload": ref("UploadDetail")}),
    "UploadDeleted": _object({"ok": OK, "deleted": ref("Filename")}),
    "UploadTokenRequest": {
        "type": "object",
        "properties": {"ttl_seconds": {"type": "integer", "minimum": 60, "maximum": 604800,
                                       "default": 3600}},
        "description": "Other members are ignored; an empty body means the defaults.",
    },
    "UploadToken": _object({
        "ok": OK,
        "token": {"type": "string", "pattern": r"^ut_eyJ1Ijoi[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"},
        "expires_at": ref("Timestamp"),
    }),
    "Me": _object({
        "ok": OK,
        "account": _object({
            "email": {"type": ["string", "null"]},
            "role": {"enum": ["user", "admin"]},
            "uploads_active": COUNT,
            "storage_used_bytes": COUNT,
        }),
        "key": _object({
            "prefix": {"type": "string", "pattern": "^fxf_[0-9a-f]{4}$"},
            "label": {"type": ["string", "null"]},
            "request_count": COUNT,
            "created_at": ref("Timestamp"),
        }, description="The key that made the call."),
    }),
    "WebhookId": {"type": "string", "pattern": "^wh_[0-9a-f]{16}$"},
    "SigningSecret": {"type": "string", "pattern": _HEX64},
    "Webhook": _object({
        "id": ref("WebhookId"),
        "url": {"type": "string"},
        "enabled": {"type": "boolean"},
        "created_at": ref("Timestamp"),
        "failure_count": COUNT,
        "last_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "last_failure_at": {"type": ["string", "null"], "pattern": _G1},
    }),
    "WebhookUrl": {
        "type": "string", "maxLength": 2048, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]",
        "description": "An absolute http(s) URL with a host, without user name or password, "
                       "whitespace or control characters.",
    },
    "WebhookCreate": {
        "type": "object", "required": ["url"],
        "properties": {"url": ref("WebhookUrl"), "enabled": {"type": "boolean", "default": True}},
        "description": "Other members are ignored.",
    },
    "WebhookChange": {
        "type": "object",
        "properties": {"url": ref("WebhookUrl"), "enabled": {"type": "boolean"}},
        "description": "Either member, both or none; other members are ignored.",
    },
    "WebhookList": _object({
        "ok": OK,
        "signing_secret": {"type": ["string", "null"], "pattern": _HEX64,
                           "description": "`null` until the first webhook is created."},
        "webhooks": {"type": "array", "items": ref("Webhook")},
    }),
    "WebhookCreated": _object({"ok": OK, "webhook": ref("Webhook"),
                               "signing_secret": ref("SigningSecret")}),
    "WebhookReply": _object({"ok": OK, "webhook": ref("Webhook")}),
    "WebhookDeleted": _object({"ok": OK, "deleted": ref("WebhookId")}),
    "SecretRotated": _object({"ok": OK, "signing_secret": ref("SigningSecret")}),
}


def ok(description: str, schema_name: str) -> Reply:
    """A 200 JSON answer with the named schema."""
    return Reply(200, description, {JSON: ref(schema_name)})


def failure(status: int, codes: Mapping[str, tuple[str, ...]], description: str = "",
            headers: Mapping[str, Schema] | None = None, open_codes: bool = False) -> Reply:
    """An error answer: ``codes`` maps each ``code`` to its messages (empty when
    they vary). ``open_codes`` allows codes beyond these (moderation plugins)."""
    lines = [f"`{code}`: " + (" / ".join(f"`{m}`" for m in messages) or "see the spec")
             for code, messages in codes.items()]
    text = (f"{description} " if description else "") + "; ".join(lines)
    code: dict[str, Any] = ({"type": "string", "examples": list(codes)} if open_codes
                            else {"enum": list(codes)})
    schema = {"allOf": [ref("Error")], "properties": {"code": code}}
    return Reply(status, text, {JSON: schema}, dict(headers or {}))


DAY_LIMIT = "Daily upload limit reached: 2000 uploads per day."
PIXEL_LIMIT = "Image is <W>x<H> (<MP> megapixels); the limit is <L> megapixels."
ANIMATION_LIMITS = (
    "Animation is too large: <n> frames of <W>x<H>; the limit is <L> megapixels in all.",
    "Animation is too large: <n> frames of <W>x<H>; the limit is <N> frames.",
    ("Animation is too large to re-encode: <n> frames of <W>x<H>; the limit is <L>"
     " megapixels in all."),
    ("Image is too large: its AV1 data codes frames of up to <W>x<H>, <MP> megapixels in"
     " all; the limit is <L> megapixels in all."),
)
STRUCTURE_LIMIT = ("The image could not be processed. It has more than <N> JPEG scans"
                   " (or JPEG marker segments, PNG chunks, WebP chunks, GIF sub-blocks, AVIF"
                   " boxes, AVIF items, AVIF item extents, AVIF sample-to-chunk entries, AV1"
                   " OBUs).")
RETRY_AFTER: Mapping[str, Schema] = {
    "Retry-After": {"type": "integer", "minimum": 1,
                    "description": "Seconds until a request would be accepted."}}

UNAUTHORIZED_KEY = failure(401, {"unauthorized": (MISSING_AUTH, MALFORMED_AUTH, INVALID_KEY,
                                                  TOKEN_UPLOAD_ONLY)})
UNAUTHORIZED_UPLOAD = failure(401, {"unauthorized": (MISSING_AUTH, MALFORMED_AUTH, INVALID_KEY,
                                                     INVALID_TOKEN, TOKEN_EXPIRED)})
BANNED_REPLY = failure(403, {"banned": (BANNED,)})
MANAGE_LIMITED = failure(429, {"rate_limit": ("Rate limit exceeded: 120 requests per minute.",)},
                         "Shared by every key-authenticated route except the upload "
                         "(`manage_rate_per_minute`).", RETRY_AFTER)
UPLOAD_LIMITED = failure(429, {"rate_limit": ("Rate limit exceeded: 30 uploads per minute.",),
                               "rate_limit_day": (DAY_LIMIT,)},
                         "Per key, tokens counting on their parent key; the numbers follow "
                         "the configuration.", RETRY_AFTER)
KEY_ERRORS = (UNAUTHORIZED_KEY, BANNED_REPLY, MANAGE_LIMITED)
# The web shell answers this on every route, before the handler runs.
BAD_LENGTH = "Invalid Content-Length header"


def bad_request(*messages: str) -> Reply:
    """400 ``bad_request`` with ``messages``, or for a malformed ``Content-Length``."""
    return failure(400, {"bad_request": (*messages, BAD_LENGTH)})


BAD_LENGTH_REPLY = bad_request()

UPLOAD_ERRORS = (
    failure(400, {"bad_request": (EXPECTED_MULTIPART, MALFORMED_MULTIPART, BAD_LENGTH),
                  "missing_file": (MISSING_FILE,), "empty_file": (EMPTY_FILE,)}),
    UNAUTHORIZED_UPLOAD,
    BANNED_REPLY,
    failure(413, {"too_large": ("File exceeds the 20 MB limit.", PIXEL_LIMIT, *ANIMATION_LIMITS)},
            "Also before reading, for a Content-Length above the limit plus 64 KiB."),
    failure(415, {"unsupported_type": (UNSUPPORTED_TYPE,), "processing_failed":
                  (PROCESSING_FAILED, STRUCTURE_LIMIT), "nsfw_rejected": (NSFW_REJECTED,)},
            "A moderation plugin may answer its own code (and status).", open_codes=True),
    UPLOAD_LIMITED,
    failure(500, {"storage_failed": (STORAGE_FAILED,), "db_failed": (DB_FAILED,)},
            "Nothing was kept; retry with exponential backoff."),
)

UPLOAD_NOT_FOUND_REPLY = failure(404, {"not_found": (UPLOAD_NOT_FOUND,)},
                                 "Only the caller's live uploads resolve.")
WEBHOOK_NOT_FOUND_REPLY = failure(404, {"not_found": (WEBHOOK_NOT_FOUND,)})
DELETE_LINK_REPLY = failure(404, {"not_found": (DELETE_LINK_INVALID,)})
IMAGE_NOT_FOUND_REPLY = failure(404, {"not_found": (IMAGE_NOT_FOUND,)},
                                "Unknown or deleted; sent with `Cache-Control: no-store`.",
                                {"Cache-Control": {"const": "no-store"}})

FILENAME_PARAM = Param("filename", "path", ref("Filename"), required=True,
                       description="An upload's filename, as in its `url`.")
WEBHOOK_ID_PARAM = Param("webhook_id", "path", ref("WebhookId"), required=True)

# Served images (section 7): the stored bytes with these headers.
SERVE_HEADERS: Mapping[str, Schema] = {
    "ETag": {"type": "string", "pattern": '^"[0-9a-f]{64}"$'},
    "Cache-Control": {"const": "public, max-age=86400"},
    "X-Content-Type-Options": {"const": "nosniff"},
    "Accept-Ranges": {"const": "bytes"},
    "Content-Length": {"type": "integer", "minimum": 0},
}
SERVED_CONTENT: Mapping[str, Schema] = {media: {} for media in IMAGE_TYPES}
SERVE_PARAMS = (
    FILENAME_PARAM,
    Param("If-None-Match", "header",
          description="An ETag list or `*`; a match answers 304 without a body."),
    Param("Range", "header", description="One byte range (`bytes=0-99`, `bytes=-100`); "
          "anything else is ignored and the whole image is sent."),
)
SERVE_REPLIES = (
    Reply(200, "The image", SERVED_CONTENT, SERVE_HEADERS),
    Reply(206, "One byte range of the image", SERVED_CONTENT, {
        **SERVE_HEADERS,
        "Content-Range": {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"}}),
    Reply(304, "Not modified (If-None-Match matched)",
          headers={k: v for k, v in SERVE_HEADERS.items() if k != "Content-Length"}),
    IMAGE_NOT_FOUND_REPLY,
    BAD_LENGTH_REPLY,
    failure(416, {"range_not_satisfiable": (RANGE_NOT_SATISFIABLE,)},
            "A `Range` that starts past the last byte (or `bytes=-0`); sent with "
            "`Content-Range: bytes */<size>` and `Cache-Control: no-store`.",
            {"Content-Range": {"type": "string", "pattern": "^bytes \\*/[0-9]+$"},
             "Cache-Control": {"const": "no-store"}}),
)

UPLOAD_FORM: Schema = {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "The image; its declared type and name are "
                                           "ignored."}},
    "description": "Parts other than `file` are ignored.",
}
