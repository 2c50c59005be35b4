"""Reading routes of the uploader: ``GET /:ID`` (files, shortlinks, embeds),
``GET /api/oembed`` and ``GET /uploadCounter``. A mixin of the service."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from hepcore.errors import BadRequest, NotFound, NotFoundError, NotImplementedFormat
from hepcore.http import Request, Response, StreamBody
from hepcore.serving import SANDBOX_CSP, content_disposition, is_active_type, serve_object

from .embeds import EMBED_CSP, embed_page, embeddable, is_bot, oembed_document, oembed_url
from .store import Item
from .types import OCTET
from .urls import bare_host, parse_http_url

if TYPE_CHECKING:
    from hepcore.accounts import Account
    from hepcore.runtime import Runtime
    from hepcore.storage import Storage

    from .service import Policy
    from .store import ItemStore

log = logging.getLogger("hepcore.uploader")

NOT_FOUND_HTML = (
    b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title>"
    b"</head><body><h1>404</h1><p>Nothing lives here.</p></body></html>"
)


def not_found_page() -> Response:
    return Response(404, [("Content-Type", "text/html; charset=utf-8"),
                          ("X-Content-Type-Options", "nosniff")], NOT_FOUND_HTML)


def ascii_location(url: str) -> str:
    """``url`` as a URI reference a ``Location`` header can carry, encoded as
    browsers encode what is typed in the address bar: an IDNA host, non-ASCII
    characters percent-encoded as UTF-8, and so are controls, spaces, ``"``,
    ``<``, ``>``, `````, ``{`` and ``}``; anything else is unchanged."""
    if url.isascii():
        return _UNSAFE_ASCII.sub(_percent, url)
    parts = urlsplit(url)
    netloc = parts.netloc
    host = parts.hostname or ""
    if not host.isascii():
        try:
            netloc = netloc.replace(host, host.encode("idna").decode("ascii"), 1)
        except UnicodeError:
            pass  # left to the percent-encoding below
    encoded = urlunsplit(parts._replace(netloc=netloc))
    return _UNSAFE_ASCII.sub(_percent, "".join(c if c.isascii() else quote(c, safe="")
                                               for c in encoded))


# Characters no URI may hold raw (RFC 3986) that a browser percent-encodes in
# every part of a URL; "%" is kept, so percent-encoded targets stay as they are.
_UNSAFE_ASCII = re.compile(r'[\x00-\x20"<>`{}\x7f]')


