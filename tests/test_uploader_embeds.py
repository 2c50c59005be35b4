"""Embeds for chat-app crawlers, ``GET /api/oembed`` and ``GET /uploadCounter``
(uploader spec sections 6 and 7) under WSGI and ASGI."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, urlencode

import falcon.testing
import pytest
from httpkit import jpeg_bytes, multipart, png_bytes

from hepcore import Runtime

BASE = "http://falconframework.org"
DEFAULT_BOTS = ["Discordbot", "Twitterbot", "facebookexternalhit", "Slackbot", "TelegramBot",
                "WhatsApp", "LinkedInBot", "Embedly"]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
PNG = png_bytes(64, 48)
VIDEO = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 4
NOT_FOUND = {"ok": False, "error": "Not found"}


def upload(client: falcon.testing.TestClient, token: str, data: bytes, filename: str,
           content_type: str | None) -> str:
    body, ctype = multipart([("file", filename, content_type, data)])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": token})
    assert r.status_code == 200, r.text
    return str(r.json["ID"])


def link(client: falcon.testing.TestClient, token: str, value: str) -> str:
    r = client.simulate_post("/upload", body=urlencode({"link": value}), headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": token})
    assert r.status_code == 200, r.text
    return str(r.json["ID"])


def as_bot(client: falcon.testing.TestClient, path: str, ua: str = "Discordbot/2.0",
           method: str = "GET", **kwargs: Any) -> falcon.testing.Result:
    return client.simulate_request(method, path, headers={"User-Agent": ua}, **kwargs)


def views(runtime: Runtime, item_id: str) -> int:
    return int(runtime.db.one("SELECT views FROM uploader_items WHERE id = ?", (item_id,))[0])


def metas(page: str) -> dict[str, str]:
    """``{property or name: content}`` of every meta tag (content unescaped)."""
    found = {}
    for attr, key, value in re.findall(r'<meta (property|name)="([^"]*)" content="([^"]*)">',
                                       page):
        found[html.unescape(key)] = html.unescape(value)
    return found


def oembed_href(page: str) -> str:
    (href,) = re.findall(
        r'<link rel="alternate" type="application/json\+oembed" href="([^"]*)">', page)
    return html.unescape(href)


@pytest.fixture
def png_id(client, uploader_token) -> str:
    return upload(client, uploader_token, PNG, "shot.png", "image/png")


@pytest.fixture
def video_id(client, uploader_token) -> str:
    return upload(client, uploader_token, VIDEO, "clip.mp4", "video/mp4")


def assert_embed_headers(r: falcon.testing.Result) -> None:
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Vary"] == "User-Agent"
    assert r.headers["Cache-Control"] == "public, max-age=3600"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Security-Policy"] == "default-src 'none'"
    assert "Content-Disposition" not in r.headers
    assert "<script" not in r.text.lower()


# --- who gets the preview page ----------------------------------------------


def bot_agents() -> list[str]:
    agents = []
    for i, token in enumerate(DEFAULT_BOTS):
        variant = (token, token.lower(), token.upper(), token.swapcase())[i % 4]
        agents.append(f"Mozilla/5.0 (compatible; {variant}/1.0; +https://bots.example)")
    return agents


@pytest.mark.parametrize("ua", bot_agents(), ids=DEFAULT_BOTS)
def test_each_default_bot_gets_the_image_page(client, png_id, ua):
    r = as_bot(client, "/" + png_id, ua)
    assert_embed_headers(r)
    url = f"{BASE}/{png_id}"
    assert metas(r.text) == {
        "og:url": url, "og:title": png_id, "og:site_name": "Hep.gg", "og:type": "website",
        "og:image": url + "?embed=raw", "og:image:type": "image/png",
        "og:image:width": "64", "og:image:height": "48",
        "twitter:card": "summary_large_image", "twitter:image": url + "?embed=raw",
    }
    assert oembed_href(r.text) == f"{BASE}/api/oembed?url={quote(url, safe='')}"
    assert "url=http%3A%2F%2Ffalconframework.org%2F" in oembed_href(r.text)


@pytest.mark.parametrize("ua", bot_agents(), ids=DEFAULT_BOTS)
def test_each_default_bot_gets_the_video_page(client, video_id, ua):
    r = as_bot(client, "/" + video_id, ua)
    assert_embed_headers(r)
    url = f"{BASE}/{video_id}"
    tags = metas(r.text)
    assert tags == {
        "og:url": url, "og:title": video_id, "og:site_name": "Hep.gg", "og:type": "video.other",
        "og:video": url + "?embed=raw", "og:video:secure_url": url + "?embed=raw",
        "og:video:type": "video/mp4",
        "twitter:card": "player", "twitter:player:stream": url + "?embed=raw",
    }
    assert oembed_href(r.text) == f"{BASE}/api/oembed?url={quote(url, safe='')}"


def test_slug_and_jpeg_get_the_page_too(client, uploader_token):
    jpg = upload(client, uploader_token, jpeg_bytes(5, 9), "p.jpeg", None)
    r = as_bot(client, "/" + jpg.split(".")[0], "TelegramBot (like TwitterBot)")
    assert_embed_headers(r)
    tags = metas(r.text)
    assert (tags["og:title"], tags["og:image:type"]) == (jpg, "image/jpeg")
    assert (tags["og:image:width"], tags["og:image:height"]) == ("5", "9")
    assert tags["og:url"] == f"{BASE}/{jpg}"


def test_image_without_known_dimensions_has_no_size_tags(client, uploader_token):
    item = upload(client, uploader_token, b"not really a webp", "x.webp", "image/webp")
    r = as_bot(client, "/" + item)
    assert_embed_headers(r)
    tags = metas(r.text)
    assert tags["og:image:type"] == "image/webp"
    assert "og:image:width" not in tags and "og:image:height" not in tags


def test_people_get_the_bytes(client, png_id):
    for ua in (BROWSER, None, "", "curl/8.0", "Discord", "Slack-ImgProxy"):
        headers = {"User-Agent": ua} if ua is not None else {}
        r = client.simulate_get("/" + png_id, headers=headers)
        assert (r.status_code, r.content) == (200, PNG), ua
        assert r.headers["Content-Type"] == "image/png"
        assert r.headers["Vary"] == "User-Agent"


def test_embed_raw_gives_bots_the_bytes_and_counts(client, runtime, png_id, video_id):
    for item, data, ctype in ((png_id, PNG, "image/png"), (video_id, VIDEO, "video/mp4")):
        r = as_bot(client, "/" + item, query_string="embed=raw")
        assert (r.status_code, r.content) == (200, data)
        assert r.headers["Content-Type"] == ctype
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert views(runtime, item) == 1
    # a range from 0 on ?embed=raw is a view too, a continuation is not
    def ranged(spec: str) -> falcon.testing.Result:
        return client.simulate_get("/" + video_id, query_string="embed=raw", headers={
            "User-Agent": "Discordbot/2.0", "Range": spec})

    assert ranged("bytes=0-9").status_code == 206
    assert views(runtime, video_id) == 2
    assert ranged("bytes=10-19").content == VIDEO[10:20]
    assert views(runtime, video_id) == 2


def test_embed_page_does_not_count_a_view(client, runtime, png_id):
    for _ in range(3):
        assert_embed_headers(as_bot(client, "/" + png_id, "Twitterbot/1.0"))
    assert views(runtime, png_id) == 0
    client.simulate_get("/" + png_id, headers={"User-Agent": BROWSER})
    assert views(runtime, png_id) == 1


def test_other_items_are_never_embedded(client, runtime, uploader_token):
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    svg_id = upload(client, uploader_token, svg, "a.svg", "image/svg+xml")
    text_id = link(client, uploader_token, "hello bots")
    pdf_id = upload(client, uploader_token, b"%PDF-1.4 tiny", "a.pdf", "application/pdf")
    short_id = link(client, uploader_token, "https://example.com/target")
    for ua in bot_agents():
        r = as_bot(client, "/" + svg_id, ua)
        assert (r.status_code, r.content) == (200, svg)
        assert r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert as_bot(client, "/" + text_id, ua).content == b"hello bots"
        assert as_bot(client, "/" + pdf_id, ua).content == b"%PDF-1.4 tiny"
        r = as_bot(client, "/" + short_id, ua)
        assert (r.status_code, r.headers["Location"]) == (302, "https://example.com/target")
    assert views(runtime, short_id) == len(DEFAULT_BOTS)


def test_head_is_never_embedded(client, runtime, png_id, video_id):
    for item, data, ctype in ((png_id, PNG, "image/png"), (video_id, VIDEO, "video/mp4")):
        r = as_bot(client, "/" + item, method="HEAD")
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers["Content-Type"] == ctype
        assert r.headers["Content-Length"] == str(len(data))
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert views(runtime, item) == 0


def test_values_are_html_escaped(host):
    h = host(options={"service_name": '<b>"&Co\'s'})
    client = h.client()
    item = upload(client, h.token, PNG, "x.png", "image/png")
    r = as_bot(client, "/" + item, "facebookexternalhit/1.1")
    assert_embed_headers(r)
    assert '<b>"&Co' not in r.text
    assert "&lt;b&gt;&quot;&amp;Co&#x27;s" in r.text
    assert metas(r.text)["og:site_name"] == '<b>"&Co\'s'
    # the oEmbed provider name is the same, as JSON
    doc = client.simulate_get("/api/oembed", params={"url": f"{BASE}/{item}"}).json
    assert doc["provider_name"] == '<b>"&Co\'s'


def test_service_name_and_bases(host):
    h = host(public_base_url="https://hep.example",
             options={"serve_base_url": "https://i.hep.example", "service_name": "My Host"},
             settings={"serve_base_url": "https://bob.example.com"})
    client = h.client()
    item = upload(client, h.token, PNG, "x.png", "image/png")
    r = as_bot(client, "/" + item, "Slackbot-LinkExpanding 1.0", host="bob.example.com")
    assert_embed_headers(r)
    tags = metas(r.text)
    assert tags["og:site_name"] == "My Host"
    assert tags["og:url"] == f"https://bob.example.com/{item}"
    assert tags["og:image"] == f"https://bob.example.com/{item}?embed=raw"
    assert oembed_href(r.text) == (
        "https://hep.example/api/oembed?url=https%3A%2F%2Fbob.example.com%2F" + item)


def test_configured_bot_list_replaces_the_default(host):
    h = host(options={"embed_bots": ["MyPreviewer", "mastodon"]})
    client = h.client()
    item = upload(client, h.token, PNG, "x.png", "image/png")
    for ua in ("MyPreviewer/3.1", "http.rb/5 (Mastodon/4.2; +https://m.example/)"):
        assert_embed_headers(as_bot(client, "/" + item, ua))
    for ua in ("Discordbot/2.0", "Twitterbot/1.0", BROWSER):
        r = as_bot(client, "/" + item, ua)
        assert (r.status_code, r.content) == (200, PNG), ua
    h2 = host(options={"embed_bots": []})
    item2 = upload(h2.client(), h2.token, PNG, "x.png", "image/png")
    assert as_bot(h2.client(), "/" + item2, "Discordbot/2.0").content == PNG


# --- GET /api/oembed ----------------------------------------------------------


def oembed(client: falcon.testing.TestClient, **params: str) -> falcon.testing.Result:
    return client.simulate_get("/api/oembed", params=params)


def test_oembed_photo(client, png_id):
    url = f"{BASE}/{png_id}"
    r = oembed(client, url=url)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.json == {"version": "1.0", "type": "photo", "provider_name": "Hep.gg",
                      "provider_url": BASE, "title": png_id, "url": url + "?embed=raw",
                      "width": 64, "height": 48}
    # the same document for format=json, the slug, ?embed=raw, and with maxwidth/maxheight
    for params in ({"url": url, "format": "json"}, {"url": f"{BASE}/{png_id.split('.')[0]}"},
                   {"url": url + "?embed=raw"}, {"url": url, "maxwidth": "10", "maxheight": "x"}):
        assert oembed(client, **params).json == r.json, params


def test_oembed_the_page_links_to(client, png_id):
    page = as_bot(client, "/" + png_id).text
    href = oembed_href(page)
    path, _, query = href.removeprefix(BASE).partition("?")
    r = client.simulate_get(path, query_string=query)
    assert (r.status_code, r.json["type"], r.json["title"]) == (200, "photo", png_id)


def test_oembed_link_type_for_everything_else(client, uploader_token, video_id):
    items = [
        video_id,
        upload(client, uploader_token, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.svg",
               "image/svg+xml"),
        upload(client, uploader_token, b"not an image", "x.webp", "image/webp"),
        link(client, uploader_token, "some text"),
        link(client, uploader_token, "https://example.com/"),
    ]
    for item in items:
        r = oembed(client, url=f"{BASE}/{item}")
        assert r.status_code == 200
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.json == {"version": "1.0", "type": "link", "provider_name": "Hep.gg",
                          "provider_url": BASE, "title": item}, item


def test_oembed_uses_the_configured_bases(host):
    h = host(public_base_url="https://hep.example",
             options={"serve_base_url": "https://i.hep.example", "service_name": "Mine"})
    client = h.client()
    item = upload(client, h.token, PNG, "x.png", "image/png")
    doc = oembed(client, url=f"https://i.hep.example/{item}").json
    assert (doc["provider_name"], doc["provider_url"]) == ("Mine", "https://hep.example")
    assert doc["url"] == f"https://i.hep.example/{item}?embed=raw"


def test_oembed_missing_url(client, png_id):
    for params in ({}, {"url": ""}, {"format": "xml"}):
        r = oembed(client, **params)
        assert r.status_code == 400
        assert r.headers["Content-Type"] == "application/json"
        assert r.json == {"ok": False, "error": "Missing url parameter"}
        assert r.headers["Access-Control-Allow-Origin"] == "*"  # a page's script reads why


def test_oembed_unsupported_format(client, png_id):
    for fmt in ("xml", "JSON", ""):
        r = oembed(client, url=f"{BASE}/{png_id}", format=fmt)
        assert r.status_code == 501, fmt
        assert r.json == {"ok": False, "error": "Unsupported format"}
        assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_oembed_not_found(client, uploader_token, png_id):
    gone = upload(client, uploader_token, PNG, "gone.png", "image/png")
    deleted = client.simulate_delete(f"/api/v1/uploads/{gone}",
                                     headers={"Authorization": uploader_token})
    assert deleted.status_code == 200
    for url in (f"{BASE}/{gone}", f"{BASE}/nothing.png", f"{BASE}/{png_id.split('.')[0]}.gif",
                f"{BASE}/", "not a url", f"ftp://falconframework.org/{png_id}"):
        r = oembed(client, url=url)
        assert r.status_code == 404, url
        assert r.headers["Content-Type"] == "application/json"
        assert r.json == NOT_FOUND
        assert r.headers["Access-Control-Allow-Origin"] == "*"


# --- which URLs are item URLs of this service (section 6) ---------------------


@pytest.mark.parametrize("url", [
    "http://otherhost.example/{id}",
    "http://falconframework.org.evil.test/{id}",
    "http://evil.test/falconframework.org/{id}",
    "https://falconframework.org/{id}",  # another scheme is another origin
    "http://falconframework.org:8080/{id}",
    "http://x:99999999/{id}",
    "http://falconframework.org:99999999/{id}",
    "http://falconframework.org:65536/{id}",
    "http://falconframework.org:8o/{id}",
    "http://falconframework.org:-80/{id}",
    "http://falcon framework.org/{id}",
    "http://user@falconframework.org/{id}",
    "http://user:pw@falconframework.org/{id}",
    "//falconframework.org/{id}",
    "/{id}",
    "{id}",
    "ftp://falconframework.org/{id}",
])
def test_oembed_refuses_other_origins(client, png_id, url):
    url = url.format(id=png_id)
    assert client.simulate_get("/" + png_id).status_code == 200  # the item exists
    r = oembed(client, url=url)
    assert (r.status_code, r.json) == (404, NOT_FOUND), url
    assert r.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", [
    "/a/{id}", "//{id}", "/{id}/", "/{id}/x", "/api/{id}", "/./{id}", "/x/../{id}",
    "/uploader/{id}",
])
def test_oembed_refuses_other_paths(client, png_id, path):
    r = oembed(client, url=BASE + path.format(id=png_id))
    assert (r.status_code, r.json) == (404, NOT_FOUND), path


@pytest.mark.parametrize("url", [
    "http://falconframework.org:80/{id}",
    "http://falconframework.org:0080/{id}",
    "http://falconframework.org:/{id}",
    "http://FalconFramework.ORG/{id}",
    "http://falconframework.org./{id}",
    "HTTP://falconframework.org/{id}",
    "http://falconframework.org/{id}?embed=raw#top",
    "http://falconframework.org/%7Bid%7D",  # the ID percent-encoded, as the route decodes it
])
def test_oembed_origin_is_compared_normalised(client, png_id, url):
    url = url.replace("%7Bid%7D", "".join(f"%{b:02X}" for b in png_id.encode()))
    r = oembed(client, url=url.format(id=png_id))
    assert r.status_code == 200, url
    # the document always carries the item's own URL
    assert (r.json["title"], r.json["url"]) == (png_id, f"{BASE}/{png_id}?embed=raw")


def test_oembed_under_a_mount_prefix(host):
    h = host(prefix="/uploader")
    client = h.client()
    body, ctype = multipart([("file", "x.png", "image/png", PNG)])
    r = client.simulate_post("/uploader/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": h.token})
    assert r.status_code == 200, r.text
    item, url = r.json["ID"], r.json["url"]
    assert url == f"{BASE}/uploader/{item}"

    def get(target: str) -> falcon.testing.Result:
        return client.simulate_get("/uploader/api/oembed", params={"url": target})

    doc = get(url).json
    assert (doc["title"], doc["url"], doc["provider_url"]) == (
        item, url + "?embed=raw", f"{BASE}/uploader")
    assert get(f"{BASE}/UPLOADER/../uploader/{item}").json == NOT_FOUND
    for path in (f"/{item}", f"/other/{item}", f"/uploader/x/{item}", f"/uploaderx/{item}",
                 f"/x/uploader/{item}"):
        r = get(BASE + path)
        assert (r.status_code, r.json) == (404, NOT_FOUND), path


def test_oembed_accepts_only_the_configured_bases(host):
    h = host(public_base_url="https://hep.example",
             options={"serve_base_url": "https://i.hep.example/files"})
    client = h.client()
    item = upload(client, h.token, PNG, "x.png", "image/png")
    served = f"https://i.hep.example/files/{item}"
    for url in (served, f"https://I.Hep.Example.:443/files/{item}", f"https://hep.example/{item}",
                f"https://HEP.example:443/{item}"):
        r = oembed(client, url=url)
        assert r.status_code == 200, url
        assert r.json["url"] == served + "?embed=raw"
    # the request's own host is not a public base once one is configured
    for url in (f"https://i.hep.example/{item}", f"http://i.hep.example/files/{item}",
                f"https://i.hep.example:8443/files/{item}", f"https://hep.example/files/{item}",
                f"http://hep.example/{item}", f"{BASE}/{item}", f"https://x.hep.example/{item}"):
        r = oembed(client, url=url)
        assert (r.status_code, r.json) == (404, NOT_FOUND), url


def test_oembed_on_an_ip_literal_base(host):
    h = host(public_base_url="http://[::1]:8080")
    client = h.client()
    item = upload(client, h.token, PNG, "x.png", "image/png")
    for url in (f"http://[::1]:8080/{item}", f"http://[0:0::1]:8080/{item}"):
        assert oembed(client, url=url).json["url"] == f"http://[::1]:8080/{item}?embed=raw"
    for url in (f"http://[::2]:8080/{item}", f"http://[::1]/{item}", f"http://[::1]x:8080/{item}",
                f"http://[::1%25lo]:8080/{item}", f"http://::1:8080/{item}"):
        assert oembed(client, url=url).json == NOT_FOUND, url


def test_oembed_account_serve_host_rules(client, runtime, account, uploader_token):
    runtime.accounts.update(account.id, settings={"serve_base_url": "https://alice.hep.test/u"})
    mine = upload(client, uploader_token, PNG, "x.png", "image/png")
    other = runtime.accounts.create("mallory")
    token, _ = runtime.keys.create("uploader", other.id)
    theirs = upload(client, token, PNG, "y.png", "image/png")
    for url in (f"https://alice.hep.test/u/{mine}", f"https://ALICE.hep.test.:443/u/{mine}"):
        assert oembed(client, url=url).json["url"] == f"https://alice.hep.test/u/{mine}?embed=raw"
    # only that account's items, and only under its base
    for url in (f"https://alice.hep.test/u/{theirs}", f"https://alice.hep.test/{mine}",
                f"http://alice.hep.test/u/{mine}", f"https://alice.hep.test:444/u/{mine}",
                f"https://alice.hep.test/u/x/{mine}", f"https://bob.hep.test/u/{mine}"):
        assert oembed(client, url=url).json == NOT_FOUND, url
    # every account's items are served on the public base
    assert oembed(client, url=f"{BASE}/{mine}").json["title"] == mine
    assert oembed(client, url=f"{BASE}/{theirs}").json["title"] == theirs


# --- GET /uploadCounter (section 7) -------------------------------------------


def test_upload_counter(client, runtime, uploader_token):
    def count() -> int:
        r = client.simulate_get("/uploadCounter")
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/json"
        assert set(r.json) == {"count"} and isinstance(r.json["count"], int)
        return int(r.json["count"])

    assert count() == 0
    file_id = upload(client, uploader_token, PNG, "x.png", "image/png")
    text_id = link(client, uploader_token, "text")
    link_id = link(client, uploader_token, "https://example.com/")
    auth = {"Authorization": uploader_token}
    r = client.simulate_post("/api/v1/shorten", json={"url": "https://example.com/s"}, headers=auth)
    assert r.status_code == 200
    assert count() == 4
    # failures are not counted
    client.simulate_post("/upload", body=b"link=", headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"})
    client.simulate_post("/api/v1/shorten", json={"url": "mailto:x@example.com"}, headers=auth)
    assert count() == 4
    # deleting never decreases it
    for item in (file_id, text_id, link_id):
        assert client.simulate_delete(f"/api/v1/uploads/{item}", headers=auth).status_code == 200
    assert count() == 4
    # it is the whole host's, every account included
    other = runtime.accounts.create("mallory")
    token, _ = runtime.keys.create("uploader", other.id)
    link(client, token, "theirs")
    assert count() == 5
    assert client.simulate_get("/uploadCounter", headers={"Authorization": "junk"}).json == {
        "count": 5}
