"""Parsing and checking a URL (or a redirect's ``Location``) before any I/O."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from .addresses import CANONICAL_QUAD, IPAddress, ascii_host, is_odd_numeric_host, parse_address
from .errors import DestinationBlocked, InvalidURL

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """One checked URL: where to connect and what to send."""

    url: str
    scheme: str
    host: str              # ASCII, lower case; IPv6 without brackets or zone
    port: int
    literal: IPAddress | None
    request_target: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def encode_target(path: str, query: str) -> str:
    """The request target (path and query) as http.client can send it."""
    target = path or "/"
    if query:
        target += "?" + query
    # Browsers percent-encode spaces, controls and non-ASCII; http.client refuses them.
    return re.sub(r"[^\x21-\x7e]+", lambda m: quote(m.group(), safe=""), target)


def parse_url(url: str) -> Target:
    """Check the URL's form (spec steps 1-3 and the numeric-host rule); no I/O."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidURL()
    url = url.strip()
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be sent (nor percent-encoded)
        raise InvalidURL() from None
    try:
        parts: SplitResult = urlsplit(url)
        scheme = parts.scheme.lower()
        netloc = parts.netloc
        hostname = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(detail=str(exc)) from exc
    if not scheme or not url.lower().startswith(scheme + ":"):
        raise InvalidURL()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL("URL scheme must be http or https.")
    if not netloc or not hostname:
        raise InvalidURL("Invalid host")
    if "@" in netloc:
        raise InvalidURL(detail="userinfo in URL")
    if port == 0:
        raise InvalidURL(detail="port 0")
    literal: IPAddress | None = None
    if netloc.startswith("["):
        try:
            literal = parse_address(hostname)
        except ValueError as exc:
            raise InvalidURL(detail=str(exc)) from exc
        if not isinstance(literal, ipaddress.IPv6Address):
            raise InvalidURL(detail="not an IPv6 literal")
        host = str(literal)
    else:
        try:
            host = ascii_host(hostname)
        except ValueError as exc:  # spec step 3's "Invalid host" is for an empty host only
            raise InvalidURL(detail=str(exc)) from exc
        if is_odd_numeric_host(host):
            raise DestinationBlocked(detail=f"numeric host {host!r} is not a dotted quad")
        if CANONICAL_QUAD.fullmatch(host):
            literal = ipaddress.IPv4Address(host)
    return Target(url=url, scheme=scheme, host=host,
                  port=port if port is not None else DEFAULT_PORTS[scheme],
                  literal=literal, request_target=encode_target(parts.path, parts.query))


def join_location(base: str, location: str) -> str:
    """A redirect's ``Location`` resolved against the URL that answered with it."""
    try:
        # http.client decodes header bytes as latin-1; Location is UTF-8 in practice.
        location = location.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    try:
        return urljoin(base, location)
    except ValueError as exc:
        raise InvalidURL(detail=f"bad Location {location!r}") from exc
