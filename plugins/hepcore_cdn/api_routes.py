"""The ``/api/v4/*`` routes of the CDN (spec section 6) as data: each with its
handler, its auth and its API description, and its ``.json`` alias. A mixin
of the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hepcore.apidoc import JSON, Body, Doc, Param, Reply, ref
from hepcore.service import Route

from .apidocs import (
    API_REPLIES,
    FORM,
    MULTIPART,
    QUOTA,
    RATE_LIMITED,
    UPLOAD_ID,
    UPLOADED,
    form_body,
    json_params,
    query_param,
)
from .quota import MAX_BATCH

if TYPE_CHECKING:
    from hepcore.http import Request, Response


class ApiRoutes:
    if TYPE_CHECKING:
        # Provided by CdnService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        def api_me(self, request: Request) -> Response: ...
        def api_upload(self, request: Request) -> Response: ...
        def api_batch(self, request: Request) -> Response: ...
        def api_from_url(self, request: Request) -> Response: ...
        def api_rename(self, request: Request) -> Response: ...
        def api_delete(self, request: Request) -> Response: ...
        def api_delete_batch(self, request: Request) -> Response: ...
        def api_revoke(self, request: Request) -> Response: ...

    def api_routes(self) -> list[Route]:
        auth = "cdn"
        api: list[tuple[tuple[str, ...], str, Any, str, str, Doc]] = [
            (("GET",), "/api/v4/me", self.api_me, "me", "The key's account and quota", Doc(
                replies=(Reply(200, "The account", {JSON: ref("Me")}), *API_REPLIES),
                tags=("account",))),
            (("POST",), "/api/v4/upload", self.api_upload, "upload", "Upload one file", Doc(
                body=Body({MULTIPART: {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary",
                                            "description": "the file; the part's filename"
                                                           " is the display name"}}}},
                    description="The first part named `file` with a filename; other parts"
                                " are ignored. Any type, up to the per-file limit."),
                replies=(UPLOADED, QUOTA, *API_REPLIES),
                errors=(415, 422),
                description="400 `Missing file parameter` when there is no `file` part with a"
                            " filename (or the body is not multipart), 400 `Invalid JSON"
                            " body` for a malformed JSON body, 400 `Malformed"
                            " multipart body`; 402 when the file passes the per-file limit"
                            " (`File size exceeds your limit of <N> per file`, checked on"
                            " `Content-Length` first) or the total (`Storage quota"
                            " exceeded`); 415 when a moderation plugin refuses the bytes;"
                            " 422 `Upload failed: storage error`.",
                tags=("uploads",))),
            (("POST",), "/api/v4/uploads", self.api_batch, "uploads",
             "Upload up to 40 files", Doc(
                body=Body({MULTIPART: {
                    "type": "object", "required": ["files[]"],
                    "properties": {"files[]": {
                        "type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                        "items": {"type": "string", "format": "binary"}}}}},
                    description="Parts named exactly `files[]`, each with a filename."),
                replies=(Reply(201, "At least one file stored; `failed` lists the others",
                               {JSON: ref("BatchResult")}),
                         Reply(422, "No file stored; `failed` says why for each",
                               {JSON: ref("BatchResult")}),
                         *API_REPLIES),
                errors=(413,),
                description="The quota is decided for the whole batch before anything is"
                            " stored. 400 `Missing files[] parameter` (no `files[]` part"
                            " with a filename, or the body is not multipart), 400 `Invalid"
                            " JSON body` for a malformed JSON body, 400 `Too many files`"
                            " (with `detail`: `Maximum 40 files per batch, got <n>`; nothing"
                            " is stored), 400 `Malformed multipart body`; 413 `Request too"
                            " large` when the body passes 40 x the per-file limit (plus the"
                            " multipart allowance, 64 KiB by default).",
                tags=("uploads",))),
            (("POST",), "/api/v4/upload_from_url", self.api_from_url, "upload_from_url",
             "Store a file fetched from a URL", Doc(
                params=(query_param("url", {"type": "string"},
                                    "the URL, when the body does not give it"),
                        Param("X-Download-Authorization", "header",
                              description="sent as the `Authorization` header of the"
                                          " download, to the URL's own origin only")),
                body=form_body({"url": {"type": "string",
                                        "description": "an absolute http or https URL"}},
                               description="`url` as JSON, a form field or (failing both) a"
                                           " query parameter; the body wins."),
                replies=(UPLOADED, QUOTA, RATE_LIMITED, *API_REPLIES),
                errors=(415, 422),
                description="The download follows the safety model of spec section 7:"
                            " every address of the host is checked and private, loopback,"
                            " link-local and reserved ones are refused unless the host's"
                            " `[outbound] allow` lists them. 400 `Invalid JSON body`,"
                            " 400 `Missing url parameter`, 400 `url must be a string`;"
                            " 422 `Upload failed: <reason>` for any failed download (`Invalid"
                            " URL`, `URL scheme must be http or https.`, `Invalid host`,"
                            " `Couldn't resolve host.`, `IP address not allowed`, `Failed to"
                            " download: <status>`, `Failed to download: timed out`, `File"
                            " too large: exceeds limit of <cap>`, `File would exceed storage"
                            " quota`, ...); 402 when concurrent uploads used the room;"
                            " 415 when a moderation plugin refuses the bytes; 429 past the"
                            " per-key rate limit (every authenticated call counts).",
                tags=("uploads",))),
            (("PATCH",), "/api/v4/uploads/{upload_id}/rename", self.api_rename, "rename",
             "Change an upload's display filename", Doc(
                params=(UPLOAD_ID, query_param("filename", {"type": "string"},
                                               "the new name, when the body does not give"
                                               " it")),
                body=form_body({"filename": {"type": "string"}},
                               description="`filename` as JSON, a form field or a query"
                                           " parameter. Sanitised; a name without extension"
                                           " keeps the old extension."),
                replies=(Reply(200, "Renamed", {JSON: ref("Upload")}), *API_REPLIES),
                errors=(404, 422),
                description="404 `Upload not found` (checked first: missing, malformed or"
                            " another account's), 400 `Missing filename parameter`, 400"
                            " `Invalid JSON body`, 400 `filename must be a string`; 422"
                            " `Rename failed: <reason>`. Old file URLs keep working.",
                tags=("uploads",))),
            (("DELETE",), "/api/v4/upload/{upload_id}", self.api_delete, "delete",
             "Delete an upload", Doc(
                params=(Param("upload_id", "path", {"type": "string"},
                              description="the upload's id (a `.json` suffix is ignored)"),),
                replies=(Reply(200, "Deleted: bytes, record and quota charge",
                               {JSON: ref("Deleted")}), *API_REPLIES),
                errors=(404,),
                description="404 `Not found` when the id is missing, malformed or another"
                            " account's (checked first); 400 `Invalid JSON body` for a"
                            " malformed JSON body, and nothing is deleted.",
                tags=("uploads",))),
            (("DELETE",), "/api/v4/uploads/batch", self.api_delete_batch, "delete_batch",
             "Delete several uploads", Doc(
                params=(query_param("ids[]", {"type": "array", "items": {"type": "string"}},
                                    "ids to delete (repeat the parameter)"),
                        query_param("ids", {"type": "string"}, "a single id")),
                body=Body({
                    JSON: json_params({"ids": {"type": ["array", "string"],
                                               "items": {"type": "string"}}}),
                    FORM: {"type": "object", "properties": {"ids[]": {
                        "type": "array", "items": {"type": "string"}}}},
                }, required=False, description="`ids` as JSON, or `ids[]` form fields"
                                               " (urlencoded or multipart)."),
                replies=(Reply(200, "Deleted the caller's uploads among the ids",
                               {JSON: ref("BatchDeleted")}), *API_REPLIES),
                description="The ids come from the body (JSON `{\"ids\": [...]}` or form"
                            " fields `ids[]`), else the query. Blank ids"
                            " are dropped; 400 `Missing ids[] parameter` when none is left,"
                            " 400 `ids must be an array of strings`, 400 `Invalid JSON"
                            " body`.",
                tags=("uploads",))),
            (("POST",), "/api/v4/revoke", self.api_revoke, "revoke", "Revoke this key", Doc(
                replies=(Reply(200, "The key is revoked; it gets 401 from now on",
                               {JSON: ref("Revoked")}), *API_REPLIES),
                description="400 `Invalid JSON body` for a malformed JSON body, and the key"
                            " stays valid.",
                tags=("account",))),
        ]
        routes: list[Route] = []
        for methods, path, handler, name, summary, doc in api:
            routes.append(Route(methods, path, handler, name, summary, auth=auth, doc=doc))
            if not path.endswith("}"):  # a ".json" id is stripped by the handler instead
                routes.append(Route(methods, path + ".json", handler, name + "_json",
                                    summary + " (`.json` alias)", auth=auth, doc=doc))
        return routes
