"""The uploader's API description data: named schemas, the security schemes
of the uploader token, and the parameters and replies several routes share.

The route declarations in :mod:`.service` carry the per-route
:class:`~hepcore.apidoc.Doc`; this module holds what they reference, so the
document is built from the routes alone (spec: shared/spec/uploader.md).
"""

from __future__ import annotations

from typing import Any

from hepcore.apidoc import JSON, Body, Param, Reply, Schema, ref

TAG_UPLOAD = "upload"
TAG_SERVE = "serve"
TAG_MANAGE = "management"

GENERATED_ID = r"^[A-Za-z0-9_-]{9}(\.[a-z0-9]{1,10})?$"
ANY_NAME = r"^[A-Za-z0-9._-]{1,32}$"
ALIAS = r"^[A-Za-z0-9._-]*$"
ISO_MS: Schema = {"type": "string", "format": "date-time",
                  "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}
URL: Schema = {"type": "string", "format": "uri"}
COUNT: Schema = {"type": "integer", "minimum": 0}


def ok(data: Schema) -> Schema:
    """The ``{"ok": true, "data": ...}`` success envelope (section 8)."""
    return {"type": "object", "required": ["ok", "data"], "additionalProperties": False,
            "properties": {"ok": {"const": True}, "data": data}}


def closed(required: list[str], properties: dict[str, Any]) -> Schema:
    """An object with exactly these members (``required`` always present)."""
    return {"type": "object", "required": required, "properties": properties,
            "additionalProperties": False}


AUTH_SCHEMES: dict[str, dict[str, Schema]] = {
    "uploader": {
        "uploaderToken": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "The uploader token (`hyd-up-` and 32 characters of"
                           " `[A-Za-z0-9_-]`), sent as the whole header value. A leading"
                           " `Bearer` or `Token` word (any case) and whitespace are"
                           " removed first; no other scheme word is understood, and there"
                           " is no query-string or cookie alternative (U1).",
        },
        "bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "hyd-up-<32 characters>",
            "description": "The same token after `Bearer ` (or `Token `).",
        },
    },
}

