"""The errors of the outbound fetcher: a short ``reason`` for users, ``detail`` for logs."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ..errors import HepcoreError

TIMED_OUT = "Failed to download: timed out"
CONNECTION_FAILED = "Failed to download: connection failed"
NOT_ALLOWED = "IP address not allowed"


class FetchError(HepcoreError):
    """A fetch failed. ``reason`` is short human text; ``detail`` is for logs only."""

    default_reason = CONNECTION_FAILED

    def __init__(self, reason: str | None = None, *, detail: str | None = None) -> None:
        self.reason = reason if reason is not None else self.default_reason
        self.detail = detail
        super().__init__(self.reason)


class InvalidURL(FetchError):
    """The URL (or a redirect's ``Location``) is not an absolute http(s) URL with a host."""

    default_reason = "Invalid URL"


class DestinationBlocked(FetchError):
    """A private, reserved or unparseable address, or a host written as an odd numeric IP."""

    default_reason = NOT_ALLOWED


class ResolutionFailed(FetchError):
    """The host has no addresses."""

    default_reason = "Couldn't resolve host."


class ConnectionFailed(FetchError):
    """A network, TLS or HTTP protocol failure (including a body cut short)."""

    default_reason = CONNECTION_FAILED


class TooManyRedirects(FetchError):
    """More than ``max_redirects`` redirects."""

    default_reason = "Failed to download: too many redirects"


class BadRedirect(FetchError):
    """A 3xx response without a ``Location`` to follow."""

    default_reason = "Failed to download: redirect without a location"


class ResponseTooLarge(FetchError):
    """The body is (or announces itself) larger than the caller's ``limit``."""

    def __init__(self, limit: int, *, detail: str | None = None) -> None:
        self.limit = limit
        super().__init__(f"File too large: exceeds limit of {human_size(limit)}", detail=detail)


class FetchTimeout(FetchError):
    """The connect, per-read or total time limit passed."""

    default_reason = TIMED_OUT


def human_size(n: int) -> str:
    """``n`` bytes in the CDN's format (cdn.md 4.4): ``1 Byte``, ``1023 Bytes``, ``1.18 MB``."""
    if n < 1024:
        return "1 Byte" if n == 1 else f"{n} Bytes"
    units = ("KB", "MB", "GB", "TB")
    exponent = 1
    while exponent < len(units) and n >= 1024 ** (exponent + 1):
        exponent += 1
    value = Decimal(n) / Decimal(1024**exponent)
    rounded = value.quantize(Decimal(1).scaleb(value.adjusted() - 2), rounding=ROUND_HALF_UP)
    return f"{format(rounded.normalize(), 'f')} {units[exponent - 1]}"


def network_error(exc: BaseException) -> FetchError:
    if isinstance(exc, FetchError):
        return exc
    if isinstance(exc, TimeoutError):
        return FetchTimeout(detail=str(exc) or type(exc).__name__)
    return ConnectionFailed(detail=f"{type(exc).__name__}: {exc}")
