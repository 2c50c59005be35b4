"""The uploader's management API (spec section 8) under WSGI and ASGI:
``/api/v1/me``, token regeneration, listing, PATCH, DELETE, shorten and the
ShareX config, with every status and message the spec lists."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import pytest
from httpkit import TestHost, multipart, png_bytes

from hepcore import Runtime
from hepcore.errors import CredentialRevoked

ID_RE = r"[A-Za-z0-9_-]{9}"
TOKEN_RE = r"hyd-up-[A-Za-z0-9_-]{32}"
ISO_MS_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
START_ISO = "2026-05-28T20:26:40.000Z"  # FakeClock's start, 1_780_000_000
BASE = "http://falconframework.org"  # falcon.testing's default host
MISSING = {"ok": False, "error": "Missing bearer token"}
REVOKED = {"ok": False, "error": "Token revoked"}
FORBIDDEN = {"ok": False, "error": "Forbidden"}
ACCESS_REQUIRED = {"ok": False, "error": "ACCESS_REQUIRED", "code": "ACCESS_REQUIRED"}
NOT_FOUND = {"ok": False, "error": "Not found"}
INVALID_JSON = {"ok": False, "error": "Invalid JSON body"}
ALIAS_TOO_LONG = "Alias must be 32 characters or fewer"
ALIAS_CHARS = 'Alias may only contain letters, numbers, ".", "-" and "_"'
ALIAS_RESERVED = "Alias is reserved"
ALIAS_TAKEN = "Alias is already taken"
INVALID_URL = "Invalid URL"
OWN_SITE = "Cannot shorten links to this site"


def err(message: str, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": message}
    if code:
        body["code"] = code
    return body


def api(client: falcon.testing.TestClient, method: str, path: str, token: str | None,
        body: Any = None, *, raw: bytes | None = None,
        query: dict[str, str] | None = None) -> falcon.testing.Result:
    headers = {} if token is None else {"Authorization": token}
    kwargs: dict[str, Any] = {}
    if raw is not None:
        kwargs["body"] = raw
        headers["Content-Type"] = "application/json"
    elif body is not None:
        kwargs["body"] = json.dumps(body)
        headers["Content-Type"] = "application/json"
    if query is not None:
        kwargs["query_string"] = urlencode(query)
    return client.simulate_request(method, path, headers=headers, **kwargs)


def upload_file(client: falcon.testing.TestClient, token: str, data: bytes = b"hello",
                filename: str = "hello.txt", content_type: str | None = "text/plain") -> str:
    body, ctype = multipart([("file", filename, content_type, data)])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": token})
    assert r.status_code == 200, r.text
    return str(r.json["ID"])


def upload_link(client: falcon.testing.TestClient, token: str, link: str) -> str:
    r = client.simulate_post("/upload", body=urlencode({"link": link}), headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": token})
    assert r.status_code == 200, r.text
    return str(r.json["ID"])


def shorten(client: falcon.testing.TestClient, token: str, url: str,
            alias: str | None = None) -> falcon.testing.Result:
    body: dict[str, Any] = {"url": url}
    if alias is not None:
        body["alias"] = alias
    return api(client, "POST", "/api/v1/shorten", token, body)


def patch(client: falcon.testing.TestClient, token: str, content_id: str,
          body: Any) -> falcon.testing.Result:
    return api(client, "PATCH", f"/api/v1/uploads/{content_id}", token, body)


def listing(client: falcon.testing.TestClient, token: str, **query: str) -> dict[str, Any]:
    r = api(client, "GET", "/api/v1/uploads", token, query=query or None)
    assert r.status_code == 200, r.text
    assert r.json["ok"] is True
    return dict(r.json["data"])


def item_of(client: falcon.testing.TestClient, token: str, item_id: str) -> dict[str, Any]:
    (found,) = [i for i in listing(client, token, limit="100")["uploads"] if i["ID"] == item_id]
    return dict(found)


@pytest.fixture
def other_token(runtime: Runtime) -> str:
    other = runtime.accounts.create("mallory")
    token, _ = runtime.keys.create("uploader", other.id)
    return token


# --- authentication on every management route (section 2) ------------------

ROUTES = [
    ("GET", "/api/v1/me", None),
    ("POST", "/api/v1/me/token/regenerate", None),
    ("GET", "/api/v1/uploads", None),
    ("PATCH", "/api/v1/uploads/nothing", {"favourite": True}),
    ("DELETE", "/api/v1/uploads/nothing", None),
    ("POST", "/api/v1/shorten", {"url": "https://example.com/"}),
    ("GET", "/api/v1/sharex", None),
]


@pytest.mark.parametrize(("auth", "expected"), [
    (None, MISSING), ("", MISSING), ("   ", MISSING), ("Bearer", MISSING), ("token  ", MISSING),
    ("hyd-up-" + "A" * 32, REVOKED), ("Bearer not-a-token", REVOKED), ("Basic abc", REVOKED),
], ids=["absent", "empty", "blank", "bare-bearer", "bare-token", "unknown", "bearer-unknown",
        "basic"])
def test_auth_errors_on_every_route(client, uploader_token, auth, expected):
    for method, path, body in ROUTES:
        r = api(client, method, path, auth, body)
        assert r.status_code == 401, (method, path)
        assert r.headers["Content-Type"] == "application/json"
        assert r.json == expected, (method, path)


@pytest.mark.parametrize(("change", "expected"), [
    ({"settings": {"disabled": True}}, FORBIDDEN),
    ({"status": "suspended"}, FORBIDDEN),
    ({"settings": {"uploader_access": "suspended"}}, ACCESS_REQUIRED),
    ({"settings": {"uploader_access": "revoked"}}, ACCESS_REQUIRED),
    ({"settings": {"disabled": True, "uploader_access": "revoked"}}, FORBIDDEN),
], ids=["disabled", "account-suspended", "access-suspended", "access-revoked", "both"])
def test_access_errors_on_every_route(client, runtime, account, uploader_token, change,
                                      expected):
    runtime.accounts.update(account.id, **change)
    for method, path, body in ROUTES:
        r = api(client, method, path, uploader_token, body)
        assert (r.status_code, r.json) == (403, expected), (method, path)
    runtime.accounts.update(account.id, status="active",
                            settings={"disabled": False, "uploader_access": "active"})
    assert api(client, "GET", "/api/v1/me", uploader_token).status_code == 200


def test_rotated_or_disabled_token_is_revoked_on_every_route(client, runtime, account,
                                                            uploader_token):
    (key,) = runtime.keys.list(account_id=account.id, service="uploader")
    runtime.keys.set_status(key.id, "disabled")
    for method, path, body in ROUTES:
        r = api(client, method, path, uploader_token, body)
        assert (r.status_code, r.json) == (401, REVOKED), path
    runtime.keys.set_status(key.id, "active")
    assert api(client, "GET", "/api/v1/me", uploader_token).status_code == 200
    runtime.keys.rotate(key.id)
    for method, path, body in ROUTES:
        r = api(client, method, path, uploader_token, body)
        assert (r.status_code, r.json) == (401, REVOKED), path


def test_unknown_api_routes_and_methods_use_the_envelope(client, uploader_token):
    r = api(client, "GET", "/api/v1/nothing", uploader_token)
    assert (r.status_code, r.json) == (404, NOT_FOUND)
    assert r.headers["Content-Type"] == "application/json"
    for method, path, allow in (("PUT", "/api/v1/me", "GET, HEAD"),
                                ("GET", "/api/v1/uploads/abc", "DELETE, PATCH"),
                                ("GET", "/api/v1/shorten", "POST"),
                                ("DELETE", "/api/v1/me/token/regenerate", "POST")):
        r = api(client, method, path, uploader_token)
        assert (r.status_code, r.json) == (405, err("Method not allowed")), path
        assert r.headers["Allow"] == allow


@pytest.mark.parametrize("form", ["{t}", "Bearer {t}", "token {t}", " BEARER\t{t} "])
def test_management_accepts_every_header_form(client, uploader_token, form):
    r = api(client, "GET", "/api/v1/me", form.format(t=uploader_token))
    assert r.status_code == 200


def test_authentication_comes_before_everything_else(client, uploader_token):
    # unknown item, malformed JSON: still 401 first
    assert api(client, "PATCH", "/api/v1/uploads/nope", None, raw=b"{").json == MISSING
    assert api(client, "DELETE", "/api/v1/uploads/nope", "bad").json == REVOKED
    assert api(client, "POST", "/api/v1/shorten", None, raw=b"[").json == MISSING
    r = api(client, "GET", "/api/v1/uploads", None, query={"limit": "0", "type": "x"})
    assert r.json == MISSING


# --- GET /api/v1/me (8.2) ---------------------------------------------------


def test_me_exact_shape(client, account, uploader_token):
    r = api(client, "GET", "/api/v1/me", uploader_token)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == {"ok": True, "data": {
        "id": account.id, "name": "alice", "serveUrl": BASE, "maxFileSize": 104857600,
        "allowedTypes": ["*/*"], "uploadCount": 0, "createdAt": START_ISO}}


def test_me_reflects_account_settings(host):
    h = host(settings={"max_file_size": 2 * 1024 * 1024, "allowed_types": ["image/*", "text/plain"]})
    data = api(h.client(), "GET", "/api/v1/me", h.token).json["data"]
    assert data["maxFileSize"] == 2 * 1024 * 1024
    assert data["allowedTypes"] == ["image/*", "text/plain"]
    assert data["name"] == "bob"
    assert data["id"] == h.account.id


@pytest.mark.parametrize(("kwargs", "serve_url"), [
    ({}, BASE),
    ({"public_base_url": "https://hep.example/"}, "https://hep.example"),
    ({"public_base_url": "https://hep.example",
      "options": {"serve_base_url": "https://i.hep.example/"}}, "https://i.hep.example"),
    ({"public_base_url": "https://hep.example",
      "options": {"serve_base_url": "https://i.hep.example"},
      "settings": {"serve_base_url": "https://bob.hep.example/"}}, "https://bob.hep.example"),
], ids=["request", "public-base", "serve-base", "account-serve-base"])
def test_me_serve_url(host, kwargs, serve_url):
    h = host(**kwargs)
    client = h.client()
    assert api(client, "GET", "/api/v1/me", h.token).json["data"]["serveUrl"] == serve_url
    # and it is where uploads are served
    r = shorten(client, h.token, "https://example.com/")
    assert r.json["url"] == f"{serve_url}/{r.json['ID']}"


def test_me_upload_count_counts_live_items_of_every_kind(client, uploader_token, other_token,
                                                          clock):
    def count() -> int:
        return int(api(client, "GET", "/api/v1/me", uploader_token).json["data"]["uploadCount"])

    upload_file(client, uploader_token)
    upload_link(client, uploader_token, "just some text")
    upload_link(client, uploader_token, "https://example.com/a")
    first = shorten(client, uploader_token, "https://example.com/b").json["ID"]
    shorten(client, uploader_token, "https://example.com/c", alias="vanity")
    upload_file(client, other_token)  # someone else's
    assert count() == 5
    assert api(client, "DELETE", f"/api/v1/uploads/{first}", uploader_token).status_code == 200
    assert count() == 4


# --- POST /api/v1/me/token/regenerate (8.3) ---------------------------------


def test_regenerate_token(client, uploader_token):
    r = api(client, "POST", "/api/v1/me/token/regenerate", f"Bearer {uploader_token}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert set(r.json) == {"ok", "data"} and r.json["ok"] is True
    assert set(r.json["data"]) == {"token"}
    assert r.headers["Cache-Control"] == "no-store"  # a credential: no cache keeps it
    new = r.json["data"]["token"]
    assert re.fullmatch(TOKEN_RE, new) and new != uploader_token
    # the old token is revoked at once, everywhere
    assert api(client, "GET", "/api/v1/me", uploader_token).json == REVOKED
    r = client.simulate_post("/upload", body="link=https://example.com/", headers={
        "Authorization": uploader_token, "Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json) == (401, REVOKED)
    assert api(client, "POST", "/api/v1/me/token/regenerate", uploader_token).json == REVOKED
    # the new one works for uploads and management
    assert api(client, "GET", "/api/v1/me", new).status_code == 200
    upload_link(client, new, "https://example.com/")
    newer = api(client, "POST", "/api/v1/me/token/regenerate", new).json["data"]["token"]
    assert api(client, "GET", "/api/v1/me", new).json == REVOKED
    assert api(client, "GET", "/api/v1/me", newer).status_code == 200


def test_regenerate_that_loses_a_race_issues_nothing(client, runtime, uploader_token,
                                                    monkeypatch):
    # Two regenerations with one token: both pass authentication, then the other
    # one commits first. This one must not hand out a second (dead) token.
    service = runtime.services["uploader"]
    admit = service.admit

    def admit_then_lose_the_race(request, *args, **kwargs):
        actor = admit(request, *args, **kwargs)
        runtime.keys.rotate(actor.key.id)
        return actor

    monkeypatch.setattr(service, "admit", admit_then_lose_the_race)
    r = api(client, "POST", "/api/v1/me/token/regenerate", uploader_token)
    assert (r.status_code, r.json) == (401, REVOKED)
    account_id = runtime.keys.list(service="uploader")[0].account_id
    keys = runtime.keys.list(account_id=account_id, service="uploader")
    assert [k.status for k in keys] == ["revoked", "active"]
    with pytest.raises(CredentialRevoked):
        runtime.keys.rotate(keys[0].id)


def test_regenerate_keeps_the_accounts_items(client, uploader_token):
    item_id = upload_file(client, uploader_token)
    new = api(client, "POST", "/api/v1/me/token/regenerate", uploader_token).json["data"]["token"]
    assert [i["ID"] for i in listing(client, new)["uploads"]] == [item_id]


# --- GET /api/v1/uploads (8.4) and the item object (8.1) ---------------------


def test_item_object_for_file_text_and_link(client, uploader_token, clock):
    png = png_bytes(7, 5)
    file_id = upload_file(client, uploader_token, png, filename="shot.png", content_type=None)
    clock.advance(1.5)
    text_id = upload_link(client, uploader_token, "some notes")
    clock.advance(0.25)
    link_id = upload_link(client, uploader_token, "https://example.com/target")
    client.simulate_get("/" + file_id)
    client.simulate_get("/" + link_id)
    client.simulate_get("/" + link_id)
    data = listing(client, uploader_token)
    assert data["nextBefore"] is None
    link, text, file = data["uploads"]
    assert file == {
        "ID": file_id, "url": f"{BASE}/{file_id}", "kind": "file", "alias": None,
        "favourite": False, "link": None, "name": "shot.png", "type": "image/png",
        "size": len(png), "views": 1, "createdAt": START_ISO}
    assert text == {
        "ID": text_id, "url": f"{BASE}/{text_id}", "kind": "text", "alias": None,
        "favourite": False, "link": None, "name": "1780000001500.txt",
        "type": "text/plain; charset=utf-8", "size": len("some notes"), "views": 0,
        "createdAt": "2026-05-28T20:26:41.500Z"}
    assert link == {
        "ID": link_id, "url": f"{BASE}/{link_id}", "kind": "link", "alias": None,
        "favourite": False, "link": "https://example.com/target", "name": None, "type": None,
        "size": None, "views": 2, "createdAt": "2026-05-28T20:26:41.750Z"}
    assert re.fullmatch(ID_RE + r"\.png", file_id)
    assert re.fullmatch(ID_RE + r"\.txt", text_id)
    assert re.fullmatch(ID_RE, link_id)
    for item in data["uploads"]:
        assert isinstance(item["views"], int) and isinstance(item["favourite"], bool)
        assert re.fullmatch(ISO_MS_RE, item["createdAt"])


def test_list_type_filter_and_newest_first(client, uploader_token, other_token, clock):
    made = []
    for i in range(6):
        clock.advance(1)
        if i % 3 == 0:
            made.append(upload_file(client, uploader_token, b"f%d" % i))
        elif i % 3 == 1:
            made.append(upload_link(client, uploader_token, f"text {i}"))
        else:
            made.append(upload_link(client, uploader_token, f"https://example.com/{i}"))
    upload_file(client, other_token)
    newest_first = list(reversed(made))
    everything = listing(client, uploader_token)
    assert [i["ID"] for i in everything["uploads"]] == newest_first
    stamps = [i["createdAt"] for i in everything["uploads"]]
    assert stamps == sorted(stamps, reverse=True)
    links = listing(client, uploader_token, type="links")["uploads"]
    assert [i["ID"] for i in links] == [made[5], made[2]]
    assert {i["kind"] for i in links} == {"link"}
    files = listing(client, uploader_token, type="files")["uploads"]
    assert [i["ID"] for i in files] == [made[4], made[3], made[1], made[0]]
    assert {i["kind"] for i in files} == {"file", "text"}


def test_empty_listing(client, uploader_token):
    assert listing(client, uploader_token) == {"uploads": [], "nextBefore": None}


def test_invalid_type(client, uploader_token):
    for value in ["link", "file", "LINKS", "", "all", "links,files"]:
        r = api(client, "GET", "/api/v1/uploads", uploader_token, query={"type": value})
        assert (r.status_code, r.json) == (400, err("Invalid type")), value


def test_invalid_limit(client, uploader_token):
    for value in ["0", "101", "-1", "abc", "", "1.5", " 5", "1e2", "50x", "\u00b2", "\u0663",
                  "99999999999999999999999", "1" * 5000]:
        r = api(client, "GET", "/api/v1/uploads", uploader_token, query={"limit": value})
        assert (r.status_code, r.json) == (400, err("Invalid limit")), value


def test_limit_bounds_and_default(client, uploader_token):
    ids = [shorten(client, uploader_token, f"https://example.com/{i}").json["ID"]
           for i in range(101)]
    assert len(listing(client, uploader_token)["uploads"]) == 50
    assert len(listing(client, uploader_token, limit="007")["uploads"]) == 7
    one = listing(client, uploader_token, limit="1")
    assert [i["ID"] for i in one["uploads"]] == [ids[-1]]
    assert one["nextBefore"] == one["uploads"][0]["createdAt"]
    hundred = listing(client, uploader_token, limit="100")
    assert len(hundred["uploads"]) == 100
    assert hundred["nextBefore"] == hundred["uploads"][-1]["createdAt"]
    rest = listing(client, uploader_token, limit="100", before=hundred["nextBefore"])
    assert ([i["ID"] for i in rest["uploads"]], rest["nextBefore"]) == ([ids[0]], None)


def test_invalid_before(client, uploader_token):
    for value in ["yesterday", "", "2026-13-01T00:00:00Z", "2026-05-28T25:00:00.000Z",
                  "1780000000", "Z", "2026-05-28T20:26:40.000Zjunk"]:
        r = api(client, "GET", "/api/v1/uploads", uploader_token, query={"before": value})
        assert (r.status_code, r.json) == (400, err("Invalid before")), value


def test_paging_in_one_millisecond_neither_skips_nor_repeats(client, uploader_token, clock):
    # the clock never moves: the store stamps colliding items 1 ms apart
    made = [shorten(client, uploader_token, f"https://example.com/{i}").json["ID"]
            for i in range(4)]
    made += [upload_file(client, uploader_token, b"%d" % i) for i in range(3)]
    seen: list[str] = []
    pages = []
    before = None
    while True:
        query = {"limit": "3"} | ({"before": before} if before else {})
        page = listing(client, uploader_token, **query)
        pages.append(len(page["uploads"]))
        seen += [i["ID"] for i in page["uploads"]]
        if page["nextBefore"] is None:
            break
        assert page["nextBefore"] == page["uploads"][-1]["createdAt"]
        before = page["nextBefore"]
    assert pages == [3, 3, 1]
    assert seen == list(reversed(made))
    stamps = [i["createdAt"] for i in listing(client, uploader_token)["uploads"]]
    assert len(set(stamps)) == 7
    assert stamps[-1] == START_ISO and stamps[0] == "2026-05-28T20:26:40.006Z"


def test_listing_keeps_upload_order_when_the_clock_steps_back(client, uploader_token, clock):
    made = [upload_file(client, uploader_token, b"first")]
    clock.advance(-5)  # a host clock set back: still newest first, stamped after
    made += [upload_file(client, uploader_token, b"%d" % i) for i in range(2)]
    items = listing(client, uploader_token)["uploads"]
    assert [i["ID"] for i in items] == list(reversed(made))
    assert [i["createdAt"] for i in items] == [
        "2026-05-28T20:26:40.002Z", "2026-05-28T20:26:40.001Z", START_ISO]


def test_next_before_is_null_on_an_exact_last_page(client, uploader_token):
    for i in range(6):
        shorten(client, uploader_token, f"https://example.com/{i}")
    first = listing(client, uploader_token, limit="3")
    assert first["nextBefore"] is not None
    second = listing(client, uploader_token, limit="3", before=first["nextBefore"])
    assert len(second["uploads"]) == 3
    assert second["nextBefore"] is None


def test_before_is_strictly_earlier_and_accepts_offsets(client, uploader_token, clock):
    ids = []
    for i in range(3):
        ids.append(shorten(client, uploader_token, f"https://example.com/{i}").json["ID"])
        clock.advance(60)
    stamps = {i["ID"]: i["createdAt"] for i in listing(client, uploader_token)["uploads"]}
    page = listing(client, uploader_token, before=stamps[ids[1]])
    assert [i["ID"] for i in page["uploads"]] == [ids[0]]
    # the same instant written with an offset, and a later one
    page = listing(client, uploader_token, before="2026-05-28T22:27:40.000+02:00")
    assert [i["ID"] for i in page["uploads"]] == [ids[0]]
    page = listing(client, uploader_token, before="2030-01-01T00:00:00Z")
    assert [i["ID"] for i in page["uploads"]] == list(reversed(ids))
    page = listing(client, uploader_token, before="2000-01-01T00:00:00Z")
    assert page == {"uploads": [], "nextBefore": None}


def test_listing_shows_only_own_live_items(client, uploader_token, other_token):
    mine = upload_file(client, uploader_token)
    gone = upload_file(client, uploader_token)
    upload_file(client, other_token)
    api(client, "DELETE", f"/api/v1/uploads/{gone}", uploader_token)
    assert [i["ID"] for i in listing(client, uploader_token)["uploads"]] == [mine]


def test_item_urls_use_the_account_serve_base(host):
    h = host(public_base_url="https://hep.example",
             settings={"serve_base_url": "https://bob.example.com"})
    client = h.client()
    item_id = upload_file(client, h.token)
    assert listing(client, h.token)["uploads"][0]["url"] == f"https://bob.example.com/{item_id}"


# --- PATCH /api/v1/uploads/:contentID (8.5) ---------------------------------


def test_patch_alias_set_replace_clear(client, uploader_token):
    item_id = upload_file(client, uploader_token, b"aliased")
    r = patch(client, uploader_token, item_id, {"alias": "first"})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json["ok"] is True
    assert r.json["data"]["alias"] == "first" and r.json["data"]["ID"] == item_id
    assert r.json["data"] == item_of(client, uploader_token, item_id)
    assert client.simulate_get("/first").content == b"aliased"
    # setting the same alias again is fine
    assert patch(client, uploader_token, item_id, {"alias": "first"}).status_code == 200
    # replace
    r = patch(client, uploader_token, item_id, {"alias": "second"})
    assert r.json["data"]["alias"] == "second"
    assert client.simulate_get("/second").content == b"aliased"
    assert client.simulate_get("/first").status_code == 404
    # resolve by alias for PATCH itself, then clear with null and with ""
    r = patch(client, uploader_token, "second", {"alias": None})
    assert (r.status_code, r.json["data"]["alias"]) == (200, None)
    assert client.simulate_get("/second").status_code == 404
    patch(client, uploader_token, item_id, {"alias": "third"})
    r = patch(client, uploader_token, item_id, {"alias": ""})
    assert (r.status_code, r.json["data"]["alias"]) == (200, None)
    assert client.simulate_get("/third").status_code == 404
    assert client.simulate_get("/" + item_id).content == b"aliased"


def test_patch_alias_of_a_shortlink(client, uploader_token):
    link_id = upload_link(client, uploader_token, "https://example.com/dest")
    assert patch(client, uploader_token, link_id, {"alias": "go.Here-1_x"}).status_code == 200
    r = client.simulate_get("/go.Here-1_x")
    assert (r.status_code, r.headers["Location"]) == (302, "https://example.com/dest")


def test_patch_favourite(client, uploader_token):
    item_id = upload_file(client, uploader_token)
    r = patch(client, uploader_token, item_id, {"favourite": True})
    assert r.json["data"]["favourite"] is True
    assert item_of(client, uploader_token, item_id)["favourite"] is True
    r = patch(client, uploader_token, item_id, {"favourite": False})
    assert r.json["data"]["favourite"] is False
    # no other effect: it is still served
    assert client.simulate_get("/" + item_id).status_code == 200


def test_patch_link_of_a_shortlink(client, uploader_token):
    link_id = shorten(client, uploader_token, "https://example.com/old").json["ID"]
    r = patch(client, uploader_token, link_id, {"link": "  https://example.org/new?q=1  "})
    assert r.status_code == 200
    assert r.json["data"]["link"] == "https://example.org/new?q=1"
    got = client.simulate_get("/" + link_id)
    assert (got.status_code, got.headers["Location"]) == (302, "https://example.org/new?q=1")
    # target rules apply
    r = patch(client, uploader_token, link_id, {"link": "mailto:a@example.com"})
    assert (r.status_code, r.json) == (400, err(INVALID_URL))
    r = patch(client, uploader_token, link_id, {"link": f"{BASE}/elsewhere"})
    assert (r.status_code, r.json) == (400, err(OWN_SITE))
    r = patch(client, uploader_token, link_id, {"link": ""})
    assert (r.status_code, r.json) == (400, err(INVALID_URL))
    assert client.simulate_get("/" + link_id).headers["Location"] == "https://example.org/new?q=1"


def test_patch_several_fields_at_once(client, uploader_token):
    link_id = upload_link(client, uploader_token, "https://example.com/a")
    r = patch(client, uploader_token, link_id,
              {"alias": "multi", "favourite": True, "link": "https://example.com/b"})
    data = r.json["data"]
    assert (data["alias"], data["favourite"], data["link"]) == (
        "multi", True, "https://example.com/b")


@pytest.mark.parametrize("kind", ["file", "text"])
def test_only_shortlinks_have_a_link(client, uploader_token, kind):
    item_id = (upload_file(client, uploader_token) if kind == "file"
               else upload_link(client, uploader_token, "words"))
    r = patch(client, uploader_token, item_id, {"link": "https://example.com/"})
    assert (r.status_code, r.json) == (400, err("Only shortlinks have a link"))
    assert item_of(client, uploader_token, item_id)["link"] is None


@pytest.mark.parametrize(("body", "message"), [
    ({"favourite": "yes"}, "favourite must be a boolean"),
    ({"favourite": 1}, "favourite must be a boolean"),
    ({"favourite": None}, "favourite must be a boolean"),
    ({"alias": 5}, "alias must be a string"),
    ({"alias": ["a"]}, "alias must be a string"),
    ({"alias": True}, "alias must be a string"),
    ({"link": 5}, "link must be a string"),
    ({"link": None}, "link must be a string"),
    ({"link": {"url": "https://example.com"}}, "link must be a string"),
])
def test_patch_field_type_errors(client, uploader_token, body, message):
    link_id = upload_link(client, uploader_token, "https://example.com/")
    r = patch(client, uploader_token, link_id, body)
    assert (r.status_code, r.json) == (400, err(message))
    item = item_of(client, uploader_token, link_id)
    assert (item["alias"], item["favourite"], item["link"]) == (
        None, False, "https://example.com/")


@pytest.mark.parametrize("raw", [b"{", b"[]", b'[{"favourite": true}]', b'"favourite"', b"3",
                                 b"null", b"\xff\xfe", b'{"favourite": tru}'])
def test_patch_invalid_json_body(client, uploader_token, raw):
    item_id = upload_file(client, uploader_token)
    r = api(client, "PATCH", f"/api/v1/uploads/{item_id}", uploader_token, raw=raw)
    assert (r.status_code, r.json) == (400, INVALID_JSON)


def test_json_bodies_over_64_kib_are_too_large_not_invalid(client, uploader_token):
    item_id = upload_file(client, uploader_token)
    too_large = err("JSON body exceeds 64 KiB", "TOO_LARGE")
    for pad in (64 * 1024, 200 * 1024):  # a valid object, just too big
        body = json.dumps({"favourite": True, "pad": "x" * pad}).encode()
        r = api(client, "PATCH", f"/api/v1/uploads/{item_id}", uploader_token, raw=body)
        assert (r.status_code, r.json) == (413, too_large)
        r = api(client, "POST", "/api/v1/shorten", uploader_token, raw=body)
        assert (r.status_code, r.json) == (413, too_large)
    body = json.dumps({"favourite": True, "pad": "x" * (60 * 1024)}).encode()
    r = api(client, "PATCH", f"/api/v1/uploads/{item_id}", uploader_token, raw=body)
    assert (r.status_code, r.json["data"]["favourite"]) == (200, True)


def test_patch_unknown_fields_are_ignored_and_empty_is_a_noop(client, uploader_token):
    item_id = upload_file(client, uploader_token)
    before = item_of(client, uploader_token, item_id)
    for body in ({}, {"colour": "red", "views": 1000, "ID": "other"}):
        r = patch(client, uploader_token, item_id, body)
        assert (r.status_code, r.json) == (200, {"ok": True, "data": before})
    r = api(client, "PATCH", f"/api/v1/uploads/{item_id}", uploader_token, raw=b"")
    assert (r.status_code, r.json) == (200, {"ok": True, "data": before})
    assert item_of(client, uploader_token, item_id) == before


def test_patch_resolves_id_with_or_without_extension_and_alias(client, uploader_token):
    item_id = upload_file(client, uploader_token)
    slug = item_id.split(".")[0]
    assert patch(client, uploader_token, item_id, {"favourite": True}).json["data"]["ID"] == item_id
    assert patch(client, uploader_token, slug, {"alias": "nick"}).json["data"]["ID"] == item_id
    assert patch(client, uploader_token, "nick", {"favourite": False}).json["data"]["ID"] == item_id
    for wrong in (slug + ".png", "Nick", item_id.upper() if item_id.upper() != item_id else "x"):
        r = patch(client, uploader_token, wrong, {"favourite": True})
        assert (r.status_code, r.json) == (404, NOT_FOUND), wrong


def test_patch_and_delete_other_accounts_item_is_not_found(client, uploader_token, other_token):
    theirs = upload_file(client, other_token, b"theirs")
    patch(client, other_token, theirs, {"alias": "theirs-alias"})
    for name in (theirs, theirs.split(".")[0], "theirs-alias", "never-existed"):
        r = patch(client, uploader_token, name, {"favourite": True})
        assert (r.status_code, r.json) == (404, NOT_FOUND)
        r = api(client, "DELETE", f"/api/v1/uploads/{name}", uploader_token)
        assert (r.status_code, r.json) == (404, NOT_FOUND)
    assert client.simulate_get("/theirs-alias").content == b"theirs"
    assert item_of(client, other_token, theirs)["favourite"] is False


def test_patch_unknown_id_comes_before_the_body(client, uploader_token):
    r = api(client, "PATCH", "/api/v1/uploads/unknown", uploader_token, raw=b"{")
    assert (r.status_code, r.json) == (404, NOT_FOUND)


# --- alias rules (8.1), through PATCH and shorten -----------------------------


def alias_via(client: falcon.testing.TestClient, token: str, how: str,
              alias: str) -> falcon.testing.Result:
    if how == "patch":
        item_id = upload_link(client, token, "https://example.com/patched")
        return patch(client, token, item_id, {"alias": alias})
    return shorten(client, token, "https://example.com/shortened", alias)


VIA = pytest.mark.parametrize("how", ["patch", "shorten"])


ALIAS_ERRORS = [
    ("a" * 33, 403, ALIAS_TOO_LONG),
    ("b/" * 20, 403, ALIAS_TOO_LONG),  # length is checked first
    ("api" + "x" * 30, 403, ALIAS_TOO_LONG),
    ("has space", 400, ALIAS_CHARS),
    ("slash/y", 400, ALIAS_CHARS),
    ("caf\u00e9", 400, ALIAS_CHARS),
    ("plus+", 400, ALIAS_CHARS),
    ("new\nline", 400, ALIAS_CHARS),
    ("trailing\n", 400, ALIAS_CHARS),
    ("q?x=1", 400, ALIAS_CHARS),
    ("%41", 400, ALIAS_CHARS),
    ("api", 400, ALIAS_RESERVED),
    ("API", 400, ALIAS_RESERVED),
    ("upload", 400, ALIAS_RESERVED),
    ("UpLoad", 400, ALIAS_RESERVED),
    ("uploadCounter", 400, ALIAS_RESERVED),
    ("uploadcounter", 400, ALIAS_RESERVED),
    ("favicon.ico", 400, ALIAS_RESERVED),
    ("FAVICON.ICO", 400, ALIAS_RESERVED),
    ("robots.txt", 400, ALIAS_RESERVED),
    ("Robots.TXT", 400, ALIAS_RESERVED),
]


@VIA
def test_alias_rules(client, uploader_token, how):
    for alias, status, message in ALIAS_ERRORS:
        r = alias_via(client, uploader_token, how, alias)
        assert (r.status_code, r.json) == (status, err(message)), alias
        assert r.headers["Content-Type"] == "application/json"
        if status == 403:
            assert client.simulate_get("/" + alias).status_code == 404
    # nothing was stored by a refused shorten, and no alias was set by a refused PATCH
    items = listing(client, uploader_token, limit="100")["uploads"]
    assert len(items) == (0 if how == "shorten" else len(ALIAS_ERRORS))
    assert all(i["alias"] is None for i in items)


@VIA
def test_good_aliases(client, uploader_token, how):
    for alias in ["a" * 32, "A.b-c_9", "apis", "uploads", "x", "launch.png", "robots", "0",
                  "-", "Upload_"]:
        r = alias_via(client, uploader_token, how, alias)
        assert r.status_code == 200, r.text
        got = client.simulate_get("/" + alias)
        assert got.status_code == 302, alias
        assert got.headers["Location"].startswith("https://example.com/")


@VIA
def test_aliases_no_url_could_reach_are_reserved(client, uploader_token, how):
    """Regression (OpenAPI fuzzing): the /openapi.json route shadows an alias of
    that name, and "." / ".." vanish from any URL, so the alias could never resolve."""
    for alias in ("openapi.json", "OpenAPI.JSON", ".", ".."):
        r = alias_via(client, uploader_token, how, alias)
        assert (r.status_code, r.json) == (400, err(ALIAS_RESERVED)), alias
    assert client.simulate_get("/openapi.json").json["openapi"] == "3.1.0"
    assert all(i["alias"] is None for i in listing(client, uploader_token)["uploads"])
    for alias in ("...", ".a", "openapi"):
        assert alias_via(client, uploader_token, how, alias).status_code == 200, alias


@VIA
def test_aliases_the_host_routes_elsewhere_are_reserved(host, how):
    """Other services' mounts and the host's own paths shadow an alias of that
    name under the uploader's prefix: it would be issued and never resolve."""
    h = host()
    client = h.client()
    for alias in ("paste", "CDN", "images", "healthz", "metrics", "_hepcore_files"):
        r = alias_via(client, h.token, how, alias)
        assert (r.status_code, r.json) == (400, err(ALIAS_RESERVED)), alias
    assert client.simulate_get("/healthz").json["status"] == "ok"
    assert "uploader" not in client.simulate_get("/paste").text.lower()
    assert alias_via(client, h.token, how, "pastes").status_code == 200
    # Under a prefix of its own the same names reach the uploader.
    nested = host(prefix="/u")
    nested_client = nested.client()
    for alias in ("paste", "healthz"):
        r = api(nested_client, "POST", "/u/api/v1/shorten", nested.token,
                {"url": "https://example.com/n", "alias": alias})
        assert r.status_code == 200, r.text
        assert nested_client.simulate_get(f"/u/{alias}").status_code == 302


