"""The uploader's OpenAPI document (issue 7) under WSGI and ASGI: it is valid
OpenAPI 3.1, describes every route with its auth, follows the mount prefix,
matches ``hepcore openapi uploader``, and schemathesis finds no request the
service answers outside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from apifuzz import fuzz, load_schema, validate_document
from httpkit import multipart, png_bytes
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hepcore import Account, Config, Runtime, ServiceConfig, build_runtime, load_config
from hepcore.apidoc import openapi_path
from hepcore.service import all_routes
from hepcore.web import create_app

REGENERATE = "POST /api/v1/me/token/regenerate"
# Enough that the fuzzer's requests within one FakeClock minute all reach the
# handlers; the documented 429s are produced in
# test_limits_and_maintenance_answers_match_the_document.
FUZZ_OPTIONS = {"upload_rate_per_minute": 1_000_000, "shorten_rate_per_minute": 1_000_000}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(data_dir=tmp_path / "data", secrets=["test-secret"],
                  services={"uploader": ServiceConfig("uploader", prefix="/",
                                                      options=dict(FUZZ_OPTIONS))})


def document(client: falcon.testing.TestClient, path: str = "/openapi.json") -> dict[str, Any]:
    r = client.simulate_get(path)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    return dict(r.json)


def test_document_is_valid_and_covers_every_route(client: falcon.testing.TestClient,
                                                  runtime: Runtime) -> None:
    doc = document(client)
    assert validate_document(doc) == []
    assert doc["info"]["title"] == "Hep.gg uploader"
    assert doc["servers"] == [{"url": "/"}]
    service = runtime.services["uploader"]
    schemes = doc["components"]["securitySchemes"]
    # U1: the raw header value, or the token after Bearer/Token.
    token_scheme = schemes["uploaderToken"]
    assert (token_scheme["type"], token_scheme["in"], token_scheme["name"]) == (
        "apiKey", "header", "Authorization")
    assert (schemes["bearer"]["type"], schemes["bearer"]["scheme"]) == ("http", "bearer")
    for route in all_routes(service):
        path, _ = openapi_path(route.path)
        for method in route.methods:
            op = doc["paths"][path][method.lower()]
            answers = [int(s) for s in op["responses"] if s.isdigit()]
            assert any(200 <= s < 400 for s in answers), (method, path)
            assert "default" not in op["responses"]
            if route.auth:
                assert op["security"] == [{"uploaderToken": []}, {"bearer": []}]
                assert all(name in schemes for need in op["security"] for name in need)
                assert "401" in op["responses"]
            else:
                assert "security" not in op
    # Every error the uploader answers in its envelope points at the envelope's schema.
    assert doc["components"]["schemas"]["Error"]["required"] == ["ok", "error"]
    upload = doc["paths"]["/upload"]["post"]
    assert sorted(upload["responses"]) == ["200", "400", "401", "403", "413", "429", "500"]
    assert upload["responses"]["429"]["headers"]["Retry-After"]["schema"]["pattern"]
    assert sorted(upload["requestBody"]["content"]) == [
        "application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
    serve = doc["paths"]["/{item_id}"]
    assert sorted(serve["get"]["responses"]) == ["200", "206", "302", "304", "400", "404", "416"]
    assert serve["get"]["responses"]["302"]["headers"]["Location"] == {
        "schema": {"type": "string"}}
    assert "content" not in serve["head"]["responses"]["200"]


def test_fuzz_finds_nothing(runtime: Runtime, app_kind: str) -> None:
    asgi = app_kind == "asgi"
    account = runtime.accounts.create("fuzz")
    token, _ = runtime.keys.create("uploader", account.id, label="fuzz")
    app = create_app(runtime, asgi=asgi)
    client = falcon.testing.TestClient(app)
    labels = [f"{method.upper()} {path}" for path, item in document(client)["paths"].items()
              for method in item]
    # Names the generator produces early ("0" is its simplest string), so that
    # serving, PATCH and DELETE also meet real items, a file and a shortlink.
    body, ctype = multipart([("file", "a.png", "image/png", png_bytes())])
    file_id = client.simulate_post("/upload", body=body, headers={
        "Content-Type": ctype, "Authorization": token}).json["ID"]
    patched = client.simulate_patch(f"/api/v1/uploads/{file_id}", json={"alias": "0"},
                                    headers={"Authorization": token})
    assert patched.status_code == 200, patched.text
    short = client.simulate_post("/api/v1/shorten", headers={"Authorization": token},
                                 json={"url": "https://example.com/", "alias": "A"})
    assert short.status_code == 200, short.text

    def only(label: str) -> list[str]:
        return [other for other in labels if other != label]

    # oEmbed answers an unsupported `format` 501 (spec section 6, as the oEmbed
    # standard says): a documented 5xx.
    failures = fuzz(app, asgi, headers={"Authorization": token}, skip=[REGENERATE],
                    server_errors=(501,))
    # Regenerating revokes the calling key, so it runs last, on a key of its own.
    other = runtime.accounts.create("fuzz-rotate")
    rotating, _ = runtime.keys.create("uploader", other.id, label="fuzz")
    failures += fuzz(app, asgi, headers={"Authorization": f"Bearer {rotating}"},
                     skip=only(REGENERATE))
    assert failures == [], "\n\n".join(failures)


@pytest.mark.integration
def test_document_under_a_prefix_and_from_the_cli(tmp_path: Path, app_kind: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text('[services.uploader]\nprefix = "/up"\n')
    (data / "secret").write_text("test-secret\n")
    runtime = build_runtime(load_config(data))
    try:
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        served = document(client, "/up/openapi.json")
    finally:
        runtime.close()
    assert served["servers"] == [{"url": "/up"}]
    assert validate_document(served) == []
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEPCORE_DATA", "HEPCORE_SECRETS", "HEPCORE_FACTORY")}
    proc = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "openapi",
                           "uploader"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == served


class Described:
    """Sends explicit requests through schemathesis and checks each answer
    against the document: status, content type, headers and body."""

    CHECKS = (status_code_conformance, content_type_conformance,
              response_headers_conformance, response_schema_conformance)

    def __init__(self, app: Any, asgi: bool, token: str | None = None) -> None:
        self.schema = load_schema(app, asgi)
        self.token = token

    def __call__(self, method: str, path: str, expect: int, *, auth: str | None = "token",
                 **case: Any) -> Any:
        operation = self.schema[path][method]
        sent = operation.Case(**case)
        credential = self.token if auth == "token" else auth
        response = sent.call(headers={"Authorization": credential} if credential else None)
        assert response.status_code == expect, (method, path, response.text)
        sent.validate_response(response, checks=list(self.CHECKS))
        return response


def header(response: Any, name: str) -> str:
    """One header of a schemathesis response (its names are lower-case, values lists)."""
    return str(response.headers[name.lower()][0])


def upload_file(api: Described, data: bytes, filename: str, content_type: str) -> str:
    body, ctype = multipart([("file", filename, content_type, data)])
    r = api("POST", "/upload", 200, body=body, media_type="multipart/form-data",
            headers={"Content-Type": ctype})
    return str(r.json()["ID"])


def test_answers_the_fuzzer_cannot_reach_match_the_document(
        runtime: Runtime, account: Account, uploader_token: str, app_kind: str) -> None:
    """Items the fuzzer cannot guess, limits it does not hit: every documented
    reply of every route, produced for real and checked against the document."""
    api = Described(create_app(runtime, asgi=app_kind == "asgi"), app_kind == "asgi",
                    uploader_token)
    png = upload_file(api, png_bytes(4, 3), "shot.png", "image/png")
    html = upload_file(api, b"<script>alert(1)</script>", "x.html", "text/html")
    link = api("POST", "/upload", 200, body={"link": "https://example.com/a"},
               media_type="application/x-www-form-urlencoded").json()["ID"]
    text = api("POST", "/upload", 200, body={"link": "just words"},
               media_type="application/json").json()["ID"]
    api("POST", "/upload", 200, body={"link": "https://example.com/b"},
        media_type="multipart/form-data")
    api("POST", "/upload", 400, body={}, media_type="multipart/form-data")
    api("POST", "/upload", 400, body={"link": ""}, media_type="application/x-www-form-urlencoded")
    api("POST", "/upload", 401, auth=None, body={"link": "x"}, media_type="application/json")
    api("POST", "/upload", 401, auth="Bearer hyd-up-" + "x" * 32, body={"link": "x"},
        media_type="application/json")

    served = api("GET", "/{item_id}", 200, path_parameters={"item_id": png})
    etag = header(served, "ETag")
    assert header(api("GET", "/{item_id}", 200, path_parameters={"item_id": html}),
                  "Content-Security-Policy") == "default-src 'none'; sandbox"
    api("GET", "/{item_id}", 200, path_parameters={"item_id": png.split(".")[0]},
        headers={"User-Agent": "Mozilla/5.0 (compatible; Discordbot/2.0)"})
    api("GET", "/{item_id}", 206, path_parameters={"item_id": png},
        headers={"Range": "bytes=0-9"})
    api("GET", "/{item_id}", 304, path_parameters={"item_id": png},
        headers={"If-None-Match": etag})
    api("GET", "/{item_id}", 416, path_parameters={"item_id": text},
        headers={"Range": "bytes=9999-"})
    api("HEAD", "/{item_id}", 200, path_parameters={"item_id": png})
    assert header(api("GET", "/{item_id}", 302, path_parameters={"item_id": link}),
                  "Location") == "https://example.com/a"
    api("HEAD", "/{item_id}", 302, path_parameters={"item_id": link})
    api("GET", "/{item_id}", 404, path_parameters={"item_id": "nothing.png"})

    url = served.request.url
    assert api("GET", "/api/oembed", 200, query={"url": url}).json()["type"] == "photo"
    assert api("GET", "/api/oembed", 200, query={"url": url.replace(png, text)},
               ).json()["type"] == "link"
    api("GET", "/api/oembed", 404, query={"url": url + "x"})
    api("GET", "/api/oembed", 400, query={"url": ""})
    api("GET", "/api/oembed", 501, query={"url": url, "format": "xml"})

    api("GET", "/uploadCounter", 200)
    assert api("GET", "/api/v1/me", 200).json()["data"]["uploadCount"] == 5
    api("GET", "/api/v1/sharex", 200)
    page = api("GET", "/api/v1/uploads", 200, query={"limit": 2}).json()["data"]
    assert len(page["uploads"]) == 2 and page["nextBefore"] is not None
    api("GET", "/api/v1/uploads", 200, query={"type": "links", "before": page["nextBefore"]})
    api("GET", "/api/v1/uploads", 400, query={"limit": 0})

    item = {"content_id": png}
    api("PATCH", "/api/v1/uploads/{content_id}", 200, path_parameters=item,
        body={"alias": "shot", "favourite": True}, media_type="application/json")
    api("PATCH", "/api/v1/uploads/{content_id}", 200, path_parameters={"content_id": link},
        body={"link": "https://example.org/"}, media_type="application/json")
    api("PATCH", "/api/v1/uploads/{content_id}", 409, path_parameters={"content_id": text},
        body={"alias": "shot"}, media_type="application/json")
    api("PATCH", "/api/v1/uploads/{content_id}", 403, path_parameters=item,
        body={"alias": "a" * 33}, media_type="application/json")
    api("PATCH", "/api/v1/uploads/{content_id}", 400, path_parameters=item,
        body={"link": "https://example.org/"}, media_type="application/json")
    api("POST", "/api/v1/shorten", 200, body={"url": "https://example.net/", "alias": "net"},
        media_type="application/json")
    api("POST", "/api/v1/shorten", 409, body={"url": "https://example.net/", "alias": "shot"},
        media_type="application/json")
    api("POST", "/api/v1/shorten", 400, body={"url": "ftp://example.net/"},
        media_type="application/json")
    api("DELETE", "/api/v1/uploads/{content_id}", 200, path_parameters={"content_id": "shot"})
    api("DELETE", "/api/v1/uploads/{content_id}", 404, path_parameters=item)

    runtime.accounts.update(account.id, settings={"max_file_size": 10})
    body, ctype = multipart([("file", "big.bin", "application/octet-stream", b"x" * 11)])
    api("POST", "/upload", 413, body=body, media_type="multipart/form-data",
        headers={"Content-Type": ctype})
    runtime.accounts.update(account.id, settings={"uploader_access": "suspended"})
    api("GET", "/api/v1/me", 403)
    runtime.accounts.update(account.id, settings={"uploader_access": "active"})
    new = api("POST", "/api/v1/me/token/regenerate", 200).json()["data"]["token"]
    api("GET", "/api/v1/me", 401)
    api("GET", "/api/v1/me", 200, auth=f"Token {new}")


def test_limits_and_maintenance_answers_match_the_document(host: Any, app_kind: str) -> None:
    limited = host(options={"upload_rate_per_minute": 1, "shorten_rate_per_minute": 1})
    api = Described(limited.app(), app_kind == "asgi", limited.token)
    for expect in (200, 429):
        r = api("POST", "/upload", expect, body={"link": "words"}, media_type="application/json")
        r = api("POST", "/api/v1/shorten", expect, body={"url": "https://example.com/"},
                media_type="application/json")
    assert header(r, "Retry-After") == "60"
    paused = host(options={"maintenance": True})
    api = Described(paused.app(), app_kind == "asgi", paused.token)
    body = {"ok": False, "error": "Uploads are paused for maintenance", "code": "MAINTENANCE"}
    assert api("POST", "/upload", 403, body={"link": "words"},
               media_type="application/json").json() == body
    assert api("POST", "/api/v1/shorten", 403, body={"url": "https://example.com/"},
               media_type="application/json").json() == body
