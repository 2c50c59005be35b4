"""The Hack Club CDN v4 service: the key-authenticated ``/api/v4/*`` API.

Spec: shared/spec/cdn.md. Handlers are plain sync code on core objects;
the API's route declarations (with their OpenAPI description, pieces in
:mod:`.apidocs`) live in :mod:`.api_routes`, the batch upload in :mod:`.batch`,
public serving (``/:id/*filename``, ``/rescue``, ``/up``) in :mod:`.serving`.
Every stored upload is durable bytes plus a row committed in the same
transaction as its quota charge (G3).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from hepcore.accounts import Account
from hepcore.auth_headers import cdn_header
from hepcore.clock import iso_s
from hepcore.errors import (
    BadRequest,
    BodyTooLarge,
    ClientDisconnected,
    ConfigError,
    CredentialError,
    MalformedBody,
    NotFound,
    NotFoundError,
    PaymentRequired,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    StorageError,
    Unauthorized,
    Unprocessable,
)
from hepcore.http import Request, Response
from hepcore.inspection import UploadCandidate
from hepcore.limits import Limit
from hepcore.multipart import FormReader, boundary_of
from hepcore.outbound import human_size
from hepcore.service import Route, Service
from hepcore.storage import LocalStorage, ObjectWriter
from hepcore.tokens import Actor

from .api_routes import ApiRoutes
from .apidocs import (
    AUTH_SCHEMES,
    SCHEMAS,
    CdnEnvelope,
)
from .batch import BatchRoutes
from .fetch import DownloadFailed, download
from .migrations import cdn as cdn_migrations
from .names import (
    filename_from_url,
    part_filename,
    renamed,
    sanitize,
    storage_key,
    url_segment,
)
from .params import list_param, read_params, refuse_malformed_json, string_param
from .quota import DEFAULT_TIER, TIERS, Quota, limits_for, scope_of
from .serving import ServingRoutes
from .store import Upload, UploadStore, new_writer, uuid7
from .types import detect_type

log = logging.getLogger("hepcore.cdn")

INVALID_AUTH = "invalid_auth"


def public_id(account: Account) -> str:
    """``usr_`` and 12 characters of ``[A-Za-z0-9]``, stable for the account (6.1)."""
    digest = int.from_bytes(hashlib.sha256(f"hepcore-cdn:{account.id}".encode()).digest(), "big")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = []
    for _ in range(12):
        digest, rem = divmod(digest, 62)
        out.append(alphabet[rem])
    return "usr_" + "".join(out)


def configured_tiers(value: Any) -> dict[str, tuple[int, int]]:
    """The ``tiers`` option: a table of tier name -> ``[per_file, total]``, two
    byte counts (integers >= 0; 0 refuses every upload). Anything else is a
    :class:`ConfigError`."""
    def byte_count(n: Any) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and n >= 0

    if isinstance(value, dict) and all(
            isinstance(limits, list | tuple) and len(limits) == 2
            and all(byte_count(n) for n in limits) for limits in value.values()):
        return {str(tier): (limits[0], limits[1]) for tier, limits in value.items()}
    raise ConfigError("services.cdn.tiers maps tier names to [per_file, total]"
                      " byte counts (integers >= 0)")


class CdnService(ApiRoutes, BatchRoutes, ServingRoutes, Service):
    """Options (``[services.cdn]``): ``storage_public_base_url`` (redirect mode),
    ``url_upload_rate_per_minute`` (10), ``default_tier`` (``unverified``) and
    ``tiers`` (``{name = [per_file, total]}``, added to or replacing the built-in ones).
    Unknown options are refused (``strict_options``)."""

    name = "cdn"
    title = "Hack Club CDN v4"
    envelope = CdnEnvelope()
    auth_schemes = AUTH_SCHEMES
    api_schemas = SCHEMAS
    migrations = (cdn_migrations,)
    strict_options = True

    def start(self) -> None:
        """Read and check every option (a wrong one stops the host, naming it)."""
        config = self.config
        self.uploads = UploadStore(self.runtime.db, self.runtime.clock)
        self.storage = self.runtime.storage
        self.url_limit = Limit(config.integer("url_upload_rate_per_minute", 10, low=1), 60,
                               "upload_from_url")
        self.tiers: dict[str, tuple[int, int]] = {
            **TIERS, **configured_tiers(config.raw("tiers", {}))}
        self.default_tier = config.text("default_tier", DEFAULT_TIER)
        if self.default_tier not in self.tiers:
            raise ConfigError(f"services.cdn.default_tier {self.default_tier!r} is not a tier")
        self.storage_public_base = config.url("storage_public_base_url")
        self.overhead = self.runtime.config.multipart_overhead

    def stored_objects(self) -> Iterator[str]:
        for (key,) in self.runtime.db.all("SELECT storage_key FROM cdn_uploads"):
            yield key

    def forget_objects(self, keys: set[str]) -> int:
        """Rows whose bytes are gone go, and their size goes back to the quota."""
        forgotten = 0
        with self.runtime.db.write() as conn:
            for key in sorted(keys):
                row = conn.execute("SELECT id, account_id, size FROM cdn_uploads"
                                   " WHERE storage_key = ?", (key,)).fetchone()
                if row is not None and self.uploads.delete(row["id"]):
                    self.runtime.quotas.refund(scope_of(row["account_id"]), row["size"])
                    forgotten += 1
        return forgotten

    def routes(self) -> list[Route]:
        return self.api_routes() + self.serving_routes(isinstance(self.storage, LocalStorage))

    def internal_error_extra(self, error_id: str) -> dict[str, Any]:
        return {"error_id": error_id}

    # --- authentication and quota -----------------------------------------

    def authenticate(self, request: Request) -> Actor:
        """Section 2: every failure is 401 ``invalid_auth``."""
        try:
            token = cdn_header(request.header("authorization"))
            actor = self.runtime.verify(self.name, token)
        except (CredentialError, NotFoundError):
            raise Unauthorized(INVALID_AUTH) from None
        if not actor.account.active or actor.key is None:
            raise Unauthorized(INVALID_AUTH)
        return actor

    def admit(self, request: Request, limit: Limit | None = None) -> Actor:
        """Authenticate, count the key's use and, with ``limit``, rate-limit per key."""
        actor = self.authenticate(request)
        assert actor.key is not None
        with self.runtime.db.write(durable=False):
            self.runtime.keys.touch(actor.key.id)
            decision = None
            if limit is not None:
                decision = self.runtime.limiter.hit(f"cdn:{limit.name}:{actor.key.id}", [limit])
        if decision is not None and not decision.allowed:
            raise RateLimited("Too many requests", retry_after=decision.retry_after)
        return actor

    def quota(self, account: Account) -> Quota:
        tier, per_file, total = limits_for(account, self.tiers, self.default_tier)
        used = self.runtime.quotas.usage(scope_of(account.id)).bytes
        return Quota(tier=tier, per_file=per_file, total=total, used=used)

    def quota_error(self, account: Account, message: str = "Storage quota exceeded"
                    ) -> PaymentRequired:
        return PaymentRequired(message, extra={"quota": self.quota(account).body()})

    # --- representation ---------------------------------------------------

    def file_url(self, base: str, upload: Upload) -> str:
        return f"{base}/{upload.id}/{url_segment(upload.filename)}"

    def upload_json(self, upload: Upload, base: str) -> dict[str, Any]:
        return {"id": upload.id, "filename": upload.filename, "size": upload.size,
                "content_type": upload.content_type, "url": self.file_url(base, upload),
                "created_at": iso_s(upload.created_at)}

    def base_for(self, request: Request | None) -> str:
        if request is None:
            return self.config.public_base_url or (
                "http://localhost" + self.config.prefix.rstrip("/"))
        return self.public_base(request)

    # --- storing ----------------------------------------------------------

    def store(self, writer: ObjectWriter, account: Account, *, filename: str,
              content_type: str, total: int, original_url: str | None = None) -> Upload:
        """Commit the bytes under a fresh id, then the row and the quota charge in
        one transaction; if that fails the bytes are removed (G3).

        Raises :class:`QuotaExceeded` when the charge would pass ``total`` (the
        bytes are removed), :class:`StorageError` for a storage failure, and
        :class:`ServiceError` for a moderation rejection.
        """
        rejection = self.runtime.inspect(UploadCandidate(
            service=self.name, account_id=account.id, content_type=content_type,
            size=writer.size, digest=lambda: writer.sha256, filename=filename,
            head=writer.head))
        if rejection is not None:
            writer.abort()
            raise ServiceError(rejection.message, code=rejection.code, status=rejection.status)
        now = self.runtime.clock()
        upload_id = uuid7(now)
        key = storage_key(upload_id, filename)
        stored = self.runtime.pending.commit(writer, key)
        upload = Upload(id=upload_id, account_id=account.id, filename=filename,
                        size=stored.size, content_type=content_type, storage_key=key,
                        original_url=original_url,
                        created_at=float(int(now)))
        try:
            with self.runtime.db.write():
                self.runtime.pending.settle(key)
                self.runtime.quotas.charge(scope_of(account.id), stored.size,
                                           limit_bytes=total)
                self.uploads.insert(upload)
        except BaseException as exc:
            self.runtime.pending.discard(key)
            if isinstance(exc, QuotaExceeded):
                raise
            if isinstance(exc, Exception):
                log.exception("could not record upload %s", upload_id)
                raise StorageError("database error") from exc
            raise
        self.runtime.emit("upload.created", self.name, account.id,
                          {"id": upload.id, "size": upload.size, "filename": upload.filename})
        return upload

    def remove(self, uploads: Sequence[Upload]) -> None:
        """Delete rows and refund their quota in one transaction, then the bytes."""
        if not uploads:
            return
        with self.runtime.db.write():
            for upload in uploads:
                if self.uploads.delete(upload.id):
                    self.runtime.quotas.refund(scope_of(upload.account_id), upload.size)
                    self.runtime.pending.condemn(upload.storage_key)
        for upload in uploads:
            self.runtime.pending.discard(upload.storage_key)

    # --- GET /api/v4/me ---------------------------------------------------

    def api_me(self, request: Request) -> Response:
        actor = self.admit(request)
        account = actor.account
        quota = self.quota(account)
        return Response.json({
            "id": public_id(account), "email": account.email,
            "name": account.setting("display_name", account.name),
            "storage_used": quota.used, "storage_limit": quota.total,
            "quota_tier": quota.tier,
        })

    # --- POST /api/v4/upload ------------------------------------------------

    def api_upload(self, request: Request) -> Response:
        actor = self.admit(request)
        account = actor.account
        quota = self.quota(account)
        too_big = f"File size exceeds your limit of {human_size(quota.per_file)} per file"
        if request.content_length is not None and \
                request.content_length > quota.per_file + self.overhead:
            raise self.quota_error(account, too_big)
        form = self._form(request, "Missing file parameter", quota.per_file + self.overhead)
        try:
            found = self._first_file(form, quota.per_file)
        except BodyTooLarge:
            raise self.quota_error(account, too_big) from None
        except (MalformedBody, ClientDisconnected):
            raise BadRequest("Malformed multipart body") from None
        except StorageError:
            log.exception("upload failed while streaming")
            raise Unprocessable("Upload failed: storage error") from None
        if found is None:
            raise BadRequest("Missing file parameter")
        name, declared, writer = found
        with writer:
            if quota.used + writer.size > quota.total:
                raise self.quota_error(account)
            content_type = detect_type(writer.head, name, declared)
            try:
                upload = self.store(writer, account, filename=name, content_type=content_type,
                                    total=quota.total)
            except QuotaExceeded:
                raise self.quota_error(account) from None
            except StorageError:
                log.exception("upload failed")
                raise Unprocessable("Upload failed: storage error") from None
        return Response.json(self.upload_json(upload, self.base_for(request)), 201)

    def _form(self, request: Request, missing: str, body_limit: int,
              max_parts: int = 128) -> FormReader:
        """A reader of the multipart body; any other body is ``missing`` (400),
        except a malformed JSON body, which is 400 ``Invalid JSON body`` (section 3)."""
        if request.media_type != "multipart/form-data":
            refuse_malformed_json(request)
            raise BadRequest(missing)
        boundary = boundary_of(request.content_type)
        if boundary is None:
            raise BadRequest("Malformed multipart body")
        return FormReader(request.body, boundary, chunk_size=request.read_chunk_size,
                          body_limit=body_limit, max_parts=max_parts, header_charset="latin-1")

    def _first_file(self, form: FormReader, max_size: int
                    ) -> tuple[str, str | None, ObjectWriter] | None:
        """Stream the first ``file`` part with a filename into a writer:
        (sanitised name, declared type, writer). Other parts are skipped; the
        body is read to its end before this returns."""
        for part in form:
            if part.name != "file" or not part.is_file:
                continue
            name = sanitize(part_filename(part))
            if not name:
                continue
            writer = new_writer(self.storage, max_size)
            try:
                writer.write_all(part.chunks())
                form.finish()  # the parts after it: only a whole request is stored
            except BaseException:
                writer.abort()
                raise
            return name, part.content_type, writer
        return None

    # --- POST /api/v4/upload_from_url ---------------------------------------

    def api_from_url(self, request: Request) -> Response:
        actor = self.admit(request, self.url_limit)
        account = actor.account
        params = read_params(request)
        url = string_param(params, "url")
        if url is None or not url.strip():
            raise BadRequest("Missing url parameter")
        quota = self.quota(account)
        if quota.total - quota.used <= 0:
            raise Unprocessable("Upload failed: File would exceed storage quota")
        cap = min(quota.per_file, quota.total - quota.used)
        try:
            got = download(self.runtime.fetcher, self.storage, url, cap=cap,
                           authorization=request.header("x-download-authorization"))
        except DownloadFailed as exc:
            raise Unprocessable(f"Upload failed: {exc.reason}") from None
        name = filename_from_url(url)
        with got.writer as writer:
            content_type = detect_type(writer.head, name, got.remote_type)
            try:
                upload = self.store(writer, account, filename=name, content_type=content_type,
                                    total=quota.total, original_url=url)
            except QuotaExceeded:
                raise self.quota_error(account) from None
            except StorageError:
                log.exception("upload from URL failed")
                raise Unprocessable("Upload failed: storage error") from None
        return Response.json(self.upload_json(upload, self.base_for(request)), 201)

    # --- PATCH /api/v4/uploads/:id/rename -----------------------------------

    def api_rename(self, request: Request) -> Response:
        """6.5 in order: auth, the id (404), then the body (400) and the rename."""
        actor = self.admit(request)
        upload = self.uploads.own(actor.account.id, request.params["upload_id"])
        if upload is None:
            raise NotFound("Upload not found")
        value = string_param(read_params(request), "filename")
        if value is None or not value.strip():
            raise BadRequest("Missing filename parameter")
        new_name = renamed(upload.filename, sanitize(value))
        try:
            with self.runtime.db.write():
                self.uploads.rename(upload.id, new_name)
        except Exception:
            log.exception("rename of %s failed", upload.id)
            raise Unprocessable("Rename failed: database error") from None
        updated = self.uploads.get(upload.id) or upload
        return Response.json(self.upload_json(updated, self.base_for(request)))

    # --- DELETE /api/v4/upload/:id and /api/v4/uploads/batch -----------------

    def api_delete(self, request: Request) -> Response:
        """6.6, in rename's order (6.5): auth, the id (404), then the body. Its
        parameters are unused, but a body :func:`read_params` refuses (malformed
        JSON, section 3) is its 400 and nothing is deleted."""
        actor = self.admit(request)
        upload_id = request.params["upload_id"].removesuffix(".json")
        upload = self.uploads.own(actor.account.id, upload_id)
        if upload is None:
            raise NotFound("Not found")
        read_params(request)
        self.remove([upload])
        return Response.json({"id": upload.id, "deleted": True})

    def api_delete_batch(self, request: Request) -> Response:
        actor = self.admit(request)
        ids = list_param(read_params(request), "ids")
        if not ids:
            raise BadRequest("Missing ids[] parameter")
        found = self.uploads.own_many(actor.account.id, ids)
        doomed: list[Upload] = []
        for upload_id in ids:
            upload = found.get(upload_id)
            if upload is not None and upload not in doomed:
                doomed.append(upload)
        self.remove(doomed)
        body: dict[str, Any] = {"deleted": [{"id": u.id, "filename": u.filename}
                                            for u in doomed]}
        not_found = [i for i in ids if i not in found]
        if not_found:
            body["not_found"] = not_found
        return Response.json(body)

    # --- POST /api/v4/revoke ------------------------------------------------

    def api_revoke(self, request: Request) -> Response:
        """6.8. The body's parameters are unused, but a body :func:`read_params`
        refuses (malformed JSON, section 3) is its 400 and the key stays valid."""
        actor = self.admit(request)
        read_params(request)
        assert actor.key is not None
        self.runtime.keys.revoke(actor.key.id)
        return Response.json({"success": True, "owner_email": actor.account.email,
                              "key_name": actor.key.label, "status": "complete"})

