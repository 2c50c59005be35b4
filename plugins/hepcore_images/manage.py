"""Upload tokens, delete links, serving and the management API
(images.md sections 4, 6, 7 and 8). A mixin of the service."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

from hepcore.clock import iso_ms
from hepcore.http import Request, Response
from hepcore.serving import serve_object

from .errors import (
    DELETE_LINK_INVALID,
    IMAGE_NOT_FOUND,
    UPLOAD_NOT_FOUND,
    ImagesBadRequest,
    ImagesNotFound,
    ImagesRangeNotSatisfiable,
)
from .jsonbody import read_json_object
from .store import Upload, page_before

if TYPE_CHECKING:
    from hepcore.errors import ServiceError
    from hepcore.runtime import Runtime
    from hepcore.storage import Storage
    from hepcore.tokens import Actor

    from .store import UploadStore
    from .tokens import UploadTokenCodec

log = logging.getLogger("hepcore.images")

TTL_DEFAULT, TTL_MIN, TTL_MAX = 3600, 60, 604800
TTL_MESSAGE = f"ttl_seconds must be an integer between {TTL_MIN} and {TTL_MAX}."
LIMIT_MESSAGE = "limit must be an integer between 1 and 100."
BEFORE_MESSAGE = "before must be an ISO-8601 timestamp."
LIMIT_RE = re.compile(r"[0-9]{1,9}")
DELETE_TOKEN_RE = re.compile(r"[0-9a-f]{64}")
SERVE_CACHE = "public, max-age=86400"


class Management:
    if TYPE_CHECKING:
        # Provided by ImagesService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        name: str
        runtime: Runtime
        storage: Storage
        uploads: UploadStore

        @property
        def token_codec(self) -> UploadTokenCodec: ...
        def authenticate_management(self, request: Request) -> Actor: ...
        def public_base(self, request: Request) -> str: ...
        def render_error(self, err: ServiceError) -> Response: ...
        def wake_purge(self) -> None: ...

    def image_url(self, base: str, filename: str) -> str:
        return f"{base}/images/{filename}"

    def upload_summary(self, upload: Upload, base: str) -> dict[str, Any]:
        """8.1's list item."""
        return {
            "filename": upload.filename, "url": self.image_url(base, upload.filename),
            "mime": upload.mime, "size": upload.size, "width": upload.width,
            "height": upload.height, "tags": upload.tags,
            "created_at": iso_ms(upload.created_at),
        }

    def upload_detail(self, upload: Upload, base: str) -> dict[str, Any]:
        """8.2's ``upload`` object."""
        return {
            "filename": upload.filename, "url": self.image_url(base, upload.filename),
            "mime": upload.mime, "size": upload.size, "width": upload.width,
            "height": upload.height, "hash_sha256": upload.hash_sha256, "tags": upload.tags,
            "created_at": iso_ms(upload.created_at),
        }

    # --- section 4 ------------------------------------------------------------

    def api_upload_token(self, request: Request) -> Response:
        actor = self.authenticate_management(request)
        data = read_json_object(request, empty_is_object=True)
        ttl = data.get("ttl_seconds", TTL_DEFAULT)
        if (not isinstance(ttl, int) or isinstance(ttl, bool)
                or not TTL_MIN <= ttl <= TTL_MAX):
            raise ImagesBadRequest(TTL_MESSAGE)
        assert actor.key is not None
        exp = int(self.runtime.clock()) + ttl
        token = self.token_codec.mint(actor.account.id, actor.key.id, exp)
        return Response.json({"ok": True, "token": token,
                              "expires_at": iso_ms(exp)}).never_stored()

    # --- section 6 ------------------------------------------------------------

    def api_delete_link(self, request: Request) -> Response:
        token = request.params["token"]
        filename = None
        if DELETE_TOKEN_RE.fullmatch(token):
            filename = self.uploads.delete_by_token(hashlib.sha256(token.encode()).hexdigest())
        if filename is None:
            raise ImagesNotFound(DELETE_LINK_INVALID)
        self._deleted(filename)
        return Response.json({"ok": True, "deleted": filename})

    def _deleted(self, filename: str) -> None:
        upload = self.runtime.db.one(
            "SELECT account_id FROM images_uploads WHERE filename = ?", (filename,))
        self.wake_purge()
        self.runtime.emit("upload.deleted", self.name, upload["account_id"] if upload else None,
                          {"filename": filename})

    # --- section 7 ------------------------------------------------------------

    def serve_image(self, request: Request) -> Response:
        upload = self.uploads.live(request.params["filename"])
        if upload is None:
            return self._image_not_found()
        config = self.runtime.config
        headers = [("Cache-Control", SERVE_CACHE), ("X-Content-Type-Options", "nosniff")]
        try:
            served = serve_object(
                request, self.storage, upload.storage_key, size=upload.size,
                etag=f'"{upload.stored_sha256}"', content_type=upload.mime, headers=headers,
                serve_mode=config.serve_mode, accel_prefix=config.accel_prefix)
        except FileNotFoundError:
            log.error("bytes missing for %s", upload.filename)
            return self._image_not_found()
        if served.response.status == 416:
            # serve_object answers an empty body typed as the image; section 3
            # wants every error in the envelope.
            return self._serve_error(ImagesRangeNotSatisfiable(
                headers={"Content-Range": f"bytes */{upload.size}"}))
        return served.response

    def _image_not_found(self) -> Response:
        return self._serve_error(ImagesNotFound(IMAGE_NOT_FOUND))

    def _serve_error(self, err: ServiceError) -> Response:
        """An error on ``/images/``: the envelope, never kept by a cache."""
        response = self.render_error(err)
        response.set_header("Cache-Control", "no-store")
        return response

    # --- section 8 ------------------------------------------------------------

    def api_uploads(self, request: Request) -> Response:
        actor = self.authenticate_management(request)
        raw_limit = request.query_value("limit")
        limit = 50
        if raw_limit is not None:
            # ASCII digits only: str.isdigit() accepts "²", which int() refuses
            if not LIMIT_RE.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= 100:
                raise ImagesBadRequest(LIMIT_MESSAGE)
            limit = int(raw_limit)
        raw_before = request.query_value("before")
        before = None
        if raw_before is not None:
            try:
                before = page_before(raw_before)
            except (ValueError, OverflowError):
                raise ImagesBadRequest(BEFORE_MESSAGE) from None
        items, more = self.uploads.page(actor.account.id, limit, before)
        base = self.public_base(request)
        return Response.json({
            "ok": True, "count": len(items),
            "next_before": iso_ms(items[-1].created_at) if more and items else None,
            "uploads": [self.upload_summary(u, base) for u in items],
        })

    def own_upload(self, account_id: str, filename: str) -> Upload:
        upload = self.uploads.live(filename, account_id)
        if upload is None:
            raise ImagesNotFound(UPLOAD_NOT_FOUND)
        return upload

    def api_upload_get(self, request: Request) -> Response:
        actor = self.authenticate_management(request)
        upload = self.own_upload(actor.account.id, request.params["filename"])
        return Response.json({"ok": True,
                              "upload": self.upload_detail(upload, self.public_base(request))})

    def api_upload_delete(self, request: Request) -> Response:
        actor = self.authenticate_management(request)
        upload = self.own_upload(actor.account.id, request.params["filename"])
        self.delete_upload(upload)
        return Response.json({"ok": True, "deleted": upload.filename})

    def delete_upload(self, upload: Upload) -> None:
        """Soft delete (8.3): 404 at once, delete link dead, no dedupe; bytes purged later."""
        if not self.uploads.soft_delete(upload.filename):
            raise ImagesNotFound(UPLOAD_NOT_FOUND)
        self._deleted(upload.filename)

    def api_me(self, request: Request) -> Response:
        actor = self.authenticate_management(request)
        assert actor.key is not None
        key = self.runtime.keys.get(actor.key.id)  # counts this request
        active, used = self.uploads.stats(actor.account.id)
        return Response.json({
            "ok": True,
            "account": {"email": actor.account.email, "role": self.role_of(actor.account),
                        "uploads_active": active, "storage_used_bytes": used},
            "key": {"prefix": key.display, "label": key.label,
                    "request_count": key.request_count, "created_at": iso_ms(key.created_at)},
        })

    def role_of(self, account: Any) -> str:
        """The account's role, ``user`` or ``admin`` (set with ``hepcore images role``)."""
        role = account.setting("images_role", "user")
        return role if role in ("user", "admin") else "user"
