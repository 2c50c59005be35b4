"""The snippets API (spec section 8) with the paste key and with a sign-in."""

from __future__ import annotations

import pytest
from conftest import bearer

from hepcore.clock import iso_ms
from hepcore_paste.store import ORPHAN_GRACE

DAY = 86400
API = "/api/v1/snippets"
JS = "const a = require('a');\nconst b = (x) => x === a;\nconsole.log(b(1));\n"


def new(client, key, **body):
    body.setdefault("content", "hello world")
    r = client.simulate_post(API, json=body, headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.json["data"]


def test_create_defaults_to_unlisted_and_returns_a_snippet(client, key, clock) -> None:
    snippet = new(client, key, title="deploy log", content="==> building\n==> done in 4.2s",
                  language="bash")
    assert snippet == {
        "id": snippet["id"], "url": f"http://falconframework.org/{snippet['id']}",
        "title": "deploy log", "language": "bash", "visibility": "unlisted",
        "isPermanent": False, "size": 29, "views": 0, "anonymous": False,
        "createdAt": iso_ms(clock()), "updatedAt": iso_ms(clock()),
        "expiresAt": iso_ms(clock() + 365 * DAY),
    }
    assert new(client, key, visibility="public")["visibility"] == "public"


def test_get_adds_content_and_only_the_owner_sees_it(client, runtime, key) -> None:
    snippet = new(client, key, content="ünïcode ✓")
    r = client.simulate_get(f"{API}/{snippet['id']}", headers=bearer(key))
    assert r.json["data"]["content"] == "ünïcode ✓" and r.json["data"]["size"] == 13
    assert r.headers["Cache-Control"] == "no-store"  # no cache keeps an account's pastes
    assert client.simulate_get(API, headers=bearer(key)).headers["Cache-Control"] == "no-store"
    other = runtime.accounts.create("olga")
    other_key, _ = runtime.keys.create("paste", other.id)
    for method in ("GET", "PATCH", "DELETE"):
        r = client.simulate_request(method, f"{API}/{snippet['id']}", headers=bearer(other_key),
                                    json={"title": "x"} if method == "PATCH" else None)
        assert (r.status_code, r.json) == (404, {"ok": False, "error": "Paste not found"})
    r = client.simulate_get(f"{API}/nope1234", headers=bearer(key))
    assert r.status_code == 404


def test_anonymous_callers_are_refused(client) -> None:
    for method, path in (("GET", API), ("POST", API), ("GET", f"{API}/abcd1234"),
                         ("DELETE", f"{API}/abcd1234")):
        r = client.simulate_request(method, path, json={"content": "x"})
        assert (r.status_code, r.json) == (401, {"ok": False, "error": "Invalid API key"})


def test_list_pages_newest_first(client, key, clock) -> None:
    made = []
    for i in range(5):
        made.append(new(client, key, content=f"n{i}")["id"])
        clock.advance(1)
    r = client.simulate_get(API, headers=bearer(key), params={"limit": "2"})
    page = r.json["data"]
    assert [s["id"] for s in page["snippets"]] == made[::-1][:2]
    assert page["nextBefore"] == page["snippets"][-1]["createdAt"]
    seen = [s["id"] for s in page["snippets"]]
    while page["nextBefore"]:
        page = client.simulate_get(API, headers=bearer(key), params={
            "limit": "2", "before": page["nextBefore"]}).json["data"]
        seen += [s["id"] for s in page["snippets"]]
    assert seen == made[::-1]
    assert "content" not in r.json["data"]["snippets"][0]


def test_list_skips_deleted_and_expired(client, key, clock) -> None:
    gone = new(client, key)["id"]
    client.simulate_delete(f"{API}/{gone}", headers=bearer(key))
    clock.advance(366 * DAY)
    new(client, key)
    listed = client.simulate_get(API, headers=bearer(key)).json["data"]["snippets"]
    assert len(listed) == 1


@pytest.mark.parametrize("query, message", [
    ({"limit": "0"}, "Invalid limit"), ({"limit": "101"}, "Invalid limit"),
    ({"limit": "ten"}, "Invalid limit"), ({"limit": "²"}, "Invalid limit"),
    ({"before": "yesterday"}, "Invalid before"), ({"before": ""}, "Invalid before"),
])
def test_list_errors(client, key, query, message) -> None:
    r = client.simulate_get(API, headers=bearer(key), params=query)
    assert (r.status_code, r.json) == (400, {"ok": False, "error": message})


def test_patch(client, runtime, key, clock) -> None:
    snippet = new(client, key, content="print('hi')", language="python")
    clock.advance(10)
    r = client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key), json={
        "title": "  renamed  ", "content": JS,
        "visibility": "public"})
    data = r.json["data"]
    assert (data["title"], data["visibility"], data["size"]) == ("renamed", "public", len(JS))
    assert data["language"] == "python"  # kept unless set to null or ""
    assert data["updatedAt"] == iso_ms(clock()) != data["createdAt"]
    assert client.simulate_get(f"/{snippet['id']}/raw").text.startswith("const a")
    redetected = client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key),
                                       json={"language": None}).json["data"]
    assert redetected["language"] == "javascript"
    assert client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key),
                                 json={"language": "GO"}).json["data"]["language"] == "go"


