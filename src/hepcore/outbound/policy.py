"""The policy a :class:`~hepcore.outbound.Fetcher` follows."""

from __future__ import annotations

from dataclasses import dataclass

from .addresses import parse_allow_entry


@dataclass(frozen=True)
class OutboundPolicy:
    """What a :class:`Fetcher` may reach and how long it waits.

    ``allow`` lists hostnames (exact, case-insensitive), IPs and CIDRs that may be
    reached although their addresses are in a blocked range; they skip only that
    check. ``read_timeout`` is the longest silence between two reads;
    ``total_timeout`` bounds the whole exchange, redirects and body included.
    """

    allow: tuple[str, ...] = ()
    max_redirects: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 120.0
    user_agent: str = "hepcore"

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):
            object.__setattr__(self, "allow", (self.allow,))
        else:
            object.__setattr__(self, "allow", tuple(self.allow))
        for entry in self.allow:
            parse_allow_entry(entry)
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