@VIA
def test_configured_reserved_aliases(host, how):
    h = host(options={"reserved_aliases": ["Admin", "status"]})
    client = h.client()
    for alias in ("admin", "ADMIN", "Status", "api"):
        r = alias_via(client, h.token, how, alias)
        assert (r.status_code, r.json) == (400, err(ALIAS_RESERVED)), alias
    assert alias_via(client, h.token, how, "admins").status_code == 200


@VIA
def test_alias_taken_by_any_id_slug_or_alias(client, uploader_token, other_token, how):
    file_id = upload_file(client, other_token)
    link_id = upload_link(client, other_token, "https://example.com/x")
    patch(client, other_token, link_id, {"alias": "taken-alias"})
    vanity = shorten(client, uploader_token, "https://example.com/v", "vanity").json["ID"]
    for alias in (file_id, file_id.split(".")[0], link_id, "taken-alias", vanity):
        r = alias_via(client, uploader_token, how, alias)
        assert (r.status_code, r.json) == (409, err(ALIAS_TAKEN)), alias
    # names are case-sensitive
    assert alias_via(client, uploader_token, how, "Taken-Alias").status_code == 200


@VIA
def test_alias_of_a_deleted_item_stays_taken(client, uploader_token, how):
    item_id = upload_file(client, uploader_token)
    patch(client, uploader_token, item_id, {"alias": "old-alias"})
    link = shorten(client, uploader_token, "https://example.com/", "old-vanity").json["ID"]
    for gone in (item_id, link):
        assert api(client, "DELETE", f"/api/v1/uploads/{gone}", uploader_token).status_code == 200
    for alias in ("old-alias", "old-vanity", item_id, item_id.split(".")[0]):
        r = alias_via(client, uploader_token, how, alias)
        assert (r.status_code, r.json) == (409, err(ALIAS_TAKEN)), alias


