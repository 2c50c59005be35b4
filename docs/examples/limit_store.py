"""Rate-limit and quota stores kept in process memory, selected with
``[limits] backend = "memory"``.

Counts are per process: fine for one worker, tests and demos. With several
workers each keeps its own counts; use the default ``sqlite`` store (or a
shared one such as Redis) there.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from hepcore import Config, Limit, RateDecision, hookimpl
from hepcore.clock import Clock, system_clock
from hepcore.db import Database
from hepcore.errors import QuotaExceeded
from hepcore.limits import Usage


class MemoryRateLimiter:
    """A sliding log per scope: exact rolling windows."""

    def __init__(self, clock: Clock = system_clock) -> None:
        self.clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, scope: str, limits: Sequence[Limit]) -> RateDecision:
        if not limits:
            return RateDecision(True)
        now = self.clock()
        refused: RateDecision | None = None
        with self._lock:
            hits = self._hits[scope]
            longest = max(limit.period for limit in limits)
            while hits and hits[0] <= now - longest:
                hits.popleft()
            for limit in limits:
                window = [ts for ts in hits if ts > now - limit.period]
                if len(window) >= limit.count:
                    # A slot frees when the (len - count + 1)-th oldest hit leaves the window.
                    oldest = window[len(window) - limit.count]
                    wait = max(1, math.ceil(oldest + limit.period - now))
                    # Retry-After must satisfy every limit: keep the longest wait.
                    if refused is None or wait > refused.retry_after:
                        refused = RateDecision(False, limit, wait)
            if refused is not None:
                return refused
            hits.append(now)
        return RateDecision(True)

    def reset(self, scope: str) -> None:
        with self._lock:
            self._hits.pop(scope, None)


class MemoryQuotaStore:
    def __init__(self) -> None:
        self._usage: dict[str, Usage] = {}
        self._lock = threading.Lock()

    def usage(self, scope: str) -> Usage:
        with self._lock:
            return self._usage.get(scope, Usage(0, 0))

    def charge(self, scope: str, nbytes: int, ncount: int = 1, *,
               limit_bytes: int | None = None, limit_count: int | None = None) -> Usage:
        with self._lock:
            used = self._usage.get(scope, Usage(0, 0))
            new = Usage(used.bytes + nbytes, used.count + ncount)
            if (limit_bytes is not None and new.bytes > limit_bytes) or (
                limit_count is not None and new.count > limit_count
            ):
                raise QuotaExceeded(used.bytes, used.count, limit_bytes, limit_count)
            self._usage[scope] = new
            return new

    def refund(self, scope: str, nbytes: int, ncount: int = 1) -> Usage:
        with self._lock:
            used = self._usage.get(scope, Usage(0, 0))
            new = Usage(max(0, used.bytes - nbytes), max(0, used.count - ncount))
            self._usage[scope] = new
            return new


def _memory_limits(config: Config, db: Database,
                   clock: Clock = system_clock) -> tuple[MemoryRateLimiter, MemoryQuotaStore]:
    # Taking ``clock`` gets the host's clock (a fake one in tests).
    return MemoryRateLimiter(clock), MemoryQuotaStore()


@hookimpl
def hepcore_limit_stores(config: Config) -> dict[str, Any]:
    return {"memory": _memory_limits}
