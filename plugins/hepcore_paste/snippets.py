"""The snippets API (section 8, P8): list, create, get, patch and delete the
caller's own pastes with the paste key or a sign-in. A mixin of
:class:`~hepcore_paste.service.PasteService`."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from hepcore.clock import iso_ms, parse_iso, random_string
from hepcore.envelope import OkEnvelope
from hepcore.errors import BadRequest, InternalError, NotFound, ServiceError, StorageError
from hepcore.http import Request, Response

from .content import InvalidUtf8
from .fields import (
    PRIVATE_NEEDS_SIGN_IN,
    UNSET,
    PasteFields,
    check_visibility,
    has_text,
    normal_language,
    normal_title,
    read_json_object,
)
from .store import NewContent, Paste

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

    from .content import ContentSink
    from .service import Caller
    from .store import PasteStore

log = logging.getLogger("hepcore.paste")

LIMIT_RE = re.compile(r"[0-9]{1,3}")
PERMANENT_CAP_MESSAGE = "Permanent paste limit reached ({cap}). Unmark one or upgrade to Prime."


class SnippetRoutes:
    if TYPE_CHECKING:
        # Provided by PasteService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        name: str
        runtime: Runtime
        pastes: PasteStore
        caps: dict[str, int]
        free_days: float
        free_permanent_cap: int

        def admit(self, request: Request, *, limited: bool,
                  allow_anonymous: bool = True) -> Caller: ...
        def signed_in_owner(self, request: Request, caller: Caller) -> bool: ...
        def cap_for(self, caller: Caller) -> int: ...
        def create_from_json(self, request: Request, *, default_visibility: str,
                             allow_anonymous: bool = True) -> Paste: ...
        def filled_sink(self, cap: int, text: str) -> ContentSink: ...
        def new_sink(self, cap: int) -> ContentSink: ...
        def detect_language(self, sink: ContentSink) -> str: ...
        def discard(self, content: NewContent) -> None: ...
        def paste_url(self, request: Request | None, paste_id: str) -> str: ...
        def tidy(self) -> None: ...

    def snippet_json(self, request: Request, paste: Paste) -> dict[str, Any]:
        return {
            "id": paste.id, "url": self.paste_url(request, paste.id), "title": paste.title,
            "language": paste.language, "visibility": paste.visibility,
            "isPermanent": paste.is_permanent, "size": paste.size, "views": paste.views,
            "anonymous": paste.anonymous, "createdAt": iso_ms(paste.created_at),
            "updatedAt": iso_ms(paste.updated_at),
            "expiresAt": None if paste.expires_at is None else iso_ms(paste.expires_at),
        }

    def own(self, caller: Caller, paste_id: str) -> Paste:
        """The caller's live paste, else 404 ``Paste not found``."""
        return owned(caller, self.pastes.live(paste_id))

    def snippets_list(self, request: Request) -> Response:
        caller = self.admit(request, limited=False, allow_anonymous=False)
        assert caller.account is not None
        raw_limit = request.query_value("limit")
        limit = 50
        if raw_limit is not None:
            if not LIMIT_RE.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= 100:
                raise BadRequest("Invalid limit")
            limit = int(raw_limit)
        before = None
        raw_before = request.query_value("before")
        if raw_before is not None:
            try:
                before = parse_iso(raw_before)
            except (ValueError, OverflowError):
                raise BadRequest("Invalid before") from None
        pastes = self.pastes.list_live(caller.account.id, limit=limit + 1, before=before)
        more = len(pastes) > limit
        pastes = pastes[:limit]
        return _not_stored(OkEnvelope.success({
            "snippets": [self.snippet_json(request, p) for p in pastes],
            "nextBefore": iso_ms(pastes[-1].created_at) if more else None,
        }))

    def snippets_create(self, request: Request) -> Response:
        # Section 8: anonymous callers get 401 here even where /api/paste takes them.
        paste = self.create_from_json(request, default_visibility="unlisted",
                                      allow_anonymous=False)
        return OkEnvelope.success(self.snippet_json(request, paste))

    def snippets_get(self, request: Request) -> Response:
        caller = self.admit(request, limited=False, allow_anonymous=False)
        found = self.pastes.live_with_content(request.params["paste_id"])
        paste = owned(caller, found[0] if found else None)
        data = self.snippet_json(request, paste)
        try:
            content = self.pastes.read_content(paste, found[1] if found else None)
        except FileNotFoundError:
            log.error("bytes missing for paste %s", paste.id)
            raise NotFound("Paste not found") from None
        data["content"] = content.decode("utf-8", "replace")
        return _not_stored(OkEnvelope.success(data))

    def snippets_delete(self, request: Request) -> Response:
        caller = self.admit(request, limited=False, allow_anonymous=False)
        paste = self.own(caller, request.params["paste_id"])
        with self.runtime.db.write():
            self.pastes.delete(paste)
        self.tidy()  # older orphans: readers may hold this paste's row
        self.runtime.emit("paste.deleted", self.name, paste.account_id, {"id": paste.id})
        return OkEnvelope.success({"id": paste.id, "deleted": True})

    def snippets_patch(self, request: Request) -> Response:
        caller = self.admit(request, limited=False, allow_anonymous=False)
        assert caller.account is not None
        paste = self.own(caller, request.params["paste_id"])
        cap = self.cap_for(caller)
        fields = PasteFields.parse(read_json_object(request, cap), patch=True)
        changes: dict[str, Any] = {}
        if fields.content is not UNSET and not has_text(fields.content):
            raise BadRequest("Paste content is required")
        if fields.visibility is not UNSET:
            visibility = check_visibility(fields.visibility, paste.visibility)
            if visibility == "private" and paste.visibility != "private" and \
                    not self.signed_in_owner(request, caller):
                raise BadRequest(PRIVATE_NEEDS_SIGN_IN)
            changes["visibility"] = visibility
        sink = None
        if fields.content is not UNSET:
            sink = self.filled_sink(cap, fields.content)
            fields.content = None
        try:
            if fields.title is not UNSET:
                changes["title"] = normal_title(fields.title)
            if fields.language is not UNSET:
                language = normal_language(fields.language)
                if language is None:
                    language = self.detect_language(sink) if sink is not None else \
                        self._detect_stored(paste)
                changes["language"] = language
            if fields.is_permanent is not UNSET:
                changes.update(self._permanence(caller, paste, fields.is_permanent))
            content: NewContent | None = None
            if sink is not None:
                try:
                    content = sink.commit(f"paste/{paste.id}-{random_string(6)}")
                except StorageError:
                    raise InternalError() from None
        finally:
            if sink is not None:
                sink.abort()
        try:
            with self.runtime.db.write():
                current = self.own(caller, paste.id)  # not deleted meanwhile
                if content is not None and content.storage_key is not None:
                    self.runtime.pending.settle(content.storage_key)
                if "is_permanent" in changes and changes["is_permanent"] and \
                        not current.is_permanent:
                    self._permanence(caller, current, True)  # the cap, atomically
                paste = self.pastes.update(current, content=content, **changes)
        except BaseException:
            if content is not None:
                self.discard(content)
            raise
        self.tidy()  # older orphans: readers may hold the replaced row
        return OkEnvelope.success(self.snippet_json(request, paste))

    def _detect_stored(self, paste: Paste) -> str:
        sink = self.new_sink(self.caps["prime"] * 2)
        try:
            for chunk in self.pastes.iter_content(paste, 64 * 1024):
                sink.feed(chunk)
                if sink.size >= 64 * 1024:
                    break
            return self.detect_language(sink)
        except InvalidUtf8:
            return "plaintext"
        except FileNotFoundError:
            log.error("bytes missing for paste %s", paste.id)
            raise NotFound("Paste not found") from None
        finally:
            sink.abort()

    def _permanence(self, caller: Caller, paste: Paste,
                    flag: bool) -> dict[str, Any]:
        """Section 6: Prime stores the flag; Free marks up to the cap and clearing
        restores the 365-day expiry."""
        if caller.plan == "prime":
            return {"is_permanent": flag}
        if flag:
            if not paste.is_permanent and \
                    self.pastes.count_permanent(paste.account_id or "") >= self.free_permanent_cap:
                raise ServiceError(PERMANENT_CAP_MESSAGE.format(cap=self.free_permanent_cap),
                                   code="PERMANENT_CAP", status=400)
            return {"is_permanent": True, "expires_at": None}
        if not paste.is_permanent:
            return {"is_permanent": False}
        return {"is_permanent": False, "expires_at": paste.created_at + self.free_days * 86400}


def owned(caller: Caller, paste: Paste | None) -> Paste:
    """``paste`` when it is live and the caller's, else 404 ``Paste not found``."""
    if paste is None or caller.account is None or paste.account_id != caller.account.id:
        raise NotFound("Paste not found")
    return paste


def _not_stored(response: Response) -> Response:
    """An account's pastes, private ones included, read with a key or a session
    cookie: no cache may keep them (as the reads of a private paste)."""
    response.set_header("Cache-Control", "no-store")
    return response
