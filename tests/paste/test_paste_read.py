"""Reads (spec section 7 and 9): the reader page, raw reads, hastebin reads
and creates, visibility, expiry and purge (both app kinds)."""

from __future__ import annotations

import html
import re

import pytest
from conftest import bearer

from hepcore.clock import iso_ms as iso
from hepcore.serving import SANDBOX_CSP
from hepcore_paste.store import ORPHAN_GRACE

DAY = 86400
CSP = re.compile(r"default-src 'none'; style-src 'nonce-([A-Za-z0-9_-]{16,})'; img-src 'self'"
                 r" data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
CODE = "import os\n\n\ndef main():\n    print(os.getcwd())\n\n\nif __name__ == '__main__':\n" \
       "    main()\n"


def make(client, key, **fields):
    body = {"content": CODE, **fields}
    r = client.simulate_post("/api/paste", json=body, headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.json["data"]["id"]


def views(runtime, pid):
    return runtime.db.one("SELECT views FROM paste_pastes WHERE id = ?", (pid,))[0]


def test_reader_page(client, runtime, key) -> None:
    pid = make(client, key, title='<script>alert("x")</script> & co', language="python")
    r = client.simulate_get(f"/{pid}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    nonce = CSP.fullmatch(r.headers["content-security-policy"]).group(1)
    page = r.text
    assert "<script" not in page
    assert f'<style nonce="{nonce}">' in page and page.count("<style") == 1
    assert "style=" not in page  # every style comes under the nonce
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page
    assert "<dd>python</dd>" in page and "<dd>1</dd>" in page  # views, this one included
    assert "<dd>Never</dd>" not in page and "Expires" in page
    assert f'href="./{pid}/raw"' in page
    assert '<span class="k">def</span>' in page and '<td class="linenos">' in page
    assert "@media (prefers-color-scheme: dark)" in page
    second = client.simulate_get(f"/{pid}")
    assert CSP.fullmatch(second.headers["content-security-policy"]).group(1) != nonce
    assert "<dd>2</dd>" in second.text
    assert views(runtime, pid) == 2


def test_reader_escapes_content_and_language(client, key) -> None:
    pid = make(client, key, content="</pre><img src=x onerror=alert(1)>\n" * 3,
               language='"><b>lang')
    page = client.simulate_get(f"/{pid}").text
    assert "<img" not in page and "<b>" not in page
    assert "&lt;/pre&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&quot;&gt;&lt;b&gt;lang" in page


def test_bidi_controls_in_a_title_cannot_reorder_the_site_name(client, key) -> None:
    pid = make(client, key, title="\u202eevil")
    page = client.simulate_get(f"/{pid}").text
    tab = re.search(r"<title>(.*)</title>", page).group(1)
    assert tab.startswith("\u2068\u202eevil\u2069 · ")  # first-strong isolate ... pop
    assert "<h1>\u202eevil</h1>" in page


def test_reader_highlighting_is_cached(client, runtime, key) -> None:
    pid = make(client, key)
    service = runtime.services["paste"]
    assert len(service.cache) == 0
    client.simulate_get(f"/{pid}")
    assert len(service.cache) == 1
    # A cached page no longer needs the content: remove it and read again.
    with runtime.db.write() as conn:
        conn.execute("UPDATE paste_pastes SET content = NULL WHERE id = ?", (pid,))
    again = client.simulate_get(f"/{pid}")
    assert '<span class="k">def</span>' in again.text


def test_unknown_language_renders_as_text_and_keeps_its_name(client, key) -> None:
    pid = make(client, key, language="klingon")
    page = client.simulate_get(f"/{pid}").text
    assert "<dd>klingon</dd>" in page and '<span class="k">' not in page
    js = make(client, key, content="const x = 1;\n", language="js")
    assert '<span class="kd">const</span>' in client.simulate_get(f"/{js}").text


@pytest.mark.parametrize("language, content, markup", [
    ("Common Lisp", "(defun square (x) (* x x))\n", '<span class="nb">defun</span>'),
    ("EmacsLisp", "(defun square (x) (* x x))\n", '<span class="nb">defun</span>'),
    ("PYTHON 2.x", 'print "hello"\nexec code\n', '<span class="k">exec</span>'),
    # 33 characters, so stored cut to 32: the cut name still finds the lexer.
    ("OMG Interface Definition Language", "module M { interface I { void f(); }; };\n",
     '<span class="kn">module</span>'),
])
def test_a_lexer_name_is_highlighted_like_an_alias(client, key, language, content,
                                                   markup) -> None:
    pid = make(client, key, content=content, language=language)
    page = client.simulate_get(f"/{pid}").text
    assert f"<dd>{html.escape(language.lower()[:32])}</dd>" in page  # stored as given
    assert markup in page


def test_raw_token_data_is_not_a_language(client, key) -> None:
    # Pygments' own token-stream format, not a language: shown plain.
    pid = make(client, key, content="Token.Name\t'x'\n", language="Raw token data")
    page = client.simulate_get(f"/{pid}").text
    assert "<dd>raw token data</dd>" in page and "<span class=" not in page.split("<code>")[1]


def test_reader_head_counts_no_view(client, runtime, key) -> None:
    pid = make(client, key)
    r = client.simulate_head(f"/{pid}")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) > 1000
    assert views(runtime, pid) == 0


@pytest.mark.parametrize("path", ["/nothing1", "/bad.id", "/x", "/" + "a" * 81])
def test_reader_404_is_html(client, path) -> None:
    r = client.simulate_get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    assert CSP.fullmatch(r.headers["content-security-policy"])
    assert "Paste not found" in r.text


@pytest.mark.parametrize("prefix", ["/{id}/raw", "/raw/{id}"])
def test_raw(client, runtime, key, prefix) -> None:
    content = "<html><script>alert(1)</script></html>\r\nline 2 ünïcode\n"
    pid = make(client, key, content=content)
    r = client.simulate_get(prefix.format(id=pid))
    assert r.status_code == 200
    assert r.content == content.encode()
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=60"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == SANDBOX_CSP
    etag = r.headers["etag"]
    assert views(runtime, pid) == 1
    head = client.simulate_head(prefix.format(id=pid))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(content.encode()))
    cached = client.simulate_get(prefix.format(id=pid), headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert views(runtime, pid) == 1
    missing = client.simulate_get(prefix.format(id="nope1234"))
    assert missing.status_code == 404 and missing.text == "Not found"
    assert missing.headers["content-type"] == "text/plain; charset=utf-8"
    assert missing.headers["cache-control"] == "no-store"


def test_visibility_and_caching(client, runtime, account, key, signed_in) -> None:
    unlisted = make(client, key, visibility="unlisted")
    for path in (f"/{unlisted}", f"/{unlisted}/raw"):
        r = client.simulate_get(path)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    private = client.simulate_post("/api/paste", json={"content": "mine only",
                                                        "visibility": "private"},
                                   headers={"Cookie": signed_in}).json["data"]["id"]
    for path in (f"/{private}", f"/{private}/raw", f"/raw/{private}",
                 f"/documents/{private}"):
        assert client.simulate_get(path).status_code == 404
        assert client.simulate_get(path, headers=bearer(key)).status_code == 404  # key: no
        owner = client.simulate_get(path, headers={"Cookie": signed_in})
        assert owner.status_code == 200 and owner.headers["cache-control"] == "no-store"
    other = runtime.accounts.create("mallory")
    from conftest import session_cookie

    other_cookie = session_cookie(client, runtime, other)
    assert client.simulate_get(f"/{private}/raw",
                               headers={"Cookie": other_cookie}).status_code == 404


def test_expired_pastes_read_as_404_and_are_purged(client, runtime, key, clock) -> None:
    pid = make(client, key)
    big = make(client, key, content="log line\n" * 20_000)  # stored as a file
    storage_key = runtime.db.one("SELECT storage_key FROM paste_pastes WHERE id = ?",
                                 (big,))[0]
    assert runtime.storage.exists(storage_key)
    clock.advance(365 * DAY - 1)
    assert client.simulate_get(f"/{pid}").status_code == 200
    clock.advance(1)
    assert client.simulate_get(f"/{pid}").status_code == 404
    assert client.simulate_get(f"/{pid}/raw").status_code == 404
    clock.advance(0.01)  # the second paste was created 1 ms later (unique per account)
    assert client.simulate_get(f"/documents/{big}").status_code == 404
    # The bytes outlive the row by ORPHAN_GRACE from the expiry (readers may hold it).
    assert runtime.services["paste"].purge() == {"expiry_set": 0, "purged": 2,
                                                 "objects_removed": 0}
    assert runtime.storage.exists(storage_key)
    row = runtime.db.one("SELECT title, content, deleted_at FROM paste_pastes WHERE id = ?",
                         (pid,))
    assert row["content"] is None and row["deleted_at"] == clock()
    clock.advance(ORPHAN_GRACE - 1)
    assert runtime.services["paste"].purge()["objects_removed"] == 0
    clock.advance(1)
    assert runtime.services["paste"].purge() == {"expiry_set": 0, "purged": 0,
                                                 "objects_removed": 1}
    assert not runtime.storage.exists(storage_key)


def test_purge_is_a_registered_job(runtime, key, client, clock) -> None:
    assert "paste.purge" in runtime.jobs.names
    pid = make(client, key)
    clock.advance(366 * DAY)
    runtime.jobs.run("paste.purge")
    assert runtime.db.one("SELECT deleted_at FROM paste_pastes WHERE id = ?",
                          (pid,))[0] is not None


def test_prime_downgrade_gets_the_grace_expiry(client, runtime, prime, prime_key, clock) -> None:
    old = make(client, prime_key)
    permanent = client.simulate_post("/api/paste", json={"content": "keep", "isPermanent": True},
                                     headers=bearer(prime_key)).json["data"]["id"]
    clock.advance(400 * DAY)
    fresh = make(client, prime_key)
    other = runtime.accounts.create("other", plan="prime")
    other_key, _ = runtime.keys.create("paste", other.id, label="other")
    untouched = make(client, other_key)
    runtime.accounts.update(prime.id, plan="free")
    # Set by the plan change itself, not left for the next purge.
    shown = {pid: client.simulate_get(f"/api/v1/snippets/{pid}", headers=bearer(prime_key)
                                      ).json["data"]["expiresAt"] for pid in (old, fresh)}
    assert shown == {old: iso(clock() + 30 * DAY),  # max(now + 30 days, created + 365 days)
                     fresh: iso(clock() + 365 * DAY)}
    assert runtime.services["paste"].purge()["expiry_set"] == 0
    expiry = {r["id"]: r["expires_at"] for r in runtime.db.all(
        "SELECT id, expires_at FROM paste_pastes")}
    assert expiry[old] == clock() + 30 * DAY
    assert expiry[fresh] == clock() + 365 * DAY
    assert expiry[permanent] is None and expiry[untouched] is None
    runtime.accounts.update(prime.id, plan="prime")  # an upgrade clears nothing
    assert runtime.db.one("SELECT expires_at FROM paste_pastes WHERE id = ?",
                          (old,))[0] == clock() + 30 * DAY


def test_purge_still_catches_plans_changed_behind_the_store(client, runtime, prime, prime_key,
                                                            clock) -> None:
    pid = make(client, prime_key)
    runtime.db.write_one("UPDATE accounts SET plan = 'free' WHERE id = ?", (prime.id,))
    assert runtime.services["paste"].purge()["expiry_set"] == 1
    assert runtime.db.one("SELECT expires_at FROM paste_pastes WHERE id = ?",
                          (pid,))[0] == clock() + 365 * DAY


def test_hastebin(client, runtime, key) -> None:
    r = client.simulate_post("/documents", body="package main\n\nfunc main() {\n"
                             "\tfmt.Println(\"hi\")\n}\n",
                             headers={**bearer(key), "Content-Type": "text/plain"})
    assert r.status_code == 200 and set(r.json) == {"key"}
    pid = r.json["key"]
    row = runtime.db.one("SELECT title, language, visibility FROM paste_pastes WHERE id = ?",
                         (pid,))
    assert tuple(row) == (None, "go", "public")
    doc = client.simulate_get(f"/documents/{pid}")
    assert doc.json == {"key": pid, "data": "package main\n\nfunc main() {\n"
                                            "\tfmt.Println(\"hi\")\n}\n"}
    assert doc.headers["cache-control"] == "public, max-age=60"
    assert client.simulate_get(f"/raw/{pid}").text.startswith("package main")
    missing = client.simulate_get("/documents/nope1234")
    assert (missing.status_code, missing.json) == (404, {"ok": False, "error": "Not found"})
    assert views(runtime, pid) == 2


def test_hastebin_errors(client, key, paste_host) -> None:
    def post(body, headers):
        r = client.simulate_post("/documents", body=body, headers=headers)
        return r.status_code, r.json

    assert post(b"hello", {}) == (401, {"ok": False, "error": "Invalid API key"})
    assert post(b"\xff\xfe", bearer(key)) == (
        400, {"ok": False, "error": "Paste content must be valid UTF-8"})
    assert post(b" \n ", bearer(key)) == (400, {"ok": False,
                                                "error": "Paste content is required"})
    assert post(b"", bearer(key)) == (400, {"ok": False, "error": "Paste content is required"})
    too_large = (413, {"ok": False, "error": "Paste too large. Max 1 MB."})
    cap = 1024 * 1024
    assert post(b"x" * (cap + 1), bearer(key)) == too_large
    # The body may be as long as a JSON one (2 x cap + 64 KiB): an empty paste
    # is refused as such before its size (spec 4.2 steps 3, 7 and 9).
    assert post(b" \n" * cap, bearer(key)) == (400, {"ok": False,
                                                   "error": "Paste content is required"})
    assert post(b" " * (2 * cap) + b"x", bearer(key)) == too_large
    assert post(b" " * (2 * cap) + b"\xff", bearer(key)) == (
        400, {"ok": False, "error": "Paste content must be valid UTF-8"})
    assert post(b" " * (2 * cap + 64 * 1024 + 1), bearer(key)) == too_large
    from conftest import Captcha

    _, anon = paste_host(plugins=[Captcha()], anonymous=True)
    r = anon.simulate_post("/documents", body=b"hello")
    assert (r.status_code, r.json) == (400, {"ok": False, "error": "Captcha failed. Try again."})


def test_title_in_page_is_text(client, key) -> None:
    pid = make(client, key, title="a" * 300)
    page = client.simulate_get(f"/{pid}").text
    assert html.escape("a" * 200) + "</h1>" in page and "a" * 201 not in page


def test_highlighting_that_runs_past_its_time_limit_is_shown_plain() -> None:
    from hepcore_paste.render import highlighted, plain_block

    ticks = iter(range(1000))

    def clock() -> float:  # one second passes at every look
        return float(next(ticks))

    assert highlighted(CODE, "python", time_limit=3.5, clock=clock) == plain_block(CODE)
    colourful = highlighted(CODE, "python", time_limit=60.0)
    assert '<span class="k">def</span>' in colourful and colourful != plain_block(CODE)


def test_a_paste_too_slow_to_highlight_is_read_plain_and_cached(paste_host, account) -> None:
    # Some lexers take time growing with the square of the input (C on a long
    # run of blank lines): the page must not wait for them, and must not try
    # again on every view.
    runtime, client = paste_host(highlight_time_limit=0)
    key, _ = runtime.keys.create("paste", runtime.accounts.create("pat").id)
    pid = make(client, key, content="int main(void) { return 0; }" + "\n" * 2000,
               language="c")
    page = client.simulate_get(f"/{pid}")
    assert page.status_code == 200
    assert '<span class="kt">int</span>' not in page.text
    assert "int main(void) { return 0; }" in page.text
    assert len(runtime.services["paste"].cache) == 1
    assert client.simulate_get(f"/{pid}").text.count("return 0;") == 1


@pytest.mark.parametrize("title", ["a\x00hepcore-code\x00b", "a<hepcore-code>b"])
def test_a_title_holding_the_page_marker_is_text(client, key, title) -> None:
    pid = make(client, key, title=title, language="x<hepcore-code>")
    page = client.simulate_get(f"/{pid}")
    assert page.status_code == 200
    assert html.escape(title) in page.text and page.text.count("<h1>") == 1
    assert '<span class="k">def</span>' not in page.text  # the language is unknown: plain