def test_alias_rule_order(client, uploader_token):
    # reserved before taken, characters before reserved
    assert shorten(client, uploader_token, "https://example.com/", "api").json == err(
        ALIAS_RESERVED)
    r = shorten(client, uploader_token, "https://example.com/", "api!")
    assert r.json == err(ALIAS_CHARS)


def test_alias_cannot_be_another_items_previous_alias(client, uploader_token):
    a = upload_file(client, uploader_token)
    b = upload_file(client, uploader_token)
    patch(client, uploader_token, a, {"alias": "was-mine"})
    patch(client, uploader_token, a, {"alias": None})
    r = patch(client, uploader_token, b, {"alias": "was-mine"})
    assert (r.status_code, r.json) == (409, err(ALIAS_TAKEN))
    # the item that had it may take it back
    r = patch(client, uploader_token, a, {"alias": "was-mine"})
    assert (r.status_code, r.json["data"]["alias"]) == (200, "was-mine")


def test_alias_may_not_be_the_items_own_id(client, uploader_token):
    item_id = upload_file(client, uploader_token)
    for alias in (item_id, item_id.split(".")[0]):
        r = patch(client, uploader_token, item_id, {"alias": alias})
        assert (r.status_code, r.json) == (409, err(ALIAS_TAKEN))


