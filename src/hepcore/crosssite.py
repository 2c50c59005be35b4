"""Is this a request another site made the browser send? For services that
take a cookie: a cookie is an ambient credential and a key is not. The login
plugin's sign-in button and the paste service's signed-in writes use it."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from .http import Request

CROSS_SITE_REFUSED = "Cross-site request refused"
# Fetch metadata a browser sends only for requests of this origin, or that the
# user started (address bar, bookmark): no other site can cause either.
SAFE_FETCH_SITES = frozenset({"same-origin", "none"})


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]``, lower-case, without the scheme's default port;
    ``None`` for a URL that does not parse (``http://[``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.netloc.rpartition("@")[2]).lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}"


def cross_site(request: Request, own_bases: Iterable[str]) -> bool:
    """True for a request another site made a browser send.

    ``Sec-Fetch-Site`` decides when present: ``same-origin`` and ``none`` pass,
    anything else (``same-site``, ``cross-site``, unknown) does not. Browsers
    compute it themselves, so it holds behind proxies and under
    ``Referrer-Policy: no-referrer``, where a same-origin form POST carries
    ``Origin: null``. Without it (older browsers, non-browser clients)
    ``Origin`` decides: absent passes (curl), and ``null``, an origin that does
    not parse, or one not among the origins of ``own_bases`` (URLs such as the
    request's own base and the service's public base) does not.
    """
    fetch_site = request.header("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in SAFE_FETCH_SITES
    origin = request.header("origin")
    if origin is None:
        return False
    origin = origin.strip()
    own = {origin_of(base) for base in own_bases} - {None}
    # An Origin that does not parse is nobody's own.
    return origin == "null" or origin_of(origin) not in own
