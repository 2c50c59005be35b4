"""Writes signed in with the session cookie refuse requests another site made
the browser send (the check of ``POST /login/:token``), under both app kinds.

The cookie is an ambient credential: ``SameSite=Lax`` keeps it off cross-site
POSTs, but not off those of a same-site origin (a sibling subdomain), whose
``<form enctype="text/plain">`` can post a JSON-looking body. Keys are not
ambient (no page can make a browser send one), and reads cannot be seen
cross-site, so neither is checked.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import bearer

REFUSED = {"ok": False, "error": "Cross-site request refused"}
# The attack: a form post whose text/plain body reads as JSON.
FORM_BODY = '{"content":"csrf","visibility":"private","x":"="}'
TEXT_PLAIN = {"Content-Type": "text/plain"}

CROSS_SITE = [
    pytest.param({"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
                 id="cross-site"),
    pytest.param({"Origin": "http://evil.falconframework.org", "Sec-Fetch-Site": "same-site"},
                 id="same-site"),
    # Sec-Fetch-Site decides when present, whatever the Origin says.
    pytest.param({"Origin": "http://falconframework.org", "Sec-Fetch-Site": "cross-site"},
                 id="cross-site-own-origin"),
    pytest.param({"Origin": "null", "Sec-Fetch-Site": "cross-site"}, id="cross-site-null"),
    # Without Fetch metadata (older browsers), the Origin decides.
    pytest.param({"Origin": "http://evil.example"}, id="origin-only"),
    pytest.param({"Origin": "null"}, id="origin-null-only"),
    pytest.param({"Origin": "http://falconframework.org:8080"}, id="origin-other-port"),
    pytest.param({"Origin": "http://["}, id="origin-unparsable"),
]
SAME_ORIGIN = [
    pytest.param({"Origin": "http://falconframework.org", "Sec-Fetch-Site": "same-origin"},
                 id="same-origin"),
    # What Chromium sends from a page served with Referrer-Policy: no-referrer.
    pytest.param({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, id="chromium-no-referrer"),
    pytest.param({"Sec-Fetch-Site": "none"}, id="user-initiated"),
    pytest.param({"Origin": "http://falconframework.org"}, id="origin-only"),
    # No browser headers at all: curl and other non-browser clients pass.
    pytest.param({}, id="no-browser-headers"),
]


def count(runtime: Any) -> int:
    row = runtime.db.one("SELECT count(*) AS n FROM paste_pastes")
    assert row is not None
    return int(row["n"])


def new_snippet(client: Any, key: str) -> str:
    r = client.simulate_post("/api/v1/snippets", json={"content": "mine"}, headers=bearer(key))
    assert r.status_code == 200, r.text
    return str(r.json["data"]["id"])


@pytest.mark.parametrize("path", ["/api/paste", "/api/v1/paste", "/api/v1/snippets",
                                  "/documents"])
@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_create_with_the_cookie_is_refused(client, runtime, signed_in, path,
                                                      headers) -> None:
    before = count(runtime)
    r = client.simulate_post(path, body=FORM_BODY,
                             headers={"Cookie": signed_in, **TEXT_PLAIN, **headers})
    assert (r.status_code, r.json) == (403, REFUSED)
    assert r.headers["content-type"] == "application/json"
    assert count(runtime) == before


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_patch_and_delete_with_the_cookie_are_refused(client, runtime, key,
                                                                 signed_in, headers) -> None:
    paste_id = new_snippet(client, key)
    path = f"/api/v1/snippets/{paste_id}"
    patched = client.simulate_patch(path, body='{"visibility":"public","content":"evil"}',
                                    headers={"Cookie": signed_in, **TEXT_PLAIN, **headers})
    assert (patched.status_code, patched.json) == (403, REFUSED)
    deleted = client.simulate_delete(path, headers={"Cookie": signed_in, **headers})
    assert (deleted.status_code, deleted.json) == (403, REFUSED)
    unchanged = client.simulate_get(path, headers=bearer(key)).json["data"]
    assert (unchanged["visibility"], unchanged["content"]) == ("unlisted", "mine")


@pytest.mark.parametrize("path", ["/api/paste", "/api/v1/paste", "/api/v1/snippets"])
@pytest.mark.parametrize("headers", SAME_ORIGIN)
def test_same_origin_create_with_the_cookie_works(client, runtime, signed_in, path,
                                                  headers) -> None:
    r = client.simulate_post(path, json={"content": "mine", "visibility": "private"},
                             headers={"Cookie": signed_in, **headers})
    assert r.status_code == 200, r.text
    assert client.simulate_get(f"/{r.json['data']['id']}/raw",
                               headers={"Cookie": signed_in}).text == "mine"


@pytest.mark.parametrize("headers", SAME_ORIGIN)
def test_same_origin_hastebin_patch_and_delete_with_the_cookie_work(client, key, signed_in,
                                                                    headers) -> None:
    cookie = {"Cookie": signed_in, **headers}
    created = client.simulate_post("/documents", body="raw text", headers=cookie)
    assert created.status_code == 200, created.text
    paste_id = new_snippet(client, key)
    path = f"/api/v1/snippets/{paste_id}"
    patched = client.simulate_patch(path, json={"visibility": "private"}, headers=cookie)
    assert patched.status_code == 200 and patched.json["data"]["visibility"] == "private"
    deleted = client.simulate_delete(path, headers=cookie)
    assert deleted.status_code == 200 and deleted.json["data"]["deleted"] is True


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_keys_are_not_checked(client, runtime, key, headers) -> None:
    auth = {**bearer(key), **headers}
    for path in ("/api/paste", "/api/v1/paste", "/api/v1/snippets"):
        r = client.simulate_post(path, json={"content": "by key"}, headers=auth)
        assert r.status_code == 200, r.text
    assert client.simulate_post("/documents", body="by key", headers=auth).status_code == 200
    path = f"/api/v1/snippets/{new_snippet(client, key)}"
    assert client.simulate_patch(path, json={"title": "t"}, headers=auth).status_code == 200
    assert client.simulate_delete(path, headers=auth).status_code == 200


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_reads_with_the_cookie_are_not_checked(client, signed_in, headers) -> None:
    created = client.simulate_post("/api/paste", json={"content": "mine",
                                                       "visibility": "private"},
                                   headers={"Cookie": signed_in})
    paste_id = created.json["data"]["id"]
    cookie = {"Cookie": signed_in, **headers}
    assert client.simulate_get("/api/v1/snippets", headers=cookie).status_code == 200
    assert client.simulate_get(f"/api/v1/snippets/{paste_id}", headers=cookie).status_code == 200
    assert client.simulate_get(f"/{paste_id}/raw", headers=cookie).text == "mine"
    assert client.simulate_get(f"/{paste_id}", headers=cookie).status_code == 200


def test_a_refused_request_is_not_counted_against_the_rate_limit(paste_host) -> None:
    from conftest import session_cookie

    runtime, client = paste_host(create_rate_per_minute=1)
    cookie = session_cookie(client, runtime, runtime.accounts.create("rita"))
    refused = client.simulate_post("/api/paste", json={"content": "x"}, headers={
        "Cookie": cookie, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    ok = client.simulate_post("/api/paste", json={"content": "x"}, headers={
        "Cookie": cookie, "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200, ok.text


def test_the_public_base_url_is_an_own_origin(paste_host) -> None:
    from conftest import session_cookie

    runtime, client = paste_host()
    runtime.config.service("paste").public_base_url = "https://paste.example"
    cookie = session_cookie(client, runtime, runtime.accounts.create("pia"))
    ok = client.simulate_post("/api/paste", json={"content": "x"}, headers={
        "Cookie": cookie, "Origin": "https://paste.example"})
    assert ok.status_code == 200, ok.text
    refused = client.simulate_post("/api/paste", json={"content": "x"}, headers={
        "Cookie": cookie, "Origin": "https://other.example"})
    assert (refused.status_code, refused.json) == (403, REFUSED)


def test_a_suspended_account_is_refused_cross_site_before_approval(client, runtime, account,
                                                                   signed_in) -> None:
    runtime.accounts.update(account.id, status="suspended")
    r = client.simulate_post("/api/paste", json={"content": "x"}, headers={
        "Cookie": signed_in, "Sec-Fetch-Site": "cross-site"})
    assert (r.status_code, r.json) == (403, REFUSED)