# --- target rules (8.1), through shorten and PATCH link -----------------------


@pytest.mark.parametrize("url", [
    "mailto:someone@example.com", "ftp://example.com/file", "/relative/path", "relative/path",
    "example.com/x", "https://", "http:///nohost", "javascript:alert(1)", "data:text/plain,hi",
    "https://example.com/" + "a" * 2029, "http://[::1", "file:///etc/passwd",
    # Absolute URLs to urlsplit, but not to a browser: a bad host or port.
    "http://a b.com/", "https://exa mple.com", "https://example.com:99999/",
    "https://example.com:65536/", "https://example.com:8o/", "https://example.com:+80/",
    "http://exa<mple.com/", "http://exa|mple.com/", "http://ex%41mple.com/",
    "http://exa\\mple.com/", "http://[::1]x/", "http://[fe80::1%25eth0]/", "http://:80/",
])
def test_invalid_url(client, uploader_token, url):
    r = shorten(client, uploader_token, url)
    assert (r.status_code, r.json) == (400, err(INVALID_URL))
    link_id = upload_link(client, uploader_token, "https://example.com/")
    r = patch(client, uploader_token, link_id, {"link": url})
    assert (r.status_code, r.json) == (400, err(INVALID_URL))
    assert client.simulate_get("/" + link_id).headers["Location"] == "https://example.com/"