SCHEMAS: dict[str, Schema] = {
    "UploadResult": closed(["ID", "url"], {
        "ID": {"type": "string", "pattern": ANY_NAME,
               "description": "9 random characters and the extension, if any; on"
                              " /api/v1/shorten the vanity alias when one was given"},
        "url": {**URL, "description": "The public URL: the account's serve base, else the"
                                      " service's, then `/ID`. Use it verbatim."},
    }),
    "Item": closed(
        ["ID", "url", "kind", "alias", "favourite", "link", "name", "type", "size", "views",
         "createdAt"], {
            "ID": {"type": "string", "pattern": ANY_NAME},
            "url": URL,
            "kind": {"enum": ["file", "text", "link"]},
            "alias": {"type": ["string", "null"], "pattern": ANY_NAME},
            "favourite": {"type": "boolean"},
            "link": {"type": ["string", "null"], "description": "Target of a `link` item"},
            "name": {"type": ["string", "null"],
                     "description": "Original filename; `<unix-ms>.txt` for text; null for links"},
            "type": {"type": ["string", "null"], "description": "Stored type; null for links"},
            "size": {"type": ["integer", "null"], "minimum": 0,
                     "description": "Bytes; null for links"},
            "views": COUNT,
            "createdAt": ISO_MS,
        }),
    "Account": closed(
        ["id", "name", "serveUrl", "maxFileSize", "allowedTypes", "uploadCount", "createdAt"], {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "serveUrl": URL,
            "maxFileSize": COUNT,
            "allowedTypes": {"type": "array", "items": {"type": "string"}},
            "uploadCount": COUNT,
            "createdAt": ISO_MS,
        }),
    "ItemPage": closed(["uploads", "nextBefore"], {
        "uploads": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        "nextBefore": {**ISO_MS, "type": ["string", "null"],
                       "description": "`createdAt` of the last item when more follow, else"
                                      " null"},
    }),
    "Deleted": closed(["ID", "deleted"], {"ID": {"type": "string", "pattern": ANY_NAME},
                                          "deleted": {"const": True}}),
    "Token": closed(["token"], {"token": {"type": "string",
                                          "pattern": r"^hyd-up-[A-Za-z0-9_-]{32}$"}}),
    "UploadCounter": closed(["count"], {"count": COUNT}),
    "ItemPatch": {
        "type": "object",
        "description": "Unknown members are ignored; an empty object changes nothing.",
        "properties": {
            "alias": {"type": ["string", "null"], "maxLength": 32, "pattern": ALIAS,
                      "description": "Set or replace the alias; null or \"\" clears it"},
            "favourite": {"type": "boolean"},
            "link": {"type": "string", "format": "uri", "maxLength": 2048,
                     "description": "New target; only for `link` items"},
        },
    },
    "ShortenRequest": {
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "format": "uri", "minLength": 1, "maxLength": 2048,
                    "description": "An absolute http(s) URL, not on this service's hosts"},
            "alias": {"type": ["string", "null"], "maxLength": 32, "pattern": ALIAS,
                      "description": "A vanity ID; null or \"\" means none"},
        },
    },
    "OEmbed": {
        "oneOf": [
            closed(["version", "type", "provider_name", "provider_url", "title"], {
                "version": {"const": "1.0"}, "type": {"const": "link"},
                "provider_name": {"type": "string"}, "provider_url": {"type": "string"},
                "title": {"type": "string"},
            }),
            closed(["version", "type", "provider_name", "provider_url", "title", "url",
                    "width", "height"], {
                "version": {"const": "1.0"}, "type": {"const": "photo"},
                "provider_name": {"type": "string"}, "provider_url": {"type": "string"},
                "title": {"type": "string"}, "url": URL,
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
            }),
        ],
    },
    "ShareX": closed(
        ["Version", "Name", "DestinationType", "RequestMethod", "RequestURL", "Headers", "Body",
         "Arguments", "FileFormName", "URL", "ErrorMessage"], {
            "Version": {"type": "string"},
            "Name": {"type": "string"},
            "DestinationType": {"type": "string"},
            "RequestMethod": {"const": "POST"},
            "RequestURL": URL,
            "Headers": closed(["Authorization"], {"Authorization": {"type": "string"}}),
            "Body": {"const": "MultipartFormData"},
            "Arguments": closed(["link"], {"link": {"const": "$input$"}}),
            "FileFormName": {"const": "file"},
            "URL": {"const": "$json:url$"},
            "ErrorMessage": {"const": "$json:error$"},
        }),
}

# --- request bodies -------------------------------------------------------

UPLOAD_BODY = Body({
    "multipart/form-data": {
        "type": "object",
        "description": "A file part: any field name (ShareX sends `file`), the first part"
                       " with a `filename` wins; a part with an empty filename and no bytes"
                       " counts as absent. Without a file part, a non-empty plain `link`"
                       " field: a shortlink when it is an http(s) URL, else stored as text."
                       " A file part and `link` together: the file wins (U5).",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "link": {"description": "Text: a URL to shorten, or text to store"},
        },
    },
    "application/x-www-form-urlencoded": {
        "type": "object",
        "required": ["link"],
        "description": "A shortlink when the trimmed `link` is an absolute http(s) URL of at"
                       " most 2048 characters, else text stored exactly as received.",
        "properties": {"link": {"type": "string", "minLength": 1}},
    },
    JSON: {
        "type": "object",
        "required": ["link"],
        "description": "As the urlencoded form, as JSON.",
        "properties": {"link": {"type": "string", "minLength": 1}},
    },
}, description="A file, a shortlink or a text; the size limit is the account's"
               " `max_file_size` (`maxFileSize` of /api/v1/me).")