@pytest.mark.parametrize("body, status, message", [
    ({"content": "  "}, 400, "Paste content is required"),
    ({"content": None}, 400, "content must be a string"),
    ({"visibility": "hidden"}, 400, "Invalid visibility"),
    ({"visibility": "private"}, 400, "Sign in to create private pastes"),
    ({"isPermanent": 1}, 400, "isPermanent must be a boolean"),
    ({"content": "x" * (1024 * 1024 + 1)}, 413, "Paste too large. Max 1 MB."),
])
def test_patch_errors(client, key, body, status, message) -> None:
    snippet = new(client, key)
    r = client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key), json=body)
    assert (r.status_code, r.json) == (status, {"ok": False, "error": message})
    bad = client.simulate_patch(f"{API}/{snippet['id']}", headers={
        **bearer(key), "Content-Type": "application/json"}, body="{")
    assert bad.json == {"ok": False, "error": "Invalid JSON body"}


def test_patch_to_private_with_a_sign_in(client, key, signed_in) -> None:
    snippet = new(client, key)
    r = client.simulate_patch(f"{API}/{snippet['id']}", json={"visibility": "private"},
                              headers={"Cookie": signed_in})
    assert r.json["data"]["visibility"] == "private"
    assert client.simulate_get(f"/{snippet['id']}").status_code == 404


def test_permanent_flag_on_free(paste_host, clock) -> None:
    runtime, client = paste_host(free_permanent_cap=2)
    account = runtime.accounts.create("gus")
    key, _ = runtime.keys.create("paste", account.id)
    ids = [new(client, key)["id"] for _ in range(3)]
    for pid in ids[:2]:
        data = client.simulate_patch(f"{API}/{pid}", headers=bearer(key),
                                     json={"isPermanent": True}).json["data"]
        assert data["isPermanent"] is True and data["expiresAt"] is None
    r = client.simulate_patch(f"{API}/{ids[2]}", headers=bearer(key), json={"isPermanent": True})
    assert (r.status_code, r.json) == (400, {
        "ok": False, "error": "Permanent paste limit reached (2). Unmark one or upgrade to Prime.",
        "code": "PERMANENT_CAP"})
    clock.advance(5)
    cleared = client.simulate_patch(f"{API}/{ids[0]}", headers=bearer(key),
                                    json={"isPermanent": False}).json["data"]
    assert cleared["isPermanent"] is False
    assert cleared["expiresAt"] == iso_ms(clock() - 5 + 365 * DAY)
    assert client.simulate_patch(f"{API}/{ids[2]}", headers=bearer(key),
                                 json={"isPermanent": True}).status_code == 200


def test_permanent_flag_on_prime(client, prime_key) -> None:
    snippet = new(client, prime_key)
    assert snippet["expiresAt"] is None
    data = client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(prime_key),
                                 json={"isPermanent": True}).json["data"]
    assert data["isPermanent"] is True and data["expiresAt"] is None


def test_delete(client, runtime, key, clock) -> None:
    big = new(client, key, content="z" * 200_000)
    storage_key = runtime.db.one("SELECT storage_key FROM paste_pastes WHERE id = ?",
                                 (big["id"],))[0]
    r = client.simulate_delete(f"{API}/{big['id']}", headers=bearer(key))
    assert r.json == {"ok": True, "data": {"id": big["id"], "deleted": True}}
    for path in (f"/{big['id']}", f"/{big['id']}/raw", f"{API}/{big['id']}"):
        assert client.simulate_get(path, headers=bearer(key)).status_code == 404
    again = client.simulate_delete(f"{API}/{big['id']}", headers=bearer(key))
    assert again.status_code == 404
    # The bytes stay for readers that fetched the row just before; the purge takes them.
    assert runtime.storage.exists(storage_key)
    clock.advance(ORPHAN_GRACE)
    assert runtime.services["paste"].purge()["objects_removed"] == 1
    assert not runtime.storage.exists(storage_key)


def test_content_replaced_in_storage_leaves_no_orphan(client, runtime, key, clock) -> None:
    snippet = new(client, key, content="a" * 100_000)
    client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key),
                          json={"content": "b" * 100_000})
    client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key),
                          json={"content": "small now"})
    assert client.simulate_get(f"/{snippet['id']}/raw").text == "small now"
    # Both replaced objects wait out the grace (a reader may have the old row) ...
    assert len(list(runtime.storage.keys("paste/"))) == 2
    clock.advance(ORPHAN_GRACE)
    # ... and then go with the next change (or the purge job).
    client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key), json={"title": "t"})
    assert list(runtime.storage.keys("paste/")) == []
    assert runtime.db.all("SELECT * FROM paste_orphans") == []
    assert client.simulate_get(f"/{snippet['id']}/raw").text == "small now"


def test_a_reader_holding_the_old_row_still_gets_its_bytes(client, runtime, key) -> None:
    """A PATCH commits while a read has fetched the row but not opened the bytes."""
    service = runtime.services["paste"]
    snippet = new(client, key, content="old " * 30_000)
    before = service.pastes.live(snippet["id"])
    r = client.simulate_patch(f"{API}/{snippet['id']}", headers=bearer(key),
                              json={"content": "new " * 30_000})
    assert r.status_code == 200
    assert service.pastes.read_content(before) == b"old " * 30_000
    assert client.simulate_get(f"/{snippet['id']}/raw").text == "new " * 30_000


def test_snippet_create_is_rate_limited(paste_host) -> None:
    runtime, client = paste_host(create_rate_per_minute=1)
    account = runtime.accounts.create("hal")
    key, _ = runtime.keys.create("paste", account.id)
    assert client.simulate_post(API, json={"content": "x"}, headers=bearer(key)).status_code == 200
    r = client.simulate_post(API, json={"content": "x"}, headers=bearer(key))
    assert r.status_code == 429 and r.json["code"] == "RATE_LIMITED"
    assert client.simulate_get(API, headers=bearer(key)).status_code == 200  # reads are not
