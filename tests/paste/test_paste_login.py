"""The minimal sign-in of ``hepcore_login``: one-time signed links, the
session cookie, and the session hook the paste service uses."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from hepcore import BytesBody, Config, Request, ServiceConfig, build_runtime
from hepcore.web import create_app
from hepcore_login.service import LINK_MAX_AGE, SESSION_MAX_AGE, issue_link_token


def plain(cookie: str) -> Request:
    return Request(method="GET", path="/", headers={"cookie": cookie}, body=BytesBody(b""))


def test_link_page_then_sign_in_once(client, runtime, account) -> None:
    token = issue_link_token(runtime, account.id, "/some/page?x=1")
    page = client.simulate_get(f"/login/{token}")
    assert page.status_code == 200 and "Sign in as <strong>alice</strong>?" in page.text
    assert "form-action 'self'" in page.headers["content-security-policy"]
    # Not no-referrer: under it the button's POST carries `Origin: null`.
    assert page.headers["referrer-policy"] == "same-origin"
    assert client.simulate_get(f"/login/{token}").status_code == 200  # GET does not use it
    done = client.simulate_post(f"/login/{token}")
    assert done.status_code == 303
    assert done.headers["location"] == "/some/page?x=1"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("hepcore_login=")
    assert f"Max-Age={SESSION_MAX_AGE}" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http
    actor = runtime.session_actor(plain(cookie.split(";", 1)[0]))
    assert actor is not None and (actor.account.id, actor.via) == (account.id, "session")
    again = client.simulate_post(f"/login/{token}")
    assert again.status_code == 400 and "already used" in again.text
    assert client.simulate_get(f"/login/{token}").status_code == 400


def test_secure_cookie_over_https(client, runtime, account) -> None:
    token = issue_link_token(runtime, account.id)
    done = client.simulate_post(f"/login/{token}", protocol="https")
    assert "; Secure" in done.headers["set-cookie"]


def test_secure_cookie_when_the_public_base_is_https(tmp_path: Path) -> None:
    """TLS ends at a proxy hepcore does not trust (deploying.md, TLS): the
    request looks like http, the configured public base says https."""
    config = Config(data_dir=tmp_path / "data", secrets=["s"], services={
        "paste": ServiceConfig("paste", prefix="/"),
        "login": ServiceConfig("login", prefix="/login",
                               public_base_url="https://paste.example/login")})
    runtime = build_runtime(config)
    client = falcon.testing.TestClient(create_app(runtime))
    account = runtime.accounts.create("tls")
    headers = {"Host": "paste.example", "Origin": "https://paste.example"}
    done = client.simulate_post(f"/login/{issue_link_token(runtime, account.id)}",
                                headers=headers)
    assert done.status_code == 303 and "; Secure" in done.headers["set-cookie"]
    out = client.simulate_post("/login/logout", headers=headers)
    assert "Max-Age=0" in out.headers["set-cookie"] and "; Secure" in out.headers["set-cookie"]


@pytest.mark.parametrize("target,location", [
    ("/caf\u00e9?q=\u00fc", "/caf%C3%A9?q=%C3%BC"),
    ("/\uff0fdocs", "/%EF%BC%8Fdocs"),
    ("/a\u2028b", "/a%E2%80%A8b"),
    ("/a\u0085b", "/"),  # a C1 control
    ("/a\ud800b", "/"),  # a lone surrogate
])
def test_a_next_path_with_other_characters_is_sent_encoded(
        client, runtime, account, target: str, location: str) -> None:
    done = client.simulate_post(f"/login/{issue_link_token(runtime, account.id, target)}")
    assert done.status_code == 303 and done.headers["location"] == location
    assert done.headers["set-cookie"].startswith("hepcore_login=")


def test_links_expire_and_are_signed(client, runtime, account, clock) -> None:
    token = issue_link_token(runtime, account.id)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.simulate_post(f"/login/{tampered}").status_code == 400
    clock.advance(LINK_MAX_AGE + 10)
    assert client.simulate_post(f"/login/{token}").status_code == 400
    # A session token is not a link, nor the other way round (own purposes).
    session = runtime.signer.dumps({"a": account.id}, "login.session")
    assert client.simulate_post(f"/login/{session}").status_code == 400
    link = issue_link_token(runtime, account.id)
    assert runtime.session_actor(plain(f"hepcore_login={link}")) is None


def test_open_redirects_are_refused(client, runtime, account) -> None:
    for target in ("https://evil.example/", "//evil.example", "/\\evil", "javascript:x"):
        token = issue_link_token(runtime, account.id, target)
        assert client.simulate_post(f"/login/{token}").headers["location"] == "/"


def test_session_expiry(client, runtime, account, clock) -> None:
    from conftest import session_cookie

    cookie = session_cookie(client, runtime, account)
    assert runtime.session_actor(plain(cookie)) is not None
    clock.advance(SESSION_MAX_AGE + 60)
    assert runtime.session_actor(plain(cookie)) is None
    assert runtime.session_actor(plain("hepcore_login=garbage")) is None
    assert runtime.session_actor(plain("other=1")) is None


def test_logout_ends_the_session_at_once(client, runtime, account) -> None:
    from conftest import session_cookie

    cookie = session_cookie(client, runtime, account)
    other_device = session_cookie(client, runtime, account)
    out = client.simulate_post("/login/logout", headers={"Cookie": cookie})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    # A copy of the old cookie (another tab, a thief) no longer signs anyone in.
    assert runtime.session_actor(plain(cookie)) is None
    private = client.simulate_post("/api/paste", json={"content": "x", "visibility": "private"},
                                   headers={"Cookie": cookie})
    assert private.status_code == 401 and private.json["error"] == "Invalid API key"
    # Only that session ended.
    assert runtime.session_actor(plain(other_device)) is not None
    assert client.simulate_post("/login/logout").status_code == 303  # no cookie: fine


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"}, {"Origin": "null"}])
def test_another_site_cannot_sign_a_visitor_out(client, runtime, account, headers) -> None:
    from conftest import session_cookie

    cookie = session_cookie(client, runtime, account)
    out = client.simulate_post("/login/logout", headers={"Cookie": cookie, **headers})
    assert out.status_code == 403 and "<h1>Sign-out refused</h1>" in out.text
    assert "set-cookie" not in out.headers
    assert runtime.session_actor(plain(cookie)) is not None
    own = client.simulate_post("/login/logout", headers={
        "Cookie": cookie, "Sec-Fetch-Site": "same-origin", "Origin": "null"})
    assert own.status_code == 303 and runtime.session_actor(plain(cookie)) is None


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://falconframework.org:8080"},
    {"Origin": "http://falconframework.org", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://falconframework.org", "Sec-Fetch-Site": "same-site"},
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "bogus"},
    {"Sec-Fetch-Site": ""},
])
def test_cross_site_sign_in_is_refused(client, runtime, account, headers) -> None:
    token = issue_link_token(runtime, account.id)
    refused = client.simulate_post(f"/login/{token}", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "text/html; charset=utf-8"
    assert "set-cookie" not in refused.headers
    assert "<h1>Sign-in refused</h1>" in refused.text
    # The link was not used up: its owner can still sign in.
    assert client.simulate_post(f"/login/{token}").status_code == 303


@pytest.mark.parametrize("origin", ["http://[", "https://[::1", "//[x]", "http://[::1]:x"])
def test_an_origin_that_does_not_parse_is_refused_not_a_500(client, runtime, account,
                                                            origin) -> None:
    """Found by fuzzing (``POST /login/{token}`` with ``Origin: http://[``
    answered 500): an unparsable Origin is no one's own, so it is refused."""
    token = issue_link_token(runtime, account.id)
    refused = client.simulate_post(f"/login/{token}", headers={"Origin": origin})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Sign-in refused</h1>" in refused.text
    assert "set-cookie" not in refused.headers
    assert client.simulate_post(f"/login/{token}").status_code == 303


