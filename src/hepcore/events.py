"""Events announced to plugins through ``hepcore_event`` after a change commits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("hepcore.events")


@dataclass(frozen=True)
class Event:
    """``name`` such as ``upload.created``; ``service``; ``account_id``; ``data``
    the service's public fields of the item."""

    name: str
    service: str
    account_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