@pytest.mark.parametrize(("url", "location"), [
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("https://example.com:65535/", "https://example.com:65535/"),
    ("https://user:pw@example.com/p?q#f", "https://user:pw@example.com/p?q#f"),
    ("https://b\u00fccher.example/", "https://xn--bcher-kva.example/"),
])
def test_urls_a_browser_accepts_are_targets(client, uploader_token, url, location):
    r = shorten(client, uploader_token, url)
    assert r.status_code == 200, r.text
    assert client.simulate_get("/" + r.json["ID"]).headers["Location"] == location
    link_id = upload_link(client, uploader_token, "https://example.com/")
    r = patch(client, uploader_token, link_id, {"link": url})
    assert (r.status_code, r.json["data"]["link"]) == (200, url)
    assert client.simulate_get("/" + link_id).headers["Location"] == location


def test_target_length_limit_is_2048(client, uploader_token):
    exact = "https://example.com/" + "a" * 2028
    assert len(exact) == 2048
    r = shorten(client, uploader_token, exact)
    assert r.status_code == 200
    assert client.simulate_get("/" + r.json["ID"]).headers["Location"] == exact
    assert shorten(client, uploader_token, exact + "a").json == err(INVALID_URL)


@pytest.fixture
def own_host(host: Callable[..., TestHost]) -> TestHost:
    h = host(public_base_url="https://hep.example",
             options={"serve_base_url": "https://files.example.net",
                      "own_hosts": ["Short.Example.org", "192.0.2.7"]},
             settings={"serve_base_url": "https://bob.example.com"})
    other = h.runtime.accounts.create("carol", settings={"serve_base_url": "https://carol.test/"})
    h.runtime.keys.create("uploader", other.id)
    return h


