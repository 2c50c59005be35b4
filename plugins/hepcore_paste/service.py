"""The Hep.gg paste service: ``POST /api/paste`` (and its ``/api/v1/paste``
alias), the reader and raw pages, the snippets API and the hastebin protocol.

Spec: shared/spec/paste.md. Reading routes live in :mod:`.reading`, the
snippets API in :mod:`.snippets`. Handlers are plain sync code on core
objects; the web shells call them for WSGI and ASGI alike.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from hepcore.accounts import Account
from hepcore.auth_headers import bearer_header
from hepcore.crosssite import CROSS_SITE_REFUSED, cross_site
from hepcore.envelope import OkEnvelope
from hepcore.errors import (
    BadRequest,
    ClientDisconnected,
    CredentialDisabled,
    CredentialError,
    Forbidden,
    InternalError,
    NotFoundError,
    RateLimited,
    ServiceError,
    StorageError,
    Unauthorized,
)
from hepcore.http import Request, Response
from hepcore.limits import Limit, RateDecision
from hepcore.service import Route, Service
from hepcore.tokens import KeyRecord

from . import apidocs as docs
from .content import ContentSink, ContentTooLarge, InvalidUtf8
from .detect import detect
from .fields import (
    BODY_OVERHEAD,
    MIB,
    PRIVATE_NEEDS_SIGN_IN,
    UNSET,
    PasteFields,
    check_visibility,
    has_text,
    normal_language,
    normal_title,
    read_json_object,
    too_large,
)
from .migrations import paste as paste_migrations
from .reading import ReadingRoutes
from .render import HighlightCache
from .snippets import SnippetRoutes
from .store import NewContent, Paste, PasteStore

log = logging.getLogger("hepcore.paste")

DAY = 86400.0
NOT_APPROVED = "Your account is not approved for paste creation"
TOTAL_CAP_MESSAGE = "You've reached your snippet limit. Delete a few or upgrade to Prime."
NO_EXPIRY_RETRY = 86400
PURGE_JOB = "paste.purge"
# Highlighting costs ~5 us and ~14 bytes of HTML per byte of content; larger
# pastes are shown as escaped plain text, which costs little.
HIGHLIGHT_MAX = 128 * 1024
# Each line adds its number to the page (30 to 40 bytes of HTML); past this the
# page links to the raw text for the rest.
PAGE_MAX_LINES = 50_000
# Methods that only read: a cross-site page can make the browser send them, but
# cannot read the answers, so they need no cross-site check.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    """Who is creating or managing pastes: a key's account, a signed-in
    account, or nobody (anonymous)."""

    account: Account | None
    key: KeyRecord | None
    via: str  # "key", "session" or "anonymous"

    @property
    def plan(self) -> str:
        return "anonymous" if self.account is None else self.account.plan


class PasteService(SnippetRoutes, ReadingRoutes, Service):
    """Options (``[services.paste]``): ``max_size_free`` (1 MiB), ``max_size_prime``
    (8 MiB), ``free_expiry_days`` (365), ``anonymous_expiry_days`` (90),
    ``free_total_cap`` (1000), ``free_permanent_cap`` (100),
    ``create_rate_per_minute`` (60), ``anonymous`` (false), ``detect_time_limit``
    (0.1 s), ``inline_max_bytes`` (64 KiB), ``highlight_max_bytes`` (128 KiB),
    ``highlight_time_limit`` (1 s), ``page_max_bytes`` (1 MiB), ``page_max_lines`` (50,000),
    ``render_cache_bytes`` (32 MiB), ``purge_interval`` (600 s),
    ``downgrade_grace_days`` (30), ``site_name`` ("Hep.gg Paste"). Unknown options
    are refused (``strict_options``)."""

    name = "paste"
    title = "Hep.gg Paste"
    envelope = OkEnvelope()
    auth_schemes = docs.AUTH_SCHEMES
    api_schemas = docs.SCHEMAS
    migrations = (paste_migrations,)
    strict_options = True

    def start(self) -> None:
        """Read and check every option (a wrong one stops the host, naming it)."""
        config = self.config
        config.flag("anonymous")  # checked now, not at the first request
        self.pastes = PasteStore(self.runtime.db, self.runtime.storage, self.runtime.clock)
        free_size = config.integer("max_size_free", MIB, low=1)
        self.caps = {"anonymous": free_size, "free": free_size,
                     "prime": config.integer("max_size_prime", 8 * MIB, low=1)}
        self.free_days = config.number("free_expiry_days", 365, above=0)
        self.anonymous_days = config.number("anonymous_expiry_days", 90, above=0)
        self.free_total_cap = config.integer("free_total_cap", 1000, low=0)
        self.free_permanent_cap = config.integer("free_permanent_cap", 100, low=0)
        self.create_limit = Limit(config.integer("create_rate_per_minute", 60, low=1), 60,
                                  "create")
        self.detect_time_limit = config.number("detect_time_limit", 0.1, low=0)
        self.inline_max = config.integer("inline_max_bytes", 64 * 1024, low=0)
        self.highlight_max = config.integer("highlight_max_bytes", HIGHLIGHT_MAX, low=0)
        self.highlight_time_limit = config.number("highlight_time_limit", 1.0, low=0)
        self.page_max_bytes = config.integer("page_max_bytes", MIB, low=1)
        self.page_max_lines = config.integer("page_max_lines", PAGE_MAX_LINES, low=1)
        self.cache = HighlightCache(config.integer("render_cache_bytes", 32 * MIB, low=0))
        self.downgrade_grace = config.number("downgrade_grace_days", 30, low=0) * DAY
        self.site_name = config.text("site_name", "Hep.gg Paste")
        purge_interval = config.number("purge_interval", 600, above=0)
        self.runtime.accounts.on_plan_change(self.plan_changed)
        jobs = getattr(self.runtime, "jobs", None)
        if jobs is not None:
            jobs.every(PURGE_JOB, purge_interval, self.purge)

    def stored_objects(self) -> Iterator[str]:
        """Objects of pastes not deleted, and replaced or deleted ones still
        waiting for :meth:`purge` (``hepcore check`` must not take them for orphans)."""
        return self.pastes.referenced_objects()

    def forget_objects(self, keys: set[str]) -> int:
        """Pastes whose bytes are gone read as deleted (404); their IDs stay taken."""
        return self.pastes.forget_objects(keys)

    def routes(self) -> list[Route]:
        key, session = "paste", "session"
        anonymous = self.anonymous_allowed()
        create = docs.create_doc(anonymous)
        return [
            Route(("POST",), "/api/paste", self.api_create, "create",
                  "Create a paste", auth=key, doc=create),
            Route(("POST",), "/api/v1/paste", self.api_create, "create_v1",
                  "Create a paste (alias of /api/paste)", auth=key, doc=create),
            Route(("GET",), "/api/v1/snippets", self.snippets_list, "snippets",
                  "List your pastes, newest first", auth=key, doc=docs.SNIPPETS_LIST),
            Route(("POST",), "/api/v1/snippets", self.snippets_create, "snippet_create",
                  "Create a paste (unlisted by default)", auth=key, doc=docs.SNIPPET_CREATE),
            Route(("GET",), "/api/v1/snippets/{paste_id}", self.snippets_get, "snippet",
                  "One of your pastes, with its content", auth=key, doc=docs.SNIPPET_GET),
            Route(("PATCH",), "/api/v1/snippets/{paste_id}", self.snippets_patch,
                  "snippet_patch", "Change one of your pastes", auth=key,
                  doc=docs.SNIPPET_PATCH),
            Route(("DELETE",), "/api/v1/snippets/{paste_id}", self.snippets_delete,
                  "snippet_delete", "Delete one of your pastes", auth=key,
                  doc=docs.SNIPPET_DELETE),
            Route(("POST",), "/documents", self.hastebin_create, "hastebin_create",
                  "hastebin: create a paste from the raw body", auth=key,
                  doc=docs.hastebin_create_doc(anonymous)),
            Route(("GET",), "/documents/{paste_id}", self.hastebin_get, "hastebin_get",
                  "hastebin: a paste as {key, data}", auth=session, doc=docs.HASTEBIN_GET),
            Route(("GET", "HEAD"), "/raw/{paste_id}", self.raw, "hastebin_raw",
                  "hastebin: the raw content", auth=session, doc=docs.RAW),
            Route(("GET", "HEAD"), "/{paste_id}/raw", self.raw, "raw", "The raw content",
                  auth=session, doc=docs.RAW),
            Route(("GET", "HEAD"), "/{paste_id}", self.reader, "reader", "The reader page",
                  auth=session, doc=docs.READER),
        ]

    # --- who is calling (section 2) ----------------------------------------

    def identify(self, request: Request, *, allow_anonymous: bool = True) -> Caller:
        """Step 1: a key when there is an ``Authorization`` header, else the
        signed-in user, else anonymous (only when enabled with a captcha
        verifier); then approval.

        The session cookie is an ambient credential (a browser sends it with
        whatever another site makes it send; ``SameSite=Lax`` alone still lets
        same-site origins through), so a signed-in write another site made the
        browser send is refused: 403 ``Cross-site request refused``. Keys are
        not ambient, and reads cannot be seen cross-site, so neither is checked."""
        header = request.header("authorization")
        if header is not None:
            try:
                actor = self.runtime.verify(self.name, bearer_header(header))
            except CredentialDisabled:
                raise Unauthorized("API key disabled") from None
            except (CredentialError, NotFoundError):
                raise Unauthorized("Invalid API key") from None
            caller = Caller(actor.account, actor.key, "key")
        else:
            session = self.runtime.session_actor(request)
            if session is not None:
                if request.method.upper() not in READ_METHODS and cross_site(
                        request, (request.base_url, self.public_base(request))):
                    raise Forbidden(CROSS_SITE_REFUSED)
                caller = Caller(session.account, None, "session")
            elif allow_anonymous and self.anonymous_allowed():
                return Caller(None, None, "anonymous")
            else:
                raise Unauthorized("Invalid API key")
        assert caller.account is not None
        if caller.account.status != "active":
            raise Forbidden(NOT_APPROVED)
        return caller

    def anonymous_allowed(self) -> bool:
        """P10: enabled in the options and a captcha verifier plugin installed
        (also before :meth:`start`: the API description asks)."""
        return self.config.flag("anonymous") and bool(
            self.runtime.pm.hook.hepcore_verify_captcha.get_hookimpls())

    def admit(self, request: Request, *, limited: bool,
              allow_anonymous: bool = True) -> Caller:
        """Identify the caller, then :meth:`count_and_limit`."""
        caller = self.identify(request, allow_anonymous=allow_anonymous)
        self.count_and_limit(request, caller, limited=limited)
        return caller

    def count_and_limit(self, request: Request, caller: Caller, *, limited: bool) -> None:
        """Count the key's use and, for creates, apply the rate limit (step 2),
        in one write transaction."""
        if caller.key is None and not limited:
            return
        with self.runtime.db.write(durable=False):
            decision = self._touch_and_hit(request, caller, limited=limited)
        if decision is not None and not decision.allowed:
            raise RateLimited("Too many requests", code="RATE_LIMITED",
                              retry_after=decision.retry_after)

    def _touch_and_hit(self, request: Request, caller: Caller, *,
                       limited: bool) -> RateDecision | None:
        if caller.key is not None:
            self.runtime.keys.touch(caller.key.id)
        if not limited:
            return None
        return self.runtime.limiter.hit(self.rate_scope(caller, request), [self.create_limit])

    @staticmethod
    def rate_scope(caller: Caller, request: Request) -> str:
        """Keys per key, signed-in users per account, anonymous callers per IP."""
        if caller.key is not None:
            return f"paste:create:key:{caller.key.id}"
        if caller.account is not None:
            return f"paste:create:account:{caller.account.id}"
        return f"paste:create:ip:{request.client_ip}"

    def signed_in_owner(self, request: Request, caller: Caller) -> bool:
        """P9: a sign-in by the caller's own account (a key alone is not one)."""
        if caller.account is None:
            return False
        if caller.via == "session":
            return True
        session = self.runtime.session_actor(request)
        return session is not None and session.account.id == caller.account.id

    def cap_for(self, caller: Caller) -> int:
        return self.caps.get(caller.plan, self.caps["free"])

    def lifetime(self, caller: Caller, permanent: bool) -> float | None:
        """Seconds from creation to expiry; ``None`` for Prime and permanent pastes (P6)."""
        if caller.plan == "prime" or permanent:
            return None
        days = self.anonymous_days if caller.account is None else self.free_days
        return days * DAY

    # --- create (section 4) --------------------------------------------------

    def api_create(self, request: Request) -> Response:
        paste = self.create_from_json(request, default_visibility="public")
        return OkEnvelope.success({
            "id": paste.id, "url": self.paste_url(request, paste.id),
            "expiresAt": _iso(paste.expires_at), "anonymous": paste.anonymous})

    def create_from_json(self, request: Request, *, default_visibility: str,
                         allow_anonymous: bool = True) -> Paste:
        """Steps 1-11 of section 4.2 for a JSON body."""
        caller = self.identify(request, allow_anonymous=allow_anonymous)
        cap = self.cap_for(caller)
        if caller.via != "anonymous" and request.content_length is not None and \
                request.content_length <= self.inline_max:
            return self._create_small(request, caller, cap, default_visibility)
        self.count_and_limit(request, caller, limited=True)
        draft = self.draft(request, caller, cap, default_visibility)
        return self.store_new(request, caller, draft.sink, title=draft.title,
                              language=draft.language, visibility=draft.visibility,
                              permanent=draft.permanent)

    def _create_small(self, request: Request, caller: Caller, cap: int,
                      default_visibility: str) -> Paste:
        """The same steps for a small body in one write transaction: the body is
        read and checked first, the outcome decided in the order of section 4.2
        (the rate limit before any body error, the total cap before detection),
        and the key's use, the rate-limit hit and the row committed together.
        Detection runs only for an admitted create (bounded by
        ``detect_time_limit``), outside the transaction; the row then goes in a
        second one."""
        pending: ServiceError | None = None
        draft: Draft | None = None
        try:
            draft = self.draft(request, caller, cap, default_visibility)
            content = draft.sink.commit("")  # small: never spilled, so no object
        except ServiceError as exc:
            pending = exc
        finally:
            if draft is not None:
                draft.sink.abort()  # the head for detection stays
        paste = None
        # Durable only when the row can go in now; otherwise the transaction
        # holds counters alone and the row follows in a durable one.
        inserts = pending is None and draft is not None and draft.language is not None
        with self.runtime.db.write(durable=inserts):
            decision = self._touch_and_hit(request, caller, limited=True)
            if (decision is None or decision.allowed) and pending is None:
                assert draft is not None
                # Refusals are decided here, committed with the rate-limit hit.
                if self.over_total_cap(caller):
                    pending = self.total_cap_error(caller)
                elif inserts:
                    assert draft.language is not None  # part of `inserts`
                    paste = self._insert(caller, self.pastes.random_id(), content,
                                         title=draft.title, language=draft.language,
                                         visibility=draft.visibility, permanent=draft.permanent,
                                         check_cap=False)
        if decision is not None and not decision.allowed:
            raise RateLimited("Too many requests", code="RATE_LIMITED",
                              retry_after=decision.retry_after)
        if pending is not None:
            raise pending
        assert draft is not None
        if paste is None:
            # Detection (up to detect_time_limit) runs outside the write lock, so
            # creates of other callers never wait for it; the insert then checks
            # the total cap again, atomically with the row.
            draft.language = self.detect_language(draft.sink)
            paste = self._insert(caller, self.pastes.random_id(), content,
                                 title=draft.title, language=draft.language,
                                 visibility=draft.visibility, permanent=draft.permanent)
        self.created(request, caller, paste)
        return paste

    def draft(self, request: Request, caller: Caller, cap: int,
              default_visibility: str) -> Draft:
        """Steps 3-9: the body, fields, captcha, content, visibility and size."""
        fields = PasteFields.parse(read_json_object(request, cap))
        if caller.via == "anonymous":
            self.check_captcha(request, fields.turnstile_token)
        if not has_text(fields.content):
            raise BadRequest("Paste content is required")
        visibility = check_visibility(fields.visibility, default_visibility)
        if visibility == "private" and not self.signed_in_owner(request, caller):
            raise BadRequest(PRIVATE_NEEDS_SIGN_IN)
        sink = self.filled_sink(cap, fields.content)
        fields.content = None  # the sink holds it now
        return Draft(sink, normal_title(fields.title), normal_language(fields.language),
                     visibility, caller.plan == "prime" and fields.is_permanent is True)

    def check_captcha(self, request: Request, token: Any) -> None:
        """Step 6 (anonymous only)."""
        if token is UNSET or not token or self.runtime.verify_captcha(token, request) is not True:
            raise BadRequest("Captcha failed. Try again.")

    def filled_sink(self, cap: int, text: str) -> ContentSink:
        """A sink holding ``text``: 413 above ``cap``, 400 when it is not valid
        UTF-8; on any failure nothing (no spilled temporary file) is left behind."""
        sink = self.new_sink(cap)
        try:
            sink.feed_text(text)
            sink.finish()
        except ContentTooLarge:
            raise too_large(cap) from None
        except InvalidUtf8:
            raise BadRequest("Paste content must be valid UTF-8") from None
        except BaseException:
            sink.abort()
            raise
        return sink

    def new_sink(self, cap: int) -> ContentSink:
        return ContentSink(self.runtime.storage, self.runtime.pending, cap=cap,
                           inline_max=self.inline_max)

    def over_total_cap(self, caller: Caller) -> bool:
        """Step 10 (Free only)."""
        return caller.account is not None and caller.plan == "free" and \
            self.pastes.count_live(caller.account.id) >= self.free_total_cap

    def check_total_cap(self, caller: Caller) -> None:
        if self.over_total_cap(caller):
            raise self.total_cap_error(caller)

    def total_cap_error(self, caller: Caller) -> ServiceError:
        """The step-10 429; ``Retry-After`` is when the account's first live paste
        expires, and so frees a place (a day when none will)."""
        assert caller.account is not None
        first = self.pastes.first_expiry(caller.account.id)
        wait = NO_EXPIRY_RETRY if first is None else math.ceil(first - self.runtime.clock())
        return ServiceError(TOTAL_CAP_MESSAGE, code="PASTE_TOTAL_CAP", status=429,
                            headers={"Retry-After": str(max(1, wait))})

    def detect_language(self, sink: ContentSink) -> str:
        return detect(sink.head_text, time_limit=self.detect_time_limit)

    def store_new(self, request: Request, caller: Caller, sink: ContentSink, *,
                  title: str | None, language: str | None, visibility: str,
                  permanent: bool) -> Paste:
        """Steps 10 and 11: the total cap, detection, then bytes and row (G3)."""
        try:
            self.check_total_cap(caller)
            if language is None:
                language = self.detect_language(sink)
            # Stored bytes are named after the ID, so it must be free before they
            # are committed; a row alone retries on the (rare) clash instead.
            paste_id = self.pastes.new_id() if sink.spilled else self.pastes.random_id()
            try:
                content = sink.commit(f"paste/{paste_id}")
            except StorageError:
                log.exception("storage commit failed")
                raise InternalError() from None
        finally:
            sink.abort()
        try:
            paste = self._insert(caller, paste_id, content, title=title, language=language,
                                 visibility=visibility, permanent=permanent)
        except BaseException as exc:
            self.discard(content)
            if isinstance(exc, ServiceError):
                raise
            if isinstance(exc, (sqlite3.Error, OSError)):
                log.exception("database insert failed")
                raise InternalError() from None
            raise
        self.created(request, caller, paste)
        return paste

    def created(self, request: Request, caller: Caller, paste: Paste) -> None:
        self.runtime.emit("paste.created", self.name,
                          caller.account.id if caller.account else None,
                          {"id": paste.id, "url": self.paste_url(request, paste.id),
                           "visibility": paste.visibility})

    def _insert(self, caller: Caller, paste_id: str, content: NewContent, *, title: str | None,
                language: str, visibility: str, permanent: bool,
                check_cap: bool = True) -> Paste:
        """Insert the row, checking the total cap atomically with it unless the
        caller's open transaction has just done so (``check_cap=False``)."""
        for attempt in range(5):
            try:
                with self.runtime.db.write():
                    if check_cap:
                        self.check_total_cap(caller)
                    if content.storage_key is not None:
                        self.runtime.pending.settle(content.storage_key)
                    return self.pastes.insert(
                        paste_id, account_id=caller.account.id if caller.account else None,
                        key_id=caller.key.id if caller.key else None,
                        anonymous=caller.account is None, title=title, language=language,
                        visibility=visibility, is_permanent=permanent, content=content,
                        expires_after=self.lifetime(caller, permanent))
            except sqlite3.IntegrityError:
                if content.storage_key is not None or attempt == 4:
                    raise
                paste_id = self.pastes.random_id()
        raise AssertionError("unreachable")

    def discard(self, content: NewContent) -> None:
        if content.storage_key:
            self.runtime.pending.discard(content.storage_key)

    def paste_url(self, request: Request | None, paste_id: str) -> str:
        if request is None:
            base = self.config.public_base_url or \
                f"http://localhost{self.config.prefix.rstrip('/')}"
        else:
            base = self.public_base(request)
        return f"{base}/{paste_id}"

    # --- hastebin (section 9) -------------------------------------------------

    def _refuse_anonymous_document(self, request: Request, cap: int, limit: int) -> NoReturn:
        """A raw body carries no captcha token (step 6 fails), but step 3 comes
        first: a body past ``limit`` without Content-Length is still a 413."""
        read = 0
        try:
            for chunk in request.iter_body():
                read += len(chunk)
                if read > limit:
                    raise too_large(cap)
        except ClientDisconnected:
            raise BadRequest("The request body ended early") from None
        raise BadRequest("Captcha failed. Try again.")

    def hastebin_create(self, request: Request) -> Response:
        """``POST /documents``: the order of 4.2 without its JSON steps. The body
        may be as long as a JSON one (step 3), so that a whitespace-only body
        past the cap is refused as empty (step 7) before its size (step 9)."""
        caller = self.admit(request, limited=True)
        cap = self.cap_for(caller)
        limit = 2 * cap + BODY_OVERHEAD
        if request.content_length is not None and request.content_length > limit:
            raise too_large(cap)
        if caller.via == "anonymous":
            self._refuse_anonymous_document(request, cap, limit)
        sink = self.new_sink(cap)
        over_cap = False
        read = 0
        try:
            for chunk in request.iter_body():
                read += len(chunk)
                if read > limit:
                    raise ContentTooLarge(cap)
                if not over_cap:
                    try:
                        sink.feed(chunk)
                        continue
                    except ContentTooLarge:  # the sink dropped what it held
                        over_cap = True
                sink.scan(chunk)
            sink.finish()
        except ContentTooLarge:
            sink.abort()
            raise too_large(cap) from None
        except InvalidUtf8:
            raise BadRequest("Paste content must be valid UTF-8") from None
        except ClientDisconnected:
            sink.abort()
            raise BadRequest("The request body ended early") from None
        except BaseException:
            sink.abort()  # a spilled temporary file must not outlive the request
            raise
        if not sink.has_text:
            sink.abort()
            raise BadRequest("Paste content is required")
        if over_cap:
            raise too_large(cap)
        paste = self.store_new(request, caller, sink, title=None, language=None,
                               visibility="public", permanent=False)
        return Response.json({"key": paste.id})

    # --- plans and purge (P6) -------------------------------------------------

    def plan_changed(self, account_id: str, old: str, new: str) -> None:
        """Prime to Free: the account's pastes with no expiry that are not
        permanent expire at ``max(now + grace, createdAt + free_days)``, set in
        the plan change's own transaction (section 1)."""
        if old == "prime" and new == "free":
            self.pastes.expire_prime_downgrades(self.downgrade_grace, self.free_days,
                                                account_id)

    def tidy(self) -> None:
        """Remove orphaned bytes past their grace after a change has committed;
        best effort: the change is done and its answer must say so, and what
        fails here stays queued for the next change or the purge job."""
        try:
            self.pastes.drain_orphans()
        except Exception:
            log.warning("could not remove orphaned paste bytes; the purge job will retry",
                        exc_info=True)

    def purge(self) -> dict[str, int]:
        """Expire Prime leftovers of downgraded accounts (those whose plan was
        changed other than through ``AccountStore.update``), purge expired
        pastes, remove orphaned bytes. Safe to run concurrently and repeatedly."""
        downgraded = self.pastes.expire_prime_downgrades(self.downgrade_grace, self.free_days)
        purged = self.pastes.purge_expired()
        removed = self.pastes.drain_orphans()
        if downgraded or purged or removed:
            log.info("paste purge: %d given an expiry, %d purged, %d objects removed",
                     downgraded, purged, removed)
        return {"expiry_set": downgraded, "purged": purged, "objects_removed": removed}


@dataclass
class Draft:
    """A create request after steps 3-9: the content in its sink and the fields."""

    sink: ContentSink
    title: str | None
    language: str | None
    visibility: str
    permanent: bool


def _iso(ts: float | None) -> str | None:
    from hepcore.clock import iso_ms

    return None if ts is None else iso_ms(ts)
