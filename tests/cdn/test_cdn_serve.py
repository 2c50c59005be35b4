"""Public serving (section 8): ``/:id/*filename`` in direct and redirect mode,
the CORS preflight, ``/rescue`` and ``/up``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from xml.etree import ElementTree

import falcon.testing
import pytest
from cdnkit import CdnHost, path_of, upload

from hepcore import Account, Runtime
from hepcore.errors import QuotaExceeded
from hepcore.testing import FakeClock
from hepcore_cdn.service import CdnService

CACHE = "max-age=31536000, public"
RANDOM_ID = "0190f1a2-b3c4-7d5e-8f90-a1b2c3d4e5f6"


def test_direct_mode_headers(client: falcon.testing.TestClient, auth: dict[str, str]) -> None:
    data = bytes(range(256)) * 10
    item = upload(client, auth, "blob data.bin", data).json
    r = client.simulate_get(path_of(item["url"]))
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Cache-Control"] == CACHE
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Content-Disposition"] == 'inline; filename="blob data.bin"'
    assert r.headers["ETag"] == f'"{item["id"]}"'  # the id names bytes that never change
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in r.headers


def test_ranges_head_and_conditional_get(client: falcon.testing.TestClient,
                                         auth: dict[str, str]) -> None:
    data = b"0123456789" * 100
    path = path_of(upload(client, auth, "digits.txt", data).json["url"])
    r = client.simulate_get(path, headers={"Range": "bytes=10-19"})
    assert (r.status_code, r.content) == (206, b"0123456789")
    assert r.headers["Content-Range"] == "bytes 10-19/1000"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = client.simulate_get(path, headers={"Range": "bytes=-3"})
    assert (r.status_code, r.content) == (206, b"789")
    r = client.simulate_get(path, headers={"Range": "bytes=5000-"})
    assert (r.status_code, r.headers["Content-Range"]) == (416, "bytes */1000")
    head = client.simulate_head(path)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == "1000"
    assert head.headers["Content-Type"] == "text/plain; charset=utf-8"
    etag = head.headers["ETag"]
    r = client.simulate_get(path, headers={"If-None-Match": etag})
    assert (r.status_code, r.content) == (304, b"")


def test_a_stored_type_that_cannot_be_a_header_is_served_as_bytes(
        client: falcon.testing.TestClient, runtime: Runtime, auth: dict[str, str]) -> None:
    """Rows kept before declared types were checked still serve, never a 500."""
    reply = upload(client, auth, "a.txt", b"hello").json
    runtime.db.write_one("UPDATE cdn_uploads SET content_type = ? WHERE id = ?",
                         ('text/plain; a="x\r\nSet-Cookie: a=b"', reply["id"]))
    r = client.simulate_get(path_of(reply["url"]))
    assert (r.status_code, r.content) == (200, b"hello")
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert "Set-Cookie" not in r.headers


def test_a_suffix_range_of_an_empty_file_sends_it_whole(client: falcon.testing.TestClient,
                                                       auth: dict[str, str]) -> None:
    """Found by the schema fuzzer: ``bytes=-N`` on an empty file was a 206 with
    ``Content-Range: bytes 0--1/0``. There is nothing to cut, so it is a 200."""
    path = path_of(upload(client, auth, "empty.txt", b"").json["url"])
    r = client.simulate_get(path, headers={"Range": "bytes=-1421"})
    assert (r.status_code, r.content) == (200, b"")
    assert r.headers["Content-Length"] == "0"
    assert "Content-Range" not in r.headers
    r = client.simulate_get(path, headers={"Range": "bytes=0-"})
    assert (r.status_code, r.headers["Content-Range"]) == (416, "bytes */0")


@pytest.mark.parametrize(("spec", "status", "content_range", "body"), [
    ("bytes=" + "9" * 5000 + "-", 416, "bytes */10", b""),
    ("bytes=-" + "9" * 5000, 206, "bytes 0-9/10", b"0123456789"),
    ("bytes=3-" + "9" * 5000, 206, "bytes 3-9/10", b"3456789"),
])
def test_range_numbers_past_the_int_digit_limit(client: falcon.testing.TestClient,
                                                auth: dict[str, str], spec: str, status: int,
                                                content_range: str, body: bytes) -> None:
    """Found while checking that finding: a number of more than 4300 digits was
    a 500. It is past any size, and answered as such."""
    path = path_of(upload(client, auth, "digits.txt", b"0123456789").json["url"])
    r = client.simulate_get(path, headers={"Range": spec})
    assert (r.status_code, r.headers["Content-Range"], r.content) == (status, content_range,
                                                                       body)


def test_the_filename_segment_is_ignored(client: falcon.testing.TestClient,
                                         auth: dict[str, str]) -> None:
    item = upload(client, auth, "real.txt", b"abc").json
    for name in ("other.png", "x", "a/b/c.txt", "%2F..%2F..", "real.txt/"):
        r = client.simulate_get(f"/{item['id']}/{name}")
        assert (r.status_code, r.content) == (200, b"abc"), name
    assert client.simulate_options(f"/{item['id']}/a/b").status_code == 204


@pytest.mark.parametrize("path", [
    "/" + RANDOM_ID.upper() + "/x.png", "/" + RANDOM_ID + "/", "/" + RANDOM_ID, "/nope/x.png",
    "/0190f1a2b3c47d5e8f90a1b2c3d4e5f6/x.png", "/", "/favicon.ico", "/x/y/z",
])
def test_malformed_paths_are_empty_404s(client: falcon.testing.TestClient, path: str) -> None:
    r = client.simulate_get(path)
    assert (r.status_code, r.content) == (404, b"")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_an_empty_filename_is_an_empty_404(client: falcon.testing.TestClient,
                                           auth: dict[str, str]) -> None:
    """8.1: a non-empty filename must follow the id; slashes alone are none, for
    an upload that exists too, and the preflight answers them as ``/<id>/``."""
    item = upload(client, auth, "real.txt", b"abc").json
    for tail in ("/", "//", "///"):
        path = f"/{item['id']}{tail}"
        for method in ("GET", "HEAD", "OPTIONS"):
            r = client.simulate_request(method, path)
            assert (r.status_code, r.content) == (404, b""), (method, path)
            assert "Access-Control-Allow-Origin" not in r.headers, (method, path)
    assert client.simulate_get(f"/{item['id']}//real.txt").content == b"abc"


def test_an_id_with_a_trailing_newline_is_malformed(client: falcon.testing.TestClient,
                                                    auth: dict[str, str]) -> None:
    """A malformed id is a plain 404, without the CORS header of a missing one."""
    item = upload(client, auth, "real.txt", b"abc").json
    for method in ("GET", "OPTIONS"):
        r = client.simulate_request(method, f"/{item['id']}%0A/real.txt")
        assert (r.status_code, r.content) == (404, b""), method
        assert "Access-Control-Allow-Origin" not in r.headers, method


def test_other_methods_on_file_paths(client: falcon.testing.TestClient,
                                     auth: dict[str, str]) -> None:
    item = upload(client, auth, "a.txt", b"x").json
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in (path_of(item["url"]), path_of(item["url"]) + "/deeper", "/up", "/rescue"):
            r = client.simulate_request(method, path, headers=auth)
            assert (r.status_code, r.content) == (404, b""), (method, path)
    assert client.simulate_get(path_of(item["url"])).content == b"x"


def test_unknown_id_is_an_empty_404_with_cors(client: falcon.testing.TestClient) -> None:
    for method in ("GET", "HEAD"):
        r = client.simulate_request(method, f"/{RANDOM_ID}/test.png")
        assert (r.status_code, r.content) == (404, b"")
        assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_active_types_are_sandboxed(client: falcon.testing.TestClient,
                                    auth: dict[str, str]) -> None:
    for name, data in [("page.html", b"<!doctype html><script>alert(1)</script>"),
                       ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
                       ("x.js", b"alert(1)")]:
        r = client.simulate_get(path_of(upload(client, auth, name, data).json["url"]))
        assert r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox", name
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_hostile_display_names_in_headers(client: falcon.testing.TestClient, runtime: Runtime,
                                          auth: dict[str, str]) -> None:
    item = upload(client, auth, "a.txt", b"x").json
    r = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename",
                              json={"filename": 'é "quoted"\r\nX-Evil: 1.txt'}, headers=auth)
    assert r.json["filename"] == "é -quoted---X-Evil- 1.txt"
    got = client.simulate_get(path_of(r.json["url"]))
    assert got.headers["Content-Disposition"] == (
        "inline; filename=\"_ -quoted---X-Evil- 1.txt\"; filename*=UTF-8''"
        "%C3%A9%20-quoted---X-Evil-%201.txt")
    assert "X-Evil" not in got.headers


def test_redirect_mode(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(options={"storage_public_base_url": "https://cdn.hackclub-assets.com/"})
    client = host.client()
    item = upload(client, host.auth, "photo (1).jpg", b"\xff\xd8\xffjpeg").json
    for method in ("GET", "HEAD"):
        r = client.simulate_request(method, path_of(item["url"]))
        assert (r.status_code, r.content) == (302, b"")
        assert r.headers["Location"] == \
            f"https://cdn.hackclub-assets.com/cdn/{item['id']}/photo__1_.jpg"
        assert r.headers["Cache-Control"] == CACHE
        assert r.headers["Access-Control-Allow-Origin"] == "*"
    renamed = client.simulate_patch(f"/api/v4/uploads/{item['id']}/rename",
                                    json={"filename": "new"}, headers=host.auth).json
    r = client.simulate_get(path_of(renamed["url"]))
    assert r.headers["Location"].endswith(f"/cdn/{item['id']}/photo__1_.jpg")


def test_redirect_mode_from_the_storage_backend(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(storage_options={"public_base_url": "https://files.example.org"})
    item = upload(host.client(), host.auth, "a.txt", b"x").json
    r = host.client().simulate_get(path_of(item["url"]))
    assert r.status_code == 302
    assert r.headers["Location"] == f"https://files.example.org/cdn/{item['id']}/a.txt"


# --- OPTIONS --------------------------------------------------------------------


def test_preflight(client: falcon.testing.TestClient) -> None:
    r = client.simulate_options(f"/{uuid.uuid4()}/test.png", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range, x-accept-encoding"})
    assert (r.status_code, r.content) == (204, b"")
    assert "Content-Length" not in r.headers  # RFC 9110 8.6; gunicorn would drop it, uvicorn not
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Headers"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert r.headers["Access-Control-Max-Age"] == "86400"
    r = client.simulate_options("/not-an-id/test.png")
    assert (r.status_code, r.content) == (404, b"")


# --- /rescue -------------------------------------------------------------------


def rescued(runtime: Runtime, account: Account, original_url: str, name: str = "a.png") -> str:
    service: CdnService = runtime.services["cdn"]  # type: ignore[assignment]
    writer = runtime.storage.writer()
    writer.write(b"\x89PNG\r\n\x1a\nfake")
    upload_ = service.store(writer, account, filename=name, content_type="image/png",
                            total=10**9, original_url=original_url)
    return upload_.id


def test_rescue_found(client: falcon.testing.TestClient, runtime: Runtime,
                      account: Account) -> None:
    url = "https://cloud-abc.hackclub.com/old pic.png?x=1"
    upload_id = rescued(runtime, account, url, "old pic.png")
    r = client.simulate_get("/rescue", query_string="url=" + _q(url))
    assert (r.status_code, r.content) == (302, b"")
    assert r.headers["Location"] == f"http://falconframework.org/{upload_id}/old%20pic.png"
    assert r.headers["Cache-Control"] == "max-age=604800, public"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = client.simulate_get("/rescue", query_string="url=" + _q(url.upper()))
    assert r.status_code == 404  # an exact match only


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@pytest.mark.parametrize("url", ["https://x/a.png", "https://x/a.JPG", "https://x/a.jpeg",
                                 "http://x/a.b.PnG"])
def test_rescue_placeholder(client: falcon.testing.TestClient, url: str) -> None:
    r = client.simulate_get("/rescue", query_string="url=" + _q(url))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/svg+xml"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    svg = ElementTree.fromstring(r.content)
    assert (svg.get("width"), svg.get("height")) == ("800", "400")
    assert svg.find("{http://www.w3.org/2000/svg}rect").get("fill") == "#FBECED"
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["404", "Original URL not found in CDN",
                     "This file hasn't been uploaded or rescued yet.",
                     "Try uploading it at falconframework.org"]


@pytest.mark.parametrize("url", ["https://x/a.gif", "https://x/a.png?x=1", "https://x/a.pngx",
                                 "https://x/png", "https://x/a.png/"])
def test_rescue_not_found(client: falcon.testing.TestClient, url: str) -> None:
    r = client.simulate_get("/rescue", query_string="url=" + _q(url))
    assert (r.status_code, r.content) == (404, b"")
    assert r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("query", ["", "url=", "url=%20%20", "other=1"])
def test_rescue_without_url(client: falcon.testing.TestClient, query: str) -> None:
    r = client.simulate_get("/rescue", query_string=query)
    assert (r.status_code, r.content) == (400, b"")
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_rescue_placeholder_escapes_the_host(runtime: Runtime, app_kind: str) -> None:
    from httpkit import call

    from hepcore.web import create_app

    app = create_app(runtime, asgi=app_kind == "asgi")
    r = call(app, "GET", "/rescue", query="url=x.png", host="a_b.example:8080")
    assert b"a_b.example:8080" in r.body
    # A Host with markup never gets this far: it is not a host (400).
    r = call(app, "GET", "/rescue", query="url=x.png", host="a<b>&c")
    assert (r.status, r.body) == (400, b'{"error":"Invalid Host header"}')


def test_rescue_finds_the_first_upload(client: falcon.testing.TestClient, runtime: Runtime,
                                       account: Account, clock: FakeClock) -> None:
    first = rescued(runtime, account, "https://x/dup.png")
    clock.advance(5)
    rescued(runtime, account, "https://x/dup.png")
    r = client.simulate_get("/rescue", query_string="url=https://x/dup.png")
    assert r.headers["Location"].split("/")[-2] == first


def test_up(client: falcon.testing.TestClient) -> None:
    r = client.simulate_get("/up")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def test_store_refuses_over_quota(runtime: Runtime, account: Account) -> None:
    service: CdnService = runtime.services["cdn"]  # type: ignore[assignment]
    writer = runtime.storage.writer()
    writer.write(b"12345")
    with pytest.raises(QuotaExceeded):
        service.store(writer, account, filename="a", content_type="x/y", total=4)
    assert list(runtime.storage.keys("cdn/")) == []


@pytest.mark.parametrize(("name", "segment"), [(".", "%2E"), ("..", "%2E%2E")])
def test_dot_names_get_a_url_that_survives_clients(client: falcon.testing.TestClient,
                                                   auth: dict[str, str], name: str,
                                                   segment: str) -> None:
    """A client resolves ``.``/``..`` segments (RFC 3986 5.2.4) before sending;
    the encoded dots are not dot segments, so the URL still names the file."""
    from urllib3.util import parse_url

    item = upload(client, auth, name, b"dots").json
    assert item["filename"] == name
    assert item["url"].endswith(f"/{item['id']}/{segment}")
    path = parse_url(item["url"]).path  # what requests/urllib3 would send
    assert path == f"/{item['id']}/{segment}"
    r = client.simulate_get(path)
    assert (r.status_code, r.content) == (200, b"dots")
    assert r.headers["Content-Disposition"] == f'inline; filename="{name}"'
