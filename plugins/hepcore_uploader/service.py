"""The Hep.gg uploader: ``POST /upload`` (files, shortlinks, text) and ``GET /:ID``.

Spec: shared/spec/uploader.md. Every handler is plain sync code on core
objects; the web shells call it for WSGI and ASGI alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hepcore.errors import (
    BadRequest,
    BodyTooLarge,
    ClientDisconnected,
    CredentialError,
    Forbidden,
    InternalError,
    MalformedBody,
    PayloadTooLarge,
    RateLimited,
    ServiceError,
    StorageError,
    Unauthorized,
)
from hepcore.auth_headers import uploader_header
from hepcore.envelope import OkEnvelope
from hepcore.http import Request, Response
from hepcore.inspection import UploadCandidate
from hepcore.limits import Limit
from hepcore.multipart import FormReader, Part, boundary_of
from hepcore.serving import SANDBOX_CSP, content_disposition, is_active_type, serve_object
from hepcore.service import Route, Service
from hepcore.storage import ObjectWriter
from hepcore.tokens import Actor

from .migrations import uploader as uploader_migrations
from .store import Item, ItemStore
from .types import OCTET, declared_type, extension_for, guess_type, type_allowed

log = logging.getLogger("hepcore.uploader")

MIB = 1024 * 1024
DEFAULT_MAX_FILE_SIZE = 100 * MIB
MAX_LINK_LENGTH = 2048
TYPE_NOT_ALLOWED = "Not allowed to upload files with the supplied Content-Type"
TEXT_TYPE = "text/plain; charset=utf-8"
NOT_FOUND_HTML = (
    b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title>"
    b"</head><body><h1>404</h1><p>Nothing lives here.</p></body></html>"
)


def size_in_mb(limit: int) -> str:
    """``100``, ``2.5``: the limit in MiB without trailing zeros."""
    text = f"{limit / MIB:.2f}".rstrip("0").rstrip(".")
    return text


def is_shortlink(value: str) -> bool:
    """U4: an absolute http(s) URL with a host, at most 2048 characters."""
    if len(value) > MAX_LINK_LENGTH:
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host)


@dataclass(frozen=True)
class Policy:
    """The limits that apply to one account (account settings over service defaults)."""

    max_file_size: int
    allowed_types: list[str]
    serve_base: str | None


class UploaderService(Service):
    name = "uploader"
    envelope = OkEnvelope()
    migrations = (uploader_migrations,)

    def start(self) -> None:
        opts = self.config.options
        self.items = ItemStore(self.runtime.db, self.runtime.clock)
        self.storage = self.runtime.storage
        self.maintenance = bool(opts.get("maintenance", False))
        self.upload_limit = Limit(int(opts.get("upload_rate_per_minute", 240)), 60, "upload")
        self.default_max_size = int(opts.get("max_file_size", DEFAULT_MAX_FILE_SIZE))
        self.default_types = list(opts.get("allowed_types", ["*/*"]))
        self.serve_base_url = (opts.get("serve_base_url") or "").rstrip("/") or None
        self.overhead = self.runtime.config.multipart_overhead
        self._serve_hosts: tuple[float, dict[str, str]] = (0.0, {})

    def routes(self) -> list[Route]:
        return [
            Route(("POST",), "/upload", self.upload, "upload",
                  "Upload a file, shorten a link or store text", auth="uploader"),
            Route(("GET", "HEAD"), "/{item_id}", self.serve, "serve",
                  "Serve an upload, follow a shortlink"),
        ]

    # --- authentication -------------------------------------------------

    def authenticate(self, request: Request) -> Actor:
        """Section 2: the token, then account and uploader access; counts key usage."""
        try:
            token = uploader_header(request.header("authorization"))
        except CredentialError:
            raise Unauthorized("Missing bearer token") from None
        try:
            actor = self.runtime.verify(self.name, token)
        except CredentialError:
            raise Unauthorized("Token revoked") from None
        account = actor.account
        if account.status in ("suspended", "banned") or account.setting("disabled"):
            raise Forbidden("Forbidden")
        if account.setting("uploader_access", "active") in ("suspended", "revoked"):
            raise Forbidden("ACCESS_REQUIRED", code="ACCESS_REQUIRED")
        return actor

    def admit(self, request: Request, limit: Limit, scope: str, *,
              paused: bool = False) -> Actor:
        """Authenticate, refuse while ``paused`` (maintenance), then rate-limit.

        The key's usage and the rate-limit hit are counted in one write
        transaction: every authenticated request counts (U12).
        """
        actor = self.authenticate(request)
        with self.runtime.db.write():
            if actor.key is not None:
                self.runtime.keys.touch(actor.key.id)
            decision = None if paused else self.runtime.limiter.hit(
                f"uploader:{scope}:{actor.account.id}", [limit])
        if decision is None:
            raise Forbidden("Uploads are paused for maintenance", code="MAINTENANCE")
        if not decision.allowed:
            raise RateLimited("Too many requests", code="RATE_LIMITED",
                              retry_after=decision.retry_after)
        return actor

    def policy(self, actor: Actor) -> Policy:
        account = actor.account
        return Policy(
            max_file_size=int(account.setting("max_file_size", self.default_max_size)),
            allowed_types=list(account.setting("allowed_types", self.default_types)),
            serve_base=(account.setting("serve_base_url") or "").rstrip("/") or None,
        )

    def serve_base(self, request: Request, policy: Policy) -> str:
        return policy.serve_base or self.serve_base_url or self.public_base(request)

    # --- POST /upload ---------------------------------------------------

    def upload(self, request: Request) -> Response:
        actor = self.admit(request, self.upload_limit, "upload", paused=self.maintenance)
        policy = self.policy(actor)
        too_large = PayloadTooLarge(
            f"File exceeds your upload size limit of {size_in_mb(policy.max_file_size)} MB",
            code="TOO_LARGE")
        if request.content_length is not None and \
                request.content_length > policy.max_file_size + self.overhead:
            raise too_large
        try:
            item = self._store_from_body(request, actor, policy)
        except BodyTooLarge:
            raise too_large from None
        except (MalformedBody, ClientDisconnected) as exc:
            raise BadRequest(f"Malformed request body: {exc}") from None
        url = f"{self.serve_base(request, policy)}/{item.id}"
        self.runtime.emit("upload.created", self.name, actor.account.id,
                          {"ID": item.id, "url": url, "kind": item.kind})
        return Response.json({"ID": item.id, "url": url})

    def _store_from_body(self, request: Request, actor: Actor, policy: Policy) -> Item:
        media = request.media_type
        if media == "multipart/form-data":
            boundary = boundary_of(request.content_type)
            if boundary is None:
                raise BadRequest("Malformed request body: multipart boundary missing")
            return self._store_multipart(request, boundary, actor, policy)
        if media == "application/x-www-form-urlencoded":
            raw = request.read_body(policy.max_file_size * 3 + self.overhead)
            try:
                values = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                raise BadRequest("Malformed request body: form is not UTF-8") from None
            link = (values.get("link") or [""])[0]
        elif media == "application/json":
            try:
                data = request.read_json(policy.max_file_size * 2 + self.overhead)
            except MalformedBody:
                raise BadRequest("Invalid JSON body") from None
            link = data.get("link") if isinstance(data, dict) else None
            if link is not None and not isinstance(link, str):
                raise BadRequest("link must be a string")
            link = link or ""
        else:
            link = ""
        if not link:
            raise BadRequest("Body is missing link property")
        return self._store_link(link, actor, policy)

    def _store_multipart(self, request: Request, boundary: str, actor: Actor,
                         policy: Policy) -> Item:
        form = FormReader(request.body, boundary, chunk_size=request.read_chunk_size,
                          body_limit=policy.max_file_size + self.overhead)
        link: str | None = None
        for part in form:
            if part.is_file:
                chunks = _nonempty_file(part)
                if chunks is None:
                    continue
                return self._store_file(part, chunks, actor, policy)
            if part.name == "link" and link is None:
                link = part.text(MAX_LINK_LENGTH * 4 + policy.max_file_size)
        if link:
            return self._store_link(link, actor, policy)
        raise BadRequest("No file or link in request")

    def _store_file(self, part: Part, chunks: Iterator[bytes], actor: Actor,
                    policy: Policy) -> Item:
        declared = declared_type(part.content_type)
        if declared is not None and not type_allowed(declared, policy.allowed_types):
            raise BadRequest(TYPE_NOT_ALLOWED)
        with self.storage.writer(max_size=policy.max_file_size) as writer:
            writer.write_all(chunks)
            content_type = declared or guess_type(writer.head, part.filename)
            if declared is None and not type_allowed(content_type, policy.allowed_types):
                raise BadRequest(TYPE_NOT_ALLOWED)
            return self._commit(writer, actor, kind="file", name=part.filename,
                                content_type=content_type)

    def _store_link(self, value: str, actor: Actor, policy: Policy) -> Item:
        trimmed = value.strip()
        if is_shortlink(trimmed):
            return self._insert(actor, slug_ext="", kind="link", link=trimmed)
        if not type_allowed("text/plain", policy.allowed_types):
            raise BadRequest(TYPE_NOT_ALLOWED)
        data = value.encode("utf-8", "surrogatepass")
        if len(data) > policy.max_file_size:
            raise BodyTooLarge(policy.max_file_size)
        with self.storage.writer(max_size=policy.max_file_size) as writer:
            writer.write(data)
            name = f"{int(self.runtime.clock() * 1000)}.txt"
            return self._commit(writer, actor, kind="text", name=name, content_type=TEXT_TYPE,
                                ext=".txt")

    def _commit(self, writer: ObjectWriter, actor: Actor, *, kind: str, name: str | None,
                content_type: str, ext: str | None = None) -> Item:
        """Make the bytes durable under a fresh ID, then commit the row; a failed
        row removes the bytes (G3)."""
        if ext is None:
            ext = extension_for(content_type, name)
        rejection = self.runtime.inspect(UploadCandidate(
            service=self.name, account_id=actor.account.id, content_type=content_type,
            size=writer.size, sha256=writer.sha256, filename=name, head=writer.head))
        if rejection is not None:
            raise ServiceError(rejection.message, code=rejection.code, status=rejection.status)
        slug = self.items.new_slug()
        key = f"uploader/{slug}{ext}"
        try:
            stored = writer.commit(key)
        except StorageError:
            log.exception("storage commit failed")
            raise InternalError() from None
        width, height = self._dimensions(key, content_type)
        try:
            item = self._insert(actor, slug_ext=ext, kind=kind, name=name, type=content_type,
                                size=stored.size, sha256=stored.sha256, width=width,
                                height=height, storage_key=key, slug=slug)
        except BaseException:
            self.storage.delete(key)
            raise
        return item

    def _insert(self, actor: Actor, *, slug_ext: str, slug: str | None = None,
                **fields: Any) -> Item:
        for _ in range(20):
            candidate = slug or self.items.new_slug()
            try:
                with self.runtime.db.write():
                    item = self.items.insert(slug=candidate, ext=slug_ext,
                                             account_id=actor.account.id, **fields)
                    if item is not None:
                        self.runtime.incr_counter("uploader.uploads")
            except Exception:
                log.exception("database insert failed")
                raise InternalError() from None
            if item is not None:
                return item
            if slug is not None:
                break
        raise InternalError()

    def _dimensions(self, key: str, content_type: str) -> tuple[int | None, int | None]:
        """Width and height of a raster image from its header (Pillow reads no pixels)."""
        if not content_type.startswith("image/") or "svg" in content_type:
            return None, None
        from PIL import Image

        try:
            with self.storage.open(key) as fh, Image.open(fh) as img:
                return int(img.width), int(img.height)
        except Exception:  # any unreadable header just means "unknown"
            return None, None

    # --- GET /:ID -------------------------------------------------------

    def serve(self, request: Request) -> Response:
        name = request.params["item_id"]
        owner = self._host_owner(request)
        item = self.items.resolve(name, owner)
        if item is None:
            return _not_found()
        is_get = request.method == "GET"
        if item.kind == "link":
            if is_get:
                self._count_view(item)
            # An explicit Content-Type: WSGI validators (falcon.testing) require
            # one, and an embedding app would otherwise add its own default.
            return Response(302, [("Location", item.link or "/"),
                                  ("Cache-Control", "private, max-age=0"),
                                  ("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", "0")], b"")
        content_type = item.type or OCTET
        headers = [
            ("Content-Disposition", content_disposition("inline", item.id)),
            ("Cache-Control", "public, max-age=31536000, immutable"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if is_active_type(content_type):
            headers.append(("Content-Security-Policy", SANDBOX_CSP))
        if content_type.startswith(("image/", "video/")):
            headers.append(("Vary", "User-Agent"))
        config = self.runtime.config
        try:
            served = serve_object(
                request, self.storage, item.storage_key or "", size=item.size or 0,
                etag=f'"{item.sha256}"', content_type=content_type, headers=headers,
                serve_mode=config.serve_mode, accel_prefix=config.accel_prefix)
        except FileNotFoundError:
            log.error("bytes missing for %s", item.id)
            return _not_found()
        if served.from_start and is_get:
            self._count_view(item)
        return served.response

    def _count_view(self, item: Item) -> None:
        try:
            self.items.add_view(item.id)
        except Exception:
            log.warning("could not count a view of %s", item.id, exc_info=True)

    def _host_owner(self, request: Request) -> str | None:
        """The account whose serve base is this request's host, if any (section 1)."""
        loaded, hosts = self._serve_hosts
        now = time.monotonic()
        if now - loaded > 5:
            hosts = {}
            for row in self.runtime.db.all(
                "SELECT id, json_extract(settings, '$.serve_base_url') AS base FROM accounts"
                " WHERE base IS NOT NULL"
            ):
                host = urlsplit(str(row["base"])).hostname
                if host:
                    hosts[host.lower()] = row["id"]
            self._serve_hosts = (now, hosts)
        return hosts.get(request.host.split(":", 1)[0].lower())


def _nonempty_file(part: Part) -> Iterator[bytes] | None:
    """The part's chunks, or ``None`` for an untouched browser file input
    (empty filename and no bytes)."""
    chunks = part.chunks()
    if part.filename:
        return chunks
    first = next(chunks, None)
    if first is None:
        return None

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks

    return rest()


def _not_found() -> Response:
    return Response(404, [("Content-Type", "text/html; charset=utf-8"),
                          ("X-Content-Type-Options", "nosniff")], NOT_FOUND_HTML)
