"""Which addresses and hosts the fetcher refuses, and the allow list that overrides it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

BLOCKED_V4: tuple[ipaddress.IPv4Network, ...] = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4",
))
"""The IPv4 column of the CDN spec's blocked ranges."""

BLOCKED_V6: tuple[ipaddress.IPv6Network, ...] = tuple(ipaddress.IPv6Network(n) for n in (
    # The IPv6 column of the CDN spec.
    "::/128", "::1/128", "64:ff9b::/96", "fc00::/7", "fe80::/10",
    # Beyond the spec, for ranges that reach IPv4 or local networks some other way:
    "::/96",            # IPv4-compatible (deprecated), routed to IPv4 by some stacks
    "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    "64:ff9b:1::/48",   # local-use NAT64 (RFC 8215)
    "fec0::/10",        # site-local (deprecated)
    "ff00::/8",         # multicast, like 224.0.0.0/4
))
"""The IPv6 ranges refused outright; embedded IPv4 is checked by :func:`embedded_ipv4`."""

BLOCKED_NETWORKS: tuple[IPNetwork, ...] = BLOCKED_V4 + BLOCKED_V6

NOT_GLOBAL_NETWORKS: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    # Not globally reachable (IANA special-purpose registries), yet ``is_global``
    # says otherwise in some Python versions; listed so the rule does not depend on them.
    "192.88.99.0/24",  # 6to4 relay anycast (deprecated, RFC 7526)
    "2001::/23",       # IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
    "3fff::/20",       # documentation (RFC 9637)
))
"""Ranges refused as not globally routable on top of :func:`is_globally_routable`'s checks."""

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")


def parse_address(text: str) -> IPAddress:
    """An address as a resolver or URL gives it; zone suffixes (``%eth0``) are removed.

    Raises ``ValueError`` for anything that is not an IPv4 or IPv6 address.
    """
    return ipaddress.ip_address(text.split("%", 1)[0])


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: mapped, 6to4 and Teredo forms."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    if address in _MAPPED:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address in _SIX_TO_FOUR:
        return [ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)]
    if address in _TEREDO:
        server, client = address.teredo  # type: ignore[misc]
        return [server, client]
    return []


def is_globally_routable(address: IPAddress) -> bool:
    """True when ``address`` is a globally routable unicast address.

    That is ``ipaddress``'s ``is_global``, and never multicast, unspecified,
    loopback, link-local, site-local, reserved (for IPv6: outside ``2000::/3``
    and the other assigned blocks) or in :data:`NOT_GLOBAL_NETWORKS`.
    IPv4-mapped and 6to4 addresses are judged by the IPv4 address they embed.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address in _MAPPED or address in _SIX_TO_FOUR:
            # Routed by their IPv4 address. Python 3.11 calls every mapped address
            # reserved, and newer Pythons call all of 2002::/16 not global.
            return all(is_globally_routable(v4) for v4 in embedded_ipv4(address))
        if address.is_site_local:
            return False
    if any(address.version == net.version and address in net for net in NOT_GLOBAL_NETWORKS):
        return False
    if (address.is_multicast or address.is_unspecified or address.is_loopback
            or address.is_link_local or address.is_reserved):
        return False
    return address.is_global


def is_blocked(address: IPAddress) -> bool:
    """True when ``address`` (or an IPv4 address embedded in it) may not be reached.

    Blocked: the CDN spec's ranges and the extra IPv6 ones (:data:`BLOCKED_NETWORKS`),
    and every address that is not globally routable (:func:`is_globally_routable`:
    documentation, benchmarking, shared, reserved, Teredo, ...). The IPv4 address
    inside a mapped, 6to4 or Teredo address is checked the same way.
    """
    if isinstance(address, ipaddress.IPv4Address):
        if any(address in net for net in BLOCKED_V4):
            return True
    elif any(address in net for net in BLOCKED_V6):
        return True
    if not is_globally_routable(address):
        return True
    return any(is_blocked(v4) for v4 in embedded_ipv4(address))


def unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address behind an IPv4-mapped one (``::ffff:a.b.c.d``); others unchanged."""
    if isinstance(address, ipaddress.IPv6Address) and address in _MAPPED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def parse_allow_entry(entry: str) -> IPNetwork | str:
    """An allow-list entry: an IP or CIDR becomes a network, anything else a hostname.

    Raises ``ValueError`` for an entry that is neither.
    """
    text = entry.strip()
    try:
        return ipaddress.ip_network(text.split("%", 1)[0], strict=False)
    except ValueError:
        pass
    if not text or "/" in text:
        raise ValueError(f"not a hostname, IP or CIDR: {entry!r}")
    host = ascii_host(text.lower().rstrip("."))
    if is_odd_numeric_host(host):
        raise ValueError(f"not a hostname, IP or CIDR: {entry!r}")
    return host


_HOST_CHARS = re.compile(r"[a-z0-9_.-]+")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
CANONICAL_QUAD = re.compile(r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                            r"(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")


def ascii_host(host: str) -> str:
    """``host`` in lower-case ASCII (IDNA, so fullwidth digits become digits).

    Raises ``ValueError`` for empty or over-long labels and for characters that
    have no place in a hostname.
    """
    try:
        encoded = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"bad hostname {host!r}") from exc
    if not _HOST_CHARS.fullmatch(encoded):
        raise ValueError(f"bad hostname {host!r}")
    return encoded


def is_odd_numeric_host(host: str) -> bool:
    """True for a hostname that ends in a number but is not a canonical dotted quad.

    The C library parses ``2130706433``, ``0x7f.1``, ``017700000001`` and ``127.1``
    as IPv4 addresses; URL parsers disagree on them, so they are refused outright
    (the WHATWG "ends in a number" rule, with only ``a.b.c.d`` in decimal accepted).
    """
    labels = host.split(".")
    if labels and labels[-1] == "" and len(labels) > 1:
        labels = labels[:-1]
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return False
    return not CANONICAL_QUAD.fullmatch(host)


@dataclass
class AllowList:
    """Parsed allow-list entries: hostnames match exactly, networks match addresses."""

    hosts: set[str] = field(default_factory=set)
    networks: list[IPNetwork] = field(default_factory=list)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Raises ``ValueError`` for an entry that is not a hostname, IP or CIDR."""
        allowed = cls()
        for entry in entries:
            parsed = parse_allow_entry(entry)
            if isinstance(parsed, str):
                allowed.hosts.add(parsed)
            else:
                allowed.networks.append(parsed)
        return allowed

    def host(self, host: str) -> bool:
        return host.rstrip(".") in self.hosts

    def address(self, address: IPAddress) -> bool:
        candidates = {address, unmapped(address)}
        return any(a.version == net.version and a in net
                   for a in candidates for net in self.networks)
