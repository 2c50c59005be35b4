"""API descriptions: each service's OpenAPI 3.1 document is generated from its
routes, served at ``<mount>/openapi.json`` under both app kinds, printed by
``hepcore openapi``, and a valid OpenAPI 3.1 document for every service."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from apifuzz import fuzz, validate_document

from hepcore import Config, OkEnvelope, Request, Response, Route, Service, ServiceConfig, hookimpl
from hepcore.apidoc import JSON, Body, Doc, Param, Reply, build_openapi, ref
from hepcore.runtime import build_runtime
from hepcore.testing import FakeClock
from hepcore.web import create_app


class NotesService(Service):
    """A small service whose every route is documented."""

    name = "notes"
    title = "Notes"
    envelope = OkEnvelope()
    auth_schemes: Mapping[str, Any] = {"notes": {"bearer": {"type": "http", "scheme": "bearer"},
                              "header": {"type": "apiKey", "in": "header", "name": "X-Key"}}}
    api_schemas: Mapping[str, Any] = {"Note": {"type": "object", "required": ["ok", "data"],
                            "properties": {"ok": {"const": True},
                                           "data": {"type": "object", "required": ["n"],
                                                    "properties": {"n": {"type": "integer"}}}}}}

    def routes(self) -> list[Route]:
        note = {JSON: ref("Note")}
        return [
            Route(("GET", "HEAD"), "/notes/{n:int}", self.get, "note", "One note",
                  doc=Doc(replies=(Reply(200, "The note", note,
                                         headers={"X-Note": {"type": "string"}}),),
                          errors=(404,))),
            Route(("POST",), "/notes", self.create, "create", "Add a note", auth="notes",
                  doc=Doc(body=Body({JSON: {"type": "object", "required": ["n"],
                                            "properties": {"n": {"type": "integer"}}}}),
                          params=(Param("dry", "query", {"type": "boolean"}),),
                          replies=(Reply(201, "Added", note),), errors=(400,))),
            Route(("GET",), "/feed", self.get, "feed", "Public or personal feed",
                  auth="notes", doc=Doc(auth_optional=True,
                                        replies=(Reply(200, "The feed", note),))),
            Route(("GET",), "/bare", self.get, "bare", "A route without a doc"),
        ]

    def get(self, request: Request) -> Response:
        return Response.json({"ok": True, "data": {"n": 1}}, headers=[("X-Note", "1")])

    def create(self, request: Request) -> Response:
        return Response.json({"ok": True, "data": {"n": 1}}, 201)


class NotesPlugin:
    @hookimpl
    def hepcore_register_services(self, runtime):
        return [NotesService(runtime, runtime.config.service("notes"))]


@pytest.fixture
def notes_runtime(tmp_path: Path):
    config = Config(data_dir=tmp_path / "data", secrets=["s"],
                    services={"notes": ServiceConfig("notes", prefix="/n")},
                    blocked_plugins=["uploader", "paste", "cdn", "images", "login",
                                     "phash_blocklist"])
    runtime = build_runtime(config, clock=FakeClock(), plugins=[NotesPlugin()])
    yield runtime
    runtime.close()


def test_document_is_generated_from_the_routes(notes_runtime) -> None:
    doc = build_openapi(notes_runtime.services["notes"], "/n")
    assert validate_document(doc) == []
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "Notes"
    assert doc["servers"] == [{"url": "/n"}]
    assert set(doc["paths"]) == {"/notes/{n}", "/notes", "/feed", "/bare", "/openapi.json"}

    get = doc["paths"]["/notes/{n}"]["get"]
    assert get["operationId"] == "note_get"
    assert get["parameters"] == [{"name": "n", "in": "path", "schema": {"type": "integer"},
                                  "required": True}]
    assert get["responses"]["200"]["content"] == {JSON: {"schema": ref("Note")}}
    assert get["responses"]["404"]["content"] == {
        JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}
    assert "security" not in get
    head = doc["paths"]["/notes/{n}"]["head"]
    assert "content" not in head["responses"]["200"]
    assert head["responses"]["200"]["headers"] == {"X-Note": {"schema": {"type": "string"}}}

    create = doc["paths"]["/notes"]["post"]
    assert create["operationId"] == "create"
    assert create["security"] == [{"bearer": []}, {"header": []}]
    assert set(create["responses"]) == {"201", "400", "401"}
    assert create["requestBody"]["required"] is True
    assert create["parameters"] == [{"name": "dry", "in": "query",
                                     "schema": {"type": "boolean"}}]
    assert doc["paths"]["/feed"]["get"]["security"] == [{"bearer": []}, {"header": []}, {}]
    assert "401" not in doc["paths"]["/feed"]["get"]["responses"]
    assert set(doc["paths"]["/bare"]["get"]["responses"]) == {"default", "400"}
    # Every route: the web layer's 400 for a malformed Content-Length.
    assert get["responses"]["400"]["content"] == {
        JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}

    components = doc["components"]
    assert components["schemas"]["Error"] == OkEnvelope.error_schema
    assert set(components["securitySchemes"]) == {"bearer", "header"}


def test_document_served_at_the_mount_under_both_app_kinds(notes_runtime, app_kind) -> None:
    client = falcon.testing.TestClient(create_app(notes_runtime, asgi=app_kind == "asgi"))
    first = client.simulate_get("/n/openapi.json")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json == build_openapi(notes_runtime.services["notes"], "/n")
    assert client.simulate_get("/n/openapi.json").content == first.content
    assert client.simulate_get("/openapi.json").status_code == 404  # outside every mount
    assert client.simulate_post("/n/openapi.json").status_code == 405


def test_a_service_that_declares_openapi_json_keeps_its_own(tmp_path: Path) -> None:
    class Own(NotesService):
        def routes(self) -> list[Route]:
            return [Route(("GET",), "/openapi.json", self.get, "mine", "Hand-made")]

    class OwnPlugin:
        @hookimpl
        def hepcore_register_services(self, runtime):
            return [Own(runtime, runtime.config.service("notes"))]

    config = Config(data_dir=tmp_path / "d", secrets=["s"],
                    services={"notes": ServiceConfig("notes", prefix="/")},
                    blocked_plugins=["uploader", "paste", "cdn", "images", "login",
                                     "phash_blocklist"])
    runtime = build_runtime(config, clock=FakeClock(), plugins=[OwnPlugin()])
    try:
        got = falcon.testing.TestClient(create_app(runtime)).simulate_get("/openapi.json")
        assert got.json == {"ok": True, "data": {"n": 1}}
    finally:
        runtime.close()


def test_notes_service_passes_its_own_fuzzing(notes_runtime, app_kind) -> None:
    """The harness the built-in services use, on a service that keeps its
    word: no failures."""
    app = create_app(notes_runtime, asgi=app_kind == "asgi")
    assert fuzz(app, app_kind == "asgi", path="/n/openapi.json", examples=5,
                skip=("POST /notes", "GET /feed")) == []


def test_fuzzing_catches_a_route_that_breaks_its_document(notes_runtime, app_kind) -> None:
    """POST /notes answers 201 without checking its credential: the harness
    must report it (ignored auth), so a green fuzz run means something."""
    app = create_app(notes_runtime, asgi=app_kind == "asgi")
    failures = fuzz(app, app_kind == "asgi", path="/n/openapi.json", examples=5,
                    headers={"Authorization": "Bearer real"})
    assert any(f.startswith("POST /notes") for f in failures)


@pytest.mark.integration
def test_cli_prints_each_builtin_service_document(tmp_path: Path) -> None:
    """``hepcore openapi NAME`` (a real subprocess) prints the document the
    service serves at its configured prefix, and each is valid OpenAPI 3.1."""
    data = tmp_path / "data"
    runtime = build_runtime(Config(data_dir=data, secrets=["s"]))
    try:
        client = falcon.testing.TestClient(create_app(runtime))
        for name in ("uploader", "paste", "cdn", "images", "login"):
            prefix = runtime.config.service(name).prefix
            out = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data),
                                  "openapi", name], capture_output=True, text=True,
                                 check=True, timeout=60)
            printed = json.loads(out.stdout)
            served = client.simulate_get(f"{prefix.rstrip('/')}/openapi.json")
            assert served.status_code == 200, name
            assert printed == served.json, name
            assert printed["servers"] == [{"url": prefix}]
            assert validate_document(printed) == [], name
    finally:
        runtime.close()
    missing = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data),
                              "openapi", "nope"], check=False, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1
    assert "no service 'nope'" in missing.stderr
