"""Time and random identifiers, injectable for tests."""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""A function returning the current UNIX time in seconds."""

system_clock: Clock = time.time

URLSAFE = string.ascii_letters + string.digits + "_-"
ALNUM = string.ascii_letters + string.digits
LOWER_HEX = "0123456789abcdef"
# A date, or a date and time with an optional UTC offset, in ISO-8601's
# extended form. datetime.fromisoformat alone also takes whitespace and NULs
# after the value, a dot without digits and offsets with seconds.
_ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
                     r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?")


def random_string(length: int, alphabet: str = URLSAFE) -> str:
    """Return ``length`` characters drawn uniformly from ``alphabet`` with :mod:`secrets`."""
    n = len(alphabet)
    if not 0 < n <= 256:
        return "".join(secrets.choice(alphabet) for _ in range(length))
    # One random byte per character: bytes below the largest multiple of n
    # map uniformly onto the alphabet (all of them for 16 or 64 characters);
    # the rest are drawn again.
    accept = 256 - 256 % n
    out: list[str] = []
    while len(out) < length:
        out += [alphabet[b % n] for b in secrets.token_bytes(length - len(out)) if b < accept]
    return "".join(out)


def iso_ms(ts: float) -> str:
    """Format a UNIX time as ISO-8601 UTC with milliseconds: ``2026-08-27T00:00:00.000Z``."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_s(ts: float) -> str:
    """Format a UNIX time as ISO-8601 UTC with seconds: ``2026-01-29T12:00:00Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso_datetime(value: str) -> datetime:
    """Parse an ISO-8601 timestamp (``2026-01-31``, ``2026-01-31T12:00``, seconds
    and fractions optional, ``Z`` or an offset; naive means UTC) to an aware
    ``datetime`` (digits past the microsecond are dropped).

    Raises :class:`ValueError` for anything else, surrounding whitespace included.
    """
    if not _ISO_RE.fullmatch(value):
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}")
    text = value
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def parse_iso(value: str) -> float:
    """:func:`parse_iso_datetime` as UNIX time."""
    return parse_iso_datetime(value).timestamp()
