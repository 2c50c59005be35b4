"""The paste service's OpenAPI document: served at ``<mount>/openapi.json``
under both app kinds, valid OpenAPI 3.1, covering every route with its auth,
and kept by the service: schemathesis fuzzing with a real paste key finds
nothing. ``hepcore openapi paste`` prints the document served at the
configured prefix."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from apifuzz import fuzz, validate_document
from schemathesis import GenerationMode
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from hepcore import Account, Config, Runtime, ServiceConfig, build_runtime
from hepcore.config import load_config
from hepcore.testing import FakeClock
from hepcore.web import create_app

# Left out so that these tests see only paste and login (and run faster).
OTHER_PLUGINS = ["uploader", "cdn", "images", "phash_blocklist"]


def fuzz_config(data_dir: Path, **options: Any) -> Config:
    """Paste at ``/``, rate limits out of the fuzzer's way (a FakeClock never
    leaves the window)."""
    return Config(data_dir=data_dir, secrets=["paste-secret"],
                  services={"paste": ServiceConfig(
                      "paste", prefix="/",
                      options={"create_rate_per_minute": 1_000_000, **options})},
                  blocked_plugins=OTHER_PLUGINS)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return fuzz_config(tmp_path / "data")


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in doc["paths"].items()
            for method, op in item.items()}


def test_document_covers_every_route(client: falcon.testing.TestClient,
                                     runtime: Runtime) -> None:
    got = client.simulate_get("/openapi.json")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    doc = got.json
    assert validate_document(doc) == []
    assert doc["info"]["title"] == "Hep.gg Paste"
    assert doc["servers"] == [{"url": "/"}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["pasteKey"]["type"] == "http" and schemes["pasteKey"]["scheme"] == "bearer"
    assert schemes["session"] == {**schemes["session"], "type": "apiKey", "in": "cookie",
                                  "name": "hepcore_login"}
    ops = operations(doc)
    declared = {(method, route.path) for route in runtime.services["paste"].routes()
                for method in route.methods}
    assert declared == set(ops) - {("GET", "/openapi.json")}
    for route in runtime.services["paste"].routes():
        for method in route.methods:
            op = ops[(method, route.path)]
            assert any(s[0] in "23" for s in op["responses"]), (method, route.path)
            if route.auth:
                assert op["security"], (method, route.path)
                assert all(set(req) <= set(schemes) for req in op["security"])


def test_document_says_what_each_route_takes_and_answers(runtime: Runtime) -> None:
    from hepcore.apidoc import build_openapi

    doc = build_openapi(runtime.services["paste"], "/")
    ops, schemas = operations(doc), doc["components"]["schemas"]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    assert schemas["Error"]["required"] == ["ok", "error"]

    for path in ("/api/paste", "/api/v1/paste", "/api/v1/snippets"):
        create = ops[("POST", path)]
        assert create["security"] == [{"pasteKey": []}, {"session": []}]
        assert create["requestBody"]["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/PasteCreate"}}}
        assert set(create["responses"]) == {"200", "400", "401", "403", "413", "429", "500"}
        assert create["responses"]["401"]["content"] == error
        assert "Retry-After" in create["responses"]["429"]["headers"]
    body = schemas["PasteCreate"]
    assert body["required"] == ["content"]
    assert set(body["properties"]) == {"content", "title", "language", "visibility",
                                       "isPermanent", "turnstileToken"}
    assert body["properties"]["visibility"]["enum"] == ["public", "unlisted", "private"]
    assert body["properties"]["title"]["type"] == ["string", "null"]
    created = schemas["Created"]["properties"]["data"]
    assert set(created["required"]) == {"id", "url", "expiresAt", "anonymous"}
    assert created["properties"]["expiresAt"]["type"] == ["string", "null"]
    assert set(schemas["PasteUpdate"]["properties"]) == {
        "content", "title", "language", "visibility", "isPermanent"}

    listing = ops[("GET", "/api/v1/snippets")]
    assert {p["name"]: p["schema"] for p in listing["parameters"]} == {
        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
        "before": {"type": "string", "format": "date-time"}}
    assert set(listing["responses"]) == {"200", "400", "401", "403"}
    for method in ("GET", "PATCH", "DELETE"):
        one = ops[(method, "/api/v1/snippets/{paste_id}")]
        assert {"401", "403", "404"} <= set(one["responses"])
        assert one["parameters"][0]["schema"]["pattern"] == "^[A-Za-z0-9_-]{4,80}$"

    hastebin = ops[("POST", "/documents")]
    assert set(hastebin["requestBody"]["content"]) == {"text/plain", "application/octet-stream"}
    assert hastebin["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HastebinKey"}
    miss = ops[("GET", "/documents/{paste_id}")]["responses"]["404"]
    assert miss["content"] == error and "Cache-Control" in miss["headers"]

    for path in ("/{paste_id}", "/{paste_id}/raw", "/raw/{paste_id}"):
        for method in ("GET", "HEAD"):
            read = ops[(method, path)]
            assert read["security"] == [{"session": []}, {}]  # private pastes need it
            assert "401" not in read["responses"]
    reader = ops[("GET", "/{paste_id}")]["responses"]
    assert list(reader["200"]["content"]) == ["text/html"]
    assert list(reader["404"]["content"]) == ["text/html"]
    raw = ops[("GET", "/{paste_id}/raw")]["responses"]
    assert set(raw) == {"200", "206", "304", "400", "404", "416"}
    assert list(raw["200"]["content"]) == ["text/plain"]
    assert raw["404"]["content"]["text/plain"]["schema"]["const"] == "Not found"
    assert "content" not in ops[("HEAD", "/{paste_id}/raw")]["responses"]["200"]


@pytest.fixture
def anonymous_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """Anonymous creation on (with a captcha verifier plugin): ``solved`` passes."""
    from conftest import Captcha

    runtime = build_runtime(fuzz_config(tmp_path / "anon", anonymous=True),
                            clock=FakeClock(), plugins=[Captcha()])
    yield runtime
    runtime.close()


def test_with_anonymous_creation_the_key_is_optional_for_creates(
        anonymous_runtime: Runtime) -> None:
    from hepcore.apidoc import build_openapi

    ops = operations(build_openapi(anonymous_runtime.services["paste"], "/"))
    for path in ("/api/paste", "/api/v1/paste", "/documents"):
        create = ops[("POST", path)]
        assert create["security"] == [{"pasteKey": []}, {"session": []}, {}]
        assert "401" in create["responses"]  # a wrong key is still refused
    # The snippets API never takes anonymous callers.
    assert {} not in ops[("POST", "/api/v1/snippets")]["security"]


def test_hastebin_without_a_key_is_a_failed_captcha_when_anonymous_is_on(
        anonymous_runtime: Runtime, app_kind: str) -> None:
    """Found by fuzzing this configuration: the document required the key on
    ``POST /documents``, yet the service rightly (spec section 9) answers a
    request without one as an anonymous create, 400, not 401."""
    client = falcon.testing.TestClient(create_app(anonymous_runtime, asgi=app_kind == "asgi"))
    got = client.simulate_post("/documents", body=b"echo hi")
    assert (got.status_code, got.json) == (
        400, {"ok": False, "error": "Captcha failed. Try again."})
    wrong = client.simulate_post("/documents", body=b"echo hi",
                                 headers={"Authorization": "Bearer hepgg_pst_" + "0" * 32})
    assert (wrong.status_code, wrong.json) == (401, {"ok": False, "error": "Invalid API key"})
    # The body cap (step 3) comes before the captcha (step 6), with or without
    # Content-Length: 2 x 1 MB + 64 KiB is the most an anonymous body may be.
    from httpkit import call

    huge = [b"x" * 65536] * 34
    for chunked in (False, True):
        over = call(client.app, "POST", "/documents", body=huge, chunked=chunked)
        assert (over.status, json.loads(over.body)) == (
            413, {"ok": False, "error": "Paste too large. Max 1 MB."}), chunked
        under = call(client.app, "POST", "/documents", body=huge[:20], chunked=chunked)
        assert (under.status, json.loads(under.body)) == (
            400, {"ok": False, "error": "Captcha failed. Try again."}), chunked


def test_fuzzing_with_anonymous_creation_on_finds_nothing(anonymous_runtime: Runtime,
                                                          app_kind: str) -> None:
    """This configuration's document differs only in which credentials are
    optional, so a short run (5 examples) checks it; the probes without the
    key are anonymous requests."""
    account = anonymous_runtime.accounts.create("pat", plan="prime")
    key, _ = anonymous_runtime.keys.create("paste", account.id, label="fuzz")
    app = create_app(anonymous_runtime, asgi=app_kind == "asgi")
    failures = fuzz(app, app_kind == "asgi", headers={"Authorization": f"Bearer {key}"},
                    examples=5)
    assert failures == [], "\n\n".join(failures)


@pytest.fixture
def fuzz_key(runtime: Runtime, account: Account) -> str:
    token, _ = runtime.keys.create("paste", account.id, label="fuzz")
    return token


@contextmanager
def real_paste_ids(pool: list[str]) -> Iterator[None]:
    """While fuzzing, two of three positive cases with a ``paste_id`` get one
    of the pastes in ``pool`` instead of a random ID (which is always a 404),
    so reads, ranges, edits and deletes of real pastes are fuzzed too. IDs of
    pastes the fuzzer creates join the pool."""
    turn = itertools.count()

    def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        params = case.path_parameters
        if params and "paste_id" in params and case.meta is not None and \
                case.meta.generation.mode is GenerationMode.POSITIVE:
            n = next(turn)
            if n % 3:
                params["paste_id"] = pool[n % len(pool)]

    def after_call(context: Any, case: Any, response: Any) -> None:
        if response.status_code == 200 and case.method == "POST":
            body = json.loads(response.content)
            pool.append(body["key"] if "key" in body else body["data"]["id"])

    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(before_call, "before_call")
    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(after_call, "after_call")
    try:
        yield
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(before_call)
        GLOBAL_HOOK_DISPATCHER.unregister(after_call)


def seed_pastes(client: falcon.testing.TestClient, runtime: Runtime, key: str) -> list[str]:
    """A public and an unlisted paste of the key's account, one large enough to
    live in the object storage, and one of another account."""
    other = runtime.accounts.create("olive")
    other_key, _ = runtime.keys.create("paste", other.id, label="other")
    bodies = [(key, {"content": "print('hello')\n" * 3, "title": "hi", "language": "python"}),
              (key, {"content": "unlisted text", "visibility": "unlisted"}),
              (key, {"content": "x = 1\n" * 20_000}),
              (other_key, {"content": "someone else's"})]
    ids = []
    for token, body in bodies:
        made = client.simulate_post("/api/paste", json=body,
                                    headers={"Authorization": f"Bearer {token}"})
        assert made.status_code == 200, made.text
        ids.append(made.json["data"]["id"])
    return ids


def test_fuzzing_with_a_real_key_finds_nothing(runtime: Runtime, app_kind: str,
                                               client: falcon.testing.TestClient,
                                               fuzz_key: str) -> None:
    pool = seed_pastes(client, runtime, fuzz_key)
    app = create_app(runtime, asgi=app_kind == "asgi")
    with real_paste_ids(pool):
        failures = fuzz(app, app_kind == "asgi",
                        headers={"Authorization": f"Bearer {fuzz_key}"})
    assert failures == [], "\n\n".join(failures)
    assert len(pool) > 4  # the fuzzer did create pastes


@pytest.mark.integration
def test_prefix_mount_and_cli_print_the_same_document(tmp_path: Path, app_kind: str) -> None:
    """Mounted at ``/p``: ``servers[0].url`` is the prefix, and ``hepcore
    openapi paste`` (a real subprocess) prints the document served there."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text(
        f'[plugins]\nblocked = {json.dumps(OTHER_PLUGINS)}\n\n'
        '[services.paste]\nprefix = "/p"\n')
    (data / "secret").write_text("cli-secret\n")
    runtime = build_runtime(load_config(data), clock=FakeClock())
    try:
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        served = client.simulate_get("/p/openapi.json")
    finally:
        runtime.close()
    assert served.status_code == 200
    assert served.json["servers"] == [{"url": "/p"}]
    assert "/api/paste" in served.json["paths"]  # paths stay relative to the mount
    out = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data),
                          "openapi", "paste"], capture_output=True, text=True, check=True,
                         timeout=60)
    assert json.loads(out.stdout) == served.json
