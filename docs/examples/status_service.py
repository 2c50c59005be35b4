"""A service: read-only status notices at ``/status`` (its own table, routes
and envelope), mounted like the built-in services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from hepcore import OkEnvelope, Request, Response, Route, Runtime, Service, hookimpl
from hepcore.apidoc import JSON, Doc, Reply, ref
from hepcore.errors import NotFound

migrations = Migrations("status_notices")


@migrations()
def m001_notices(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE status_notices (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")


class StatusService(Service):
    name = "status"
    title = "Status notices"
    envelope = OkEnvelope()
    migrations = (migrations,)
    # Named schemas of the OpenAPI document (GET /status/openapi.json).
    api_schemas: Mapping[str, Any] = {
        "Health": {"type": "object", "required": ["ok", "data"], "properties": {
            "ok": {"const": True},
            "data": {"type": "object", "properties": {
                "services": {"type": "array", "items": {"type": "string"}}}}}},
        "Notice": {"type": "object", "required": ["ok", "data"], "properties": {
            "ok": {"const": True},
            "data": {"type": "object", "properties": {"text": {"type": "string"}}}}},
    }

    def routes(self) -> list[Route]:
        return [
            Route(("GET",), "/health", self.health, "health", "Is the host up?",
                  doc=Doc(replies=(Reply(200, "The mounted services",
                                         {JSON: ref("Health")}),))),
            Route(("GET",), "/notices/{notice_id:int}", self.notice, "notice", "One notice",
                  doc=Doc(replies=(Reply(200, "The notice", {JSON: ref("Notice")}),),
                          errors=(404,))),
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
