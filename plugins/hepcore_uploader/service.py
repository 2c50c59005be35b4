"""The Hep.gg uploader: ``POST /upload`` (files, shortlinks, text), serving,
embeds and the management API.

Spec: shared/spec/uploader.md. Every handler is plain sync code on core
objects; the web shells call it for WSGI and ASGI alike. Reading routes
live in :mod:`.reading`, the management API in :mod:`.manage`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hepcore.accounts import Account
from hepcore.apidoc import JSON, Doc, Reply, ref
from hepcore.auth_headers import uploader_header
from hepcore.envelope import OkEnvelope
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
from hepcore.http import Request, Response
from hepcore.inspection import UploadCandidate
from hepcore.limits import Limit
from hepcore.multipart import FormReader, Part, boundary_of
from hepcore.service import Route, Service
from hepcore.storage import HEAD_BYTES, LocalStorage, ObjectWriter
from hepcore.tokens import Actor
from hepcore.urlencoded import iter_field

from . import apidocs as docs
from .embeds import DEFAULT_BOT_TOKENS
from .linkvalue import LinkValue
from .manage import RESERVED, ManagementRoutes
from .migrations import uploader as uploader_migrations
from .reading import ReadingRoutes
from .store import Item, ItemStore
from .types import declared_type, extension_for, guess_type, type_allowed
from .urls import bare_host, parse_http_url

log = logging.getLogger("hepcore.uploader")

MIB = 1024 * 1024
DEFAULT_MAX_FILE_SIZE = 100 * MIB
MAX_LINK_LENGTH = 2048
JSON_BODY_LIMIT = 16 * MIB
TYPE_NOT_ALLOWED = "Not allowed to upload files with the supplied Content-Type"
TEXT_TYPE = "text/plain; charset=utf-8"


def size_in_mb(limit: int) -> str:
    """``100``, ``2.5``: the limit in MiB without trailing zeros."""
    return f"{limit / MIB:.10g}"


def is_shortlink(value: str) -> bool:
    """U4: an absolute http(s) URL with a host, at most 2048 characters.

    "Absolute URL" as a browser parses it (:func:`.urls.parse_http_url`): a
    host with a space or another forbidden character, or a port that is not
    0-65535, makes the value text.
    """
    if len(value) > MAX_LINK_LENGTH:
        return False
    # urlsplit silently drops tabs and newlines, but a Location header cannot carry them.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    return parse_http_url(value) is not None


@dataclass(frozen=True)
class Policy:
    """The limits that apply to one account (account settings over service defaults)."""

    max_file_size: int
    allowed_types: list[str]
    serve_base: str | None


class UploaderService(ManagementRoutes, ReadingRoutes, Service):
    """Options (``[services.uploader]``): ``serve_base_url``, ``maintenance``,
    ``max_file_size``, ``allowed_types``, ``upload_rate_per_minute`` (240),
    ``shorten_rate_per_minute`` (120), ``reserved_aliases``, ``own_hosts``,
    ``service_name`` ("Hep.gg"), ``embed_bots``. Unknown options are refused
    (``strict_options``)."""

    name = "uploader"
    title = "Hep.gg uploader"
    envelope = OkEnvelope()
    auth_schemes = docs.AUTH_SCHEMES
    api_schemas = docs.SCHEMAS
    migrations = (uploader_migrations,)
    strict_options = True

    def start(self) -> None:
        """Read and check every option (a wrong one stops the host, naming it)."""
        config = self.config
        self.items = ItemStore(self.runtime.db, self.runtime.clock)
        self.storage = self.runtime.storage
        self.maintenance = config.flag("maintenance")
        self.upload_limit = Limit(config.integer("upload_rate_per_minute", 240, low=1), 60,
                                  "upload")
        self.shorten_limit = Limit(config.integer("shorten_rate_per_minute", 120, low=1), 60,
                                   "shorten")
        self.default_max_size = config.integer("max_file_size", DEFAULT_MAX_FILE_SIZE, low=1)
        self.default_types = config.texts("allowed_types", ["*/*"])
        self.serve_base_url = config.url("serve_base_url")
        self.service_name = config.text("service_name", "Hep.gg")
        self.bot_tokens = tuple(config.texts("embed_bots", DEFAULT_BOT_TOKENS))
        self.reserved_aliases = frozenset(
            [*RESERVED, *self._host_segments(),
             *(w.lower() for w in config.texts("reserved_aliases"))])
        self.extra_own_hosts = frozenset(h.lower() for h in config.texts("own_hosts"))
        self.overhead = self.runtime.config.multipart_overhead
        self._serve_hosts: tuple[float, dict[str, str]] = (0.0, {})

    def _host_segments(self) -> Iterator[str]:
        """The first path segments under this service's prefix that the host
        routes elsewhere: other services' mounts and the host's own paths
        (health, metrics, the accelerated-file prefix; reserved even while
        unused, so that turning one on cannot strand an alias). An alias equal
        to one would be issued and never reach its item."""
        base = self.config.prefix.rstrip("/") + "/"
        config = self.runtime.config
        paths = [config.service(name).prefix for name in self.runtime.services
                 if name != self.name]
        for path in (*paths, config.healthz_path, config.metrics_path, config.accel_prefix):
            if path.startswith(base) and (segment := path[len(base):].split("/", 1)[0]):
                yield segment.lower()

    def stored_objects(self) -> Iterator[str]:
        for (key,) in self.runtime.db.all(
                "SELECT storage_key FROM uploader_items"
                " WHERE storage_key IS NOT NULL AND deleted_at IS NULL"):
            yield key

    def forget_objects(self, keys: set[str]) -> int:
        """Rows whose bytes are gone read as deleted; their names stay taken (8.6)."""
        now = self.runtime.clock()
        with self.runtime.db.write() as conn:
            return sum(conn.execute(
                "UPDATE uploader_items SET deleted_at = ? WHERE storage_key = ?"
                " AND deleted_at IS NULL", (now, key)).rowcount for key in sorted(keys))

    def routes(self) -> list[Route]:
        auth = "uploader"
        # Reads of a row or two (and the view count) run on an ASGI event loop
        # when the bytes are local files; a remote store would block it.
        quick = isinstance(self.storage, LocalStorage)
        return [
            Route(("POST",), "/upload", self.upload, "upload",
                  "Upload a file, shorten a link or store text", auth=auth, doc=Doc(
                      body=docs.UPLOAD_BODY,
                      replies=(Reply(200, "Stored: its ID and public URL (no envelope)",
                                     {JSON: ref("UploadResult")}), docs.RETRY_AFTER),
                      errors=(400, 403, 413, 500), tags=(docs.TAG_UPLOAD,),
                      description="403 also answers while uploads are paused (`MAINTENANCE`);"
                                  " 413 `TOO_LARGE` when the file or text exceeds the"
                                  " account's size limit; 500 when storage or the database"
                                  " fails, and nothing is kept.")),
            Route(("GET",), "/uploadCounter", self.upload_counter, "upload_counter",
                  "Lifetime number of uploads on this host", inline=True, doc=Doc(
                      replies=(Reply(200, "Files, texts and links ever stored (no envelope)",
                                     {JSON: ref("UploadCounter")}),),
                      tags=(docs.TAG_UPLOAD,))),
            Route(("GET",), "/api/oembed", self.oembed, "oembed", "oEmbed document of an item",
                  doc=Doc(params=docs.OEMBED_PARAMS,
                          replies=(Reply(200, "`photo` for raster images of known size, else"
                                              " `link`", {JSON: ref("OEmbed")},
                                         headers={"Access-Control-Allow-Origin":
                                                  {"const": "*"}}),),
                          errors=(400, 404, 501), tags=(docs.TAG_SERVE,))),
            Route(("GET",), "/api/v1/me", self.api_me, "me", "The token's account", auth=auth,
                  doc=Doc(replies=(Reply(200, "The account", {JSON: docs.ok(ref("Account"))}),),
                          errors=(403,), tags=(docs.TAG_MANAGE,))),
            Route(("POST",), "/api/v1/me/token/regenerate", self.api_regenerate,
                  "token_regenerate", "Issue a new token, revoke this one", auth=auth, doc=Doc(
                      replies=(Reply(200, "The new token, shown only here",
                                     {JSON: docs.ok(ref("Token"))}),),
                      errors=(403,), tags=(docs.TAG_MANAGE,),
                      description="No body. The calling token stops working at once.")),
            Route(("GET",), "/api/v1/uploads", self.api_uploads, "uploads",
                  "List uploads and links, newest first", auth=auth, doc=Doc(
                      params=docs.UPLOADS_PARAMS,
                      replies=(Reply(200, "One page of items and the next cursor",
                                     {JSON: docs.ok(ref("ItemPage"))}),),
                      errors=(400, 403), tags=(docs.TAG_MANAGE,))),
            Route(("PATCH",), "/api/v1/uploads/{content_id}", self.api_patch, "upload_patch",
                  "Set alias, favourite or link target", auth=auth, doc=Doc(
                      params=(docs.CONTENT_ID,), body=docs.ITEM_PATCH_BODY,
                      replies=(Reply(200, "The updated item", {JSON: docs.ok(ref("Item"))}),),
                      errors=(400, 403, 404, 409, 413), tags=(docs.TAG_MANAGE,),
                      description="403 also answers an alias over 32 characters; 409 a"
                                  " taken alias; 413 a body over 64 KiB.")),
            Route(("DELETE",), "/api/v1/uploads/{content_id}", self.api_delete,
                  "upload_delete", "Delete an upload or link", auth=auth, doc=Doc(
                      params=(docs.CONTENT_ID,),
                      replies=(Reply(200, "Deleted; its names are never issued again",
                                     {JSON: docs.ok(ref("Deleted"))}),),
                      errors=(403, 404), tags=(docs.TAG_MANAGE,))),
            Route(("POST",), "/api/v1/shorten", self.api_shorten, "shorten",
                  "Shorten a URL, optionally with a vanity alias", auth=auth, doc=Doc(
                      body=docs.SHORTEN_BODY,
                      replies=(Reply(200, "The shortlink's ID and URL (no envelope)",
                                     {JSON: ref("UploadResult")}), docs.RETRY_AFTER),
                      errors=(400, 403, 409, 413, 500), tags=(docs.TAG_MANAGE,),
                      description="403 also answers while uploads are paused (`MAINTENANCE`)"
                                  " and for an alias over 32 characters; 409 a taken alias;"
                                  " 413 a body over 64 KiB; 500 when the database fails,"
                                  " and nothing is kept.")),
            Route(("GET",), "/api/v1/sharex", self.api_sharex, "sharex",
                  "A ShareX custom uploader (.sxcu) for this token", auth=auth, doc=Doc(
                      replies=(Reply(200, "A .sxcu file carrying the calling token",
                                     {JSON: ref("ShareX")},
                                     headers={"Content-Disposition":
                                              {"const": 'attachment; filename="hepcore.sxcu"'},
                                              "Cache-Control": {"const": "no-store"}}),),
                      errors=(403,), tags=(docs.TAG_MANAGE,))),
            Route(("GET", "HEAD"), "/{item_id}", self.serve, "serve",
                  "Serve an upload, follow a shortlink", inline=quick, doc=Doc(
                      params=docs.SERVE_PARAMS, replies=docs.SERVE_REPLIES,
                      tags=(docs.TAG_SERVE,),
                      description="No authentication. Views count on a GET sending bytes"
                                  " from offset 0 and on each redirect.")),
        ]

    # --- authentication -------------------------------------------------

    def authenticate(self, request: Request) -> Actor:
        """Section 2: the token, then account and uploader access."""
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

    def admit(self, request: Request, limit: Limit | None = None, scope: str = "", *,
              paused: bool = False) -> Actor:
        """Authenticate, refuse while ``paused`` (maintenance), then rate-limit.

        The key's usage and the rate-limit hit are counted in one write
        transaction: every authenticated request counts (U12).
        """
        actor = self.authenticate(request)
        with self.runtime.db.write(durable=False):
            if actor.key is not None:
                self.runtime.keys.touch(actor.key.id)
            decision = None
            if not paused and limit is not None:
                decision = self.runtime.limiter.hit(
                    f"uploader:{scope}:{actor.account.id}", [limit])
        if paused:
            raise Forbidden("Uploads are paused for maintenance", code="MAINTENANCE")
        if decision is not None and not decision.allowed:
            raise RateLimited("Too many requests", code="RATE_LIMITED",
                              retry_after=decision.retry_after)
        return actor

    def policy(self, actor: Actor) -> Policy:
        return self.policy_for(actor.account)

    def policy_for(self, account: Account) -> Policy:
        return Policy(
            max_file_size=int(account.setting("max_file_size", self.default_max_size)),
            allowed_types=list(account.setting("allowed_types", self.default_types)),
            serve_base=(account.setting("serve_base_url") or "").rstrip("/") or None,
        )

    def serve_base(self, request: Request | None, policy: Policy) -> str:
        """Where items are served: the account's serve base, the service's, else
        the public base (section 1)."""
        if policy.serve_base or self.serve_base_url:
            return str(policy.serve_base or self.serve_base_url)
        if request is None:
            return self.config.public_base_url or f"http://localhost{self.config.prefix.rstrip('/')}"
        return self.public_base(request)

    def account_serve_hosts(self) -> dict[str, str]:
        """``{host: account id}`` of every account serve base (cached for 5 s)."""
        loaded, hosts = self._serve_hosts
        now = time.monotonic()
        if now - loaded > 5:
            hosts = {}
            for row in self.runtime.db.all(
                "SELECT id, json_extract(settings, '$.serve_base_url') AS base FROM accounts"
                " WHERE base IS NOT NULL"
            ):
                try:
                    host = urlsplit(str(row["base"])).hostname
                except ValueError:
                    continue
                if host:
                    hosts[bare_host(host)] = row["id"]
            self._serve_hosts = (now, hosts)
        return hosts

    # --- POST /upload ---------------------------------------------------

    def upload(self, request: Request) -> Response:
        actor = self.admit(request, self.upload_limit, "upload", paused=self.maintenance)
        policy = self.policy(actor)
        too_large = PayloadTooLarge(
            f"File exceeds your upload size limit of {size_in_mb(policy.max_file_size)} MB",
            code="TOO_LARGE")
        allowance = self._body_allowance(request.media_type, policy)
        if request.content_length is not None and request.content_length > allowance:
            raise self._json_too_large() if allowance == JSON_BODY_LIMIT else too_large
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

    def _body_allowance(self, media: str | None, policy: Policy) -> int:
        """The most body a request of ``media`` may have for text or a file of
        ``max_file_size`` bytes (G5: a longer ``Content-Length`` is refused
        unread): a form field encodes each byte in up to 3 (``%XX``), JSON
        escapes are allowed twice the text and are read whole, at most
        ``JSON_BODY_LIMIT``; anything else gets the multipart overhead."""
        if media == "application/x-www-form-urlencoded":
            return policy.max_file_size * 3 + self.overhead
        if media == "application/json":
            return min(policy.max_file_size * 2 + self.overhead, JSON_BODY_LIMIT)
        return policy.max_file_size + self.overhead

    @staticmethod
    def _json_too_large() -> PayloadTooLarge:
        return PayloadTooLarge(
            f"JSON bodies are limited to {size_in_mb(JSON_BODY_LIMIT)} MB; send longer text"
            " as a form field or a multipart part", code="TOO_LARGE")

    def _store_from_body(self, request: Request, actor: Actor, policy: Policy) -> Item:
        media = request.media_type
        if media == "multipart/form-data":
            boundary = boundary_of(request.content_type)
            if boundary is None:
                raise BadRequest("Malformed request body: multipart boundary missing")
            return self._store_multipart(request, boundary, actor, policy)
        value = self._new_link_value(policy)
        try:
            if media == "application/x-www-form-urlencoded":
                body = _limited(request.iter_body(), self._body_allowance(media, policy))
                value.feed_all(iter_field(body, "link"))
            elif media == "application/json":
                value = self._json_link(request, policy)
            if not value.size:
                raise BadRequest("Body is missing link property")
            return self._store_link(value, actor, policy)
        finally:
            value.abort()

    def _json_link(self, request: Request, policy: Policy) -> LinkValue:
        allowance = self._body_allowance("application/json", policy)
        try:
            data = request.read_json(allowance)
        except BodyTooLarge:
            if allowance == JSON_BODY_LIMIT:
                raise self._json_too_large() from None
            raise
        except MalformedBody:
            raise BadRequest("Invalid JSON body") from None
        link = data.get("link") if isinstance(data, dict) else None
        if link is not None and not isinstance(link, str):
            raise BadRequest("link must be a string")
        value = self._new_link_value(policy)
        if link:
            value.feed(link.encode("utf-8", "surrogatepass"))
        return value.finish()

    def _store_multipart(self, request: Request, boundary: str, actor: Actor,
                         policy: Policy) -> Item:
        form = FormReader(request.body, boundary, chunk_size=request.read_chunk_size,
                          body_limit=policy.max_file_size + self.overhead)
        link: LinkValue | None = None
        try:
            for part in form:
                if part.is_file:
                    chunks = _nonempty_file(part)
                    if chunks is None:
                        continue
                    return self._store_file(form, part, chunks, actor, policy)  # U5: the file wins
                if part.name == "link" and link is None:
                    # Assigned before it is fed, so that `finally` aborts a value
                    # that spilled to storage and then failed. A later file part
                    # still wins over a value that could not be kept (U5).
                    link = self._new_link_value(policy, defer_errors=True)
                    link.feed_all(part.chunks())
            if link is not None and link.size:
                return self._store_link(link.check(), actor, policy)
            raise BadRequest("No file or link in request")
        finally:
            if link is not None:
                link.abort()

    def _new_link_value(self, policy: Policy, *, defer_errors: bool = False) -> LinkValue:
        def open_writer() -> ObjectWriter:
            # A value this long can only be text: check the type before storing it.
            if not type_allowed("text/plain", policy.allowed_types):
                raise BadRequest(TYPE_NOT_ALLOWED)
            return self.storage.writer(max_size=policy.max_file_size)

        return LinkValue(open_writer, defer_errors=defer_errors)

    def _store_file(self, form: FormReader, part: Part, chunks: Iterator[bytes], actor: Actor,
                    policy: Policy) -> Item:
        content_type = declared_type(part.content_type)
        if content_type is None:  # guessed from the leading bytes, before the size counts
            head, chunks = _peek(chunks, HEAD_BYTES)
            content_type = guess_type(head, part.filename)
        if not type_allowed(content_type, policy.allowed_types):
            raise BadRequest(TYPE_NOT_ALLOWED)
        with self.storage.writer(max_size=policy.max_file_size) as writer:
            writer.write_all(chunks)
            form.finish()  # the parts after it: only a whole request is stored
            return self._commit(writer, actor, kind="file", name=part.filename,
                                content_type=content_type)

    def _store_link(self, value: LinkValue, actor: Actor, policy: Policy) -> Item:
        """U4: a shortlink when the trimmed value is an http(s) URL, else text (U6)."""
        text = value.text
        if text is not None and is_shortlink(text.strip()):
            return self._insert(actor, slug_ext="", kind="link", link=text.strip())
        if not type_allowed("text/plain", policy.allowed_types):
            raise BadRequest(TYPE_NOT_ALLOWED)
        writer = value.writer or self.storage.writer(max_size=policy.max_file_size)
        with writer:
            if value.writer is None:
                writer.write((text or "").encode("utf-8"))
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
            size=writer.size, digest=lambda: writer.sha256, filename=name, head=writer.head))
        if rejection is not None:
            raise ServiceError(rejection.message, code=rejection.code, status=rejection.status)
        slug = self.items.new_slug()
        key = f"uploader/{slug}{ext}"
        try:
            stored = self.runtime.pending.commit(writer, key)
        except StorageError:
            log.exception("storage commit failed")
            raise InternalError() from None
        width, height = self._dimensions(key, content_type)
        try:
            item = self._insert(actor, slug_ext=ext, kind=kind, name=name, type=content_type,
                                size=stored.size, sha256=writer.sha256, width=width,
                                height=height, storage_key=key, slug=slug)
        except BaseException:
            self.runtime.pending.discard(key)
            raise
        return item

    def _insert(self, actor: Actor, *, slug_ext: str, slug: str | None = None,
                **fields: Any) -> Item:
        """Insert under ``slug`` (or fresh random slugs until one is free)."""
        for _ in range(20):
            candidate = slug or self.items.new_slug()
            try:
                with self.runtime.db.write():
                    if fields.get("storage_key") is not None:
                        self.runtime.pending.settle(fields["storage_key"])
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

    def insert_named(self, actor: Actor, name: str, **fields: Any) -> Item:
        """Insert an item whose ID is ``name`` (a vanity alias); 409 if it was taken meanwhile."""
        from hepcore.errors import Conflict

        try:
            with self.runtime.db.write():
                item = self.items.insert(slug=name, ext="", account_id=actor.account.id,
                                         **fields)
                if item is not None:
                    self.runtime.incr_counter("uploader.uploads")
        except Exception:
            log.exception("database insert failed")
            raise InternalError() from None
        if item is None:
            raise Conflict("Alias is already taken")
        return item

    def _dimensions(self, key: str, content_type: str) -> tuple[int | None, int | None]:
        """Width and height of a raster image from its header (Pillow reads no pixels)."""
        if not content_type.startswith("image/") or "svg" in content_type:
            return None, None
        from PIL import Image

        try:
            with self.storage.open(key) as fh, Image.open(fh) as img:
                return int(img.width), int(img.height)
        except Exception:  # noqa: BLE001 - any unreadable header just means "unknown"
            return None, None


def _limited(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """Pass chunks through, refusing more than ``limit`` bytes in all."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        yield chunk


def _peek(chunks: Iterator[bytes], n: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``n`` bytes of ``chunks`` (fewer if they end sooner), and every
    chunk again from the start."""
    taken: list[bytes] = []
    size = 0
    for chunk in chunks:
        taken.append(chunk)
        size += len(chunk)
        if size >= n:
            break
    head = taken[0][:n] if len(taken) == 1 else b"".join(taken)[:n]
    return head, itertools.chain(taken, chunks)


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
