"""``POST /api/v4/upload_from_url`` (6.3) and the URL fetch safety model (section 7),
against real origins on 127.0.0.1 (allow-listed) and, for the upstream tests
that stub the fetch, a stub fetcher."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Self
from urllib.parse import urlencode

import falcon.testing
import pytest
from cdnkit import UUID7_RE, CdnHost, Origin, path_of, rows, stored_files, usage

from hepcore import Account, Runtime
from hepcore.outbound import Fetcher, FetchError, OutboundPolicy
from hepcore.testing import FakeClock

ROUTE = "/api/v4/upload_from_url"


def from_url(client: falcon.testing.TestClient, auth: dict[str, str], url: str,
             **headers: str) -> falcon.testing.Result:
    return client.simulate_post(ROUTE, json={"url": url}, headers={**auth, **headers})


def failed(r: falcon.testing.Result, reason: str) -> None:
    assert (r.status_code, r.json) == (422, {"error": f"Upload failed: {reason}"})


# --- upstream's tests, fetch stubbed ----------------------------------------------


class StubResponse:
    def __init__(self, body: bytes, content_type: str) -> None:
        self.status = 200
        self.headers = {"content-type": content_type}
        self._body = body

    def iter_body(self, limit: int, chunk_size: int = 65536) -> Iterator[bytes]:
        yield self._body

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class StubFetcher:
    def __init__(self, body: bytes = b"", content_type: str = "",
                 error: Exception | None = None) -> None:
        self.body, self.content_type, self.error = body, content_type, error
        self.calls: list[tuple[str, str, Mapping[str, str] | None]] = []

    def open(self, method: str, url: str, *, origin_headers: Mapping[str, str] | None = None,
             **kwargs: Any) -> StubResponse:
        self.calls.append((method, url, origin_headers))
        if self.error is not None:
            raise self.error
        return StubResponse(self.body, self.content_type)


def test_stubbed_fetch_stores_the_file(client: falcon.testing.TestClient, runtime: Runtime,
                                       account: Account, auth: dict[str, str]) -> None:
    stub = StubFetcher(b"fake image data", "image/jpeg")
    runtime.fetcher = stub  # type: ignore[assignment]
    r = client.simulate_post(ROUTE, json={"url": "https://example.com/test.jpg"}, headers=auth)
    assert r.status_code == 201
    assert r.json["id"] and r.json["url"]
    assert r.json["filename"] == "test.jpg"
    assert r.json["content_type"] == "image/jpeg"
    assert r.json["size"] == len(b"fake image data")
    assert len(rows(runtime, account.id)) == 1
    assert rows(runtime)[0]["original_url"] == "https://example.com/test.jpg"
    assert stub.calls == [("GET", "https://example.com/test.jpg", None)]


@pytest.mark.parametrize("body", [{}, {"url": ""}, {"url": "   "}, {"url": None}])
def test_missing_url(client: falcon.testing.TestClient, runtime: Runtime,
                     auth: dict[str, str], body: dict) -> None:
    runtime.fetcher = StubFetcher()  # type: ignore[assignment]
    r = client.simulate_post(ROUTE, json=body, headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "Missing url parameter"})
    assert rows(runtime) == []


@pytest.mark.parametrize("error", [RuntimeError("Network error"), FetchError("Network error")])
def test_network_error(client: falcon.testing.TestClient, runtime: Runtime,
                       auth: dict[str, str], error: Exception) -> None:
    runtime.fetcher = StubFetcher(error=error)  # type: ignore[assignment]
    r = client.simulate_post(ROUTE, json={"url": "https://example.com/test.jpg"}, headers=auth)
    assert r.status_code == 422
    assert "Upload failed" in r.json["error"]
    assert rows(runtime) == [] and stored_files(runtime) == []


# --- a real origin ---------------------------------------------------------------


def test_fetches_from_a_real_origin(client: falcon.testing.TestClient, runtime: Runtime,
                                    account: Account, auth: dict[str, str],
                                    origin: Origin) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    url = origin.reply("/images/pic.png", data, headers=[("Content-Type", "image/png")])
    r = from_url(client, auth, url + "?size=large")
    assert r.status_code == 201, r.text
    body = r.json
    assert list(body) == ["id", "filename", "size", "content_type", "url", "created_at"]
    assert body["filename"] == "pic.png"
    assert (body["size"], body["content_type"]) == (len(data), "image/png")
    assert client.simulate_get(path_of(body["url"])).content == data
    assert usage(runtime, account.id) == (len(data), 1)
    assert rows(runtime)[0]["original_url"] == url + "?size=large"
    (seen,) = origin.seen
    assert (seen.method, seen.path) == ("GET", "/images/pic.png?size=large")
    assert "authorization" not in seen.headers
    assert seen.headers["user-agent"] == "hepcore"
    import re
    assert re.fullmatch(UUID7_RE, body["id"])


def test_then_rescue_finds_it(client: falcon.testing.TestClient, auth: dict[str, str],
                              origin: Origin) -> None:
    url = origin.reply("/old.png", b"\x89PNG\r\n\x1a\n")
    item = from_url(client, auth, url).json
    r = client.simulate_get("/rescue", query_string=urlencode({"url": url}))
    assert (r.status_code, r.headers["Location"]) == (302, item["url"])


@pytest.mark.parametrize(("path", "name"), [
    ("", "download"), ("/", "-"), ("//", "-"), ("/dir/", "dir"), ("/a%20b.png", "a-20b.png"),
    ("/x/file name?.txt", "file name"), ("/q.txt?name=z.png", "q.txt"),
])
def test_filename_from_the_url(client: falcon.testing.TestClient, auth: dict[str, str],
                               origin: Origin, path: str, name: str) -> None:
    for route in ("/", "/dir/", "/a%20b.png", "/x/file%20name", "/q.txt"):
        origin.reply(route, b"content")
    r = from_url(client, auth, origin.url + path)
    assert r.status_code == 201, r.text
    assert r.json["filename"] == name


@pytest.mark.parametrize(("body", "remote", "expected"), [
    (b"\x00\x01\x02", "application/x-thing", "application/x-thing"),
    (b"\x00\x01\x02", "", "application/octet-stream"),
    (b"plain text", "text/plain", "text/plain; charset=utf-8"),
    (b"\x89PNG\r\n\x1a\n", "text/html", "image/png"),
    (b"a,b\n1,2\n", "text/csv; charset=ISO-8859-1", "text/csv; charset=iso-8859-1"),
])
def test_remote_type_is_the_fallback(client: falcon.testing.TestClient, auth: dict[str, str],
                                     origin: Origin, body: bytes, remote: str,
                                     expected: str) -> None:
    url = origin.reply("/blob", body, headers=[("Content-Type", remote)] if remote else [])
    r = from_url(client, auth, url)
    assert r.status_code == 201, r.text
    assert r.json["content_type"] == expected


def test_url_parameter_sources(client: falcon.testing.TestClient, auth: dict[str, str],
                               origin: Origin) -> None:
    good = origin.reply("/good.txt", b"good")
    r = client.simulate_post(ROUTE, query_string=urlencode({"url": good}), headers=auth)
    assert (r.status_code, r.json["filename"]) == (201, "good.txt")
    r = client.simulate_post(ROUTE, body=urlencode({"url": good}),
                             headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201
    r = client.simulate_post(ROUTE, query_string=urlencode({"url": origin.url + "/missing"}),
                             json={"url": good}, headers=auth)
    assert r.status_code == 201  # the body wins over the query
    r = client.simulate_post(ROUTE, body=b'{"url": ', headers={**auth,
                                                               "Content-Type": "application/json"})
    assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"})
    r = client.simulate_post(ROUTE, json={"url": ["x"]}, headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "url must be a string"})


def test_a_headers_only_field_does_not_swallow_the_url(
        client: falcon.testing.TestClient, auth: dict[str, str], origin: Origin) -> None:
    """Found by the schema fuzzer (in the batch route; the fields share the
    parser): a field that ends after its headers (RFC 2046; werkzeug writes empty
    fields so) took the next part, here ``url``, as its value. Refused instead."""
    good = origin.reply("/good.txt", b"good")
    body = (b'\r\n--b\r\nContent-Disposition: form-data; name="note"\r\n'
            b'\r\n--b\r\nContent-Disposition: form-data; name="url"\r\n\r\n'
            + good.encode() + b"\r\n--b--\r\n")
    r = client.simulate_post(ROUTE, body=body,
                             headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json) == (400, {"error": "Malformed request body"})
    assert origin.seen == []
    body = (b'\r\n--b\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
            b'\r\n--b\r\nContent-Disposition: form-data; name="url"\r\n\r\n'
            + good.encode() + b"\r\n--b--\r\n")
    r = client.simulate_post(ROUTE, body=body,  # an empty field with its blank line is fine
                             headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json["filename"]) == (201, "good.txt")


def test_download_authorization_goes_to_the_origin_only(
        client: falcon.testing.TestClient, auth: dict[str, str], origin: Origin) -> None:
    origin.reply("/secret.txt", b"secret")
    origin.reply("/hop", status=302, headers=[("Location", "/secret.txt")])
    r = from_url(client, auth, origin.url + "/hop",
                 **{"X-Download-Authorization": "Bearer source_token_here"})
    assert r.status_code == 201, r.text
    assert [s.headers.get("authorization") for s in origin.seen] == \
        ["Bearer source_token_here"] * 2
    assert all("x-download-authorization" not in s.headers for s in origin.seen)
    with Origin() as other:
        other.reply("/elsewhere.txt", b"elsewhere")
        origin.reply("/away", status=301, headers=[("Location", other.url + "/elsewhere.txt")])
        r = from_url(client, auth, origin.url + "/away", **{"X-Download-Authorization": "Bearer source_token_here"})
        assert r.status_code == 201, r.text
        assert r.json["filename"] == "away"
        assert origin.seen[-1].headers.get("authorization") == "Bearer source_token_here"
        assert "authorization" not in other.seen[-1].headers


def test_authorization_is_never_resent_after_a_cross_origin_hop(
        client: falcon.testing.TestClient, auth: dict[str, str], origin: Origin) -> None:
    with Origin() as other:
        origin.reply("/final.txt", b"final")
        other.reply("/bounce", status=307, headers=[("Location", origin.url + "/final.txt")])
        origin.reply("/start", status=302, headers=[("Location", other.url + "/bounce")])
        r = from_url(client, auth, origin.url + "/start",
                     **{"X-Download-Authorization": "Token abc"})
        assert r.status_code == 201, r.text
        assert [s.headers.get("authorization") for s in origin.seen] == ["Token abc", None]
        assert "authorization" not in other.seen[0].headers


def test_fetch_failures(client: falcon.testing.TestClient, auth: dict[str, str],
                        origin: Origin, runtime: Runtime) -> None:
    origin.reply("/gone", b"nope", status=404)
    failed(from_url(client, auth, origin.url + "/gone"), "Failed to download: 404")
    origin.reply("/boom", b"", status=500)
    failed(from_url(client, auth, origin.url + "/boom"), "Failed to download: 500")
    origin.reply("/nowhere", status=302)
    failed(from_url(client, auth, origin.url + "/nowhere"),
           "Failed to download: redirect without a location")
    for i in range(7):
        origin.reply(f"/loop{i}", status=302, headers=[("Location", f"/loop{i + 1}")])
    origin.reply("/loop7", b"end")
    failed(from_url(client, auth, origin.url + "/loop1"), "Failed to download: too many redirects")
    r = from_url(client, auth, origin.url + "/loop2")  # exactly 5 redirects
    assert r.status_code == 201, r.text
    origin.reply("/tojs", status=302, headers=[("Location", "javascript:alert(1)")])
    failed(from_url(client, auth, origin.url + "/tojs"), "URL scheme must be http or https.")
    failed(from_url(client, auth, "not a url"), "Invalid URL")
    failed(from_url(client, auth, "/relative/path.png"), "Invalid URL")
    failed(from_url(client, auth, "ftp://127.0.0.1/x"), "URL scheme must be http or https.")
    failed(from_url(client, auth, "file:///etc/passwd"), "URL scheme must be http or https.")
    failed(from_url(client, auth, "http:///x.png"), "Invalid host")
    assert len(rows(runtime)) == 1
    assert len(stored_files(runtime)) == 1


def test_connection_failures_and_timeouts(cdn_host: Callable[..., CdnHost],
                                          origin: Origin) -> None:
    host = cdn_host(outbound_read_timeout=0.3)
    client = host.client()
    closed = Origin()  # bound, never started: the port refuses nothing but never answers
    closed.server.server_close()
    failed(from_url(client, host.auth, closed.url + "/x"), "Failed to download: connection failed")

    def stall(wfile: Any) -> None:
        wfile.write(b"some")
        wfile.flush()
        time.sleep(1.5)

    origin.reply("/slow", stream=stall)
    failed(from_url(client, host.auth, origin.url + "/slow"), "Failed to download: timed out")

    def cut(wfile: Any) -> None:
        wfile.write(b"short")

    origin.reply("/cut", headers=[("Content-Length", "100")], stream=cut)
    failed(from_url(client, host.auth, origin.url + "/cut"),
           "Failed to download: connection failed")
    assert rows(host.runtime) == [] and stored_files(host.runtime) == []


def test_private_destinations_are_refused_without_the_allow_list(
        cdn_host: Callable[..., CdnHost], origin: Origin) -> None:
    host = cdn_host(outbound_allow=())
    client = host.client()
    origin.reply("/x.txt", b"x")
    for url in (origin.url + "/x.txt", f"http://localhost:{origin.port}/x.txt",
                "http://[::1]/x", "http://[::ffff:127.0.0.1]/x", "http://10.1.2.3/x",
                "http://169.254.169.254/latest/meta-data/", "http://[2002:7f00:1::]/x",
                "http://[64:ff9b::808:808]/x"):
        failed(from_url(client, host.auth, url), "IP address not allowed")
    failed(from_url(client, host.auth, "http://2130706433/x"), "IP address not allowed")
    assert origin.seen == []
    assert rows(host.runtime) == [] and stored_files(host.runtime) == []


def test_redirects_to_private_destinations_are_refused(
        cdn_host: Callable[..., CdnHost], origin: Origin) -> None:
    """A public host redirecting to a private one: every hop is checked."""
    host = cdn_host(outbound_allow=("public.test",))
    host.runtime.fetcher = Fetcher(  # type: ignore[misc]
        OutboundPolicy(allow=("public.test",)), resolver=lambda h, p: ["127.0.0.1"])
    origin.reply("/hop", status=302, headers=[("Location", f"http://127.0.0.1:{origin.port}/x")])
    origin.reply("/x", b"secret")
    failed(from_url(host.client(), host.auth, f"http://public.test:{origin.port}/hop"),
           "IP address not allowed")
    assert [s.path for s in origin.seen] == ["/hop"]


def test_resolution(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(outbound_allow=())
    client = host.client()
    host.runtime.fetcher = Fetcher(OutboundPolicy(), resolver=lambda h, p: [])  # type: ignore[misc]
    failed(from_url(client, host.auth, "http://nothing.test/x"), "Couldn't resolve host.")
    host.runtime.fetcher = Fetcher(  # type: ignore[misc]
        OutboundPolicy(), resolver=lambda h, p: ["93.184.216.34", "192.168.1.1"])
    failed(from_url(client, host.auth, "http://mixed.test/x"), "IP address not allowed")


# --- size caps and quota ---------------------------------------------------------


def test_cap_is_the_remaining_quota(cdn_host: Callable[..., CdnHost], origin: Origin) -> None:
    host = cdn_host(settings={"cdn_max_file_size": 1000, "cdn_storage_limit": 1500})
    client = host.client()
    assert from_url(client, host.auth, origin.reply("/a", b"a" * 1000)).status_code == 201
    failed(from_url(client, host.auth, origin.reply("/b", b"b" * 501)),
           "File too large: exceeds limit of 500 Bytes")

    def unannounced(wfile: Any) -> None:
        for _ in range(10):
            wfile.write(b"c" * 100)

    failed(from_url(client, host.auth, origin.reply("/c", stream=unannounced)),
           "File too large: exceeds limit of 500 Bytes")
    assert from_url(client, host.auth, origin.reply("/d", b"d" * 500)).status_code == 201
    failed(from_url(client, host.auth, origin.reply("/e", b"")),
           "File would exceed storage quota")
    assert usage(host.runtime, host.account.id) == (1500, 2)
    assert len(stored_files(host.runtime)) == 2


def test_cap_is_the_per_file_limit(client: falcon.testing.TestClient, auth: dict[str, str],
                                   origin: Origin, runtime: Runtime) -> None:
    big = b"\0" * (10 * 1024 * 1024 + 1)
    failed(from_url(client, auth, origin.reply("/big", big)),
           "File too large: exceeds limit of 10 MB")
    assert stored_files(runtime) == []


def test_gzip_is_counted_decoded(cdn_host: Callable[..., CdnHost], origin: Origin) -> None:
    import gzip

    host = cdn_host(settings={"cdn_max_file_size": 1000})
    packed = gzip.compress(b"z" * 5000)
    url = origin.reply("/z.txt", packed, headers=[("Content-Encoding", "gzip")])
    failed(from_url(host.client(), host.auth, url), "File too large: exceeds limit of 1000 Bytes")
    url = origin.reply("/small.txt", gzip.compress(b"y" * 900),
                       headers=[("Content-Encoding", "gzip")])
    r = from_url(host.client(), host.auth, url)
    assert (r.status_code, r.json["size"]) == (201, 900)


def test_concurrent_uploads_during_the_fetch(cdn_host: Callable[..., CdnHost],
                                             origin: Origin) -> None:
    host = cdn_host(settings={"cdn_storage_limit": 1000})

    def meanwhile(wfile: Any) -> None:
        host.runtime.quotas.charge(f"cdn:{host.account.id}", 700)  # another upload lands
        wfile.write(b"x" * 400)

    r = from_url(host.client(), host.auth, origin.reply("/x", stream=meanwhile))
    assert r.status_code == 402
    assert r.json == {"error": "Storage quota exceeded",
                      "quota": {"storage_used": 700, "storage_limit": 1000,
                                "quota_tier": "unverified", "percentage_used": 70.0}}
    assert rows(host.runtime) == [] and stored_files(host.runtime) == []


# --- rate limit -------------------------------------------------------------------


def test_rate_limit_per_key(cdn_host: Callable[..., CdnHost], clock: FakeClock,
                            origin: Origin) -> None:
    from hepcore_cdn.keys import create_key

    host = cdn_host()
    client, runtime, account, auth = host.client(), host.runtime, host.account, host.auth
    url = origin.reply("/r.txt", b"r")
    for i in range(10):
        r = from_url(client, auth, url) if i % 2 else client.simulate_post(ROUTE, headers=auth)
        assert r.status_code in (201, 400)
    clock.advance(30)
    r = from_url(client, auth, url)
    assert (r.status_code, r.json) == (429, {"error": "Too many requests"})
    assert r.headers["Retry-After"] == "30"
    client.simulate_post(ROUTE, json={"url": url})  # no key: not counted, not limited
    second, _ = create_key(runtime, account.id, "second")
    assert from_url(client, {"Authorization": f"Bearer {second}"}, url).status_code == 201
    clock.advance(30)
    assert from_url(client, auth, url).status_code == 201
    assert len(rows(runtime)) == 7


# --- bodies that once gave a 500 or the wrong answer ---------------------------------


def test_deeply_nested_json_is_invalid_json(client: falcon.testing.TestClient,
                                            runtime: Runtime, auth: dict[str, str],
                                            origin: Origin) -> None:
    url = origin.reply("/deep.txt", b"deep").encode()
    json_auth = {**auth, "Content-Type": "application/json"}
    for body in (b"[" * 100_000, b'{"url": "' + url + b'", "x": ' + b"[" * 100_000 + b"}"):
        r = client.simulate_post(ROUTE, body=body, headers=json_auth)
        assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"})
    assert rows(runtime) == [] and origin.seen == []


@pytest.mark.parametrize("raw", ["/\\ud800", "/a.txt?q=x\\udfff"])
def test_a_url_with_a_lone_surrogate_is_an_invalid_url(
        client: falcon.testing.TestClient, runtime: Runtime, auth: dict[str, str],
        origin: Origin, raw: str) -> None:
    body = ('{"url": "' + origin.url + raw + '"}').encode()
    r = client.simulate_post(ROUTE, body=body,
                             headers={**auth, "Content-Type": "application/json"})
    failed(r, "Invalid URL")
    assert rows(runtime) == [] and stored_files(runtime) == [] and origin.seen == []