OWN_TARGETS = [
    "https://hep.example/x", "http://hep.example", "https://HEP.EXAMPLE./abc",
    "https://hep.example:8443/a", "https://sub.hep.example/", "https://a.b.hep.example/x",
    "https://user:pw@hep.example/", "https://files.example.net/abc",
    "https://bob.example.com/", "https://carol.test/x", "https://short.example.org/p",
    # other spellings of the same hosts, as a browser reads them
    "https://hep\u3002example/x", "https://\uff48\uff45\uff50.example/y",
    "https://\uff28\uff25\uff30.EXAMPLE/", "https://sub.hep\uff0eexample/",
    "http://192.0.2.7/", "http://0xc0000207/", "http://3221225991/", "http://192.0.519/",
    "http://0300.0.2.7/", "http://[::ffff:192.0.2.7]/",
]


@pytest.mark.parametrize("url", OWN_TARGETS)
def test_cannot_shorten_own_hosts(own_host, url):
    client = own_host.client()
    r = shorten(client, own_host.token, url)
    assert (r.status_code, r.json) == (400, err(OWN_SITE))
    link_id = shorten(client, own_host.token, "https://example.com/").json["ID"]
    r = patch(client, own_host.token, link_id, {"link": url})
    assert (r.status_code, r.json) == (400, err(OWN_SITE))