ITEM_PATCH_BODY = Body({JSON: ref("ItemPatch")}, required=False,
                       description="An empty body is the empty object.")
SHORTEN_BODY = Body({JSON: ref("ShortenRequest")})

# --- parameters -----------------------------------------------------------

ITEM_NAME: Schema = {"type": "string", "pattern": r"^[A-Za-z0-9._-]+$"}
SERVE_PARAMS = (
    Param("item_id", "path", ITEM_NAME, required=True,
          description="An ID (`hdlOo67BI.gif`), its slug alone (`hdlOo67BI`) or an alias"),
    Param("embed", "query", description="`raw` always sends the bytes, even to a link-preview"
                                        " bot"),
    Param("Range", "header", description="One byte range (`bytes=0-99`): 206; an"
                                         " unsatisfiable one: 416; several: the whole body"),
    Param("If-None-Match", "header", description="The item's ETag: 304"),
    Param("User-Agent", "header",
          description="A link-preview bot (Discordbot, Twitterbot, ...) asking for a raster"
                      " image or a video gets an HTML preview page instead of the bytes"),
)
CONTENT_ID = Param("content_id", "path", {"type": "string", "minLength": 1}, required=True,
                   description="An ID with or without its extension, or an alias, among the"
                               " caller's own items")
UPLOADS_PARAMS = (
    Param("type", "query", {"enum": ["links", "files"]},
          description="`links`: shortlinks only; `files`: files and text; default all"),
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
    Param("before", "query", {"type": "string", "format": "date-time"},
          description="Only items created strictly earlier (the `nextBefore` cursor)"),
)
OEMBED_PARAMS = (
    Param("url", "query", {"type": "string", "minLength": 1}, required=True,
          description="An item URL of this service"),
    Param("format", "query", {"enum": ["json"]},
          description="Only `json`; any other value is answered 501"),
    Param("maxwidth", "query", description="Accepted and ignored"),
    Param("maxheight", "query", description="Accepted and ignored"),
)

# --- replies --------------------------------------------------------------

TEXT = {"type": "string"}
RETRY_AFTER = Reply(429, "Too many requests (`RATE_LIMITED`)", {JSON: ref("Error")},
                    headers={"Retry-After": {"type": "string", "pattern": r"^[0-9]+$"}})
SERVED_HEADERS: dict[str, Schema] = {
    "Content-Disposition": TEXT,
    "ETag": {"type": "string", "pattern": r'^"[0-9a-f]{64}"$'},
    "Cache-Control": TEXT,
    "Accept-Ranges": {"const": "bytes"},
    "X-Content-Type-Options": {"const": "nosniff"},
    "Content-Security-Policy": TEXT,
    "Vary": TEXT,
}
SERVE_REPLIES = (
    Reply(200, "The stored bytes with their stored type (`Content-Security-Policy:"
               " default-src 'none'; sandbox` for active types), or for a link-preview bot"
               " the HTML preview page", {"*/*": {}}, headers=SERVED_HEADERS),
    Reply(206, "One byte range of the stored bytes", {"*/*": {}},
          headers={**SERVED_HEADERS,
                   "Content-Range": {"type": "string",
                                     "pattern": r"^bytes [0-9]+-[0-9]+/[0-9]+$"}}),
    Reply(302, "A shortlink: redirect to its target, empty body",
          {"text/html": {"maxLength": 0}},
          headers={"Location": TEXT, "Cache-Control": {"const": "private, max-age=0"}}),
    Reply(304, "Not modified (If-None-Match matched the ETag)",
          headers={"ETag": SERVED_HEADERS["ETag"]}),
    Reply(404, "No live item of that name is served on this host: a small HTML page",
          {"text/html": TEXT}),
    Reply(416, "The range starts beyond the end; empty body", {"*/*": {}},
          headers={"Content-Range": {"type": "string", "pattern": r"^bytes \*/[0-9]+$"}}),
)
