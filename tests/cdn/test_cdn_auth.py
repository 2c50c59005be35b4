"""Keys and authentication (spec section 2, upstream "API authentication" and
"Keys" assertions), ``/api/v4/me`` (6.1) and ``/api/v4/revoke`` (6.8)."""

from __future__ import annotations

import re

import falcon.testing
import pytest
from cdnkit import rows, upload

from hepcore import Account, Runtime
from hepcore.errors import ConfigError
from hepcore.tokens import hash_token
from hepcore_cdn.keys import create_key
from hepcore_cdn.service import public_id

INVALID = {"error": "invalid_auth"}
API_ROUTES = [
    ("GET", "/api/v4/me"), ("POST", "/api/v4/upload"), ("POST", "/api/v4/uploads"),
    ("POST", "/api/v4/upload_from_url"),
    ("PATCH", "/api/v4/uploads/0190f000-0000-7000-8000-000000000000/rename"),
    ("DELETE", "/api/v4/upload/0190f000-0000-7000-8000-000000000000"),
    ("DELETE", "/api/v4/uploads/batch"), ("POST", "/api/v4/revoke"),
    ("GET", "/api/v4/me.json"), ("POST", "/api/v4/upload.json"),
]


def me(client: falcon.testing.TestClient, authorization: str | None) -> falcon.testing.Result:
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.simulate_get("/api/v4/me", headers=headers)


def test_valid_key_gives_the_account(client: falcon.testing.TestClient, account: Account,
                                     key: str) -> None:
    r = me(client, f"Bearer {key}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == {"id": public_id(account), "email": "alice@example.org", "name": "alice",
                      "storage_used": 0, "storage_limit": 52428800,
                      "quota_tier": "unverified"}
    assert re.fullmatch(r"usr_[A-Za-z0-9]{6,}", r.json["id"])


def test_public_id_is_stable_and_distinct(runtime: Runtime, account: Account) -> None:
    other = runtime.accounts.create("zed")
    assert public_id(account) == public_id(runtime.accounts.get(account.id))
    assert public_id(account) != public_id(other)


def test_me_reports_usage_and_tier(client: falcon.testing.TestClient, runtime: Runtime,
                                   account: Account, auth: dict[str, str]) -> None:
    runtime.accounts.update(account.id, settings={"quota_tier": "verified",
                                                  "display_name": "Alice A."})
    assert upload(client, auth, "a.txt", b"x" * 1000).status_code == 201
    r = client.simulate_get("/api/v4/me", headers=auth)
    assert r.json == {"id": public_id(account), "email": "alice@example.org",
                      "name": "Alice A.", "storage_used": 1000,
                      "storage_limit": 53687091200, "quota_tier": "verified"}


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Bearer sk_cdn_invalid", "Token sk_cdn_invalid",
    "Basic dXNlcjpwYXNz", "sk_cdn_" + "0" * 64,
])
def test_bad_credentials_are_invalid_auth(client: falcon.testing.TestClient, key: str,
                                          authorization: str | None) -> None:
    r = me(client, authorization)
    assert r.status_code == 401
    assert r.json == INVALID
    assert "WWW-Authenticate" not in r.headers


def test_scheme_is_case_sensitive_and_a_bare_key_is_refused(
        client: falcon.testing.TestClient, key: str) -> None:
    for authorization in (f"bearer {key}", f"BEARER {key}", f"token {key}", key,
                          f"Bearer{key}", f'Bearer token="{key}"'):
        r = me(client, authorization)
        assert (r.status_code, r.json) == (401, INVALID), authorization
    for authorization in (f"Bearer {key}", f"Token {key}", f'Token token="{key}"',
                          f"Bearer\t{key}", f"Token   {key}  "):
        assert me(client, authorization).status_code == 200, authorization


def test_revoked_key_is_invalid_auth(client: falcon.testing.TestClient, runtime: Runtime,
                                     key: str) -> None:
    record = runtime.keys.lookup("cdn", key)
    assert record is not None
    runtime.keys.revoke(record.id)
    r = me(client, f"Bearer {key}")
    assert (r.status_code, r.json) == (401, INVALID)


def test_other_services_keys_and_suspended_accounts_are_refused(
        client: falcon.testing.TestClient, runtime: Runtime, account: Account, key: str) -> None:
    paste_like = runtime.keys.create("images", account.id)[0]
    assert (me(client, f"Bearer {paste_like}").status_code) == 401
    runtime.accounts.update(account.id, status="suspended")
    r = me(client, f"Bearer {key}")
    assert (r.status_code, r.json) == (401, INVALID)


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_authentication_runs_before_anything_else(client: falcon.testing.TestClient,
                                                  method: str, path: str) -> None:
    """Bad JSON, missing parameters and malformed ids are not reported to strangers."""
    r = client.simulate_request(method, path, body=b"{not json",
                                headers={"Content-Type": "application/json",
                                         "Authorization": "Bearer sk_cdn_nope"})
    assert (r.status_code, r.json) == (401, INVALID)
    r = client.simulate_request(method, path, body=b"{not json",
                                headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json) == (401, INVALID)