@pytest.mark.parametrize("url", [
    "https://nothep.example/", "https://hep.example.evil.test/", "https://sub.files.example.net/",
    "https://example.net/", "https://www.short.example.org/", "https://bob.example.com.test/",
    "http://192.0.2.8/", "http://0xc0000208/", "http://[::ffff:192.0.2.8]/", "http://[2001:db8::7]/",
])
def test_other_hosts_can_be_shortened(own_host, url):
    r = shorten(own_host.client(), own_host.token, url)
    assert r.status_code == 200, r.text
    assert r.json["url"] == f"https://bob.example.com/{r.json['ID']}"


def test_request_host_is_own_without_configuration(client, uploader_token):
    assert shorten(client, uploader_token, f"{BASE}/x").json == err(OWN_SITE)
    assert shorten(client, uploader_token, "https://cdn.falconframework.org/").json == err(
        OWN_SITE)


def test_target_rules_come_before_alias_rules(client, uploader_token):
    assert shorten(client, uploader_token, "mailto:x@example.com", "api").json == err(INVALID_URL)
    assert shorten(client, uploader_token, f"{BASE}/", "a" * 40).json == err(OWN_SITE)
    assert shorten(client, uploader_token, "https://example.com/", "a" * 40).json == err(
        ALIAS_TOO_LONG)


# --- DELETE /api/v1/uploads/:contentID (8.6) ----------------------------------


def test_delete_file(client, runtime, uploader_token):
    item_id = upload_file(client, uploader_token, b"to be deleted")
    key = runtime.db.one("SELECT storage_key FROM uploader_items WHERE id = ?", (item_id,))[0]
    assert runtime.storage.exists(key)
    counter = client.simulate_get("/uploadCounter").json["count"]
    r = api(client, "DELETE", f"/api/v1/uploads/{item_id}", uploader_token)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == {"ok": True, "data": {"ID": item_id, "deleted": True}}
    # stops resolving at once, by ID and by slug; the bytes are gone
    assert client.simulate_get("/" + item_id).status_code == 404
    assert client.simulate_get("/" + item_id.split(".")[0]).status_code == 404
    assert client.simulate_head("/" + item_id).status_code == 404
    assert not runtime.storage.exists(key)
    assert list(runtime.storage.keys()) == []
    # gone from the listing and the counts, but uploadCounter does not decrease
    assert listing(client, uploader_token)["uploads"] == []
    assert client.simulate_get("/uploadCounter").json["count"] == counter
    # a second delete, and any edit, is a 404
    r = api(client, "DELETE", f"/api/v1/uploads/{item_id}", uploader_token)
    assert (r.status_code, r.json) == (404, NOT_FOUND)
    assert patch(client, uploader_token, item_id, {"favourite": True}).json == NOT_FOUND


def test_delete_by_slug_and_alias(client, uploader_token):
    a = upload_file(client, uploader_token)
    b = upload_file(client, uploader_token)
    patch(client, uploader_token, b, {"alias": "bee"})
    r = api(client, "DELETE", f"/api/v1/uploads/{a.split('.')[0]}", uploader_token)
    assert r.json == {"ok": True, "data": {"ID": a, "deleted": True}}
    r = api(client, "DELETE", "/api/v1/uploads/bee", uploader_token)
    assert r.json == {"ok": True, "data": {"ID": b, "deleted": True}}
    assert client.simulate_get("/bee").status_code == 404
    assert client.simulate_get("/" + b).status_code == 404


def test_delete_link_and_text(client, uploader_token):
    link = shorten(client, uploader_token, "https://example.com/", "doomed").json["ID"]
    text = upload_link(client, uploader_token, "doomed text")
    for item_id in (link, text):
        r = api(client, "DELETE", f"/api/v1/uploads/{item_id}", uploader_token)
        assert r.json == {"ok": True, "data": {"ID": item_id, "deleted": True}}
        assert client.simulate_get("/" + item_id).status_code == 404


def test_deleted_names_are_never_reissued(client, uploader_token):
    item_id = shorten(client, uploader_token, "https://example.com/", "launch").json["ID"]
    assert item_id == "launch"
    api(client, "DELETE", "/api/v1/uploads/launch", uploader_token)
    r = shorten(client, uploader_token, "https://example.com/again", "launch")
    assert (r.status_code, r.json) == (409, err(ALIAS_TAKEN))
    assert client.simulate_get("/launch").status_code == 404


# --- POST /api/v1/shorten (8.7) ---------------------------------------------


def test_shorten(client, runtime, uploader_token):
    r = shorten(client, uploader_token, "https://example.com/some/path?x=1")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert set(r.json) == {"ID", "url"}  # no envelope
    assert re.fullmatch(ID_RE, r.json["ID"])
    assert r.json["url"] == f"{BASE}/{r.json['ID']}"
    got = client.simulate_get("/" + r.json["ID"])
    assert (got.status_code, got.headers["Location"]) == (302, "https://example.com/some/path?x=1")
    item = item_of(client, uploader_token, r.json["ID"])
    assert (item["kind"], item["link"], item["name"], item["type"], item["size"]) == (
        "link", "https://example.com/some/path?x=1", None, None, None)


def test_shorten_with_alias(client, uploader_token):
    r = shorten(client, uploader_token, "https://example.com/launch", "launch")
    assert (r.status_code, r.json) == (200, {"ID": "launch", "url": f"{BASE}/launch"})
    got = client.simulate_get("/launch")
    assert (got.status_code, got.headers["Location"]) == (302, "https://example.com/launch")
    item = item_of(client, uploader_token, "launch")
    assert (item["ID"], item["url"], item["kind"]) == ("launch", f"{BASE}/launch", "link")
    # the alias is the ID: PATCH and DELETE find it
    assert patch(client, uploader_token, "launch", {"favourite": True}).status_code == 200


@pytest.mark.parametrize("alias", ["", None])
def test_shorten_empty_alias_means_none(client, uploader_token, alias):
    r = api(client, "POST", "/api/v1/shorten", uploader_token,
            {"url": "https://example.com/", "alias": alias})
    assert r.status_code == 200
    assert re.fullmatch(ID_RE, r.json["ID"])


def test_shorten_trims_the_url(client, uploader_token):
    r = shorten(client, uploader_token, "\t https://example.com/trim \n")
    assert client.simulate_get("/" + r.json["ID"]).headers["Location"] == "https://example.com/trim"


def test_shorten_ignores_unknown_fields(client, uploader_token):
    r = api(client, "POST", "/api/v1/shorten", uploader_token,
            {"url": "https://example.com/", "favourite": "maybe", "domain": 7})
    assert r.status_code == 200


@pytest.mark.parametrize("body", [{}, {"url": ""}, {"url": "   "}, {"alias": "x"}, None])
def test_shorten_missing_url(client, uploader_token, body):
    r = api(client, "POST", "/api/v1/shorten", uploader_token, body,
            raw=b"" if body is None else None)
    assert (r.status_code, r.json) == (400, err("Missing url parameter"))


