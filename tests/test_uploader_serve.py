"""``GET /:ID`` and ``HEAD /:ID`` (uploader spec section 5) under WSGI and ASGI."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import falcon.testing
import pytest
from httpkit import multipart, png_bytes

from hepcore import Config, Runtime, ServiceConfig, build_runtime
from hepcore.web import create_app

IMMUTABLE = "public, max-age=31536000, immutable"
SANDBOX = "default-src 'none'; sandbox"
DATA = bytes(range(256)) * 40  # 10240 bytes


def upload(client: falcon.testing.TestClient, token: str, data: bytes = DATA,
           content_type: str | None = "application/octet-stream",
           filename: str = "data.bin") -> str:
    body, ctype = multipart([("file", filename, content_type, data)])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": token})
    assert r.status_code == 200, r.text
    return str(r.json["ID"])


def shorten(client: falcon.testing.TestClient, token: str, link: str) -> str:
    r = client.simulate_post("/upload", body=urlencode({"link": link}), headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": token})
    assert r.status_code == 200, r.text
    return str(r.json["ID"])


def views(runtime: Runtime, item_id: str) -> int:
    return int(runtime.db.one("SELECT views FROM uploader_items WHERE id = ?", (item_id,))[0])


@pytest.fixture
def item(client, uploader_token) -> str:
    return upload(client, uploader_token, DATA, content_type=None, filename="blob.dat")


# --- resolution -------------------------------------------------------------


def test_get_by_id_and_by_slug(client, uploader_token):
    png = png_bytes()
    item_id = upload(client, uploader_token, png, content_type="image/png", filename="a.png")
    slug, ext = item_id.split(".")
    assert ext == "png"
    for name in (item_id, slug):
        r = client.simulate_get("/" + name)
        assert r.status_code == 200
        assert r.content == png
        assert r.headers["Content-Disposition"] == f'inline; filename="{item_id}"'
    for other in (slug + ".gif", slug + ".PNG", slug + ".png.png", item_id + "x", slug[:-1]):
        r = client.simulate_get("/" + other)
        assert r.status_code == 404, other


def test_unknown_is_a_404_html_page(client):
    for path in ("/nothing-here", "/abc.png", "/x"):
        r = client.simulate_get(path)
        assert r.status_code == 404
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"<html" in r.content.lower()
    r = client.simulate_head("/nothing-here")
    assert r.status_code == 404
    assert r.content == b""


def test_deleted_item_is_a_404(client, runtime, uploader_token, item):
    with runtime.db.write() as conn:
        conn.execute("UPDATE uploader_items SET deleted_at = 1 WHERE id = ?", (item,))
    assert client.simulate_get("/" + item).status_code == 404


def test_account_serve_host_only_serves_that_account(client, runtime, account, uploader_token):
    runtime.accounts.update(account.id, settings={"serve_base_url": "https://alice.hep.test"})
    mine = upload(client, uploader_token, b"mine", content_type="text/plain", filename="a.txt")
    other = runtime.accounts.create("mallory")
    other_token, _ = runtime.keys.create("uploader", other.id)
    theirs = upload(client, other_token, b"theirs", content_type="text/plain", filename="b.txt")
    assert client.simulate_get("/" + mine, host="alice.hep.test").content == b"mine"
    assert client.simulate_get("/" + theirs, host="alice.hep.test").status_code == 404
    # the same host, fully qualified or with a port
    assert client.simulate_get("/" + theirs, host="alice.hep.test.").status_code == 404
    assert client.simulate_get("/" + theirs, host="ALICE.hep.test.:8443").status_code == 404
    # every other host serves every account's items
    assert client.simulate_get("/" + mine, host="i.hep.test").content == b"mine"
    assert client.simulate_get("/" + theirs, host="i.hep.test").content == b"theirs"


# --- headers ----------------------------------------------------------------


def test_file_headers(client, uploader_token, item):
    r = client.simulate_get("/" + item)
    assert r.status_code == 200
    assert r.content == DATA
    h = r.headers
    assert h["Content-Type"] == "application/octet-stream"
    assert h["Content-Length"] == str(len(DATA))
    assert h["Content-Disposition"] == f'inline; filename="{item}"'
    assert h["ETag"] == '"' + hashlib.sha256(DATA).hexdigest() + '"'
    assert h["Cache-Control"] == IMMUTABLE
    assert h["Accept-Ranges"] == "bytes"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in h
    assert "Vary" not in h


def test_png_has_vary_and_no_csp(client, uploader_token):
    item_id = upload(client, uploader_token, png_bytes(), content_type=None, filename="x")
    r = client.simulate_get("/" + item_id)
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["Vary"] == "User-Agent"
    assert "Content-Security-Policy" not in r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_video_has_vary(client, uploader_token):
    item_id = upload(client, uploader_token, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64,
                     content_type=None, filename="clip")
    r = client.simulate_get("/" + item_id)
    assert item_id.endswith(".mp4")
    assert r.headers["Content-Type"] == "video/mp4"
    assert r.headers["Vary"] == "User-Agent"


@pytest.mark.parametrize(("ctype", "data"), [
    ("text/html", b"<!doctype html><script>alert(1)</script>"),
    ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>"),
    ("application/xml", b"<?xml version='1.0'?><a/>"),
    ("application/atom+xml", b"<feed/>"),
    ("text/javascript", b"alert(1)"),
    ("application/xhtml+xml", b"<html/>"),
])
def test_active_types_are_sandboxed(client, uploader_token, ctype, data):
    item_id = upload(client, uploader_token, data, content_type=ctype, filename="f")
    r = client.simulate_get("/" + item_id)
    assert r.headers["Content-Type"] == ctype
    assert r.headers["Content-Security-Policy"] == SANDBOX
    assert r.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("declared", ["text/plain,text/html", "image/png, text/html",
                                      "image/gif;,text/html"])
def test_a_declared_list_of_types_is_not_a_type(client, runtime, uploader_token, declared):
    # Browsers act on the last type of a list: stored as sent, this would have
    # been served unsandboxed as HTML on our origin (G6).
    page = b"<html><body><script>document.title='x'</script></body></html>"
    item_id = upload(client, uploader_token, page, content_type=declared, filename="a.bin")
    r = client.simulate_get("/" + item_id)
    assert r.headers["Content-Type"] == "text/html"  # from the bytes (U8)
    assert r.headers["Content-Security-Policy"] == SANDBOX
    # A row stored with such a type (an older host) is served sandboxed as well.
    runtime.db.write_one("UPDATE uploader_items SET type = ? WHERE id = ?",
                         ("text/plain,text/html", item_id))
    r = client.simulate_get("/" + item_id)
    assert r.headers["Content-Security-Policy"] == SANDBOX


def test_configured_active_types_are_sandboxed(tmp_path, app_kind):
    config = Config(data_dir=tmp_path / "d", secrets=["s"], active_types=["application/x-thing"],
                    services={"uploader": ServiceConfig("uploader", prefix="/")})
    runtime = build_runtime(config)
    try:
        account = runtime.accounts.create("cfg")
        token, _ = runtime.keys.create("uploader", account.id)
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        item_id = upload(client, token, b"x", content_type="application/x-thing")
        assert client.simulate_get("/" + item_id).headers["Content-Security-Policy"] == SANDBOX
        item_id = upload(client, token, b"x", content_type="application/x-other")
        assert "Content-Security-Policy" not in client.simulate_get("/" + item_id).headers
    finally:
        runtime.close()


def test_sniffed_html_is_sandboxed(client, uploader_token):
    item_id = upload(client, uploader_token, b"<html><body>hi</body></html>", content_type=None,
                     filename="page")
    assert item_id.endswith(".html")
    r = client.simulate_get("/" + item_id)
    assert r.headers["Content-Security-Policy"] == SANDBOX


def test_text_is_not_sandboxed(client, uploader_token):
    item_id = upload(client, uploader_token, b"plain", content_type="text/plain", filename="a.txt")
    r = client.simulate_get("/" + item_id)
    assert "Content-Security-Policy" not in r.headers
    assert "Vary" not in r.headers


def test_unicode_filename_does_not_leak_into_headers(client, uploader_token):
    item_id = upload(client, uploader_token, b"x", content_type="text/plain",
                     filename='we"ird\u00e9 name.txt')
    r = client.simulate_get("/" + item_id)
    assert r.headers["Content-Disposition"] == f'inline; filename="{item_id}"'


# --- ranges -----------------------------------------------------------------


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99),
    ("bytes=100-199", 100, 199),
    ("bytes=10000-", 10000, 10239),
    ("bytes=-40", 10200, 10239),
    ("bytes=-999999", 0, 10239),
    ("bytes=10230-99999", 10230, 10239),
    ("bytes=5-5", 5, 5),
])
def test_single_range(client, item, header, start, end):
    r = client.simulate_get("/" + item, headers={"Range": header})
    assert r.status_code == 206
    assert r.content == DATA[start:end + 1]
    assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert r.headers["Content-Length"] == str(end - start + 1)
    assert r.headers["ETag"] == '"' + hashlib.sha256(DATA).hexdigest() + '"'
    assert r.headers["Cache-Control"] == IMMUTABLE


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=20000-30000", "bytes=-0"])
def test_unsatisfiable_range(client, item, header):
    r = client.simulate_get("/" + item, headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert r.content == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "bytes=0-0, -1", "pages=1-2", "bytes=9-2"])
def test_multiple_or_unusable_ranges_get_the_full_body(client, item, header):
    r = client.simulate_get("/" + item, headers={"Range": header})
    assert r.status_code == 200
    assert r.content == DATA
    assert "Content-Range" not in r.headers


@pytest.mark.parametrize(("if_range", "ranged"), [
    (None, True),
    ("current", True),
    ('"0123abcd"', False),  # the part the client holds is of other bytes
    ("W/current", False),  # a weak tag never matches
    ("Sat, 21 Nov 2026 10:00:00 GMT", False),  # no Last-Modified to compare with
])
def test_if_range(client, item, if_range, ranged):
    etag = '"' + hashlib.sha256(DATA).hexdigest() + '"'
    headers = {"Range": "bytes=100-199"}
    if if_range is not None:
        headers["If-Range"] = if_range.replace("current", etag)
    r = client.simulate_get("/" + item, headers=headers)
    if ranged:
        assert (r.status_code, r.content) == (206, DATA[100:200])
    else:
        assert (r.status_code, r.content) == (200, DATA)
        assert "Content-Range" not in r.headers
    stale = client.simulate_get("/" + item, headers={"Range": "bytes=20000-",
                                                     "If-Range": '"0123abcd"'})
    assert (stale.status_code, stale.content) == (200, DATA)  # not 416


def test_head_range(client, item):
    r = client.simulate_head("/" + item, headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.headers["Content-Length"] == "10"
    assert r.headers["Content-Range"] == f"bytes 0-9/{len(DATA)}"
    assert r.content == b""


# --- conditional GET and HEAD -----------------------------------------------


def test_if_none_match(client, item):
    etag = client.simulate_get("/" + item).headers["ETag"]
    for header in (etag, "W/" + etag, f'"other", {etag}', "*"):
        r = client.simulate_get("/" + item, headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
        assert "Content-Length" not in r.headers  # a cache would take a 0 as the length
        assert r.headers["ETag"] == etag
        assert r.headers["Cache-Control"] == IMMUTABLE
    r = client.simulate_get("/" + item, headers={"If-None-Match": '"stale"'})
    assert (r.status_code, r.content) == (200, DATA)


def test_head_has_get_headers_and_no_body(client, item):
    same_id = {"X-Request-Id": "head-vs-get"}
    get = client.simulate_get("/" + item, headers=same_id)
    head = client.simulate_head("/" + item, headers=same_id)
    assert head.status_code == 200
    assert head.content == b""
    assert dict(head.headers) == dict(get.headers)


def test_head_of_a_shortlink(client, uploader_token):
    item_id = shorten(client, uploader_token, "https://example.com/target")
    head = client.simulate_head("/" + item_id)
    assert head.status_code == 302
    assert head.headers["Location"] == "https://example.com/target"
    assert head.headers["Cache-Control"] == "private, max-age=0"
    assert head.content == b""


def test_shortlink_redirect(client, uploader_token):
    target = "https://example.com/a/very/long/path?q=1&r=%20x#frag"
    item_id = shorten(client, uploader_token, target)
    r = client.simulate_get("/" + item_id)
    assert r.status_code == 302
    assert r.headers["Location"] == target
    assert r.headers["Cache-Control"] == "private, max-age=0"
    assert r.content == b""
    # a shortlink has no extension, so nothing else resolves it
    assert client.simulate_get("/" + item_id + ".txt").status_code == 404


# --- views (U10) ------------------------------------------------------------


def test_views_count_only_reads_from_the_start(client, runtime, item):
    def view(method: str = "GET", **headers: str) -> None:
        client.simulate_request(method, "/" + item, headers=headers)

    assert views(runtime, item) == 0
    view()
    assert views(runtime, item) == 1
    view(Range="bytes=0-99")
    assert views(runtime, item) == 2
    view(Range="bytes=100-")
    view(Range="bytes=-10")
    view("HEAD")
    view(Range="bytes=99999-")
    etag = client.simulate_get("/" + item).headers["ETag"]  # counts: 3
    view(**{"If-None-Match": etag})
    assert views(runtime, item) == 3
    view(Range="bytes=0-1,5-6")  # full body from byte 0
    assert views(runtime, item) == 4


def test_shortlink_views(client, runtime, uploader_token):
    item_id = shorten(client, uploader_token, "https://example.com/")
    client.simulate_get("/" + item_id)
    client.simulate_get("/" + item_id)
    client.simulate_head("/" + item_id)
    assert views(runtime, item_id) == 2


def test_views_of_text(client, runtime, uploader_token):
    item_id = shorten(client, uploader_token, "some text")
    assert client.simulate_get("/" + item_id).content == b"some text"
    assert views(runtime, item_id) == 1