def test_json_suffix_routes(client: falcon.testing.TestClient, auth: dict[str, str]) -> None:
    assert client.simulate_get("/api/v4/me.json", headers=auth).json["name"] == "alice"
    up = upload(client, auth, "a.txt", b"abc")
    assert up.status_code == 201
    uid = up.json["id"]
    r = client.simulate_patch(f"/api/v4/uploads/{uid}/rename.json", json={"filename": "b"},
                              headers=auth)
    assert (r.status_code, r.json["filename"]) == (200, "b.txt")
    r = client.simulate_delete(f"/api/v4/upload/{uid}.json", headers=auth)
    assert r.json == {"id": uid, "deleted": True}


def test_unknown_api_routes_and_methods(client: falcon.testing.TestClient,
                                        auth: dict[str, str]) -> None:
    for method, path in [("GET", "/api/v4/nothing"), ("GET", "/api/v4/upload"),
                         ("PUT", "/api/v4/me"), ("GET", "/api/v3/me"), ("GET", "/api")]:
        r = client.simulate_request(method, path, headers=auth)
        assert (r.status_code, r.json) == (404, {"error": "Not found"}), (method, path)


def test_revoke_revokes_the_key_used(client: falcon.testing.TestClient, runtime: Runtime,
                                     account: Account, key: str) -> None:
    second, _ = create_key(runtime, account.id, "laptop")
    r = client.simulate_post("/api/v4/revoke", headers={"Authorization": f"Token {key}"})
    assert r.status_code == 200
    assert r.json == {"success": True, "owner_email": "alice@example.org", "key_name": "ci",
                      "status": "complete"}
    assert (me(client, f"Bearer {key}").status_code, me(client, f"Bearer {key}").json) == \
        (401, INVALID)
    assert me(client, f"Bearer {second}").status_code == 200
    record = runtime.keys.lookup("cdn", key)
    assert record is not None and record.status == "revoked" and record.revoked_at is not None


def test_revoke_with_malformed_json_revokes_nothing(client: falcon.testing.TestClient,
                                                    runtime: Runtime, key: str) -> None:
    """Section 3 (C5): a malformed JSON body is 400 and the key keeps working."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for raw in (b"{bad", b"\xff\xfe", b"[" * 100_000):
        r = client.simulate_post("/api/v4/revoke", body=raw, headers=headers)
        assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"}), raw
    assert me(client, f"Bearer {key}").status_code == 200
    record = runtime.keys.lookup("cdn", key)
    assert record is not None and record.status != "revoked" and record.revoked_at is None


# --- keys (upstream ApiKey model tests) ------------------------------------


def test_keys_have_the_prefix_and_are_stored_hashed(runtime: Runtime, account: Account) -> None:
    token, record = create_key(runtime, account.id, "ci")
    assert re.fullmatch(r"sk_cdn_[0-9a-f]{64}", token) and len(token) == 71
    (row,) = runtime.db.all("SELECT * FROM api_keys WHERE id = ?", (record.id,))
    assert row["token_hash"] != token and token not in tuple(row)
    assert row["token_hash"] == hash_token(token)


def test_lookup_by_plaintext(runtime: Runtime, account: Account) -> None:
    token, record = create_key(runtime, account.id, "ci")
    found = runtime.keys.lookup("cdn", token)
    assert found is not None and found.id == record.id
    assert runtime.keys.lookup("cdn", "sk_cdn_" + "f" * 64) is None


def test_active_set_excludes_revoked_keys(runtime: Runtime, account: Account) -> None:
    from hepcore_cdn.keys import active_keys

    _, keep = create_key(runtime, account.id, "keep")
    _, drop = create_key(runtime, account.id, "drop")
    revoked = runtime.keys.revoke(drop.id)
    assert revoked.status == "revoked" and revoked.revoked_at == runtime.clock()
    assert [k.id for k in active_keys(runtime, account.id)] == [keep.id]


def test_masked_form(runtime: Runtime, account: Account) -> None:
    token, record = create_key(runtime, account.id, "ci")
    assert record.display == token[:13] + "...." + token[-6:]
    assert "sk_cdn_" in record.display and "...." in record.display
    assert len(record.display) == 23


@pytest.mark.parametrize(("name", "message"), [
    (None, "Name can't be blank"), ("", "Name can't be blank"), ("   ", "Name can't be blank"),
    ("x" * 256, "Name is too long (maximum is 255 characters)"),
])
def test_a_key_needs_a_name(runtime: Runtime, account: Account, name: str | None,
                            message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_key(runtime, account.id, name)
    assert runtime.keys.list(account_id=account.id) == []
    create_key(runtime, account.id, "x" * 255)


def test_no_rows_for_strangers(client: falcon.testing.TestClient, runtime: Runtime) -> None:
    r = upload(client, {"Authorization": "Bearer sk_cdn_" + "1" * 64})
    assert r.status_code == 401
    assert rows(runtime) == []
