"""Quota tiers (C6, spec section 5) and the whole-batch quota plan (6.4 step 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hepcore.accounts import Account
from hepcore.outbound import human_size

MB = 1024 * 1024
GB = 1024 * MB
TIERS: dict[str, tuple[int, int]] = {
    "unverified": (10 * MB, 50 * MB),
    "verified": (100 * MB, 50 * GB),
    "functionally_unlimited": (500 * MB, 300 * GB),
}
"""``quota_tier`` -> (per-file limit, total limit), in bytes."""
DEFAULT_TIER = "unverified"
MAX_BATCH = 40


@dataclass(frozen=True)
class Quota:
    """One account's limits and usage."""

    tier: str
    per_file: int
    total: int
    used: int

    @property
    def remaining(self) -> int:
        return max(self.total - self.used, 0)

    def body(self) -> dict[str, Any]:
        """The ``quota`` member of a 402 body."""
        pct = 0.0
        if self.total > 0:
            exact = Decimal(self.used) * 100 / Decimal(self.total)
            pct = float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        return {"storage_used": self.used, "storage_limit": self.total,
                "quota_tier": self.tier, "percentage_used": pct}


def scope_of(account_id: str) -> str:
    """The quota-store scope of an account's CDN usage."""
    return f"cdn:{account_id}"


def limits_for(account: Account, tiers: Mapping[str, tuple[int, int]],
               default_tier: str) -> tuple[str, int, int]:
    """(tier, per-file, total) of ``account``: its ``quota_tier`` setting (an
    unknown tier counts as the default), then the per-account overrides
    ``cdn_max_file_size`` and ``cdn_storage_limit``."""
    tier = str(account.setting("quota_tier", default_tier))
    if tier not in tiers:
        tier = default_tier
    per_file, total = tiers[tier]
    per_file = int(account.setting("cdn_max_file_size", per_file))
    total = int(account.setting("cdn_storage_limit", total))
    return tier, per_file, total


@dataclass(frozen=True)
class Decision:
    """The plan for one file of a batch: accepted, or refused with ``reason``."""

    accepted: bool
    reason: str = ""


def plan_batch(sizes: Sequence[int], quota: Quota) -> list[Decision]:
    """Decide every file of a batch before anything is stored, in request order.

    Files past the 40th fail with ``Too many files in batch (maximum is 40)``;
    with usage already at or above the total every file fails with ``Storage
    quota already exceeded``; a file above the per-file limit fails with
    ``File size (<size>) exceeds limit of <limit>``; a file that would take
    usage plus the bytes accepted so far above the total fails with ``Would
    exceed storage quota (<remaining> remaining)``.
    """
    decisions: list[Decision] = []
    accepted = 0
    for index, size in enumerate(sizes):
        if index >= MAX_BATCH:
            decisions.append(Decision(False, f"Too many files in batch (maximum is {MAX_BATCH})"))
        elif quota.used >= quota.total:
            decisions.append(Decision(False, "Storage quota already exceeded"))
        elif size > quota.per_file:
            decisions.append(Decision(False, f"File size ({human_size(size)}) exceeds limit of"
                                      f" {human_size(quota.per_file)}"))
        elif quota.used + accepted + size > quota.total:
            left = max(quota.total - quota.used - accepted, 0)
            decisions.append(Decision(False, f"Would exceed storage quota ({human_size(left)}"
                                      " remaining)"))
        else:
            accepted += size
            decisions.append(Decision(True))
    return decisions
