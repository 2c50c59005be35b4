"""Rate limits and quotas that hold across every worker process on one machine.

A :class:`RateLimiter` counts hits in rolling windows (``30 per 60 s``
*and* ``2000 per 86400 s`` for one scope) and says how many seconds until
the next hit would be accepted. A :class:`QuotaStore` keeps byte and count
usage per scope. The SQLite implementations are the defaults; a Redis
store can implement the same protocols.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .clock import Clock, system_clock
from .db import Database
from .errors import QuotaExceeded


@dataclass(frozen=True)
class Limit:
    """At most ``count`` hits in any rolling ``period`` seconds."""

    count: int
    period: float
    name: str = ""


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one hit: allowed, or refused by ``limit`` for ``retry_after`` seconds."""

    allowed: bool
    limit: Limit | None = None
    retry_after: int = 0


class RateLimiter(Protocol):
    """Counts hits per scope (for example ``uploader:upload:acc_123``).

    ``hit`` records one hit when every limit allows it and returns an
    allowed decision; otherwise it records nothing and returns the refusing
    limit with the longest wait, with ``retry_after`` >= 1: the whole seconds
    until the hit would be accepted by every limit. Must be atomic across
    threads and processes.
    """

    def hit(self, scope: str, limits: Sequence[Limit]) -> RateDecision: ...

    def reset(self, scope: str) -> None: ...


class SQLiteRateLimiter:
    """A sliding-log limiter in the core database: exact rolling windows.

    Each hit is a row of ``rate_hits``, and ``rate_counts`` (kept by
    triggers) holds how many rows a scope has, so the longest limit is
    checked without counting rows (a scope with a generous limit can hold
    many thousands). Rows older than the longest period are deleted only
    when they could matter: when the stored rows reach the longest limit
    (expired rows can only overstate the count, so fewer rows than the
    limit is an exact "allowed"), and every :data:`PRUNE_EVERY` rows, which
    bounds what a generous limit keeps. Most hits are thus one read and one
    insert. Shorter limits count at most ``limit.count`` rows. A scope must
    always be hit with the same limits: a call with a shorter longest period
    forgets the older hits a longer one needs.
    """

    PRUNE_EVERY = 64

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock

    def hit(self, scope: str, limits: Sequence[Limit]) -> RateDecision:
        if not limits:
            return RateDecision(True)
        now = self.clock()
        longest = max(limit.period for limit in limits)
        refused: RateDecision | None = None
        longest_count = min(limit.count for limit in limits if limit.period >= longest)
        # Not durable: hits lost in a power cut only make a limit more lenient.
        with self.db.write(durable=False) as conn:
            # Triggers keep rate_counts in step with rate_hits.
            row = conn.execute("SELECT n FROM rate_counts WHERE scope = ?", (scope,)).fetchone()
            kept = row[0] if row else 0
            if kept and (kept >= longest_count or kept % self.PRUNE_EVERY == 0) and \
                    conn.execute("DELETE FROM rate_hits WHERE scope = ? AND ts <= ?",
                                 (scope, now - longest)).rowcount:
                (kept,) = conn.execute("SELECT n FROM rate_counts WHERE scope = ?",
                                       (scope,)).fetchone()
            for limit in limits:
                since = now - limit.period
                if limit.period >= longest:
                    count = kept
                else:
                    (count,) = conn.execute(
                        "SELECT count(*) FROM (SELECT 1 FROM rate_hits WHERE scope = ?"
                        " AND ts > ? LIMIT ?)", (scope, since, limit.count)).fetchone()
                if count >= limit.count:
                    wait = self._wait(conn, scope, since, limit, now)
                    # Retry-After must hold for every limit, not just the first refusing one.
                    if refused is None or wait > refused.retry_after:
                        refused = RateDecision(False, limit, wait)
            if refused is None:
                conn.execute("INSERT INTO rate_hits (scope, ts) VALUES (?, ?)", (scope, now))
        return refused or RateDecision(True)

    @staticmethod
    def _wait(conn: Any, scope: str, since: float, limit: Limit, now: float) -> int:
        """Whole seconds until ``limit`` accepts a hit: until the hit that frees a
        slot, the (count - limit + 1)-th oldest in the window, leaves it."""
        (count,) = conn.execute("SELECT count(*) FROM rate_hits WHERE scope = ? AND ts > ?",
                                (scope, since)).fetchone()
        row = conn.execute(
            "SELECT ts FROM rate_hits WHERE scope = ? AND ts > ? ORDER BY ts LIMIT 1 OFFSET ?",
            (scope, since, max(0, count - limit.count))).fetchone()
        oldest = row[0] if row else now
        return max(1, math.ceil(oldest + limit.period - now))

    def reset(self, scope: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM rate_hits WHERE scope = ?", (scope,))
            conn.execute("DELETE FROM rate_counts WHERE scope = ?", (scope,))


@dataclass(frozen=True)
class Usage:
    bytes: int
    count: int


class QuotaStore(Protocol):
    """Byte and count usage per scope (for example ``cdn:acc_123``).

    ``charge`` adds ``nbytes``/``ncount`` only if the result stays within
    both limits (``None`` = unlimited; a limit is inclusive), else raises
    :class:`~hepcore.errors.QuotaExceeded` and changes nothing. ``refund``
    subtracts (never below zero). When the caller holds a database write
    transaction, the SQLite store joins it, so a charge commits or rolls
    back with the row it pays for.
    """

    def usage(self, scope: str) -> Usage: ...

    def charge(self, scope: str, nbytes: int, ncount: int = 1, *,
               limit_bytes: int | None = None, limit_count: int | None = None) -> Usage: ...

    def refund(self, scope: str, nbytes: int, ncount: int = 1) -> Usage: ...


class SQLiteQuotaStore:
    """The default :class:`QuotaStore`, in the core database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def usage(self, scope: str) -> Usage:
        row = self.db.one("SELECT bytes, count FROM quota_usage WHERE scope = ?", (scope,))
        return Usage(row[0], row[1]) if row else Usage(0, 0)

    def charge(self, scope: str, nbytes: int, ncount: int = 1, *,
               limit_bytes: int | None = None, limit_count: int | None = None) -> Usage:
        with self.db.write():
            used = self.usage(scope)
            new = Usage(used.bytes + nbytes, used.count + ncount)
            if (limit_bytes is not None and new.bytes > limit_bytes) or (
                limit_count is not None and new.count > limit_count
            ):
                raise QuotaExceeded(used.bytes, used.count, limit_bytes, limit_count)
            self._set(scope, new)
        return new

    def refund(self, scope: str, nbytes: int, ncount: int = 1) -> Usage:
        with self.db.write():
            used = self.usage(scope)
            new = Usage(max(0, used.bytes - nbytes), max(0, used.count - ncount))
            self._set(scope, new)
        return new

    def _set(self, scope: str, usage: Usage) -> None:
        self.db.execute(
            "INSERT INTO quota_usage (scope, bytes, count) VALUES (?, ?, ?)"
            " ON CONFLICT(scope) DO UPDATE SET bytes = excluded.bytes, count = excluded.count",
            (scope, usage.bytes, usage.count),
        )