def test_a_host_that_does_not_parse_refuses_origin_checked_sign_ins(client, runtime,
                                                                    account) -> None:
    token = issue_link_token(runtime, account.id)
    refused = client.simulate_post(f"/login/{token}", host="[",
                                   headers={"Origin": "http://falconframework.org"})
    # Refused before the sign-in runs: such a Host is no host at all.
    assert (refused.status_code, refused.json) == (400, {"ok": False,
                                                          "error": "Invalid Host header"})
    assert "set-cookie" not in refused.headers
    assert client.simulate_post(f"/login/{token}").status_code == 303  # still unused


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "http://falconframework.org"},
    {"Origin": "http://FalconFramework.org:80", "Sec-Fetch-Site": "same-origin"},
    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    {},
])
def test_same_origin_sign_in_works(client, runtime, account, headers) -> None:
    token = issue_link_token(runtime, account.id)
    assert client.simulate_post(f"/login/{token}", headers=headers).status_code == 303


def test_chromium_form_submission_signs_in(client, runtime, account) -> None:
    """The headers Chromium sends when the page's button is pressed on a page
    served with ``Referrer-Policy: no-referrer`` (a page cached before the
    policy changed, or a proxy that rewrites it): ``Origin: null`` with
    ``Sec-Fetch-Site: same-origin``. The browser computed the latter itself,
    so it decides."""
    token = issue_link_token(runtime, account.id)
    done = client.simulate_post(f"/login/{token}", headers={
        "Origin": "null", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1",
        "Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 303
    assert done.headers["set-cookie"].startswith("hepcore_login=")
    actor = runtime.session_actor(plain(done.headers["set-cookie"].split(";", 1)[0]))
    assert actor is not None and actor.account.id == account.id


def test_chromium_form_submission_under_the_same_origin_policy_signs_in(
        client, runtime, account) -> None:
    """What Chromium sends from the page as now served (``same-origin``): the
    page's own Origin and URL."""
    token = issue_link_token(runtime, account.id)
    url = f"http://falconframework.org/login/{token}"
    done = client.simulate_post(f"/login/{token}", headers={
        "Origin": "http://falconframework.org", "Referer": url,
        "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
        "Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 303 and done.headers["set-cookie"].startswith("hepcore_login=")


def test_origin_null_is_refused_only_without_fetch_metadata(client, runtime, account) -> None:
    """``Origin: null`` alone (an older browser, a sandboxed frame, a
    ``data:`` page) is no origin of ours; next to ``Sec-Fetch-Site`` it is
    ignored."""
    token = issue_link_token(runtime, account.id)
    refused = client.simulate_post(f"/login/{token}", headers={"Origin": "null"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    for site in ("cross-site", "same-site"):
        refused = client.simulate_post(f"/login/{token}", headers={"Origin": "null",
                                                                   "Sec-Fetch-Site": site})
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
    done = client.simulate_post(f"/login/{token}", headers={"Origin": "null",
                                                            "Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 303


def test_every_login_page_has_the_same_origin_referrer_policy(client, runtime,
                                                              account) -> None:
    token = issue_link_token(runtime, account.id)
    pages = [client.simulate_get(f"/login/{token}"),
             client.simulate_post(f"/login/{token}", headers={"Sec-Fetch-Site": "cross-site"}),
             client.simulate_get("/login/not-a-token")]
    assert [p.status_code for p in pages] == [200, 403, 400]
    for page in pages:
        assert page.headers["referrer-policy"] == "same-origin"


def test_sign_in_from_the_public_origin_works(paste_host) -> None:
    runtime, client = paste_host()
    runtime.config.service("login").public_base_url = "https://paste.example"
    account = runtime.accounts.create("pia")
    token = issue_link_token(runtime, account.id)
    r = client.simulate_post(f"/login/{token}", headers={"Origin": "https://paste.example"})
    assert r.status_code == 303


@pytest.mark.parametrize("others", [
    'prefs={"a":1}; {cookie}',
    "{cookie}; x=a b",
    'prefs={"a":1}; x=a b; {cookie}; theme=dark',
    "  {cookie}  ;x=[1,2]",
    "hepcore_login=not-a-token; {cookie}",
])
def test_session_survives_unusual_other_cookies(client, runtime, account, others) -> None:
    from conftest import session_cookie

    header = others.replace("{cookie}", session_cookie(client, runtime, account))
    actor = runtime.session_actor(plain(header))
    assert actor is not None and actor.account.id == account.id
    r = client.simulate_post("/api/paste", json={"content": "mine", "visibility": "private"},
                             headers={"Cookie": header})
    assert r.status_code == 200, r.text
