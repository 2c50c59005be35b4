"""http(s) URLs checked the way a browser would take them: the shortlink test
(U4) and the item URLs ``GET /api/oembed`` accepts (section 6).

``urllib.parse.urlsplit`` takes almost anything as a host or a port. A WHATWG
URL parser (browsers, Node's ``new URL``) refuses a host holding a forbidden
code point and a port that is not a number up to 65535; so does
:func:`parse_http_url`, so that a value it accepts can be sent as ``Location``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# The WHATWG forbidden host code points, and "%": hosts are not percent-decoded here.
FORBIDDEN_HOST = frozenset("\x00\t\n\r #/:<>?@[\\]^|%")


@dataclass(frozen=True)
class HttpUrl:
    """An absolute http(s) URL: ``host`` lower-cased (an IPv6 literal without
    its brackets, compressed), ``port`` the scheme's default when none is given."""

    scheme: str
    userinfo: str | None
    host: str
    port: int
    path: str

    @property
    def origin(self) -> tuple[str, str, int]:
        """Scheme, host and port; ``h.example.`` is the same host as ``h.example``."""
        return self.scheme, self.host.rstrip("."), self.port


def parse_http_url(value: str) -> HttpUrl | None:
    """``value`` as an absolute http(s) URL with a valid host and port, else ``None``."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or "\\" in parts.netloc:
        # A browser ends the authority at a backslash; urlsplit does not.
        return None
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        literal = hostport[1:end]
        if end < 0 or "%" in literal:  # no zone IDs in URLs
            return None
        try:
            host = ipaddress.IPv6Address(literal).compressed
        except ValueError:
            return None
        rest = hostport[end + 1 :]
    else:
        host, colon, port = hostport.partition(":")
        rest = colon + port
        if not host or any(c in FORBIDDEN_HOST or c.isspace() for c in host):
            return None
        host = host.lower()
    port_number = DEFAULT_PORTS[parts.scheme]
    if rest:
        if not rest.startswith(":"):  # "[::1]x"
            return None
        digits = rest[1:]
        if digits:  # an empty port ("h:/") is the default one
            if not (digits.isascii() and digits.isdigit()):
                return None
            # Leading zeros are allowed ("0080"); the length check keeps int()
            # away from a huge digit string.
            significant = digits.lstrip("0") or "0"
            if len(significant) > 5 or int(significant) > 65535:
                return None
            port_number = int(significant)
    return HttpUrl(parts.scheme, userinfo if at else None, host, port_number, parts.path)


def bare_host(host: str) -> str:
    """A ``Host`` header value (or a URL's host) as a plain lower-case name:
    no port, no IPv6 brackets, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return host
    return host.rstrip(".")


# An IPv4 address as a browser also reads it: up to four decimal, octal or hex parts.
_IPV4_SPELLING = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")


def canonical_host(host: str) -> str:
    """``host`` (a URL's hostname) as a browser resolves it, to compare hosts: lower
    case without a trailing dot, an internationalised name in its IDNA form
    (full-width letters and ideographic full stops included), an IPv4 address
    spelt in decimal, octal or hex (``0x7f000001``, ``127.1``) dotted-decimal, and
    an IPv4-mapped IPv6 address as its IPv4 address."""
    host = host.lower().rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").rstrip(".")
        except UnicodeError:
            return host
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return host
        mapped = address.ipv4_mapped
        return str(mapped) if mapped is not None else address.compressed
    if _IPV4_SPELLING.fullmatch(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return host
    return host
