"""``/api/v1/webhooks`` (images.md 10.2): every status, code and message, both app kinds."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from hepcore import Account, Config, Runtime, ServiceConfig, build_runtime
from hepcore.testing import FakeClock
from hepcore.web import create_app

PUBLIC_BASE = "https://upload.fixitfy.com.tr"
HOOK = "https://hooks.example.com/fixitfy"
CREDENTIALS = ("url must not contain a user name or password; authenticate deliveries"
               " by their X-Fixitfy-Signature.")
HUGE = b"9" * 5000  # a JSON integer too long for int() (4300 digits at most)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data", secrets=["test-secret"],
        services={"images": ServiceConfig("images", prefix="/", public_base_url=PUBLIC_BASE,
                                          options={"manage_rate_per_minute": 1000})},
        blocked_plugins=["uploader", "paste", "cdn", "phash_blocklist", "login"],
    )


@pytest.fixture
def other_host(tmp_path: Path, clock: FakeClock, app_kind: str
               ) -> Iterator[Callable[[dict[str, Any]], tuple[falcon.testing.TestClient, str]]]:
    """``other_host(options)``: a second images host with those options; its client
    and a key of its account ``alice``."""
    made: list[Runtime] = []

    def build(options: dict[str, Any]) -> tuple[falcon.testing.TestClient, str]:
        runtime = build_runtime(Config(
            data_dir=tmp_path / f"other{len(made)}", secrets=["test-secret"],
            services={"images": ServiceConfig("images", prefix="/", options=options)},
            blocked_plugins=["uploader", "paste", "cdn", "phash_blocklist", "login"],
        ), clock=clock)
        made.append(runtime)
        key, _ = runtime.keys.create("images", runtime.accounts.create("alice").id)
        return falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi")), key

    yield build
    for runtime in made:
        runtime.close()


@pytest.fixture
def key(runtime: Runtime, account: Account) -> str:
    token, _ = runtime.keys.create("images", account.id, label="ci")
    return token


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def post_json(client: falcon.testing.TestClient, path: str, key: str,
              body: Any = None, raw: bytes | None = None,
              method: str = "POST") -> falcon.testing.Result:
    data = raw if raw is not None else json.dumps(body).encode()
    return client.simulate_request(method, path, body=data, headers={
        **auth(key), "Content-Type": "application/json"})


def error(result: falcon.testing.Result) -> tuple[int, dict[str, Any]]:
    assert result.headers["content-type"].startswith("application/json")
    return result.status_code, result.json


def bad_request(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"ok": False, "code": "bad_request", "error": message}


NOT_FOUND = (404, {"ok": False, "code": "not_found", "error": "Webhook not found."})
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_list_before_any_webhook(client: falcon.testing.TestClient, key: str) -> None:
    got = client.simulate_get("/api/v1/webhooks", headers=auth(key))
    assert got.status_code == 200
    assert got.json == {"ok": True, "signing_secret": None, "webhooks": []}


def test_create_returns_the_webhook_and_the_account_secret(
        client: falcon.testing.TestClient, key: str, runtime: Runtime) -> None:
    made = post_json(client, "/api/v1/webhooks", key, {"url": HOOK, "enabled": True})
    assert made.status_code == 200, made.text
    webhook, secret = made.json["webhook"], made.json["signing_secret"]
    assert set(made.json) == {"ok", "webhook", "signing_secret"} and made.json["ok"] is True
    assert re.fullmatch(r"wh_[0-9a-f]{16}", webhook["id"])
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert webhook == {"id": webhook["id"], "url": HOOK, "enabled": True,
                       "created_at": webhook["created_at"], "failure_count": 0,
                       "last_status": None, "last_error": None, "last_failure_at": None}
    assert ISO_MS.fullmatch(webhook["created_at"])
    assert list(webhook) == ["id", "url", "enabled", "created_at", "failure_count",
                             "last_status", "last_error", "last_failure_at"]

    # One secret per account: the second endpoint shares it; enabled defaults to true.
    second = post_json(client, "/api/v1/webhooks", key, {"url": HOOK + "/2"})
    assert second.json["signing_secret"] == secret
    assert second.json["webhook"]["enabled"] is True
    listed = client.simulate_get("/api/v1/webhooks", headers=auth(key))
    assert listed.json == {"ok": True, "signing_secret": secret,
                           "webhooks": [webhook, second.json["webhook"]]}
    disabled = post_json(client, "/api/v1/webhooks", key, {"url": HOOK, "enabled": False})
    assert disabled.json["webhook"]["enabled"] is False


@pytest.mark.parametrize(("raw", "message"), [
    (b"{not json", "Invalid JSON body."),
    (b'{"url": "https://example.com/", "n": -Infinity}', "Invalid JSON body."),
    (b"[" * 100000, "Invalid JSON body."),  # too deep for the parser: RecursionError
    (b"", "Invalid JSON body."),
    (b"[1, 2]", "Invalid JSON body."),
    (b"\xff\xfe", "Invalid JSON body."),
    (b"{}", "url must be an absolute http(s) URL."),
    (b'{"url": null}', "url must be an absolute http(s) URL."),
    (b'{"url": 42}', "url must be an absolute http(s) URL."),
    (b'{"url": "/relative/path"}', "url must be an absolute http(s) URL."),
    (b'{"url": "ftp://files.example.com/x"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://bad host/x"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com:99999/"}', "url must be an absolute http(s) URL."),
    # credentials in the URL are refused with a message that says so
    (b'{"url": "https://user:pw@example.com/"}', CREDENTIALS),
    (b'{"url": "https://user@example.com/h?x=@"}', CREDENTIALS),
    (b'{"url": "https://user@/"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/", "enabled": "yes"}', "enabled must be a boolean."),
    (b'{"url": "https://example.com/", "enabled": 1}', "enabled must be a boolean."),
    (b'{"url": "https://example.com/", "enabled": null}', "enabled must be a boolean."),
    # integers past int()'s 4300-digit limit are out of range, not invalid JSON
    (b'{"url": ' + HUGE + b"}", "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/", "enabled": -' + HUGE + b"}",
     "enabled must be a boolean."),
    # a lone surrogate escape is not text: it cannot be stored or sent as UTF-8
    (b'{"url": "https://example.com/\\ud800"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://\\udfff.example.com/"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/", "enabled": "\\ud800"}', "enabled must be a boolean."),
    # C1 controls (CSI), bidi overrides, line separators and no-break spaces:
    # neither whitespace nor control characters, as documented
    (b'{"url": "https://example.com/\\u009b2J"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/\\u202efdp.exe"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/a\\u2028b"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/a\\u00a0b"}', "url must be an absolute http(s) URL."),
])
def test_create_validation(client: falcon.testing.TestClient, key: str, raw: bytes,
                           message: str) -> None:
    assert error(post_json(client, "/api/v1/webhooks", key, raw=raw)) == bad_request(message)
    assert client.simulate_get("/api/v1/webhooks", headers=auth(key)).json["webhooks"] == []


def test_huge_integers_in_ignored_members(client: falcon.testing.TestClient,
                                          key: str) -> None:
    made = post_json(client, "/api/v1/webhooks", key,
                     raw=b'{"url": "' + HOOK.encode() + b'", "extra": ' + HUGE + b"}")
    assert made.status_code == 200, made.text
    path = f"/api/v1/webhooks/{made.json['webhook']['id']}"
    patched = post_json(client, path, key, raw=b'{"extra": -' + HUGE + b', "enabled": false}',
                        method="PATCH")
    assert patched.status_code == 200, patched.text
    assert patched.json["webhook"]["enabled"] is False


def test_surrogate_pairs_are_text_and_ignored_members_stay_ignored(
        client: falcon.testing.TestClient, key: str) -> None:
    made = post_json(client, "/api/v1/webhooks", key, raw=(
        b'{"url": "https://example.com/\\ud83d\\ude00", "note": ["\\ud800", {"x": "\\udfff"}],'
        b' "\\udfff": "\\udfff"}'))
    assert made.status_code == 200, made.text
    assert made.json["webhook"]["url"] == "https://example.com/\U0001f600"
    path = f"/api/v1/webhooks/{made.json['webhook']['id']}"
    patched = post_json(client, path, key, raw=b'{"note": "\\ud800", "enabled": false}',
                        method="PATCH")
    assert patched.status_code == 200, patched.text
    assert patched.json["webhook"]["enabled"] is False


def test_url_length_limit(client: falcon.testing.TestClient, key: str) -> None:
    base = "https://example.com/"
    longest = base + "a" * (2048 - len(base))
    assert post_json(client, "/api/v1/webhooks", key, {"url": longest}).status_code == 200
    too_long = post_json(client, "/api/v1/webhooks", key, {"url": longest + "a"})
    assert error(too_long) == bad_request("url must be an absolute http(s) URL.")


def test_http_urls_are_accepted(client: falcon.testing.TestClient, key: str) -> None:
    made = post_json(client, "/api/v1/webhooks", key, {"url": "http://intranet.example/hook"})
    assert made.status_code == 200
    assert made.json["webhook"]["url"] == "http://intranet.example/hook"


def test_at_most_ten_endpoints_per_account(client: falcon.testing.TestClient, key: str,
                                           runtime: Runtime) -> None:
    for i in range(10):
        assert post_json(client, "/api/v1/webhooks", key,
                         {"url": f"{HOOK}/{i}"}).status_code == 200
    refused = post_json(client, "/api/v1/webhooks", key, {"url": HOOK})
    assert error(refused) == bad_request("Webhook limit reached (10).")
    # Another account has its own ten.
    bob = runtime.accounts.create("bob")
    bob_key, _ = runtime.keys.create("images", bob.id)
    assert post_json(client, "/api/v1/webhooks", bob_key, {"url": HOOK}).status_code == 200
    # Deleting one frees a place.
    first = client.simulate_get("/api/v1/webhooks", headers=auth(key)).json["webhooks"][0]
    client.simulate_delete(f"/api/v1/webhooks/{first['id']}", headers=auth(key))
    assert post_json(client, "/api/v1/webhooks", key, {"url": HOOK}).status_code == 200


def test_the_limit_is_configurable(other_host: Any) -> None:
    client, key = other_host({"webhook_limit": 2})
    for i in range(2):
        assert post_json(client, "/api/v1/webhooks", key, {"url": f"{HOOK}/{i}"}).status_code \
            == 200
    refused = post_json(client, "/api/v1/webhooks", key, {"url": HOOK})
    assert error(refused) == bad_request("Webhook limit reached (2).")


def _make(client: falcon.testing.TestClient, key: str, url: str = HOOK) -> dict[str, Any]:
    made = post_json(client, "/api/v1/webhooks", key, {"url": url})
    assert made.status_code == 200, made.text
    return made.json["webhook"]  # type: ignore[no-any-return]


def test_patch_url_and_enabled(client: falcon.testing.TestClient, key: str) -> None:
    hook = _make(client, key)
    path = f"/api/v1/webhooks/{hook['id']}"
    moved = post_json(client, path, key, {"url": HOOK + "/v2"}, method="PATCH")
    assert moved.status_code == 200
    assert moved.json == {"ok": True, "webhook": {**hook, "url": HOOK + "/v2"}}
    off = post_json(client, path, key, {"enabled": False}, method="PATCH")
    assert off.json == {"ok": True, "webhook": {**hook, "url": HOOK + "/v2", "enabled": False}}
    both = post_json(client, path, key, {"enabled": True, "url": HOOK}, method="PATCH")
    assert both.json["webhook"] == hook
    unchanged = post_json(client, path, key, {}, method="PATCH")
    assert unchanged.json == {"ok": True, "webhook": hook}


@pytest.mark.parametrize(("raw", "message"), [
    (b"nope", "Invalid JSON body."),
    (b"[" * 100000, "Invalid JSON body."),  # too deep for the parser: RecursionError
    (b'"url"', "Invalid JSON body."),
    (b'{"url": "mailto:a@example.com"}', "url must be an absolute http(s) URL."),
    (b'{"url": null}', "url must be an absolute http(s) URL."),
    (b'{"enabled": "false"}', "enabled must be a boolean."),
    (b'{"enabled": 0}', "enabled must be a boolean."),
    (b'{"enabled": ' + HUGE + b"}", "enabled must be a boolean."),
    (b'{"url": -' + HUGE + b"}", "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/\\udfff"}', "url must be an absolute http(s) URL."),
    (b'{"url": "https://example.com/\\ud800", "enabled": false}',
     "url must be an absolute http(s) URL."),
    (b'{"enabled": "\\udfff"}', "enabled must be a boolean."),
])
def test_patch_validation(client: falcon.testing.TestClient, key: str, raw: bytes,
                          message: str) -> None:
    hook = _make(client, key)
    path = f"/api/v1/webhooks/{hook['id']}"
    assert error(post_json(client, path, key, raw=raw, method="PATCH")) == bad_request(message)
    listed = client.simulate_get("/api/v1/webhooks", headers=auth(key)).json["webhooks"]
    assert listed == [hook]


def test_unknown_and_foreign_ids_are_not_found(client: falcon.testing.TestClient, key: str,
                                               runtime: Runtime) -> None:
    bob = runtime.accounts.create("bob")
    bob_key, _ = runtime.keys.create("images", bob.id)
    bobs = _make(client, bob_key)
    for webhook_id in ("wh_0000000000000000", bobs["id"], "anything"):
        path = f"/api/v1/webhooks/{webhook_id}"
        assert error(post_json(client, path, key, {"enabled": False},
                               method="PATCH")) == NOT_FOUND
        assert error(client.simulate_delete(path, headers=auth(key))) == NOT_FOUND
    # Bob's webhook is untouched.
    assert client.simulate_get("/api/v1/webhooks", headers=auth(bob_key)).json["webhooks"] \
        == [bobs]


def test_delete(client: falcon.testing.TestClient, key: str) -> None:
    hook = _make(client, key)
    gone = client.simulate_delete(f"/api/v1/webhooks/{hook['id']}", headers=auth(key))
    assert gone.status_code == 200
    assert gone.json == {"ok": True, "deleted": hook["id"]}
    again = client.simulate_delete(f"/api/v1/webhooks/{hook['id']}", headers=auth(key))
    assert error(again) == NOT_FOUND
    listed = client.simulate_get("/api/v1/webhooks", headers=auth(key)).json
    assert listed["webhooks"] == [] and listed["signing_secret"] is not None


def test_rotate_secret(client: falcon.testing.TestClient, key: str) -> None:
    first = post_json(client, "/api/v1/webhooks", key, {"url": HOOK}).json["signing_secret"]
    rotated = client.simulate_post("/api/v1/webhooks/rotate-secret", headers=auth(key))
    assert rotated.status_code == 200
    assert set(rotated.json) == {"ok", "signing_secret"}
    secret = rotated.json["signing_secret"]
    assert re.fullmatch(r"[0-9a-f]{64}", secret) and secret != first
    assert client.simulate_get("/api/v1/webhooks", headers=auth(key)).json["signing_secret"] \
        == secret


def test_rotate_before_any_webhook_creates_the_secret(client: falcon.testing.TestClient,
                                                      key: str) -> None:
    secret = client.simulate_post("/api/v1/webhooks/rotate-secret",
                                  headers=auth(key)).json["signing_secret"]
    made = post_json(client, "/api/v1/webhooks", key, {"url": HOOK})
    assert made.json["signing_secret"] == secret


ROUTES = [("GET", "/api/v1/webhooks"), ("POST", "/api/v1/webhooks"),
          ("PATCH", "/api/v1/webhooks/wh_0000000000000000"),
          ("DELETE", "/api/v1/webhooks/wh_0000000000000000"),
          ("POST", "/api/v1/webhooks/rotate-secret")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_authentication(client: falcon.testing.TestClient, key: str, runtime: Runtime,
                        account: Account, method: str, path: str) -> None:
    def call(headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return error(client.simulate_request(method, path, headers=headers, body=b"{}"))

    def unauthorized(message: str) -> tuple[int, dict[str, Any]]:
        return 401, {"ok": False, "code": "unauthorized", "error": message}

    assert call({}) == unauthorized("Missing Authorization header.")
    assert call({"Authorization": "Basic abc"}) == unauthorized(
        "Malformed Authorization header. Use: Bearer <key>.")
    assert call(auth("fxf_" + "0" * 64)) == unauthorized("Invalid or revoked API key.")
    token = client.simulate_post("/api/v1/upload-token", headers=auth(key)).json["token"]
    assert call(auth(token)) == unauthorized("Upload tokens can only be used to upload.")
    runtime.accounts.update(account.id, status="banned")
    assert call(auth(key)) == (403, {"ok": False, "code": "banned",
                                     "error": "Your account is banned."})


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_management_rate_limit(other_host: Any, method: str, path: str) -> None:
    client, key = other_host({"manage_rate_per_minute": 2})
    client.simulate_get("/api/v1/webhooks", headers=auth(key))
    client.simulate_get("/api/v1/webhooks", headers=auth(key))
    limited = client.simulate_request(method, path, headers=auth(key), body=b"{}")
    assert error(limited) == (429, {"ok": False, "code": "rate_limit",
                                    "error": "Rate limit exceeded: 2 requests per minute."})
    assert int(limited.headers["retry-after"]) >= 1


def test_wrong_methods_use_the_envelope(client: falcon.testing.TestClient, key: str) -> None:
    for method, path in (("GET", "/api/v1/webhooks/wh_0000000000000000"),
                         ("PUT", "/api/v1/webhooks"),
                         ("GET", "/api/v1/webhooks/rotate-secret")):
        got = client.simulate_request(method, path, headers=auth(key))
        assert got.status_code == 405
        assert got.json["ok"] is False and got.json["code"] == "method_not_allowed"


def test_answers_carrying_a_secret_are_never_stored(client: falcon.testing.TestClient,
                                                    key: str) -> None:
    created = post_json(client, "/api/v1/webhooks", key, {"url": "https://example.com/hook"})
    listed = client.simulate_get("/api/v1/webhooks", headers=auth(key))
    rotated = client.simulate_post("/api/v1/webhooks/rotate-secret", headers=auth(key))
    minted = post_json(client, "/api/v1/upload-token", key, {"ttl_seconds": 60})
    for r in (created, listed, rotated, minted):
        assert r.status_code == 200, r.text
        assert r.headers["Cache-Control"] == "no-store"
