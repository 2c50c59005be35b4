"""An event observer: append every event to a JSON-lines file (audit, webhooks, stats)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from hepcore import Event, hookimpl


class EventLog:
    """A plugin object: register an instance, ``plugins=[EventLog(path)]``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @hookimpl
    def hepcore_event(self, event: Event) -> None:
        line = json.dumps({"name": event.name, "service": event.service,
                           "account_id": event.account_id, "at": event.at, "data": event.data})
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
