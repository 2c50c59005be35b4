"""The safe outbound HTTP fetcher: server-side requests to URLs that users supply.

:class:`Fetcher` implements the URL fetch safety model of the CDN spec (section 7),
which webhooks reuse (see docs/outbound.md):

- only ``http`` and ``https``; no userinfo; hosts written as odd numeric IPv4
  (``2130706433``, ``0x7f.1``, ``127.1``) are refused (:mod:`.urls`);
- the host is resolved once, **every** address is checked against the blocked
  ranges and must be globally routable (:func:`is_blocked`, embedded IPv4
  unwrapped; :mod:`.addresses`); an allow list overrides that check; and the
  connection goes to a checked address by IP, never through a second lookup; TLS
  still verifies (and sends SNI for) the URL's hostname (:mod:`.connection`);
- every redirect target is checked the same way; at most ``max_redirects`` hops;
  credentials are dropped for good at the first cross-origin hop (:mod:`.fetcher`);
- connect, per-read and whole-exchange (body included) time limits;
- the body is streamed with a byte cap (:mod:`.response`); proxy settings of the
  environment are never used (only :mod:`http.client`, :mod:`socket` and :mod:`ssl`).

Every failure is a :class:`FetchError` whose ``reason`` is short text fit for users
(the CDN answers ``Upload failed: <reason>``); ``detail`` says more, for logs.
"""

from __future__ import annotations

from .addresses import (
    BLOCKED_NETWORKS,
    BLOCKED_V4,
    BLOCKED_V6,
    NOT_GLOBAL_NETWORKS,
    embedded_ipv4,
    is_blocked,
    is_globally_routable,
    is_odd_numeric_host,
    parse_address,
    parse_allow_entry,
)
from .connection import Resolver, default_resolver
from .errors import (
    CONNECTION_FAILED,
    NOT_ALLOWED,
    TIMED_OUT,
    BadRedirect,
    ConnectionFailed,
    DestinationBlocked,
    FetchError,
    FetchTimeout,
    InvalidURL,
    ResolutionFailed,
    ResponseTooLarge,
    TooManyRedirects,
    human_size,
)
from .fetcher import Fetcher
from .policy import OutboundPolicy
from .response import FetchResponse, ResponseHeaders

__all__ = [
    "BLOCKED_NETWORKS", "BLOCKED_V4", "BLOCKED_V6", "CONNECTION_FAILED", "NOT_ALLOWED",
    "NOT_GLOBAL_NETWORKS", "TIMED_OUT", "BadRedirect", "ConnectionFailed", "DestinationBlocked",
    "FetchError", "FetchResponse", "FetchTimeout", "Fetcher", "InvalidURL", "OutboundPolicy",
    "ResolutionFailed", "Resolver", "ResponseHeaders", "ResponseTooLarge", "TooManyRedirects",
    "default_resolver", "embedded_ipv4", "human_size", "is_blocked", "is_globally_routable",
    "is_odd_numeric_host", "parse_address", "parse_allow_entry",
]
