"""Reading routes (section 7): the reader page, raw reads, hastebin reads.
A mixin of :class:`~hepcore_paste.service.PasteService`."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, BinaryIO

from hepcore.errors import NotFound
from hepcore.http import Request, Response, StreamBody
from hepcore.serving import SANDBOX_CSP, serve_object

from .render import cut_notice, highlighted, not_found_page, page_text, reader_page
from .store import Paste

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

    from .render import HighlightCache
    from .store import PasteStore

log = logging.getLogger("hepcore.paste")

TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


class _InlineObject:
    """The few storage methods :func:`serve_object` uses, over bytes from the row."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        end = len(self.data) if length is None else start + length
        return io.BytesIO(self.data[start:end])

    def internal_path(self, key: str) -> str | None:
        return None


def cache_control(paste: Paste) -> str:
    """Section 7: public pastes may be cached for a minute, others never."""
    return "public, max-age=60" if paste.visibility == "public" else "no-store"


def plain_not_found() -> Response:
    return Response(404, [("Content-Type", TEXT_TYPE), ("Cache-Control", "no-store"),
                          ("X-Content-Type-Options", "nosniff")], b"Not found")


class ReadingRoutes:
    if TYPE_CHECKING:
        # Provided by PasteService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        runtime: Runtime
        pastes: PasteStore
        cache: HighlightCache
        highlight_max: int
        highlight_time_limit: float
        page_max_bytes: int
        page_max_lines: int
        site_name: str

    def visible(self, request: Request, paste_id: str) -> Paste | None:
        """The live paste if this request may read it: private ones only for
        their signed-in owner (P9)."""
        return self.may_read(request, self.pastes.live(paste_id))

    def visible_with_content(self, request: Request,
                             paste_id: str) -> tuple[Paste, bytes | None] | None:
        """:meth:`visible` and the row's inline content, in one query."""
        found = self.pastes.live_with_content(paste_id)
        if found is None or self.may_read(request, found[0]) is None:
            return None
        return found

    def may_read(self, request: Request, paste: Paste | None) -> Paste | None:
        if paste is not None and paste.visibility == "private":
            session = self.runtime.session_actor(request)
            if session is None or session.account.id != paste.account_id:
                return None
        return paste

    def count_view(self, paste: Paste) -> None:
        try:
            self.pastes.add_view(paste.id)
        except Exception:  # counting is best-effort and never fails a read
            log.warning("could not count a view of %s", paste.id, exc_info=True)

    def raw(self, request: Request) -> Response:
        """``GET``/``HEAD /:id/raw`` and ``/raw/:id`` (7.2)."""
        found = self.visible_with_content(request, request.params["paste_id"])
        if found is None:
            return plain_not_found()
        paste, inline = found
        headers = [("Cache-Control", cache_control(paste)),
                   ("X-Content-Type-Options", "nosniff"),
                   ("Content-Security-Policy", SANDBOX_CSP)]
        config = self.runtime.config
        if paste.storage_key is None:
            source: object = _InlineObject(inline or b"")
            mode = "direct"
        else:
            source, mode = self.runtime.storage, config.serve_mode
        try:
            served = serve_object(request, source, paste.storage_key or "",  # type: ignore[arg-type]
                                  size=paste.size, etag=f'"{paste.sha256}"',
                                  content_type=TEXT_TYPE, headers=headers, serve_mode=mode,
                                  accel_prefix=config.accel_prefix)
        except FileNotFoundError:
            log.error("bytes missing for paste %s", paste.id)
            return plain_not_found()
        response = served.response
        if isinstance(source, _InlineObject) and isinstance(response.body, StreamBody):
            response.body = response.body.stream.read()
        if served.from_start and request.method == "GET":
            self.count_view(paste)
        return response

    def reader(self, request: Request) -> Response:
        """``GET /:id`` (7.1): the HTML page, or an HTML 404."""
        paste = self.visible(request, request.params["paste_id"])
        if paste is None:
            page, csp = not_found_page(self.site_name)
            return self._page(404, page, csp, "no-store", request)
        try:
            block = self.highlighted_block(paste)
        except FileNotFoundError:
            log.error("bytes missing for paste %s", paste.id)
            page, csp = not_found_page(self.site_name)
            return self._page(404, page, csp, "no-store", request)
        is_get = request.method == "GET"
        if is_get:
            self.count_view(paste)
        page, csp = reader_page(paste, block,
                                views=paste.views + (1 if is_get else 0),
                                site_name=self.site_name)
        return self._page(200, page, csp, cache_control(paste), request)

    def _page(self, status: int, page: bytes, csp: str, cache: str,
              request: Request) -> Response:
        headers = [("Content-Type", HTML_TYPE), ("Cache-Control", cache),
                   ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                   ("Content-Security-Policy", csp)]
        if request.method == "HEAD":
            return Response(status, [*headers, ("Content-Length", str(len(page)))], None)
        return Response(status, headers, page)

    def highlighted_block(self, paste: Paste) -> bytes:
        """The highlighted content, from the cache when it was rendered before.
        Pastes above ``highlight_max`` are shown plain, which is cheap enough
        not to take cache room from highlighted ones. A paste whose lexer runs
        past ``highlight_time_limit`` seconds is shown
        plain too, and that is cached, so it costs the limit once. The page
        shows at most the first ``page_max_bytes`` and ``page_max_lines`` of a
        paste, with a note that links to the raw text (a paste of 8 M newlines
        made a 310 MB page). Raises :class:`FileNotFoundError` when the stored
        bytes are gone."""
        plain = paste.size > self.highlight_max
        key = (paste.id, f"{paste.sha256}:{paste.language}")
        block = None if plain else self.cache.get(key)
        if block is None:
            data = self.pastes.read_content(paste, limit=self.page_max_bytes)
            text, shown = page_text(data, complete=paste.size <= self.page_max_bytes,
                                    max_lines=self.page_max_lines)
            html = highlighted(text, paste.language, plain=plain,
                               time_limit=self.highlight_time_limit)
            if shown is not None:
                html += cut_notice(paste, shown)
            # Kept encoded: a page around a cached block then encodes only its header.
            block = html.encode("utf-8")
            if not plain:
                self.cache.put(key, block)
        assert isinstance(block, bytes)  # this service caches encoded blocks only
        return block

    def hastebin_get(self, request: Request) -> Response:
        """``GET /documents/:key`` (section 9)."""
        found = self.visible_with_content(request, request.params["paste_id"])
        if found is None:
            raise NotFound("Not found", headers={"Cache-Control": "no-store"})
        paste, inline = found
        try:
            data = self.pastes.read_content(paste, inline).decode("utf-8", "replace")
        except FileNotFoundError:
            log.error("bytes missing for paste %s", paste.id)
            raise NotFound("Not found", headers={"Cache-Control": "no-store"}) from None
        response = Response.json({"key": paste.id, "data": data},
                                 headers=[("Cache-Control", cache_control(paste))])
        if request.method == "GET":
            self.count_view(paste)
        return response
