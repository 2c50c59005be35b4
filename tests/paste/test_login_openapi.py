"""The sign-in service's OpenAPI document (``/login/openapi.json``): valid,
covering its three routes (HTML pages and redirects, never JSON), and kept
by the service under schemathesis fuzzing with real sign-in links and a real
session, under both app kinds. ``hepcore openapi login`` prints it."""

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
from hepcore_login.service import issue_link_token

OTHER_PLUGINS = ["uploader", "cdn", "images", "phash_blocklist"]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(data_dir=tmp_path / "data", secrets=["login-secret"],
                  services={"paste": ServiceConfig("paste", prefix="/"),
                            "login": ServiceConfig("login", prefix="/login")},
                  blocked_plugins=OTHER_PLUGINS)


def test_document_covers_the_three_routes(client: falcon.testing.TestClient,
                                          runtime: Runtime) -> None:
    got = client.simulate_get("/login/openapi.json")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    doc = got.json
    assert validate_document(doc) == []
    assert doc["servers"] == [{"url": "/login"}]
    assert doc["components"]["securitySchemes"] == {"session": {
        **doc["components"]["securitySchemes"]["session"],
        "type": "apiKey", "in": "cookie", "name": "hepcore_login"}}
    paths = doc["paths"]
    assert {(m.upper(), p) for p, item in paths.items() for m in item} == {
        ("POST", "/logout"), ("GET", "/{token}"), ("POST", "/{token}"),
        ("GET", "/openapi.json")}
    for route in runtime.services["login"].routes():
        for method in route.methods:
            op = paths[route.path][method.lower()]
            assert any(s[0] in "23" for s in op["responses"]), (method, route.path)

    page = paths["/{token}"]["get"]["responses"]
    assert set(page) == {"200", "400"}
    assert list(page["200"]["content"]) == ["text/html"]
    assert list(page["400"]["content"]) == ["text/html"]  # not the JSON envelope
    sign_in = paths["/{token}"]["post"]
    assert set(sign_in["responses"]) == {"303", "400", "403"}
    assert {"Location", "Set-Cookie"} <= set(sign_in["responses"]["303"]["headers"])
    assert [p["name"] for p in sign_in["parameters"]] == ["token", "Sec-Fetch-Site", "Origin"]
    assert "security" not in sign_in  # the link itself is the credential
    logout = paths["/logout"]["post"]
    assert logout["security"] == [{"session": []}, {}]
    assert set(logout["responses"]) == {"303", "400", "403"}


@contextmanager
def real_link_tokens(runtime: Runtime, account: Account) -> Iterator[None]:
    """Every other positive case gets a fresh, valid sign-in link token
    instead of a random one (which is always a 400 page), so the
    confirmation page and the sign-in itself are fuzzed too."""
    turn = itertools.count()

    def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        params = case.path_parameters
        if params and "token" in params and case.meta is not None and \
                case.meta.generation.mode is GenerationMode.POSITIVE and next(turn) % 2:
            params["token"] = issue_link_token(runtime, account.id, "/after")

    GLOBAL_HOOK_DISPATCHER.register_hook_with_name(before_call, "before_call")
    try:
        yield
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(before_call)


def test_fuzzing_with_real_links_and_session_finds_nothing(
        runtime: Runtime, app_kind: str, client: falcon.testing.TestClient,
        account: Account) -> None:
    done = client.simulate_post(f"/login/{issue_link_token(runtime, account.id)}")
    assert done.status_code == 303
    session = done.headers["set-cookie"].split(";", 1)[0]
    app = create_app(runtime, asgi=app_kind == "asgi")
    with real_link_tokens(runtime, account):
        failures = fuzz(app, app_kind == "asgi", path="/login/openapi.json",
                        headers={"Cookie": session})
    assert failures == [], "\n\n".join(failures)
    signed_in = runtime.db.one("SELECT count(*) AS n FROM login_sessions")
    assert signed_in is not None and signed_in["n"] > 1  # the fuzzer did sign in


@pytest.mark.integration
def test_prefix_mount_and_cli_print_the_same_document(tmp_path: Path, app_kind: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text(
        f'[plugins]\nblocked = {json.dumps(OTHER_PLUGINS)}\n\n'
        '[services.login]\nprefix = "/p/signin"\n')
    (data / "secret").write_text("cli-secret\n")
    runtime = build_runtime(load_config(data), clock=FakeClock())
    try:
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        served = client.simulate_get("/p/signin/openapi.json")
    finally:
        runtime.close()
    assert served.status_code == 200
    assert served.json["servers"] == [{"url": "/p/signin"}]
    out = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data),
                          "openapi", "login"], capture_output=True, text=True, check=True,
                         timeout=60)
    assert json.loads(out.stdout) == served.json
