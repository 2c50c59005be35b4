"""``POST /upload`` with ``link`` (uploader spec 4.2 step 5 and 4.4): shortlink
or text, from urlencoded and multipart bodies, under WSGI and ASGI."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote, urlencode

import falcon.testing
import pytest
from httpkit import call, multipart, png_bytes

from hepcore import Runtime

ID_RE = r"[A-Za-z0-9_-]{9}"
MIB = 1024 * 1024
TEXT_TYPE = "text/plain; charset=utf-8"
TYPE_NOT_ALLOWED = {"ok": False,
                    "error": "Not allowed to upload files with the supplied Content-Type"}
MISSING_LINK = {"ok": False, "error": "Body is missing link property"}
NO_FILE = {"ok": False, "error": "No file or link in request"}
FORMS = pytest.mark.parametrize("form", ["urlencoded", "multipart"])


def link_body(form: str, value: str | bytes) -> tuple[bytes, str]:
    raw = value.encode() if isinstance(value, str) else value
    if form == "urlencoded":
        return b"link=" + quote(raw, safe="").encode(), "application/x-www-form-urlencoded"
    return multipart([("link", None, None, raw)])


def post_link(client: falcon.testing.TestClient, token: str, form: str,
              value: str | bytes) -> falcon.testing.Result:
    body, ctype = link_body(form, value)
    return client.simulate_post("/upload", body=body,
                                headers={"Content-Type": ctype, "Authorization": token})


def rows(runtime: Runtime) -> list[Any]:
    return list(runtime.db.all("SELECT * FROM uploader_items ORDER BY created_at"))


def nothing_stored(runtime: Runtime) -> bool:
    """No item row, no stored object and no partial write left behind."""
    storage = runtime.storage
    return (not rows(runtime) and list(storage.keys()) == []
            and os.listdir(storage.tmp_dir) == [])


def counter(client: falcon.testing.TestClient) -> int:
    return int(client.simulate_get("/uploadCounter").json["count"])


# --- shortlinks -------------------------------------------------------------


@FORMS
@pytest.mark.parametrize(("value", "target"), [
    ("https://example.com/x", "https://example.com/x"),
    ("  https://example.com/x  ", "https://example.com/x"),
    ("\t\r\nhttp://example.org/a?b=c&d=%20e#f \n", "http://example.org/a?b=c&d=%20e#f"),
    ("HTTPS://Example.COM/Case", "HTTPS://Example.COM/Case"),
    ("https://user@example.com:8080/p", "https://user@example.com:8080/p"),
])
def test_http_urls_become_trimmed_shortlinks(client, runtime, uploader_token, form, value,
                                             target):
    r = post_link(client, uploader_token, form, value)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert set(r.json) == {"ID", "url"}
    assert re.fullmatch(ID_RE, r.json["ID"])  # never an extension
    assert r.json["url"] == "http://falconframework.org/" + r.json["ID"]
    got = client.simulate_get("/" + r.json["ID"])
    assert (got.status_code, got.headers["Location"]) == (302, target)
    (row,) = rows(runtime)
    assert (row["kind"], row["link"], row["name"], row["type"], row["size"]) == (
        "link", target, None, None, None)
    assert list(runtime.storage.keys()) == []  # a shortlink stores no bytes


# Values urlsplit takes for http(s) URLs with a host, and a WHATWG URL parser
# (browsers, Node's `new URL`) refuses: a forbidden code point or "%" in the
# host, an empty host, a port that is not 0-65535 in digits.
BROWSER_REFUSES = [
    "http://a b.com/", "https://exa mple.com", "https://exa\u3000mple.com/",
    "https://example.com:99999/", "https://example.com:65536/", "https://example.com:8o/",
    "https://example.com:-1/", "https://example.com:+80/", "https://example.com:80:80/",
    "http://exa<mple.com/", "http://exa>mple.com/", "http://exa^mple.com/",
    "http://exa|mple.com/", "http://ex%41mple.com/", "http://exa\\mple.com/",
    "http://example.com\\@evil.test/", "http://[::1]x/", "http://[fe80::1%25eth0]/",
    "http://[v1.fe]/", "http://:80/", "http://user@/",
]
# Values both accept; the Location a redirect sends.
BROWSER_ACCEPTS = [
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://[2001:DB8::1]/", "http://[2001:DB8::1]/"),
    ("https://example.com:65535/", "https://example.com:65535/"),
    ("https://example.com:0/", "https://example.com:0/"),
    ("https://example.com:/p", "https://example.com:/p"),
    ("https://user:p%20w@example.com/", "https://user:p%20w@example.com/"),
    ("https://b\u00fccher.example/stra\u00dfe", "https://xn--bcher-kva.example/stra%C3%9Fe"),
    ("http://example.com./", "http://example.com./"),
    ("https://a_b.example.com/?q=1&r=%2F#frag", "https://a_b.example.com/?q=1&r=%2F#frag"),
    # A browser percent-encodes these wherever they appear; a header must not carry them raw.
    ("https://e.com/a b?q=c d#e f", "https://e.com/a%20b?q=c%20d#e%20f"),
    ('https://e.com/"><script>', "https://e.com/%22%3E%3Cscript%3E"),
    ("https://user:pa ss@e.com/{x}`", "https://user:pa%20ss@e.com/%7Bx%7D%60"),
    ("https://b\u00fccher.example/a b", "https://xn--bcher-kva.example/a%20b"),
]


@FORMS
@pytest.mark.parametrize("value", BROWSER_REFUSES)
def test_urls_a_browser_refuses_are_stored_as_text(client, runtime, uploader_token, form,
                                                     value):
    r = post_link(client, uploader_token, form, value)
    assert r.status_code == 200, r.text
    item_id = r.json["ID"]
    assert re.fullmatch(ID_RE + r"\.txt", item_id)
    got = client.simulate_get("/" + item_id)
    assert (got.status_code, got.content) == (200, value.encode("utf-8"))
    assert got.headers["Content-Type"] == TEXT_TYPE
    assert "Location" not in got.headers
    (row,) = rows(runtime)
    assert (row["kind"], row["link"]) == ("text", None)


@FORMS
@pytest.mark.parametrize(("value", "location"), BROWSER_ACCEPTS)
def test_urls_a_browser_accepts_stay_shortlinks(client, runtime, uploader_token, form, value,
                                                location):
    r = post_link(client, uploader_token, form, value)
    assert r.status_code == 200, r.text
    assert re.fullmatch(ID_RE, r.json["ID"])
    got = client.simulate_get("/" + r.json["ID"])
    assert (got.status_code, got.headers["Location"]) == (302, location)
    (row,) = rows(runtime)
    assert (row["kind"], row["link"]) == ("link", value)


@FORMS
def test_2048_characters_is_a_shortlink_2049_is_text(client, runtime, uploader_token, form):
    exact = "https://example.com/" + "p" * 2028
    assert len(exact) == 2048
    r = post_link(client, uploader_token, form, exact)
    assert re.fullmatch(ID_RE, r.json["ID"])
    assert client.simulate_get("/" + r.json["ID"]).headers["Location"] == exact
    # surrounding whitespace does not count towards the 2048
    r = post_link(client, uploader_token, form, "  " + exact + "\n")
    assert re.fullmatch(ID_RE, r.json["ID"])
    longer = exact + "p"
    r = post_link(client, uploader_token, form, longer)
    assert re.fullmatch(ID_RE + r"\.txt", r.json["ID"])
    got = client.simulate_get("/" + r.json["ID"])
    assert (got.status_code, got.content) == (200, longer.encode())


def test_shortlink_redirects_count_views_head_does_not(client, runtime, uploader_token):
    r = post_link(client, uploader_token, "multipart", "https://example.com/counted")
    item_id = r.json["ID"]
    for _ in range(3):
        assert client.simulate_get("/" + item_id).status_code == 302
    for _ in range(2):
        head = client.simulate_head("/" + item_id)
        assert (head.status_code, head.headers["Location"]) == (302, "https://example.com/counted")
    me = client.simulate_get("/api/v1/uploads", headers={"Authorization": uploader_token})
    (item,) = me.json["data"]["uploads"]
    assert item["views"] == 3


# --- text -------------------------------------------------------------------

TEXT_VALUES = [
    "hello",
    "mailto:someone@example.com",
    "https://example.com/" + "a" * 2029,  # 2049 characters
    "  padded text  \n",
    "ftp://example.com/file",
    "//example.com/no-scheme",
    "https:///no-host",
    "caf\u00e9 \u2603 \U0001f600 & = + % ; \r\n",
    " ",
]


@FORMS
@pytest.mark.parametrize("value", TEXT_VALUES, ids=range(len(TEXT_VALUES)))
def test_other_values_are_stored_as_text(client, runtime, uploader_token, clock, form, value):
    clock.advance(0.123)
    r = post_link(client, uploader_token, form, value)
    assert r.status_code == 200, r.text
    item_id = r.json["ID"]
    assert re.fullmatch(ID_RE + r"\.txt", item_id)
    assert r.json["url"] == "http://falconframework.org/" + item_id
    got = client.simulate_get("/" + item_id)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == TEXT_TYPE
    assert got.content == value.encode("utf-8")  # exactly as received, not trimmed
    assert got.headers["Content-Disposition"] == f'inline; filename="{item_id}"'
    listing = client.simulate_get("/api/v1/uploads", headers={"Authorization": uploader_token})
    (item,) = listing.json["data"]["uploads"]
    assert item["kind"] == "text"
    assert item["name"] == f"{round(clock() * 1000)}.txt" == "1780000000123.txt"
    assert item["type"] == TEXT_TYPE
    assert item["size"] == len(value.encode("utf-8"))
    assert item["link"] is None
    # resolves by slug too
    assert client.simulate_get("/" + item_id[:-4]).content == value.encode("utf-8")


@FORMS
def test_text_obeys_allowed_types(host, form):
    h = host(settings={"allowed_types": ["image/*"]})
    client = h.client()
    for value in ("hello", "mailto:a@example.com", "x" * 20_000):  # small and spilled values
        r = post_link(client, h.token, form, value)
        assert (r.status_code, r.json) == (400, TYPE_NOT_ALLOWED)
    assert nothing_stored(h.runtime)
    # shortlinks have no type check
    r = post_link(client, h.token, form, " https://example.com/ok ")
    assert r.status_code == 200
    # an exact text/plain pattern admits text
    h2 = host(settings={"allowed_types": ["text/plain"]})
    assert post_link(h2.client(), h2.token, form, "hello").status_code == 200


@FORMS
@pytest.mark.parametrize("limit", [100, 20_000])
def test_text_over_max_file_size(host, form, limit):
    h = host(settings={"max_file_size": limit})
    client = h.client()
    message = {"ok": False, "code": "TOO_LARGE",
               "error": f"File exceeds your upload size limit of {limit / MIB:.10g} MB"}
    r = post_link(client, h.token, form, "t" * (limit + 1))
    assert (r.status_code, r.json) == (413, message)
    # the limit is on UTF-8 bytes, not characters
    r = post_link(client, h.token, form, "\u00e9" * (limit // 2 + 1))
    assert (r.status_code, r.json) == (413, message)
    assert nothing_stored(h.runtime)
    assert counter(client) == 0
    r = post_link(client, h.token, form, "t" * limit)
    assert r.status_code == 200
    assert client.simulate_get("/" + r.json["ID"]).content == b"t" * limit


def test_escaped_form_text_up_to_the_limit_is_taken_with_a_content_length(host):
    # 4.4 limits the text's UTF-8 bytes; a form field may spend 3 bytes on
    # each (%C3%A9), so the Content-Length refused unread (G5) is 3x the limit.
    limit = 100_000
    h = host(settings={"max_file_size": limit})
    client, app = h.client(), h.app()
    r = post_link(client, h.token, "urlencoded", "\u00e9" * (limit // 2))
    assert r.status_code == 200, r.json
    assert client.simulate_get("/" + r.json["ID"]).content == "\u00e9".encode() * (limit // 2)
    r = post_link(client, h.token, "urlencoded", "\u00e9" * (limit // 2) + "t")
    assert (r.status_code, r.json["code"]) == (413, "TOO_LARGE")
    headers = [("Authorization", h.token), ("Content-Type", "application/x-www-form-urlencoded")]
    declared = 3 * limit + 64 * 1024
    for length, status in ((declared + 1, 413), (declared, 400)):
        r = call(app, "POST", "/upload", body=b"nolink=1",
                 headers=[*headers, ("Content-Length", str(length))])
        assert r.status == status, length  # 400: read, and cut short


def test_json_bodies_past_their_own_cap_say_so(client, uploader_token):
    # JSON is read whole, so it has a cap of its own below the 100 MB default.
    message = {"ok": False, "code": "TOO_LARGE", "error": "JSON bodies are limited to 16 MB;"
               " send longer text as a form field or a multipart part"}
    body = json.dumps({"link": "t" * (16 * MIB)}).encode()
    for chunked in (False, True):
        r = call(client.app, "POST", "/upload", body=[body] if chunked else body,
                 chunked=chunked, headers=[("Authorization", uploader_token),
                                           ("Content-Type", "application/json")])
        assert (r.status, json.loads(r.body)) == (413, message)


def test_size_message_for_fractional_limits(host):
    h = host(settings={"max_file_size": int(2.5 * MIB)})
    r = post_link(h.client(), h.token, "multipart", "z" * (int(2.5 * MIB) + 1))
    assert r.status_code == 413
    assert r.json["error"] == "File exceeds your upload size limit of 2.5 MB"


@FORMS
def test_large_text_streams_through(client, runtime, uploader_token, form):
    unit = "line of text \u00e9\u2603 & = + %25 \r\n"
    text = (unit * (3 * MIB // len(unit.encode()) + 1)).encode()[:3 * MIB]
    text = text.decode("utf-8", "ignore").encode()  # whole characters only
    body, ctype = link_body(form, text)
    # a chunked body in odd-sized pieces, so escapes and characters are cut
    chunks = [body[i:i + 65_537] for i in range(0, len(body), 65_537)]
    r = call(client.app, "POST", "/upload", body=chunks, chunked=True,
             headers=[("Authorization", uploader_token), ("Content-Type", ctype)])
    assert r.status == 200, r.body
    item_id = json.loads(r.body)["ID"]
    assert item_id.endswith(".txt")
    got = client.simulate_get("/" + item_id)
    assert got.headers["Content-Length"] == str(len(text))
    assert got.content == text
    (row,) = rows(runtime)
    assert (row["kind"], row["size"]) == ("text", len(text))


@FORMS
@pytest.mark.parametrize("value", [b"\xff\xfe", b"caf\xe9", b"ok" * 10_000 + b"\xc3",
                                   b"x" * 10_000 + b"\x80" + b"y" * 10])
def test_non_utf8_text_is_a_400(client, runtime, uploader_token, form, value):
    r = post_link(client, uploader_token, form, value)
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/json"
    assert r.json["ok"] is False and "UTF-8" in r.json["error"]
    assert nothing_stored(runtime)
    assert counter(client) == 0


# --- file and link together (U5) ----------------------------------------------


@pytest.mark.parametrize("link", ["https://example.com/ignored", "some ignored text",
                                  "ignored " * 5_000])
@pytest.mark.parametrize("link_first", [True, False])
def test_file_wins_over_link(client, runtime, uploader_token, link, link_first):
    parts = [("link", None, None, link.encode()), ("file", "a.txt", "text/plain", b"the file")]
    body, ctype = multipart(parts if link_first else parts[::-1])
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert r.status_code == 200, r.text
    assert r.json["ID"].endswith(".txt")
    assert client.simulate_get("/" + r.json["ID"]).content == b"the file"
    # nothing is left of the link: one item, one object, no partial write
    (row,) = rows(runtime)
    assert (row["kind"], row["name"], row["link"]) == ("file", "a.txt", None)
    assert len(list(runtime.storage.keys())) == 1
    assert os.listdir(runtime.storage.tmp_dir) == []
    assert counter(client) == 1


def test_file_wins_even_when_the_link_could_not_be_text(host):
    """A big ``link`` value that this account could not store as text (type
    not allowed, or over the size limit) does not stop the file that wins."""
    h = host(settings={"allowed_types": ["image/*"], "max_file_size": 30_000})
    png = png_bytes()
    for link in ("t" * 20_000, "t" * 30_001, "\xff" * 10):
        body, ctype = multipart([("link", None, None, link.encode("latin-1")),
                                 ("file", "a.png", "image/png", png)])
        r = h.client().simulate_post("/upload", body=body,
                                     headers={"Content-Type": ctype, "Authorization": h.token})
        assert r.status_code == 200, r.text
        assert h.client().simulate_get("/" + r.json["ID"]).content == png
    assert len(list(h.runtime.storage.keys())) == 3
    assert os.listdir(h.runtime.storage.tmp_dir) == []


# --- a body with no usable link ---------------------------------------------


@pytest.mark.parametrize(("ctype", "body"), [
    ("application/x-www-form-urlencoded", b""),
    ("application/x-www-form-urlencoded", b"url=https://example.com"),
    ("application/x-www-form-urlencoded", b"link="),
    ("application/x-www-form-urlencoded", b"link"),
    ("application/x-www-form-urlencoded", b"link&other=1"),
    ("application/x-www-form-urlencoded", b"links=https://example.com&Link=x"),
    ("application/x-www-form-urlencoded; charset=utf-8", b"other=1&link=&link=later"),
    ("text/plain", b"link=https://example.com"),
    ("text/plain", b"https://example.com"),
    ("application/octet-stream", b"link=hello"),
    (None, b"link=hello"),
])
def test_body_is_missing_link_property(client, runtime, uploader_token, ctype, body):
    headers = {"Authorization": uploader_token}
    if ctype is not None:
        headers["Content-Type"] = ctype
    r = client.simulate_post("/upload", body=body, headers=headers)
    assert (r.status_code, r.json) == (400, MISSING_LINK)
    assert nothing_stored(runtime)


def test_first_link_value_is_used(client, uploader_token):
    r = client.simulate_post("/upload", body=b"a=1&link=first&link=https://example.com/second",
                             headers={"Authorization": uploader_token,
                                      "Content-Type": "application/x-www-form-urlencoded"})
    assert client.simulate_get("/" + r.json["ID"]).content == b"first"
    body, ctype = multipart([("link", None, None, b"https://example.com/first"),
                             ("link", None, None, b"second")])
    r = client.simulate_post("/upload", body=body,
                             headers={"Authorization": uploader_token, "Content-Type": ctype})
    assert client.simulate_get("/" + r.json["ID"]).headers["Location"] == (
        "https://example.com/first")


def test_urlencoded_plus_and_escapes(client, uploader_token):
    body = urlencode({"x": "y", "link": "a+b c&d=e%f"}).encode()
    assert b"+" in body
    r = client.simulate_post("/upload", body=body, headers={
        "Authorization": uploader_token, "Content-Type": "application/x-www-form-urlencoded"})
    assert client.simulate_get("/" + r.json["ID"]).content == b"a+b c&d=e%f"


@pytest.mark.parametrize("parts", [
    [],
    [("comment", None, None, b"hi")],
    [("link", None, None, b"")],
    [("url", None, None, b"https://example.com")],
    [("file", "", "application/octet-stream", b""), ("link", None, None, b"")],
])
def test_multipart_with_neither(client, runtime, uploader_token, parts):
    body, ctype = multipart(parts)
    r = client.simulate_post("/upload", body=body,
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert (r.status_code, r.json) == (400, NO_FILE)
    assert nothing_stored(runtime)
