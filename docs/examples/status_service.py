"""A service: read-only status notices at ``/status`` (its own table, routes
and envelope), mounted like the built-in services."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from hepcore import OkEnvelope, Request, Response, Route, Runtime, Service, hookimpl
from hepcore.errors import NotFound

migrations = Migrations("status_notices")


@migrations()
def m001_notices(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE status_notices (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")


class StatusService(Service):
    name = "status"
    envelope = OkEnvelope()
    migrations = (migrations,)

    def routes(self) -> list[Route]:
        return [
            Route(("GET",), "/health", self.health, "health", "Is the host up?"),
            Route(("GET",), "/notices/{notice_id:int}", self.notice, "notice", "One notice"),
        ]

    def health(self, request: Request) -> Response:
        return OkEnvelope.success({"services": sorted(self.runtime.services)})

    def notice(self, request: Request) -> Response:
        row = self.runtime.db.one("SELECT text FROM status_notices WHERE id = ?",
                                  (int(request.params["notice_id"]),))
        if row is None:
            raise NotFound("No such notice")  # rendered by this service's envelope
        return OkEnvelope.success({"text": row["text"]})


@hookimpl
def hepcore_register_services(runtime: Runtime) -> list[Service]:
    return [StatusService(runtime, runtime.config.service("status"))]