@pytest.mark.parametrize(("body", "message"), [
    ({"url": 5}, "url must be a string"),
    ({"url": None}, "url must be a string"),
    ({"url": ["https://example.com"]}, "url must be a string"),
    ({"url": "https://example.com", "alias": 7}, "alias must be a string"),
    ({"url": "https://example.com", "alias": False}, "alias must be a string"),
    ({"alias": 7}, "alias must be a string"),  # field types come before the missing url
])
def test_shorten_field_type_errors(client, uploader_token, body, message):
    r = api(client, "POST", "/api/v1/shorten", uploader_token, body)
    assert (r.status_code, r.json) == (400, err(message))


@pytest.mark.parametrize(("raw", "message"), [
    # Not text, so no URL and no alias: each field's own rule answers (8.1, 8.7).
    (rb'{"url": "https://example.com/\ud800"}', "Invalid URL"),
    (rb'{"url": "https://\udfff.example/"}', "Invalid URL"),
    (rb'{"url": "https://example.com/", "alias": "a\ud800"}',
     'Alias may only contain letters, numbers, ".", "-" and "_"'),
])
def test_shorten_lone_surrogates_are_refused(client, runtime, uploader_token, raw, message):
    r = api(client, "POST", "/api/v1/shorten", uploader_token, raw=raw)
    assert (r.status_code, r.json) == (400, err(message))
    assert runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 0


def test_patch_link_with_a_lone_surrogate_is_refused(client, uploader_token):
    link_id = shorten(client, uploader_token, "https://example.com/old").json["ID"]
    r = api(client, "PATCH", f"/api/v1/uploads/{link_id}", uploader_token,
            raw=rb'{"link": "https://example.com/\ud800"}')
    assert (r.status_code, r.json) == (400, err("Invalid URL"))
    assert client.simulate_get("/" + link_id).headers["Location"] == "https://example.com/old"
    r = api(client, "PATCH", f"/api/v1/uploads/{link_id}", uploader_token,
            raw=rb'{"alias": "x\udfff"}')
    assert (r.status_code, r.json) == (400, err('Alias may only contain letters, numbers, ".",'
                                                 ' "-" and "_"'))


@pytest.mark.parametrize("raw", [b"{", b"[]", b'["https://example.com"]', b"null",
                                 b'"https://example.com"', b"url=https://example.com",
                                 b"\xff", b'{"url": "https://example.com",}'])
def test_shorten_invalid_json(client, uploader_token, raw):
    r = api(client, "POST", "/api/v1/shorten", uploader_token, raw=raw)
    assert (r.status_code, r.json) == (400, INVALID_JSON)


def test_shorten_maintenance(host):
    h = host(options={"maintenance": True})
    client = h.client()
    maintenance = err("Uploads are paused for maintenance", "MAINTENANCE")
    r = shorten(client, h.token, "https://example.com/")
    assert (r.status_code, r.json) == (403, maintenance)
    # maintenance comes before the body checks, after authentication
    r = api(client, "POST", "/api/v1/shorten", h.token, raw=b"{")
    assert (r.status_code, r.json) == (403, maintenance)
    assert shorten(client, "nope", "https://example.com/").json == REVOKED
    assert shorten(client, None, "https://example.com/").json == MISSING
    # other management routes keep working
    me = api(client, "GET", "/api/v1/me", h.token)
    assert me.status_code == 200 and me.json["data"]["uploadCount"] == 0
    assert listing(client, h.token) == {"uploads": [], "nextBefore": None}
    r = api(client, "PATCH", "/api/v1/uploads/none", h.token, {"favourite": True})
    assert (r.status_code, r.json) == (404, NOT_FOUND)
    r = api(client, "POST", "/api/v1/me/token/regenerate", h.token)
    assert r.status_code == 200


def test_shorten_rate_limit(host, clock):
    h = host(options={"shorten_rate_per_minute": 3, "upload_rate_per_minute": 100})
    client = h.client()
    limited = err("Too many requests", "RATE_LIMITED")
    assert shorten(client, h.token, "https://example.com/1").status_code == 200
    # every authenticated request counts, whatever its outcome
    assert api(client, "POST", "/api/v1/shorten", h.token, raw=b"{").json == INVALID_JSON
    assert shorten(client, h.token, "mailto:x@example.com").json == err(INVALID_URL)
    clock.advance(10)
    r = shorten(client, h.token, "https://example.com/2")
    assert (r.status_code, r.json) == (429, limited)
    assert r.headers["Retry-After"] == "50"
    # the limit comes before the body checks
    r = api(client, "POST", "/api/v1/shorten", h.token, raw=b"{")
    assert (r.status_code, r.json) == (429, limited)
    # unauthenticated requests are not counted and still get 401
    assert shorten(client, None, "https://example.com/").json == MISSING
    # /upload and the other routes have their own budget
    assert upload_link(client, h.token, "https://example.com/via-upload")
    assert api(client, "GET", "/api/v1/me", h.token).status_code == 200
    # another account is not affected
    other = h.runtime.accounts.create("dora")
    other_token, _ = h.runtime.keys.create("uploader", other.id)
    assert shorten(client, other_token, "https://example.com/d").status_code == 200
    clock.advance(50)
    assert shorten(client, h.token, "https://example.com/3").status_code == 200


def test_shorten_default_rate_limit_is_120_per_minute(client, uploader_token, clock):
    for i in range(120):
        r = shorten(client, uploader_token, f"https://example.com/{i}")
        assert r.status_code == 200, (i, r.text)
    r = shorten(client, uploader_token, "https://example.com/121")
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # the upload route's limit (240) is separate
    upload_link(client, uploader_token, "https://example.com/upload-still-works")
    clock.advance(60)
    assert shorten(client, uploader_token, "https://example.com/122").status_code == 200


def test_shorten_counts_as_an_upload(client, uploader_token):
    before = client.simulate_get("/uploadCounter").json["count"]
    shorten(client, uploader_token, "https://example.com/")
    shorten(client, uploader_token, "https://example.com/", "counted")
    shorten(client, uploader_token, "https://example.com/", "counted")  # 409, not counted
    assert client.simulate_get("/uploadCounter").json["count"] == before + 2


# --- GET /api/v1/sharex -----------------------------------------------------


def test_sharex_over_http(client, uploader_token):
    r = api(client, "GET", "/api/v1/sharex", f"Bearer {uploader_token}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    assert "attachment" in r.headers["Content-Disposition"]
    config = json.loads(r.content)
    assert config["Headers"] == {"Authorization": uploader_token}
    assert config["RequestURL"] == f"{BASE}/upload"
    assert config["FileFormName"] == "file"
    assert config["URL"] == "$json:url$"
    assert config["RequestMethod"] == "POST"
    assert "DeletionURL" not in config
    urls = [v for k, v in config.items() if k.endswith("URL")]
    assert urls and all(uploader_token not in v for v in urls)
    # the config's header really uploads
    body, ctype = multipart([(config["FileFormName"], "a.txt", "text/plain", b"via sxcu")])
    done = client.simulate_post("/upload", body=body, headers={
        "Content-Type": ctype, **config["Headers"]})
    assert done.status_code == 200
    assert client.simulate_get("/" + done.json["ID"]).content == b"via sxcu"


def test_sharex_over_http_uses_the_public_base(host):
    h = host(public_base_url="https://hep.example")
    config = json.loads(api(h.client(), "GET", "/api/v1/sharex", h.token).content)
    assert config["RequestURL"] == "https://hep.example/upload"
    assert config["Headers"]["Authorization"] == h.token
