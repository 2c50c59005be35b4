"""The fetcher: one request, its redirects, and every check the safety model asks for."""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import replace

from .addresses import AllowList, IPAddress, is_blocked, parse_address, unmapped
from .connection import Deadline, PinnedConnection, Resolver, call_with_timeout, default_resolver
from .errors import (
    BadRedirect,
    DestinationBlocked,
    FetchError,
    FetchTimeout,
    ResolutionFailed,
    TooManyRedirects,
    network_error,
)
from .policy import OutboundPolicy
from .response import FetchResponse
from .urls import Target, join_location, parse_url

_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding",
                           "transfer-encoding"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_MANAGED_HEADERS = frozenset({"host", "connection", "content-length", "transfer-encoding"})


def _check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str) \
                or not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(value):
            raise FetchError("Invalid request header", detail=f"header {name!r}")
        if name.lower() in _MANAGED_HEADERS:
            continue
        out[name] = value.strip()
    return out


class Fetcher:
    """Opens outbound HTTP requests under an :class:`OutboundPolicy`.

    ``resolver(host, port)`` returns the host's addresses as strings (default:
    :func:`default_resolver`); it is called once per hop and never for IP
    literals. ``ssl_context`` replaces the default verifying context (for a
    private CA). A Fetcher holds no connections and is safe to share between threads.
    """

    def __init__(self, policy: OutboundPolicy | None = None,
                 resolver: Resolver | None = None, *,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.policy = policy or OutboundPolicy()
        self.resolver: Resolver = resolver or default_resolver
        self.ssl_context = ssl_context
        self._allowed = AllowList.parse(self.policy.allow)

    def check_url(self, url: str) -> list[str]:
        """Check ``url`` and resolve its host as :meth:`open` would; return the addresses.

        For validating a URL when it is saved (a webhook endpoint) without
        fetching it. Raises the same errors as :meth:`open`.
        """
        target = parse_url(url)
        deadline = Deadline(self.policy.total_timeout)
        return [str(a) for a in self._checked_addresses(target, deadline, self.policy)]

    def open(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
             origin_headers: Mapping[str, str] | None = None, body: bytes | None = None,
             follow_redirects: bool = True, timeouts: OutboundPolicy | None = None,
             ) -> FetchResponse:
        """Send one request (following redirects) and return the response, body unread.

        ``headers`` go to every hop, except ``Authorization``, ``Cookie`` and
        ``Proxy-Authorization``, which stop at the first hop to another origin
        (scheme, host or port); ``origin_headers`` go only to the origin of ``url``
        and are dropped for good at that hop too. Any 3xx is a redirect when
        ``follow_redirects``; 303 (and 301/302 after a POST) continue as ``GET``
        without the body; 307 and 308 repeat the method and body. Where ``origin_headers``
        and ``headers`` name the same field, ``origin_headers`` wins. ``timeouts`` overrides the policy's three time limits for
        this call. The caller must close the response. Raises :class:`FetchError`
        subclasses only.
        """
        policy = self.policy
        if timeouts is not None:
            policy = replace(policy, connect_timeout=timeouts.connect_timeout,
                             read_timeout=timeouts.read_timeout,
                             total_timeout=timeouts.total_timeout)
        method = method.upper()
        if not _HEADER_NAME.fullmatch(method):
            raise FetchError("Invalid request method", detail=repr(method))
        deadline = Deadline(policy.total_timeout)
        common = _check_headers(headers or {})
        for_origin = _check_headers(origin_headers or {})
        if not any(n.lower() == "user-agent" for n in common) and policy.user_agent:
            common["User-Agent"] = policy.user_agent
        target = parse_url(url)
        origin = target.origin
        crossed = False
        redirects = 0
        while True:
            if crossed:
                sent = {n: v for n, v in common.items() if n.lower() not in _CREDENTIAL_HEADERS}
            else:
                overridden = {n.lower() for n in for_origin}
                sent = {n: v for n, v in common.items() if n.lower() not in overridden}
                sent.update(for_origin)
            response = self._exchange(target, method, sent, body, deadline, policy)
            if not (follow_redirects and 300 <= response.status < 400):
                return response
            location = response.headers.get("location", "").strip()
            response.close()
            if not location:
                raise BadRedirect(detail=f"{response.status} without Location")
            redirects += 1
            if redirects > policy.max_redirects:
                raise TooManyRedirects(detail=f"more than {policy.max_redirects} redirects")
            target = parse_url(join_location(target.url, location))
            crossed = crossed or target.origin != origin
            if response.status == 303 and method != "HEAD" or \
                    response.status in (301, 302) and method == "POST":
                method, body = "GET", None
                common = {n: v for n, v in common.items() if n.lower() not in _BODY_HEADERS}

    def _checked_addresses(self, target: Target, deadline: Deadline,
                           policy: OutboundPolicy) -> list[IPAddress]:
        """Resolve once (spec step 4) and check every address (step 5)."""
        if target.literal is not None:
            addresses: list[IPAddress] = [target.literal]
        else:
            timeout = deadline.bound(policy.connect_timeout, "resolving")
            try:
                found = call_with_timeout(lambda: self.resolver(target.host, target.port),
                                          timeout)
            except FetchError:
                raise
            except Exception as exc:
                raise ResolutionFailed(detail=f"{type(exc).__name__}: {exc}") from exc
            if not found:
                raise ResolutionFailed(detail=f"no addresses for {target.host}")
            addresses = []
            for text in found:
                try:
                    addresses.append(parse_address(str(text)))
                except ValueError as exc:
                    raise DestinationBlocked(detail=f"unparseable address {text!r}") from exc
        if not self._allowed.host(target.host):
            for address in addresses:
                if is_blocked(address) and not self._allowed.address(address):
                    raise DestinationBlocked(detail=f"{target.host} -> {address}")
        return [unmapped(a) for a in addresses]

    def _exchange(self, target: Target, method: str, headers: dict[str, str],
                  body: bytes | None, deadline: Deadline, policy: OutboundPolicy,
                  ) -> FetchResponse:
        addresses = self._checked_addresses(target, deadline, policy)
        conn = self._connect(target, addresses, deadline, policy)
        try:
            sent = {"Host": target.host_header, **headers, "Connection": "close"}
            conn.request(method, target.request_target, body=body, headers=sent)
            response = conn.getresponse()
        except BaseException as exc:
            conn.close()
            if conn.raw_sock is not None:
                conn.raw_sock.close()
            if isinstance(exc, Exception):
                raise network_error(exc) from exc
            raise
        return FetchResponse(conn, response, target.url)

    def _connect(self, target: Target, addresses: list[IPAddress], deadline: Deadline,
                 policy: OutboundPolicy) -> PinnedConnection:
        """Connect to the first checked address that answers (all were checked)."""
        failure: FetchError | None = None
        for address in addresses:
            conn = PinnedConnection(target, address, deadline=deadline, policy=policy,
                                    ssl_context=self.ssl_context)
            try:
                conn.connect()
                return conn
            except Exception as exc:  # noqa: BLE001 - the next address may answer
                conn.close()
                failure = network_error(exc)
                if isinstance(failure, FetchTimeout) and deadline.remaining() <= 0:
                    break
        assert failure is not None
        raise failure