def _percent(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


class ReadingRoutes:
    if TYPE_CHECKING:
        # Provided by UploaderService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        runtime: Runtime
        items: ItemStore
        storage: Storage
        service_name: str
        serve_base_url: str | None
        bot_tokens: tuple[str, ...]

        def public_base(self, request: Request) -> str: ...
        def policy_for(self, account: Account) -> Policy: ...
        def serve_base(self, request: Request | None, policy: Policy) -> str: ...
        def account_serve_hosts(self) -> dict[str, str]: ...

    def host_owner(self, host: str) -> str | None:
        """The account whose serve base is ``host`` (a ``Host`` header, port
        allowed, or a URL's host), if any (section 1)."""
        # "dave.example." is the same host as "dave.example" (a fully qualified name).
        return self.account_serve_hosts().get(bare_host(host))

    def item_url(self, item: Item, request: Request | None) -> str:
        """The public URL of an item, as ``POST /upload`` returned it."""
        account = self.runtime.accounts.get(item.account_id)
        return f"{self.serve_base(request, self.policy_for(account))}/{item.id}"

    def serve(self, request: Request) -> Response:
        name = request.params["item_id"]
        item = self.items.resolve(name, self.host_owner(request.host))
        if item is None:
            return not_found_page()
        is_get = request.method == "GET"
        if item.kind == "link":
            if is_get:
                self._count_view(item)
            # An explicit Content-Type: WSGI validators (falcon.testing) require
            # one, and an embedding app would otherwise add its own default.
            return Response(302, [("Location", ascii_location(item.link or "/")),
                                  ("Cache-Control", "private, max-age=0"),
                                  ("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", "0")], b"")
        content_type = item.type or OCTET
        if (is_get and embeddable(content_type) and request.query_value("embed") != "raw"
                and is_bot(request.header("user-agent"), self.bot_tokens)):
            return self._embed(request, item, content_type)
        headers = [
            ("Content-Disposition", content_disposition("inline", item.id)),
            ("Cache-Control", "public, max-age=31536000, immutable"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        if is_active_type(content_type, self.runtime.config.active_types):
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
            return not_found_page()
        if served.from_start and is_get:
            try:
                self._count_view(item)
            except BaseException:  # WriteWouldBlock on an event loop: served again in a thread
                body = served.response.body
                if isinstance(body, StreamBody):
                    body.stream.close()
                raise
        return served.response

    def _embed(self, request: Request, item: Item,
               content_type: str) -> Response:
        url = self.item_url(item, request)
        page = embed_page(item_id=item.id, url=url, content_type=content_type,
                          width=item.width, height=item.height, site_name=self.service_name,
                          oembed_url=oembed_url(self.public_base(request), url))
        return Response(200, [
            ("Content-Type", "text/html; charset=utf-8"), ("Vary", "User-Agent"),
            ("Cache-Control", "public, max-age=3600"), ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", EMBED_CSP)], page)

    def _count_view(self, item: Item) -> None:
        try:
            self.items.add_view(item.id)
        except Exception:  # counting is best-effort and never fails the request
            log.warning("could not count a view of %s", item.id, exc_info=True)

    def oembed(self, request: Request) -> Response:
        # Errors too: a page's script asking for an embed can then read why not.
        anyone = {"Access-Control-Allow-Origin": "*"}
        url = request.query_value("url")
        if not url:
            raise BadRequest("Missing url parameter", headers=anyone)
        fmt = request.query_value("format")
        if fmt is not None and fmt != "json":
            raise NotImplementedFormat("Unsupported format", headers=anyone)
        item = self._item_from_url(url, request)
        if item is None:
            raise NotFound("Not found", headers=anyone)
        item_url = self.item_url(item, request)
        doc = oembed_document(item_id=item.id, url=item_url, content_type=item.type or OCTET,
                              width=item.width, height=item.height,
                              provider_name=self.service_name,
                              provider_url=self.public_base(request))
        response = Response.json(doc)
        response.headers.append(("Access-Control-Allow-Origin", "*"))
        return response

    def _item_from_url(self, url: str, request: Request) -> Item | None:
        """The live item an item URL of this service names (section 6), else ``None``.

        The URL must be ``<base>/<ID>`` (query and fragment aside) for a base
        items are served on: the public base (as URLs for this request are
        built), the configured serve base, or the serve base of the account
        whose host the URL is on. Origins compare as browsers do (scheme, host
        in any case and without a trailing dot, port with the default filled
        in). On an account's serve host only that account's items resolve, as
        for ``GET /:ID``.
        """
        target = parse_http_url(url)
        if target is None or target.userinfo is not None:
            return None
        owner = self.host_owner(target.host)
        bases = [self.public_base(request), self.serve_base_url]
        if owner is not None:
            bases.append(self._account_serve_base(owner))
        for base in bases:
            parsed = parse_http_url(base) if base else None
            if parsed is None or parsed.origin != target.origin:
                continue
            prefix = parsed.path.rstrip("/") + "/"
            name = target.path[len(prefix):] if target.path.startswith(prefix) else ""
            if name and "/" not in name:
                return self.items.resolve(unquote(name), owner)
        return None

    def _account_serve_base(self, account_id: str) -> str | None:
        try:
            account = self.runtime.accounts.get(account_id)
        except NotFoundError:  # removed since the serve hosts were cached
            return None
        return self.policy_for(account).serve_base

    def upload_counter(self, request: Request) -> Response:
        return Response.json({"count": self.runtime.counter("uploader.uploads")})
