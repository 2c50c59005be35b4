"""Section 2 (authentication), 4 (upload tokens) and 9 (rate limits), both app kinds."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import falcon.testing
import pytest
from conftest import Upload, auth, image_bytes

from hepcore import Account, Runtime
from hepcore.errors import ConfigError
from hepcore.testing import FakeClock


def err(result: falcon.testing.Result) -> tuple[int, dict[str, Any]]:
    assert result.headers["Content-Type"] == "application/json"
    return result.status_code, result.json


def unauthorized(message: str) -> tuple[int, dict[str, Any]]:
    return 401, {"ok": False, "code": "unauthorized", "error": message}


BANNED = (403, {"ok": False, "code": "banned", "error": "Your account is banned."})
MANAGEMENT = [("GET", "/api/v1/me"), ("GET", "/api/v1/uploads"),
              ("GET", "/api/v1/uploads/FIXITFY-aaaaaaaaaaaa.png"),
              ("DELETE", "/api/v1/uploads/FIXITFY-aaaaaaaaaaaa.png"),
              ("POST", "/api/v1/upload-token")]


def mint(client: falcon.testing.TestClient, key: str, body: bytes = b"") -> falcon.testing.Result:
    return client.simulate_post("/api/v1/upload-token", body=body, headers={
        **auth(key), "Content-Type": "application/json"})


# --- section 2 -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [*MANAGEMENT, ("POST", "/api/v1/upload")])
@pytest.mark.parametrize(("header", "message"), [
    (None, "Missing Authorization header."),
    ("", "Missing Authorization header."),
    ("Basic dXNlcjpwYXNz", "Malformed Authorization header. Use: Bearer <key>."),
    ("Bearer", "Malformed Authorization header. Use: Bearer <key>."),
    ("Bearer a b", "Malformed Authorization header. Use: Bearer <key>."),
    ("fxf_" + "0" * 64, "Malformed Authorization header. Use: Bearer <key>."),
    ("Bearer fxf_" + "0" * 64, "Invalid or revoked API key."),
    ("Bearer sk_cdn_" + "0" * 64, "Invalid or revoked API key."),
    ("Bearer hello", "Invalid or revoked API key."),
])
def test_authorization_failures(client: falcon.testing.TestClient, method: str, path: str,
                                header: str | None, message: str) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert err(client.simulate_request(method, path, headers=headers)) == unauthorized(message)


def test_scheme_is_case_insensitive(client: falcon.testing.TestClient, key: str) -> None:
    for scheme in ("bearer", "BEARER", "BeArEr"):
        r = client.simulate_get("/api/v1/me", headers={"Authorization": f"{scheme} {key}"})
        assert r.status_code == 200


def test_revocation_takes_effect_on_the_next_request(client: falcon.testing.TestClient,
                                                     runtime: Runtime, key: str) -> None:
    assert client.simulate_get("/api/v1/me", headers=auth(key)).status_code == 200
    record = runtime.keys.lookup("images", key)
    assert record is not None
    runtime.keys.revoke(record.id)
    assert err(client.simulate_get("/api/v1/me", headers=auth(key))) == unauthorized(
        "Invalid or revoked API key.")


def test_keys_of_other_services_are_refused(client: falcon.testing.TestClient,
                                            runtime: Runtime, account: Account) -> None:
    other, _ = runtime.keys.create("cdn", account.id)
    assert err(client.simulate_get("/api/v1/me", headers=auth(other))) == unauthorized(
        "Invalid or revoked API key.")


@pytest.mark.parametrize(("method", "path"), MANAGEMENT)
def test_banned_owner_gets_403(client: falcon.testing.TestClient, runtime: Runtime,
                               account: Account, key: str, method: str, path: str) -> None:
    runtime.accounts.update(account.id, status="banned")
    assert err(client.simulate_request(method, path, headers=auth(key))) == BANNED


def test_banned_owner_cannot_upload(runtime: Runtime, account: Account,
                                    upload: Upload) -> None:
    runtime.accounts.update(account.id, status="banned")
    assert err(upload(image_bytes())) == BANNED


def test_key_format_and_limit(runtime: Runtime, account: Account) -> None:
    keys = [runtime.keys.create("images", account.id)[0] for _ in range(10)]
    assert all(re.fullmatch(r"fxf_[0-9a-f]{64}", k) for k in keys)
    with pytest.raises(ConfigError) as info:
        runtime.keys.create("images", account.id)
    assert str(info.value) == ("Key limit reached: an account can have at most 10 active keys."
                               " Revoke one first.")
    runtime.keys.revoke(runtime.keys.lookup("images", keys[0]).id)  # type: ignore[union-attr]
    runtime.keys.create("images", account.id)


# --- section 4: upload tokens -------------------------------------------------------------


def payload_of(token: str) -> dict[str, Any]:
    part = token[3:].rsplit(".", 1)[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_mint_default_ttl(client: falcon.testing.TestClient, runtime: Runtime,
                          account: Account, key: str, clock: FakeClock) -> None:
    r = mint(client, key)
    assert r.status_code == 200
    assert list(r.json) == ["ok", "token", "expires_at"]
    assert r.json["ok"] is True
    token = r.json["token"]
    assert token.startswith("ut_eyJ1Ijoi")
    assert re.fullmatch(r"ut_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", token)
    record = runtime.keys.lookup("images", key)
    assert record is not None
    assert payload_of(token) == {"u": account.id, "k": record.id, "exp": int(clock()) + 3600}
    assert r.json["expires_at"] == "2026-05-28T21:26:40.000Z"  # FakeClock start + 1 h


@pytest.mark.parametrize("ttl", [60, 604800, 86400])
def test_mint_ttl_bounds_inclusive(client: falcon.testing.TestClient, key: str,
                                   clock: FakeClock, ttl: int) -> None:
    r = mint(client, key, json.dumps({"ttl_seconds": ttl}).encode())
    assert r.status_code == 200
    assert payload_of(r.json["token"])["exp"] == int(clock()) + ttl


@pytest.mark.parametrize("value", [59, 604801, 0, -5, 3600.0, 3600.5, "3600", True, None, [60],
                                   "\ud800"])  # a lone surrogate: not text
def test_mint_bad_ttl(client: falcon.testing.TestClient, key: str, value: Any) -> None:
    r = mint(client, key, json.dumps({"ttl_seconds": value}).encode())
    assert err(r) == (400, {"ok": False, "code": "bad_request", "error":
                            "ttl_seconds must be an integer between 60 and 604800."})


@pytest.mark.parametrize("literal", [
    "9" * 5000, "-" + "9" * 5000,  # past int()'s 4300-digit limit: ValueError in json.loads
    "1" + "0" * 4300, "-1" + "0" * 4300, "9" * 4300, "1" + "0" * 30, "3600e0", "-0"])
def test_mint_huge_ttl_is_out_of_range(client: falcon.testing.TestClient, key: str,
                                       literal: str) -> None:
    r = mint(client, key, b'{"ttl_seconds": ' + literal.encode() + b"}")
    assert err(r) == (400, {"ok": False, "code": "bad_request", "error":
                            "ttl_seconds must be an integer between 60 and 604800."})


def test_mint_ignores_huge_integers_elsewhere(client: falcon.testing.TestClient,
                                              key: str) -> None:
    body = b'{"note": [' + b"7" * 5000 + b', -' + b"7" * 5000 + b'], "ttl_seconds": 600}'
    r = mint(client, key, body)
    assert r.status_code == 200
    assert r.json["expires_at"] == "2026-05-28T20:36:40.000Z"  # FakeClock start + 600 s


@pytest.mark.parametrize("body", [b"{", b"[1]", b"\xff\xfe", b"null", b'"x"',
                                  b"[" * 100000])  # too deep for the parser: RecursionError
def test_mint_bad_json(client: falcon.testing.TestClient, key: str, body: bytes) -> None:
    assert err(mint(client, key, body)) == (
        400, {"ok": False, "code": "bad_request", "error": "Invalid JSON body."})


def test_token_uploads_and_counts_on_the_parent_key(client: falcon.testing.TestClient,
                                                   runtime: Runtime, key: str,
                                                   upload: Upload) -> None:
    token = mint(client, key).json["token"]
    r = upload(image_bytes(), token)
    assert r.status_code == 200, r.text
    record = runtime.keys.lookup("images", key)
    assert record is not None and record.request_count == 2  # the mint and the upload


@pytest.mark.parametrize(("method", "path"), MANAGEMENT)
def test_token_only_uploads(client: falcon.testing.TestClient, key: str, method: str,
                            path: str) -> None:
    token = mint(client, key).json["token"]
    assert err(client.simulate_request(method, path, headers=auth(token))) == unauthorized(
        "Upload tokens can only be used to upload.")


def test_token_expiry(client: falcon.testing.TestClient, key: str, clock: FakeClock,
                      upload: Upload) -> None:
    token = mint(client, key, b'{"ttl_seconds": 60}').json["token"]
    clock.advance(59)
    assert upload(image_bytes(), token).status_code == 200
    clock.advance(1)
    assert err(upload(image_bytes(color=(1, 2, 3)), token)) == unauthorized(
        "Upload token expired.")


def tamper(token: str) -> list[str]:
    body, _, sig = token.rpartition(".")
    payload = payload_of(token)
    forged = base64.urlsafe_b64encode(json.dumps(
        {**payload, "exp": payload["exp"] + 10**6}, separators=(",", ":")).encode()
    ).rstrip(b"=").decode()
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    return [f"ut_{forged}.{sig}", f"{body}.{flipped}", body, f"{body}.", "ut_", "ut_x.y",
            token + "A"]


def test_tampered_tokens(client: falcon.testing.TestClient, key: str,
                         upload: Upload) -> None:
    token = mint(client, key).json["token"]
    for bad in tamper(token):
        assert err(upload(image_bytes(), bad)) == unauthorized("Invalid upload token."), bad


def test_token_from_another_secret(client: falcon.testing.TestClient, runtime: Runtime,
                                   account: Account, key: str, upload: Upload) -> None:
    from hepcore_images.tokens import UploadTokenCodec

    record = runtime.keys.lookup("images", key)
    assert record is not None
    forged = UploadTokenCodec(["some-other-secret"]).mint(account.id, record.id, 2**40)
    assert err(upload(image_bytes(), forged)) == unauthorized("Invalid upload token.")


def test_token_dies_with_its_parent_key(client: falcon.testing.TestClient, runtime: Runtime,
                                        key: str, upload: Upload) -> None:
    token = mint(client, key).json["token"]
    record = runtime.keys.lookup("images", key)
    assert record is not None
    runtime.keys.revoke(record.id)
    assert err(upload(image_bytes(), token)) == unauthorized("Invalid upload token.")


def test_token_of_banned_owner(client: falcon.testing.TestClient, runtime: Runtime,
                               account: Account, key: str, upload: Upload) -> None:
    token = mint(client, key).json["token"]
    runtime.accounts.update(account.id, status="banned")
    assert err(upload(image_bytes(), token)) == BANNED
    runtime.accounts.update(account.id, status="active")
    assert upload(image_bytes(), token).status_code == 200


def test_a_token_cannot_mint(client: falcon.testing.TestClient, key: str) -> None:
    token = mint(client, key).json["token"]
    assert err(mint(client, token)) == unauthorized("Upload tokens can only be used to upload.")


# --- section 9: rate limits ---------------------------------------------------------------


class TestLimits:
    @pytest.fixture
    def images_options(self) -> dict[str, Any]:
        return {"upload_rate_per_minute": 3, "upload_rate_per_day": 5,
                "manage_rate_per_minute": 4}

    def test_upload_per_minute_then_per_day(self, client: falcon.testing.TestClient,
                                            key: str, clock: FakeClock,
                                            upload: Upload) -> None:
        for i in range(3):
            assert upload(image_bytes(color=(i, 0, 0))).status_code == 200
        r = upload(image_bytes(color=(9, 9, 9)))
        assert err(r) == (429, {"ok": False, "code": "rate_limit",
                                "error": "Rate limit exceeded: 3 uploads per minute."})
        assert r.headers["Retry-After"] == "60"
        clock.advance(30)
        assert upload(b"").headers["Retry-After"] == "30"
        clock.advance(31)
        # duplicates and rejected files count too
        assert upload(image_bytes(color=(0, 0, 0))).json["duplicate"] is True
        assert upload(b"not an image").json["code"] == "unsupported_type"
        r = upload(image_bytes(color=(8, 8, 8)))
        assert err(r) == (429, {"ok": False, "code": "rate_limit_day",
                                "error": "Daily upload limit reached: 5 uploads per day."})
        assert r.headers["Retry-After"] == str(86400 - 61)

    def test_management_bucket(self, client: falcon.testing.TestClient, key: str,
                               clock: FakeClock, upload: Upload) -> None:
        for _ in range(3):
            assert client.simulate_get("/api/v1/me", headers=auth(key)).status_code == 200
        assert mint(client, key).status_code == 200
        r = client.simulate_get("/api/v1/uploads", headers=auth(key))
        assert err(r) == (429, {"ok": False, "code": "rate_limit",
                                "error": "Rate limit exceeded: 4 requests per minute."})
        assert r.headers["Retry-After"] == "60"
        # uploads have their own buckets
        assert upload(image_bytes()).status_code == 200
        clock.advance(60)
        assert client.simulate_get("/api/v1/me", headers=auth(key)).status_code == 200

    def test_limits_are_per_key(self, client: falcon.testing.TestClient, runtime: Runtime,
                                account: Account, key: str) -> None:
        for _ in range(4):
            client.simulate_get("/api/v1/me", headers=auth(key))
        assert client.simulate_get("/api/v1/me", headers=auth(key)).status_code == 429
        other, _ = runtime.keys.create("images", account.id)
        assert client.simulate_get("/api/v1/me", headers=auth(other)).status_code == 200

    def test_tokens_share_the_parent_key_bucket(self, client: falcon.testing.TestClient,
                                                key: str, upload: Upload) -> None:
        token = mint(client, key).json["token"]
        for i in range(3):
            assert upload(image_bytes(color=(i, 1, 1)), token if i % 2 else key).status_code \
                == 200
        assert err(upload(image_bytes(), token))[1]["code"] == "rate_limit"
