"""The paste service's API description: named schemas, security schemes and
the ``Doc`` of each route (spec shared/spec/paste.md), referenced by the
route declarations in :mod:`.service`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hepcore.apidoc import JSON, Body, Doc, Param, Reply, ref

Schema = Mapping[str, Any]

HTML = "text/html"
TEXT = "text/plain"
DATE_TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
VISIBILITY: Schema = {"type": "string", "enum": ["public", "unlisted", "private"]}
HAS_TEXT = r"\S"  # at least one non-whitespace character

PASTE_ID = Param(
    "paste_id", "path", {"type": "string", "pattern": "^[A-Za-z0-9_-]{4,80}$"},
    description="The paste's ID (issued IDs are 8 characters of [A-Za-z0-9]); any other "
                "value, or a missing, expired, deleted or hidden paste, is a 404.")

BEARER = {
    "type": "http", "scheme": "bearer", "bearerFormat": "hepgg_pst_<32 of [A-Za-z0-9]>",
    "description": "A paste key, `Authorization: Bearer hepgg_pst_...` (the scheme word "
                   "case-insensitive). A request with an Authorization header is always a "
                   "key request, even when it also carries a session.",
}
SESSION = {
    "type": "apiKey", "in": "cookie", "name": "hepcore_login",
    "description": "A signed-in session (the login service's cookie, or the host's own "
                   "sign-in). Used only when there is no Authorization header. Needed to "
                   "create, switch to or read `private` pastes.",
}
AUTH_SCHEMES: Mapping[str, Mapping[str, Schema]] = {
    "paste": {"pasteKey": BEARER, "session": SESSION},
    "session": {"session": SESSION},
}


def _ok(data: Schema) -> dict[str, Any]:
    """``{"ok": true, "data": <data>}``."""
    return {"type": "object", "required": ["ok", "data"], "additionalProperties": False,
            "properties": {"ok": {"const": True}, "data": data}}


def _exactly(properties: Mapping[str, Schema]) -> dict[str, Any]:
    """An object with all of ``properties`` and nothing else (a reply body)."""
    return {"type": "object", "required": list(properties), "additionalProperties": False,
            "properties": dict(properties)}


_CREATE_FIELDS: dict[str, Schema] = {
    "content": {"type": "string", "pattern": HAS_TEXT,
                "description": "The text; must contain a non-whitespace character. At most "
                               "1 MiB of UTF-8 (Free, anonymous) or 8 MiB (Prime)."},
    "title": {**NULLABLE_STRING,
              "description": "Trimmed and cut to 200 characters; empty means null."},
    "language": {**NULLABLE_STRING,
                 "description": "Trimmed, lower-cased, cut to 32 characters; null or empty "
                                "means detect it. An explicit value is kept."},
    "visibility": {**VISIBILITY,
                   "description": "`private` needs a sign-in by the owner (a key alone is "
                                  "not one): else 400 `Sign in to create private pastes`."},
    "isPermanent": {"type": "boolean", "default": False,
                    "description": "Prime: stored (no expiry). Free and anonymous: ignored "
                                   "at creation (mark pastes later with PATCH)."},
}

SNIPPET_FIELDS: dict[str, Schema] = {
    "id": {"type": "string"},
    "url": {"type": "string", "format": "uri", "description": "`<public base>/<id>`"},
    "title": NULLABLE_STRING,
    "language": {"type": "string"},
    "visibility": VISIBILITY,
    "isPermanent": {"type": "boolean"},
    "size": {"type": "integer", "minimum": 0, "description": "UTF-8 bytes"},
    "views": {"type": "integer", "minimum": 0},
    "anonymous": {"type": "boolean"},
    "createdAt": DATE_TIME,
    "updatedAt": DATE_TIME,
    "expiresAt": {"type": ["string", "null"], "format": "date-time",
                  "description": "null for Prime and permanent pastes"},
}

SCHEMAS: Mapping[str, Schema] = {
    "PasteCreate": {
        "type": "object", "required": ["content"],
        "description": "Unknown members are ignored.",
        "properties": {
            **_CREATE_FIELDS,
            "turnstileToken": {"type": "string",
                               "description": "Anonymous requests only: the captcha token."},
        },
    },
    "PasteUpdate": {
        "type": "object",
        "description": "Any of the fields; each present one is checked as at creation. "
                       "`language` null or empty detects it again; `isPermanent` on Free "
                       "marks up to 100 pastes permanent (clearing restores the 365-day "
                       "expiry).",
        "properties": dict(_CREATE_FIELDS),
    },
    "Created": _ok(_exactly({
        "id": {"type": "string", "pattern": "^[A-Za-z0-9]{8}$"},
        "url": SNIPPET_FIELDS["url"],
        "expiresAt": SNIPPET_FIELDS["expiresAt"],
        "anonymous": {"type": "boolean", "description": "true only for anonymous creates"},
    })),
    "Snippet": _exactly(SNIPPET_FIELDS),
    "SnippetWithContent": _exactly({**SNIPPET_FIELDS, "content": {"type": "string"}}),
    "SnippetReply": _ok(ref("Snippet")),
    "SnippetContentReply": _ok(ref("SnippetWithContent")),
    "SnippetList": _ok({
        "type": "object", "required": ["snippets", "nextBefore"], "additionalProperties": False,
        "properties": {
            "snippets": {"type": "array", "items": ref("Snippet"), "maxItems": 100,
                         "description": "Newest first; live pastes only."},
            "nextBefore": {"type": ["string", "null"], "format": "date-time",
                           "description": "`createdAt` of the last item when there are "
                                          "more (pass it back as `before`), else null."},
        },
    }),
    "Deleted": _ok(_exactly({"id": {"type": "string"}, "deleted": {"const": True}})),
    "HastebinKey": _exactly({"key": {"type": "string", "pattern": "^[A-Za-z0-9]{8}$"}}),
    "HastebinDocument": _exactly({"key": {"type": "string"}, "data": {"type": "string"}}),
}

_NO_STORE = {"Cache-Control": {"type": "string", "const": "no-store"}}
_CACHE = {"Cache-Control": {"type": "string", "enum": ["public, max-age=60", "no-store"],
                            "description": "public pastes: 1 minute; others never"}}
_RATE_LIMITED = Reply(
    429, "Too many requests (code `RATE_LIMITED`, with `Retry-After`), or a Free account's "
         "1000 live pastes (code `PASTE_TOTAL_CAP`; `Retry-After`: until its first paste expires)",
    {JSON: ref("Error")}, {"Retry-After": {"type": "string", "pattern": "^[0-9]+$"}})
_TOO_LARGE = "Paste too large. Max 1 MB. (Free, anonymous) / Max 8 MB. (Prime)"


def create_doc(anonymous: bool) -> Doc:
    """``POST /api/paste`` and its alias; the key is optional when anonymous
    creation is enabled (then a passing ``turnstileToken`` is needed)."""
    return Doc(
        body=Body({JSON: ref("PasteCreate")}),
        replies=(Reply(200, "Created", {JSON: ref("Created")}), _RATE_LIMITED),
        errors=(400, 401, 403, 413, 500),
        auth_optional=anonymous,
        description="Errors, the first that applies: 401 `Invalid API key` / `API key "
                    "disabled`; 403 `Cross-site request refused` (a signed-in write another "
                    "site made the browser send); 403 account not approved; 429 `RATE_LIMITED`;"
                    " 413 body above "
                    f"2 x cap + 64 KiB; 400 `Invalid JSON body`, `<field> must be a <type>`, "
                    "`Captcha failed. Try again.`, `Paste content is required`, `Invalid "
                    "visibility`, `Sign in to create private pastes`; 413 "
                    f"{_TOO_LARGE}; 429 `PASTE_TOTAL_CAP`; 500 storage failure.",
        tags=("pastes",))


SNIPPETS_LIST = Doc(
    params=(
        Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100,
                                 "default": 50}, description="Items per page"),
        Param("before", "query", DATE_TIME,
              description="ISO-8601; only pastes created strictly earlier"),
    ),
    replies=(Reply(200, "The caller's live pastes, newest first", {JSON: ref("SnippetList")},
                   _NO_STORE),),
    errors=(400, 403),
    description="400 `Invalid limit` or `Invalid before`; 401 without a key or sign-in "
                "(anonymous callers too).",
    tags=("snippets",))

SNIPPET_CREATE = Doc(
    body=Body({JSON: ref("PasteCreate")}),
    replies=(Reply(200, "Created", {JSON: ref("SnippetReply")}), _RATE_LIMITED),
    errors=(400, 401, 403, 413, 500),
    description="As `POST /api/paste`, but `visibility` defaults to `unlisted` and "
                "anonymous callers get 401.",
    tags=("snippets",))

SNIPPET_GET = Doc(
    params=(PASTE_ID,),
    replies=(Reply(200, "The paste with its content", {JSON: ref("SnippetContentReply")},
                   _NO_STORE),),
    errors=(403, 404),
    description="404 `Paste not found` for anything not the caller's, missing, expired or "
                "deleted.",
    tags=("snippets",))

SNIPPET_PATCH = Doc(
    params=(PASTE_ID,),
    body=Body({JSON: ref("PasteUpdate")}),
    replies=(Reply(200, "The changed paste", {JSON: ref("SnippetReply")}),),
    errors=(400, 403, 404, 413, 500),
    description="400 as at creation, and `Permanent paste limit reached (100). Unmark one "
                "or upgrade to Prime.` (code `PERMANENT_CAP`); 404 `Paste not found`.",
    tags=("snippets",))

SNIPPET_DELETE = Doc(
    params=(PASTE_ID,),
    replies=(Reply(200, "Deleted at once; reads then answer 404", {JSON: ref("Deleted")}),),
    errors=(403, 404),
    tags=("snippets",))

def hastebin_create_doc(anonymous: bool) -> Doc:
    """``POST /documents``: with anonymous creation on, a request without a
    key is an anonymous one, which fails the captcha (400), not 401."""
    return Doc(
        body=Body({TEXT: {"type": "string", "pattern": HAS_TEXT},
                   "application/octet-stream": {"type": "string", "format": "binary"}},
                  description="The raw body is the content, with any Content-Type; it must "
                              "be UTF-8 with a non-whitespace character."),
        replies=(Reply(200, "Created: a public, untitled paste, its language detected",
                       {JSON: ref("HastebinKey")}), _RATE_LIMITED),
        errors=(400, 401, 403, 413, 500),
        auth_optional=anonymous,
        description="Authentication, limits and messages as `POST /api/paste`; 400 `Paste "
                    "content must be valid UTF-8`, `Paste content is required`, and `Captcha "
                    "failed. Try again.` for every request without a key when anonymous "
                    "creation is on (the raw body has no room for a captcha token).",
        tags=("hastebin",))


HASTEBIN_GET = Doc(
    params=(PASTE_ID,),
    replies=(Reply(200, "The paste", {JSON: ref("HastebinDocument")}, _CACHE),
             Reply(404, "Not found (`{\"ok\": false, \"error\": \"Not found\"}`)",
                   {JSON: ref("Error")}, _NO_STORE)),
    auth_optional=True,
    tags=("hastebin",))

_RAW_HEADERS: dict[str, Schema] = {
    **_CACHE,
    "ETag": {"type": "string", "pattern": '^"[0-9a-f]{64}"$',
             "description": "The SHA-256 of the content, quoted"},
    "Accept-Ranges": {"type": "string", "const": "bytes"},
    "X-Content-Type-Options": {"type": "string", "const": "nosniff"},
    "Content-Security-Policy": {"type": "string", "const": "default-src 'none'; sandbox"},
}

RAW = Doc(
    params=(
        PASTE_ID,
        Param("Range", "header",
              description="One byte range, e.g. `bytes=0-99` or `bytes=-100`; several "
                          "ranges, or a header that is not a byte range, get the whole "
                          "content; a range starting past the end is a 416."),
        Param("If-None-Match", "header", description="ETags from earlier reads, or `*`"),
    ),
    replies=(
        Reply(200, "The exact content bytes; with `serve_mode` `x-accel-redirect` or "
                   "`x-sendfile`, an empty body and the header telling the proxy which "
                   "file to send (large pastes only)",
              {TEXT: {"type": "string"}},
              {**_RAW_HEADERS, "X-Accel-Redirect": {"type": "string"},
               "X-Sendfile": {"type": "string"}}),
        Reply(206, "Part of the content",
              {TEXT: {"type": "string"}},
              {**_RAW_HEADERS,
               "Content-Range": {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"}}),
        Reply(304, "Not modified (the ETag matches)", {}, _RAW_HEADERS),
        Reply(404, "Not found", {TEXT: {"type": "string", "const": "Not found"}}, _NO_STORE),
        Reply(416, "Range not satisfiable", {TEXT: {"type": "string", "maxLength": 0}},
              {"Content-Range": {"type": "string", "pattern": "^bytes \\*/[0-9]+$"}}),
    ),
    auth_optional=True,
    description="A `GET` from the first byte counts one view; `HEAD` and `304` do not.",
    tags=("reading",))

READER = Doc(
    params=(PASTE_ID,),
    replies=(
        Reply(200, "The reader page: title, language, views, times, size and the "
                   "highlighted content (no scripts; styles under a per-response nonce)",
              {HTML: {"type": "string"}},
              {**_CACHE, "Content-Security-Policy": {"type": "string"},
               "X-Content-Type-Options": {"type": "string", "const": "nosniff"},
               "Referrer-Policy": {"type": "string", "const": "no-referrer"}}),
        Reply(404, "An HTML not-found page", {HTML: {"type": "string"}}, _NO_STORE),
    ),
    auth_optional=True,
    description="A `GET` counts one view. Private pastes are shown only to their "
                "signed-in owner.",
    tags=("reading",))
