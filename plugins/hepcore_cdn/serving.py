"""Public routes of the CDN (spec section 8): files at ``/:id/*filename``, the
CORS preflight, ``/rescue`` and ``/up``. A mixin of the service."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from hepcore.apidoc import JSON, Doc, Param, Reply, ref
from hepcore.errors import NotFound
from hepcore.http import Request, Response
from hepcore.service import Route
from hepcore.serving import (
    SANDBOX_CSP,
    content_disposition,
    is_active_type,
    serve_object,
)

from .apidocs import (
    EMPTY,
    EMPTY_TEXT,
    FILE_HEADERS,
    INTERNAL,
    PREFLIGHT_HEADERS,
    SERVED_HEADERS,
    UUID_PATTERN,
)
from .store import UUID_RE

if TYPE_CHECKING:
    from hepcore.errors import ServiceError
    from hepcore.runtime import Runtime
    from hepcore.service import Handler
    from hepcore.storage import Storage

    from .store import Upload, UploadStore

log = logging.getLogger("hepcore.cdn")

FILE_CACHE = "max-age=31536000, public"
RESCUE_CACHE = "max-age=604800, public"
CORS = ("Access-Control-Allow-Origin", "*")
PREFLIGHT = [CORS, ("Access-Control-Allow-Headers", "*"),
             ("Access-Control-Allow-Methods", "GET, HEAD"), ("Access-Control-Max-Age", "86400")]
FILE_PATH = re.compile(r"^/([^/]+)/(.+)$", re.DOTALL)
IMAGE_URL = re.compile(r"\.(png|jpe?g)\Z", re.IGNORECASE)
UP_PAGE = (b'<!DOCTYPE html><html><body style="background-color: green"></body></html>')


def empty(status: int, headers: list[tuple[str, str]] | None = None) -> Response:
    """A response without a body. An explicit type, or the web layer would call it JSON."""
    extra = [] if status == 204 else [("Content-Type", "text/plain; charset=utf-8")]
    return Response(status, [*(headers or []), *extra, ("Content-Length", "0")], None)


def is_file_path(upload_id: str, filename: str) -> bool:
    """Whether ``/<upload_id>/<filename>`` is a file URL (8.1): a lowercase UUID,
    then a filename with something besides slashes (``/<id>//`` has none, as a
    router that squeezes repeated slashes would find)."""
    return bool(UUID_RE.match(upload_id)) and bool(filename.strip("/"))


def placeholder_svg(host: str) -> bytes:
    """The 800x400 "not rescued yet" image (8.3); ``host`` is escaped."""
    lines = [("404", 150, 72, "bold"), ("Original URL not found in CDN", 215, 28, "bold"),
             ("This file hasn't been uploaded or rescued yet.", 260, 20, "normal"),
             (f"Try uploading it at {host}", 300, 20, "normal")]
    texts = "".join(
        f'<text x="400" y="{y}" font-family="sans-serif" font-size="{size}"'
        f' font-weight="{weight}" fill="#8B1E2B" text-anchor="middle">{escape(text)}</text>'
        for text, y, size, weight in lines)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="800" height="400"'
        ' viewBox="0 0 800 400"><rect width="800" height="400" fill="#FBECED"/>'
        f"{texts}</svg>").encode()


class ServingRoutes:
    if TYPE_CHECKING:
        # Provided by CdnService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        runtime: Runtime
        storage: Storage
        storage_public_base: str | None
        uploads: UploadStore

        def handle(self, handler: Handler, request: Request) -> Response: ...
        def render_error(self, err: ServiceError) -> Response: ...
        def base_for(self, request: Request | None) -> str: ...
        def file_url(self, base: str, upload: Upload) -> str: ...

    def serving_routes(self, quick: bool) -> list[Route]:
        file_params = (
            Param("upload_id", "path", {"type": "string", "pattern": UUID_PATTERN},
                  description="the upload's id, a lowercase UUID; anything else is a 404"),
            Param("filename", "path", {"type": "string", "pattern": "[^/]"},
                  description="any name with a character besides `/` (it may hold"
                              " slashes); ignored for the lookup"))
        return [
            Route(("GET",), "/up", self.up, "up", "Health check", inline=True, doc=Doc(
                replies=(Reply(200, "Up", {"text/html": {"type": "string"}}), INTERNAL),
                tags=("serving",))),
            Route(("GET",), "/rescue", self.rescue, "rescue",
                  "Find an upload by its original URL", inline=quick, doc=Doc(
                      params=(Param("url", "query", {"type": "string"}, required=True,
                                    description="the URL the file was fetched from (exact"
                                                " match)"),),
                      replies=(
                          Reply(302, "Found: to the file's URL", headers={
                              "Location": {"type": "string", "format": "uri"},
                              "Cache-Control": {"const": RESCUE_CACHE},
                              "Access-Control-Allow-Origin": {"const": "*"}}),
                          Reply(200, "Not found, and the URL ends in .png, .jpg or .jpeg: an"
                                     " 800x400 placeholder image",
                                {"image/svg+xml": {"type": "string"}},
                                headers={"Access-Control-Allow-Origin": {"const": "*"},
                                         "X-Content-Type-Options": {"const": "nosniff"}}),
                          Reply(400, "`url` missing or blank: an empty body (or the JSON"
                                     " error of an invalid Content-Length header)",
                                {**EMPTY_TEXT, JSON: ref("Error")}),
                          Reply(404, "Not found: an empty body", EMPTY_TEXT,
                                headers={"Access-Control-Allow-Origin": {"const": "*"}}),
                          INTERNAL),
                      tags=("serving",))),
            Route(("GET", "HEAD"), "/{upload_id}/{filename}", self.serve_file, "file",
                  "Serve a file (redirect or bytes)", inline=quick, doc=Doc(
                      params=(*file_params,
                              Param("Range", "header", description="one byte range"
                                    " (`bytes=0-99`); several ranges get the whole file"),
                              Param("If-None-Match", "header",
                                    description="an ETag; a match gives 304")),
                      replies=(
                          Reply(200, "Direct mode: the stored bytes, of any type",
                                {"*/*": {}}, SERVED_HEADERS),
                          Reply(206, "Direct mode: one byte range", {"*/*": {}},
                                {**SERVED_HEADERS, "Content-Range": {
                                    "type": "string", "pattern": r"^bytes \d+-\d+/\d+$"}}),
                          Reply(302, "Redirect mode: to `<storage public base>/<storage"
                                     " key>`", headers={
                                         **FILE_HEADERS,
                                         "Location": {"type": "string", "format": "uri"}}),
                          Reply(304, "Not modified (If-None-Match matched)", headers={
                              k: v for k, v in SERVED_HEADERS.items() if k != "Content-Length"}),
                          Reply(404, "No such upload, or a malformed id: an empty body (with"
                                     " `Access-Control-Allow-Origin: *` for a well-formed id)",
                                EMPTY_TEXT,
                                headers={"Access-Control-Allow-Origin": {"const": "*"}}),
                          Reply(416, "Range not satisfiable: an empty body", {"*/*": EMPTY},
                                {**FILE_HEADERS, "Content-Range": {
                                    "type": "string", "pattern": r"^bytes \*/\d+$"}}),
                          INTERNAL),
                      tags=("serving",))),
            Route(("OPTIONS",), "/{upload_id}/{filename}", self.preflight, "preflight",
                  "CORS preflight", doc=Doc(
                      params=file_params,
                      replies=(Reply(204, "For any well-formed id, whether or not it exists",
                                     headers=PREFLIGHT_HEADERS),
                               Reply(404, "A malformed id: an empty body", EMPTY_TEXT),
                               INTERNAL),
                      tags=("serving",))),
        ]

    def redirect_url(self, key: str) -> str | None:
        """Where redirect mode sends clients, or ``None`` in direct mode (C2)."""
        if self.storage_public_base:
            return f"{self.storage_public_base}/{key}"
        return self.storage.public_url(key)

    def serve_file(self, request: Request) -> Response:
        upload_id = request.params["upload_id"]
        if not is_file_path(upload_id, request.params["filename"]):
            return empty(404)
        upload = self.uploads.get(upload_id)
        if upload is None:
            return empty(404, [CORS])
        location = self.redirect_url(upload.storage_key)
        if location is not None:
            return empty(302, [("Location", location), ("Cache-Control", FILE_CACHE), CORS])
        headers = [("Cache-Control", FILE_CACHE), CORS,
                   ("Content-Disposition", content_disposition("inline", upload.filename)),
                   ("X-Content-Type-Options", "nosniff")]
        if is_active_type(upload.content_type, self.runtime.config.active_types):
            headers.append(("Content-Security-Policy", SANDBOX_CSP))
        config = self.runtime.config
        try:
            served = serve_object(request, self.storage, upload.storage_key, size=upload.size,
                                  etag=f'"{upload.id}"', content_type=upload.content_type,
                                  headers=headers, serve_mode=config.serve_mode,
                                  accel_prefix=config.accel_prefix)
        except FileNotFoundError:
            log.error("bytes missing for %s (%s)", upload.id, upload.storage_key)
            return empty(404, [CORS])
        return served.response

    def preflight(self, request: Request) -> Response:
        if not is_file_path(request.params["upload_id"], request.params["filename"]):
            return empty(404)
        return empty(204, PREFLIGHT)

    def rescue(self, request: Request) -> Response:
        url = request.query_value("url")
        if url is None or not url.strip():
            return empty(400, [CORS])
        upload = self.uploads.by_original_url(url)
        if upload is not None:
            location = self.file_url(self.base_for(request), upload)
            return empty(302, [("Location", location), ("Cache-Control", RESCUE_CACHE), CORS])
        if IMAGE_URL.search(url):
            host = urlsplit(self.base_for(request)).netloc
            return Response(200, [("Content-Type", "image/svg+xml"), CORS,
                                  ("X-Content-Type-Options", "nosniff"),
                                  ("Content-Security-Policy", SANDBOX_CSP)],
                            placeholder_svg(host))
        return empty(404, [CORS])

    def up(self, request: Request) -> Response:
        return Response(200, [("Content-Type", "text/html; charset=utf-8")], UP_PAGE)

    def not_found(self, request: Request) -> Response:
        """File paths whose filename holds slashes reach here (the route matches one
        segment); unknown API paths get the JSON 404; anything else is empty."""
        m = None if _is_api(request.path) else FILE_PATH.match(request.path)
        if m is not None and request.method in ("GET", "HEAD", "OPTIONS"):
            request.params = {"upload_id": m.group(1), "filename": m.group(2)}
            handler = self.preflight if request.method == "OPTIONS" else self.serve_file
            return self.handle(handler, request)
        return self._unknown(request)

    def method_not_allowed(self, request: Request, allowed: object) -> Response:
        """As upstream's router: a method a path does not take is an unknown route."""
        return self._unknown(request)

    def _unknown(self, request: Request) -> Response:
        if _is_api(request.path):
            return self.render_error(NotFound("Not found"))
        return empty(404)


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")
