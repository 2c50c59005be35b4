"""The Fixitfy-compatible image service: keys and upload tokens, the image
pipeline, dedupe, one-shot delete links, serving and the management API.

Spec: shared/spec/images.md (webhooks, section 10, live in :mod:`.webhooks`).
Handlers are plain sync code on core objects; both web shells call them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from hepcore.apidoc import JSON, Body, Doc, Param, ref
from hepcore.envelope import CodeEnvelope
from hepcore.errors import ConfigError
from hepcore.http import Request, Response
from hepcore.limits import Limit
from hepcore.service import Route, Service
from hepcore.storage import LocalStorage

from .apidocs import (
    AUTH_SCHEMES,
    BAD_LENGTH_REPLY,
    DELETE_LINK_REPLY,
    FILENAME_PARAM,
    KEY_AUTH,
    KEY_ERRORS,
    SCHEMAS,
    SERVE_PARAMS,
    SERVE_REPLIES,
    TITLE,
    UPLOAD_AUTH,
    UPLOAD_ERRORS,
    UPLOAD_FORM,
    UPLOAD_NOT_FOUND_REPLY,
    bad_request,
    ok,
)
from .auth import Authentication
from .errors import INVALID_JSON, ImagesError, ImagesMethodNotAllowed, ImagesNotFound
from .formats import PixelBudget
from .manage import BEFORE_MESSAGE, LIMIT_MESSAGE, TTL_MESSAGE, Management
from .migrations import images as images_migrations
from .pipeline import UploadPipeline
from .store import UploadStore
from .tokens import UploadTokenCodec
from .webhooks import Webhooks

log = logging.getLogger("hepcore.images")

MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 20 * MIB
DEFAULT_MAX_MEGAPIXELS = 50
DEFAULT_MAX_TOTAL_MEGAPIXELS = 500
DEFAULT_MAX_FRAMES = 1000
PURGE_JOB = "images.purge"
FILENAME_PREFIX = re.compile(r"[A-Za-z0-9._-]*")



def size_in_mb(limit: int) -> str:
    """``20``, ``2.5``: a byte limit in MB (MiB) without trailing zeros; a limit
    below 0.005 MB keeps three significant digits (``0.000954``), never ``0``."""
    text = f"{limit / MIB:.2f}".rstrip("0").rstrip(".")
    return text if text != "0" else f"{limit / MIB:.3g}"


class ImagesEnvelope(CodeEnvelope):
    """:class:`CodeEnvelope`; a :class:`ServiceError` without a code gets a code
    derived from its status, so every error body carries one."""

    CODES: ClassVar[dict[int, str]] = {400: "bad_request", 401: "unauthorized", 403: "banned", 404: "not_found",
             405: "method_not_allowed", 413: "too_large", 415: "unsupported_type",
             429: "rate_limit"}

    def error(self, err: Any) -> Response:
        if not err.code:
            err.code = self.CODES.get(err.status, "internal_error")
        return super().error(err)


class ImagesService(Authentication, UploadPipeline, Management, Service):
    """Options (``[services.images]``): ``max_file_size`` (20 MiB), ``max_megapixels``
    (50, per frame), ``max_total_megapixels`` (500, all frames of an animation),
    ``max_frames`` (1000), ``filename_prefix`` (``FIXITFY-``), ``upload_rate_per_minute`` (30),
    ``upload_rate_per_day`` (2000), ``manage_rate_per_minute`` (120),
    ``purge_interval`` (seconds, 60), and the ``webhook_*`` ones of
    :class:`.webhook_delivery.DeliverySettings`. Unknown options are refused
    (``strict_options``)."""

    name = "images"
    title = TITLE
    envelope = ImagesEnvelope()
    auth_schemes = AUTH_SCHEMES
    api_schemas = SCHEMAS
    migrations = (images_migrations, Webhooks.migrations)
    strict_options = True

    def start(self) -> None:
        """Read and check every option, the ``webhook_*`` ones included (a wrong
        one stops the host, naming it)."""
        config = self.config
        self.storage = self.runtime.storage
        self.uploads = UploadStore(self.runtime.db, self.runtime.clock)
        self.max_bytes = config.integer("max_file_size", DEFAULT_MAX_BYTES, low=1)
        self.max_megapixels = config.number("max_megapixels", DEFAULT_MAX_MEGAPIXELS, above=0)
        self.pixel_budget = PixelBudget(
            self.max_megapixels,
            config.number("max_total_megapixels", DEFAULT_MAX_TOTAL_MEGAPIXELS, above=0),
            config.integer("max_frames", DEFAULT_MAX_FRAMES, low=1))
        self.filename_prefix = config.text("filename_prefix", "FIXITFY-")
        if not FILENAME_PREFIX.fullmatch(self.filename_prefix):
            raise ConfigError(f"services.{config.name}.filename_prefix must be letters,"
                              " digits, '.', '_' or '-'")
        self.overhead = self.runtime.config.multipart_overhead
        per_minute = config.integer("upload_rate_per_minute", 30, low=1)
        per_day = config.integer("upload_rate_per_day", 2000, low=1)
        manage = config.integer("manage_rate_per_minute", 120, low=1)
        self.upload_limits = [Limit(per_minute, 60, "minute"), Limit(per_day, 86400, "day")]
        self.manage_limits = [Limit(manage, 60, "manage")]
        self.limit_messages = {
            "minute": f"Rate limit exceeded: {per_minute} uploads per minute.",
            "day": f"Daily upload limit reached: {per_day} uploads per day.",
            "manage": f"Rate limit exceeded: {manage} requests per minute.",
        }
        self.too_large_message = f"File exceeds the {size_in_mb(self.max_bytes)} MB limit."
        self.spool_dir = self.runtime.config.data_dir / "images-spool"
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._codec: UploadTokenCodec | None = None
        self.webhooks = Webhooks(self)
        self.runtime.jobs.every(PURGE_JOB, config.number("purge_interval", 60, above=0),
                                self.purge_deleted)
        self.webhooks.start()

    @property
    def token_codec(self) -> UploadTokenCodec:
        if self._codec is None:
            self._codec = UploadTokenCodec(self.runtime.signer.secrets)
        return self._codec

    def stored_objects(self) -> Iterator[str]:
        """Live uploads, and deleted ones whose bytes the purge job has not removed yet."""
        for (key,) in self.runtime.db.all(
                "SELECT storage_key FROM images_uploads WHERE purged_at IS NULL"):
            yield key

    def forget_objects(self, keys: set[str]) -> int:
        """Uploads whose bytes are gone read as deleted (and purged)."""
        now = self.runtime.clock()
        with self.runtime.db.write() as conn:
            return sum(conn.execute(
                "UPDATE images_uploads SET deleted_at = coalesce(deleted_at, ?), purged_at = ?"
                " WHERE storage_key = ? AND purged_at IS NULL", (now, now, key)).rowcount
                for key in sorted(keys))

    def routes(self) -> list[Route]:
        quick = isinstance(self.storage, LocalStorage)
        routes = [
            Route(("POST",), "/api/v1/upload-token", self.api_upload_token, "upload_token",
                  "Mint a temporary upload token (ut_)", auth=KEY_AUTH, doc=Doc(
                      body=Body({JSON: ref("UploadTokenRequest")}, required=False),
                      replies=(ok("The token and its expiry (now + ttl_seconds)",
                                  "UploadToken"),
                               bad_request(INVALID_JSON, TTL_MESSAGE),
                               *KEY_ERRORS),
                      description="The token works only on `POST /api/v1/upload`, counts "
                                  "on this key, and dies with it (section 4).")),
            Route(("POST",), "/api/v1/upload", self.api_upload, "upload",
                  "Upload an image (fxf_ key or ut_ token)", auth=UPLOAD_AUTH, doc=Doc(
                      body=Body({"multipart/form-data": UPLOAD_FORM}),
                      replies=(ok("Stored (5.3), or the account's live upload with the same "
                                  "received bytes (5.4: `duplicate`, `delete_url` null)",
                                  "UploadResult"),
                               *UPLOAD_ERRORS),
                      description="PNG, JPEG, GIF, WebP or AVIF by magic bytes, up to 20 MB "
                                  "and 50 megapixels (configurable). Stored cleaned: EXIF "
                                  "orientation applied; EXIF, XMP, IPTC, text chunks and "
                                  "comments stripped; ICC profile and animation kept.")),
            Route(("DELETE", "POST"), "/api/delete/{token}", self.api_delete_link,
                  "delete_link", "Delete an upload with its one-shot delete link", doc=Doc(
                      params=(Param("token", "path", ref("Sha256"), required=True,
                                    description="The 64 lowercase hex characters of a "
                                                "`delete_url`."),),
                      replies=(ok("Soft-deleted; the link is used up", "UploadDeleted"),
                               DELETE_LINK_REPLY, BAD_LENGTH_REPLY),
                      description="No key: whoever holds the link can delete the upload.")),
            Route(("GET", "HEAD"), "/images/{filename}", self.serve_image, "image",
                  "Serve an image", inline=quick, doc=Doc(
                      params=SERVE_PARAMS, replies=SERVE_REPLIES,
                      description="Public (no key); live uploads only.")),
            Route(("GET",), "/api/v1/uploads", self.api_uploads, "uploads",
                  "List uploads, newest first", auth=KEY_AUTH, doc=Doc(
                      params=(Param("limit", "query", {"type": "integer", "minimum": 1,
                                                       "maximum": 100, "default": 50},
                                    description="Page size."),
                              Param("before", "query", {"type": "string"},
                                    description="An ISO-8601 timestamp (e.g. `next_before`): "
                                                "only uploads created strictly earlier.")),
                      replies=(ok("A page of the caller's live uploads", "UploadList"),
                               bad_request(LIMIT_MESSAGE, BEFORE_MESSAGE),
                               *KEY_ERRORS))),
            Route(("GET",), "/api/v1/uploads/{filename}", self.api_upload_get, "upload_get",
                  "One upload's metadata", auth=KEY_AUTH, doc=Doc(
                      params=(FILENAME_PARAM,),
                      replies=(ok("The upload", "UploadReply"), UPLOAD_NOT_FOUND_REPLY,
                               BAD_LENGTH_REPLY, *KEY_ERRORS))),
            Route(("DELETE",), "/api/v1/uploads/{filename}", self.api_upload_delete,
                  "upload_delete", "Soft-delete an upload", auth=KEY_AUTH, doc=Doc(
                      params=(FILENAME_PARAM,),
                      replies=(ok("Deleted: the image answers 404 at once, its delete link "
                                  "dies, its bytes are purged in the background",
                                  "UploadDeleted"),
                               UPLOAD_NOT_FOUND_REPLY, BAD_LENGTH_REPLY, *KEY_ERRORS))),
            Route(("GET",), "/api/v1/me", self.api_me, "me", "Account and key stats",
                  auth=KEY_AUTH, doc=Doc(replies=(ok("The account and the calling key", "Me"),
                                                  BAD_LENGTH_REPLY, *KEY_ERRORS))),
        ]
        return routes + self.webhooks.routes()

    def not_found(self, request: Request) -> Response:
        if request.path.startswith("/images/"):
            return self._image_not_found()
        return self.render_error(ImagesNotFound("Not found."))

    def method_not_allowed(self, request: Request, allowed: Any) -> Response:
        return self.render_error(ImagesMethodNotAllowed(headers={"Allow": ", ".join(allowed)}))

    def render_error(self, err: Any) -> Response:
        if not isinstance(err, ImagesError) and err.status == 500:
            err.message = "Internal server error."
        return self.envelope.error(err)

    # --- background purge ---------------------------------------------------

    def purge_deleted(self) -> int:
        """Remove the stored bytes of soft-deleted uploads (8.3); how many were removed."""
        removed = 0
        for filename, key in self.uploads.unpurged():
            try:
                self.storage.delete(key)
            except OSError:
                log.warning("could not purge %s", key, exc_info=True)
                continue
            self.uploads.mark_purged(filename)
            removed += 1
        return removed

    def wake_purge(self) -> None:
        self.runtime.jobs.wake(PURGE_JOB)
