"""The web layer: WSGI and ASGI answer alike, mounting by host and prefix,
embedding one service in your own Falcon app, and public URLs (G4, G7)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import falcon
import falcon.asgi
import falcon.testing
import pytest
from httpkit import RawResponse, call, multipart, png_bytes

from hepcore import (
    Config,
    ErrorEnvelope,
    Request,
    Response,
    Route,
    Runtime,
    Service,
    ServiceConfig,
    build_runtime,
    hookimpl,
)
from hepcore.testing import FakeClock
from hepcore.web import add_service, create_app

SLUG = re.compile(rb"(?<=[/\"])[A-Za-z0-9_-]{9}(?=[.\"])")
ENVELOPE_404 = {"ok": False, "error": "Not found"}


# --- a tiny second service, registered by a plugin object -------------------


class EchoService(Service):
    """Answers ``GET /ping`` (and has two buggy routes); errors as ``{"error": ...}``."""

    name = "echo"
    envelope = ErrorEnvelope()

    def routes(self) -> list[Route]:
        return [
            Route(("GET",), "/ping", self.ping, "ping"),
            Route(("POST",), "/boom", self.boom, "boom"),
            Route(("POST",), "/broken", self.broken, "broken"),
        ]

    def ping(self, request: Request) -> Response:
        return Response.json({"pong": True, "path": request.path,
                              "base": self.public_base(request)})

    def boom(self, request: Request) -> Response:
        raise RuntimeError("a bug in a handler")

    def broken(self, request: Request) -> Response:
        return None  # type: ignore[return-value]  # a plugin bug the shell trips over


class EchoPlugin:
    @hookimpl
    def hepcore_register_services(self, runtime: Runtime) -> list[Service]:
        return [EchoService(runtime, runtime.config.service("echo"))]


def build(tmp_path: Path, clock: FakeClock, *, trust_proxy: bool = False,
          uploader_base: str | None = None, plugins: tuple[object, ...] = ()) -> Runtime:
    config = Config(
        data_dir=tmp_path / "data", secrets=["s"], trust_proxy=trust_proxy,
        services={
            "uploader": ServiceConfig("uploader", prefix="/u", public_base_url=uploader_base),
            "echo": ServiceConfig("echo", prefix="/", hosts=["echo.test"]),
        },
    )
    return build_runtime(config, clock=clock, plugins=plugins)


@pytest.fixture
def mounted(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    runtime = build(tmp_path, clock, plugins=(EchoPlugin(),))
    yield runtime
    runtime.close()


def token_for(runtime: Runtime, name: str = "dana") -> str:
    account = runtime.accounts.create(name)
    return runtime.keys.create("uploader", account.id)[0]


def as_json(r: RawResponse) -> Any:
    assert r.header("Content-Type") == "application/json", r.headers
    return json.loads(r.body)


# --- WSGI and ASGI answer byte for byte the same ----------------------------


def normalise(r: RawResponse) -> tuple[int, list[tuple[str, str]], bytes]:
    """IDs are random: replace every 9-character slug in the body. ``Connection``
    is the server's (hop by hop): a WSGI app may not send it, and gunicorn
    writes its own; the ASGI app asks uvicorn to close after a refusal that
    leaves more than 256 MiB of a body unread, where gunicorn closes anyway."""
    headers = [(k, v) for k, v in r.headers if k.lower() != "connection"]
    return r.status, headers, SLUG.sub(b"<slug>", r.body)


def test_wsgi_and_asgi_answer_the_same(runtime: Runtime, uploader_token: str) -> None:
    wsgi, asgi = create_app(runtime), create_app(runtime, asgi=True)
    auth = ("Authorization", uploader_token)
    data = bytes(range(256)) * 64
    body, ctype = multipart([("file", "fixed.bin", "application/octet-stream", data)])
    png_body, png_ctype = multipart([("upload", "p", None, png_bytes())])
    html_body, html_ctype = multipart([("file", "a.html", "text/html", b"<p>hi</p>")])
    # the reads need items: upload them once
    item = json.loads(call(wsgi, "POST", "/upload", body=body,
                           headers=[auth, ("Content-Type", ctype)]).body)["ID"]
    html = json.loads(call(wsgi, "POST", "/upload", body=html_body,
                           headers=[auth, ("Content-Type", html_ctype)]).body)["ID"]
    link = json.loads(call(wsgi, "POST", "/upload", body=b"link=https%3A%2F%2Fexample.com%2F",
                           headers=[auth, ("Content-Type",
                                           "application/x-www-form-urlencoded")]).body)["ID"]
    etag = call(wsgi, "GET", "/" + item).header("ETag")
    requests: list[dict[str, Any]] = [
        {"method": "POST", "path": "/upload", "body": body, "headers": [auth, ("Content-Type", ctype)]},
        {"method": "POST", "path": "/upload", "body": png_body,
             "headers": [("Authorization", "Bearer " + uploader_token), ("Content-Type", png_ctype)]},
        {"method": "POST", "path": "/upload", "body": [body[:1000], body[1000:]], "chunked": True,
             "headers": [auth, ("Content-Type", ctype)]},
        {"method": "POST", "path": "/upload", "body": b"link=hello+there",
             "headers": [auth, ("Content-Type", "application/x-www-form-urlencoded")]},
        {"method": "POST", "path": "/upload", "body": body, "headers": [("Content-Type", ctype)]},
        {"method": "POST", "path": "/upload", "body": body,
             "headers": [("Authorization", "Basic xyz"), ("Content-Type", ctype)]},
        {"method": "POST", "path": "/upload", "body": b"--x\r\nbroken",
             "headers": [auth, ("Content-Type", "multipart/form-data; boundary=x")]},
        {"method": "POST", "path": "/upload", "body": body,
             "headers": [auth, ("Content-Type", ctype), ("Content-Length", "12x")]},
        {"method": "POST", "path": "/upload", "body": b"",
             "headers": [auth, ("Content-Type", ctype), ("Content-Length", str(2**40))]},
        {"method": "GET", "path": "/" + item},
        {"method": "GET", "path": "/" + item.split(".")[0], "query": "embed=raw"},
        {"method": "GET", "path": "/" + html},
        {"method": "HEAD", "path": "/" + item},
        {"method": "GET", "path": "/" + item, "headers": [("Range", "bytes=100-199")]},
        {"method": "GET", "path": "/" + item, "headers": [("Range", "bytes=-5")]},
        {"method": "GET", "path": "/" + item, "headers": [("Range", "bytes=999999-")]},
        {"method": "GET", "path": "/" + item, "headers": [("If-None-Match", etag)]},
        {"method": "GET", "path": "/" + link},
        {"method": "HEAD", "path": "/" + link},
        {"method": "GET", "path": "/no-such-item"},
        {"method": "GET", "path": "/deep/path/nothing"},
        {"method": "DELETE", "path": "/upload"},
        {"method": "PUT", "path": "/" + item, "body": b"x"},
        {"method": "GET", "path": "/upload"},
    ]
    for req in requests:
        method, path = req.pop("method"), req.pop("path")
        w = call(wsgi, method, path, **req)
        a = call(asgi, method, path, **req)
        assert normalise(w) == normalise(a), (method, path)
        assert w.status != 500, (method, path, w.body)


def test_large_file_reads_are_identical(runtime: Runtime, uploader_token: str) -> None:
    wsgi, asgi = create_app(runtime), create_app(runtime, asgi=True)
    data = bytes(i * 7 % 251 for i in range(3 * 1024 * 1024 + 17))
    body, ctype = multipart([("file", "big.bin", None, data)])
    r = call(asgi, "POST", "/upload", body=body,
             headers=[("Authorization", uploader_token), ("Content-Type", ctype)])
    item = json.loads(r.body)["ID"]
    w, a = call(wsgi, "GET", "/" + item), call(asgi, "GET", "/" + item)
    assert w == a
    assert a.body == data
    rng = [("Range", "bytes=1048570-2097160")]
    w, a = call(wsgi, "GET", "/" + item, headers=rng), call(asgi, "GET", "/" + item, headers=rng)
    assert w == a
    assert (a.status, a.body) == (206, data[1048570:2097161])


# --- mounting by host and prefix ---------------------------------------------


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_host_and_prefix_routing(mounted: Runtime, asgi: bool) -> None:
    app = create_app(mounted, asgi=asgi)
    token = token_for(mounted)
    # the echo service owns its host entirely
    for host in ("echo.test", "ECHO.test", "echo.test:8443"):
        r = call(app, "GET", "/ping", host=host)
        assert r.status == 200
        assert as_json(r)["pong"] is True
    r = call(app, "GET", "/u/upload", host="echo.test")
    assert (r.status, as_json(r)) == (404, {"error": "Not found"})
    # the uploader lives under /u on every other host
    body, ctype = multipart([("file", "a.txt", "text/plain", b"under /u")])
    r = call(app, "POST", "/u/upload", host="any.test", body=body,
             headers=[("Authorization", token), ("Content-Type", ctype)])
    assert r.status == 200
    item = as_json(r)["ID"]
    assert as_json(r)["url"] == f"http://any.test/u/{item}"
    assert call(app, "GET", f"/u/{item}", host="any.test").body == b"under /u"
    assert call(app, "GET", f"/u/{item}", host="echo.test").status == 404
    assert call(app, "GET", f"/{item}", host="any.test").status == 404


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_unrouted_paths_inside_a_mount_get_its_envelope(mounted: Runtime, asgi: bool) -> None:
    app = create_app(mounted, asgi=asgi)
    for path in ("/u/a/b", "/u/upload/more", "/u/x/y.png"):
        for method in ("GET", "POST", "DELETE"):
            r = call(app, method, path)
            assert (r.status, as_json(r)) == (404, ENVELOPE_404), (method, path)
    # the mount's root is the serving route's territory (GET /:ID): its HTML 404
    r = call(app, "GET", "/u")
    assert (r.status, r.header("Content-Type")) == (404, "text/html; charset=utf-8")
    r = call(app, "GET", "/nope/deeper", host="echo.test")
    assert (r.status, as_json(r)) == (404, {"error": "Not found"})


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_paths_outside_every_mount_get_a_json_404(mounted: Runtime, asgi: bool) -> None:
    app = create_app(mounted, asgi=asgi)
    for path in ("/", "/ping", "/upload", "/ux/upload"):
        r = call(app, "GET", path, host="other.test")
        assert r.status == 404, path
        assert as_json(r) == {"error": "Not found"}
        assert b"<html" not in r.body


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_wrong_method_gets_the_envelope_405(mounted: Runtime, asgi: bool) -> None:
    app = create_app(mounted, asgi=asgi)
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"):
        r = call(app, method, "/u/upload")
        assert r.status == 405, method
        assert as_json(r) == {"ok": False, "error": "Method not allowed"}
        assert r.header("Allow") == "POST"
    r = call(app, "POST", "/u/abcdefghi.png")
    assert (r.status, r.header("Allow")) == (405, "GET, HEAD")
    r = call(app, "DELETE", "/ping", host="echo.test")
    assert (r.status, as_json(r)) == (405, {"error": "Method not allowed"})
    assert r.header("Allow") == "GET, HEAD"
    assert call(app, "HEAD", "/ping", host="echo.test").status == 200


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_handler_bug_is_a_500_in_the_envelope(mounted: Runtime, asgi: bool) -> None:
    app = create_app(mounted, asgi=asgi)
    for path in ("/boom", "/broken"):
        r = call(app, "POST", path, host="echo.test")
        assert (r.status, as_json(r)) == (500, {"error": "Internal server error"}), path
        assert b"Traceback" not in r.body


def test_services_cannot_share_a_mount(tmp_path: Path, clock: FakeClock) -> None:
    config = Config(data_dir=tmp_path / "d", services={
        "uploader": ServiceConfig("uploader", prefix="/"),
        "echo": ServiceConfig("echo", prefix="/"),
    })
    runtime = build_runtime(config, clock=clock, plugins=[EchoPlugin()])
    try:
        with pytest.raises(ValueError, match="share the mount"):
            create_app(runtime)
    finally:
        runtime.close()


def test_disabled_service_is_not_mounted(tmp_path: Path, clock: FakeClock) -> None:
    config = Config(data_dir=tmp_path / "d", services={
        "uploader": ServiceConfig("uploader", prefix="/u", enabled=False),
        "echo": ServiceConfig("echo", prefix="/e"),
    })
    runtime = build_runtime(config, clock=clock, plugins=[EchoPlugin()])
    try:
        app = create_app(runtime)
        assert as_json(call(app, "GET", "/u/upload")) == {"error": "Not found"}
        assert call(app, "GET", "/e/ping").status == 200
    finally:
        runtime.close()


# --- add_service into a developer's own app ----------------------------------


class Hello:
    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = {"hello": "developer"}


class AsyncHello:
    async def on_get(self, req: Any, resp: Any) -> None:
        resp.media = {"hello": "developer"}


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_add_service_to_your_own_app(runtime: Runtime, uploader_token: str, asgi: bool) -> None:
    app: falcon.App = falcon.asgi.App() if asgi else falcon.App()
    app.add_route("/hello", AsyncHello() if asgi else Hello())
    add_service(app, runtime, "uploader", prefix="/files")
    client = falcon.testing.TestClient(app)

    r = client.simulate_get("/hello")
    assert (r.status_code, r.json) == (200, {"hello": "developer"})

    body, ctype = multipart([("file", "notes.txt", "text/plain", b"embedded")])
    r = client.simulate_post("/files/upload", body=body, host="dev.example",
                             headers={"Content-Type": ctype, "Authorization": uploader_token})
    assert r.status_code == 200
    item = r.json["ID"]
    assert r.json["url"] == f"http://dev.example/files/{item}"
    r = client.simulate_get(f"/files/{item}")
    assert (r.status_code, r.content) == (200, b"embedded")
    assert r.headers["Content-Type"] == "text/plain"
    assert client.simulate_get(f"/files/{item}", headers={"Range": "bytes=2-4"}).content == b"bed"
    assert client.simulate_head(f"/files/{item}").content == b""

    r = client.simulate_post("/files/upload", body=urlencode({"link": "https://example.com/"}),
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "Authorization": uploader_token})
    r = client.simulate_get("/files/" + r.json["ID"])
    assert (r.status_code, r.headers["Location"]) == (302, "https://example.com/")

    for path in ("/files", "/files/a/b", "/files/upload/x"):
        r = client.simulate_get(path)
        assert (r.status_code, r.json) == (404, ENVELOPE_404), path
    r = client.simulate_post("/files/upload", body=b"x")
    assert (r.status_code, r.json) == (401, {"ok": False, "error": "Missing bearer token"})
    r = client.simulate_delete("/files/upload")
    assert (r.status_code, r.json, r.headers["Allow"]) == (
        405, {"ok": False, "error": "Method not allowed"}, "POST")
    # outside the prefix the developer's app answers as it always did
    r = client.simulate_get("/filesx/upload")
    assert r.status_code == 404
    assert r.json != ENVELOPE_404


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_add_service_at_the_configured_prefix(tmp_path: Path, clock: FakeClock,
                                              asgi: bool) -> None:
    runtime = build(tmp_path, clock)
    try:
        token = token_for(runtime)
        app: falcon.App = falcon.asgi.App() if asgi else falcon.App()
        add_service(app, runtime, "uploader")
        body, ctype = multipart([("file", "a.txt", "text/plain", b"at /u")])
        r = call(app, "POST", "/u/upload", body=body,
                 headers=[("Authorization", token), ("Content-Type", ctype)])
        item = as_json(r)["ID"]
        assert call(app, "GET", f"/u/{item}").body == b"at /u"
    finally:
        runtime.close()


# --- public URLs and proxies -------------------------------------------------


def upload_url(app: Any, token: str, headers: Sequence[tuple[str, str]] = (), **kw: Any) -> str:
    body, ctype = multipart([("file", "a.txt", "text/plain", b"url")])
    r = call(app, "POST", "/u/upload", body=body,
             headers=[("Authorization", token), ("Content-Type", ctype), *headers], **kw)
    assert r.status == 200, r.body
    data = as_json(r)
    return str(data["url"]).replace(data["ID"], "<ID>")


FORWARDED = [("X-Forwarded-Host", "public.example"), ("X-Forwarded-Proto", "https")]


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_public_base_url_configured(tmp_path: Path, clock: FakeClock, asgi: bool) -> None:
    runtime = build(tmp_path, clock, uploader_base="https://hep.example/")
    try:
        app, token = create_app(runtime, asgi=asgi), token_for(runtime)
        assert upload_url(app, token, host="internal:8000") == "https://hep.example/<ID>"
        assert upload_url(app, token, FORWARDED) == "https://hep.example/<ID>"
    finally:
        runtime.close()


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_public_url_from_the_request(tmp_path: Path, clock: FakeClock, asgi: bool) -> None:
    runtime = build(tmp_path, clock)
    try:
        app, token = create_app(runtime, asgi=asgi), token_for(runtime)
        assert upload_url(app, token, host="box:8000") == "http://box:8000/u/<ID>"
        assert upload_url(app, token, host="box", scheme="https") == "https://box/u/<ID>"
        # not behind a trusted proxy: forwarded headers are ignored
        assert upload_url(app, token, FORWARDED, host="box") == "http://box/u/<ID>"
    finally:
        runtime.close()


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_a_host_that_is_not_one_is_refused(tmp_path: Path, clock: FakeClock, asgi: bool) -> None:
    # Replies build URLs from the Host header: none of a path, userinfo, a space
    # or an empty name may end up in them.
    runtime = build(tmp_path, clock, trust_proxy=True)
    try:
        app, token = create_app(runtime, asgi=asgi), token_for(runtime)
        assert upload_url(app, token, host="[::1]:8000") == "http://[::1]:8000/u/<ID>"
        assert upload_url(app, token, host="xn--bcher-kva.example") == \
            "http://xn--bcher-kva.example/u/<ID>"
        body, ctype = multipart([("file", "a.txt", "text/plain", b"url")])
        for host, forwarded in (("", []), ("t.local/evil", []), ("a b", []),
                                ("user@t.local", []), ('t.local"', []), ("t.local:80:80", []),
                                ("t.local:65536", []), ("t.local:99999", []),
                                ("box", [("X-Forwarded-Host", "evil/x")])):
            r = call(app, "POST", "/u/upload", body=body, host=host, headers=[
                ("Authorization", token), ("Content-Type", ctype), *forwarded])
            assert (r.status, as_json(r)) == (400, {"ok": False, "error": "Invalid Host header"})
        assert runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 2
    finally:
        runtime.close()


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_trusted_proxy_headers(tmp_path: Path, clock: FakeClock, asgi: bool) -> None:
    runtime = build(tmp_path, clock, trust_proxy=True, plugins=(EchoPlugin(),))
    try:
        app, token = create_app(runtime, asgi=asgi), token_for(runtime)
        assert upload_url(app, token, FORWARDED, host="box") == "https://public.example/u/<ID>"
        assert upload_url(app, token, host="box") == "http://box/u/<ID>"
        # host routing follows the forwarded host too
        r = call(app, "GET", "/ping", host="10.0.0.5", headers=[("X-Forwarded-Host", "echo.test")])
        assert r.status == 200
        assert as_json(r)["base"] == "http://echo.test"
    finally:
        runtime.close()


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_untrusted_forwarded_host_does_not_route(mounted: Runtime, asgi: bool) -> None:
    app = create_app(mounted, asgi=asgi)
    r = call(app, "GET", "/ping", host="10.0.0.5", headers=[("X-Forwarded-Host", "echo.test")])
    assert (r.status, as_json(r)) == (404, {"error": "Not found"})


@pytest.mark.parametrize("asgi", [False, True])
def test_host_app_routes_come_before_the_services(runtime, uploader_token, asgi: bool) -> None:
    """A route the host adds itself beats the uploader's catch-all at ``/``."""
    import falcon.testing

    from hepcore.web import create_app

    class Status:
        def on_get(self, req, resp):
            resp.media = {"status": "fine"}

    class AsyncStatus:
        async def on_get(self, req, resp):
            resp.media = {"status": "fine"}

    app = create_app(runtime, asgi=asgi)
    app.add_route("/status", AsyncStatus() if asgi else Status())
    client = falcon.testing.TestClient(app)
    assert client.simulate_get("/status").json == {"status": "fine"}
    missing = client.simulate_get("/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_every_json_answer_says_nosniff_once(tmp_path: Path, asgi: bool) -> None:
    """G6: JSON answers carry names, titles and text users chose; successes,
    service errors and the router's own refusals alike."""
    config = Config(data_dir=tmp_path / "data", secrets=["s"], services={
        "uploader": ServiceConfig("uploader", prefix="/"),
        "paste": ServiceConfig("paste", prefix="/paste"),
        "cdn": ServiceConfig("cdn", prefix="/cdn"),
        "images": ServiceConfig("images", prefix="/img")})
    runtime = build_runtime(config)
    client = falcon.testing.TestClient(create_app(runtime, asgi=asgi))
    account = runtime.accounts.create("nina")
    paste_key, _ = runtime.keys.create("paste", account.id)
    made = client.simulate_post("/paste/api/paste", json={"content": "<b>hi</b>", "title": "t"},
                                headers={"Authorization": f"Bearer {paste_key}"})
    answers = [
        made,
        client.simulate_get("/uploadCounter"),
        client.simulate_get("/api/v1/me"),
        client.simulate_get(f"/paste/documents/{made.json['data']['id']}"),
        client.simulate_get("/paste/api/v1/snippets"),
        client.simulate_get("/cdn/api/v4/me"),
        client.simulate_get("/img/api/v1/me"),
        client.simulate_delete("/img/api/v1/me"),
        client.simulate_get("/nowhere/at/all"),
    ]
    for r in answers:
        assert r.headers["content-type"].startswith("application/json"), (r.status, r.text)
        nosniff = [v for k, v in r.headers.items() if k.lower() == "x-content-type-options"]
        assert nosniff == ["nosniff"], (r.status, r.text)
