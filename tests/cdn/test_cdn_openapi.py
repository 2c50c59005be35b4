"""The CDN's OpenAPI document (``/openapi.json``, ``hepcore openapi cdn``) and
schema fuzzing of every route against it, under both app kinds, with real keys.

URL uploads during fuzzing go through the host's real fetcher under the
default outbound policy (nothing private allowed); its resolver, the seam the
fetcher offers for this, answers every name with 127.0.0.1 at once, so no
generated hostname waits on DNS and every fetch is refused before a socket
opens (``422 Upload failed: IP address not allowed``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
from apifuzz import fuzz, load_schema, validate_document
from cdnkit import CdnHost, Origin, upload
from httpkit import call as call_raw
from httpkit import png_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hepcore import hookimpl, load_config
from hepcore.apidoc import openapi_path
from hepcore.cli import main
from hepcore.inspection import Rejection, UploadCandidate
from hepcore.outbound import Fetcher
from hepcore.runtime import build_runtime
from hepcore.web import create_app
from hepcore_cdn.keys import create_key

REVOKE = ("POST /api/v4/revoke", "POST /api/v4/revoke.json")
FEW_EXAMPLES = 5
REAL_EXAMPLES = int(os.environ.get("HEPCORE_FUZZ_REAL_EXAMPLES", "15"))
UUID = "0190f1a2-0000-7000-8000-000000000000"


def loopback_world(host: str, port: int) -> list[str]:
    """A resolver for a network of one machine: every name is 127.0.0.1."""
    return ["127.0.0.1"]


def fuzz_host(cdn_host: Callable[..., CdnHost]) -> CdnHost:
    """A CDN at ``/`` with the default outbound policy, the loopback-only
    resolver and a URL-upload rate the fuzzer does not exhaust (the clock stands
    still). An IP literal skips the resolver; a public one would find no route
    out of the test machine, and the connect limit bounds even that."""
    host = cdn_host(outbound_allow=(), outbound_connect_timeout=1.0,
                    options={"url_upload_rate_per_minute": 100_000})
    runtime = host.runtime
    runtime.fetcher = Fetcher(runtime.fetcher.policy, resolver=loopback_world)  # type: ignore[misc]
    return host


def operations(document: dict[str, Any]) -> list[str]:
    return [f"{method.upper()} {path}" for path, item in document["paths"].items()
            for method in item]


def test_document_describes_every_route(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host()
    r = host.client().simulate_get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    document = r.json
    assert validate_document(document) == []
    assert document["info"]["title"] == "Hack Club CDN v4"
    assert document["servers"] == [{"url": "/"}]
    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "bearer": {"type": "http", "scheme": "bearer", "description": schemes["bearer"][
            "description"]},
        "token": {"type": "http", "scheme": "Token",
                  "description": schemes["token"]["description"]},
    }
    cdn = host.runtime.services["cdn"]
    for route in cdn.routes():
        path, _ = openapi_path(route.path)
        for method in route.methods:
            op = document["paths"][path][method.lower()]
            codes = [c for c in op["responses"] if c != "default"]
            assert any(c[0] in "23" for c in codes), (method, path)
            assert "500" in codes, (method, path)
            if route.auth:
                assert op["security"] == [{"bearer": []}, {"token": []}], (method, path)
                assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/AuthError"}
            else:
                assert "security" not in op, (method, path)
    # every /api/v4/* path has its .json alias, described alike
    for path in ("/api/v4/me", "/api/v4/upload", "/api/v4/uploads", "/api/v4/upload_from_url",
                 "/api/v4/uploads/{upload_id}/rename", "/api/v4/uploads/batch",
                 "/api/v4/revoke"):
        plain, alias = document["paths"][path], document["paths"][path + ".json"]
        for method, op in plain.items():
            assert {k: v for k, v in alias[method].items() if k not in ("operationId",
                                                                       "summary")} == \
                {k: v for k, v in op.items() if k not in ("operationId", "summary")}


def test_document_shapes(cdn_host: Callable[..., CdnHost]) -> None:
    document = cdn_host().client().simulate_get("/openapi.json").json
    paths, schemas = document["paths"], document["components"]["schemas"]
    upload = paths["/api/v4/upload"]["post"]
    assert list(upload["requestBody"]["content"]) == ["multipart/form-data"]
    assert sorted(upload["responses"]) == ["201", "400", "401", "402", "415", "422", "500"]
    from_url = paths["/api/v4/upload_from_url"]["post"]
    assert sorted(from_url["requestBody"]["content"]) == [
        "application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
    assert from_url["responses"]["429"]["headers"] == {
        "Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    assert "IP address not allowed" in from_url["description"]
    batch = paths["/api/v4/uploads"]["post"]["responses"]
    assert batch["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchResult"}
    served = paths["/{upload_id}/{filename}"]
    assert sorted(served) == ["get", "head", "options"]
    assert sorted(served["get"]["responses"]) == ["200", "206", "302", "304", "400", "404",
                                                  "416", "500"]
    assert served["get"]["responses"]["200"]["content"] == {"*/*": {}}
    assert "content" not in served["head"]["responses"]["200"]
    assert sorted(served["options"]["responses"]["204"]["headers"]) == [
        "Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
        "Access-Control-Allow-Origin", "Access-Control-Max-Age"]
    assert sorted(paths["/rescue"]["get"]["responses"]) == ["200", "302", "400", "404", "500"]
    assert schemas["InternalError"]["required"] == ["error", "error_id"]
    assert schemas["Error"]["required"] == ["error"]
    assert schemas["QuotaError"]["properties"]["quota"] == {"$ref": "#/components/schemas/Quota"}


def test_fuzz(cdn_host: Callable[..., CdnHost], app_kind: str) -> None:
    """schemathesis against the served document with a real key: no 5xx, every
    answer as documented, invalid input refused, auth enforced."""
    host = fuzz_host(cdn_host)
    asgi = app_kind == "asgi"
    app = create_app(host.runtime, asgi=asgi)
    labels = operations(falcon.testing.TestClient(app).simulate_get("/openapi.json").json)
    aliases = [label for label in labels if ".json" in label and label not in REVOKE
               and not label.endswith("/openapi.json")]
    # The .json aliases run the same handlers under the same description: a few
    # examples each show they are routed and described alike.
    assert fuzz(app, asgi, headers=host.auth, skip=(*REVOKE, *aliases)) == []
    assert fuzz(app, asgi, headers=host.auth, skip=[x for x in labels if x not in aliases],
                examples=FEW_EXAMPLES) == []
    # Revoking ends the key, so the revoke routes get keys of their own, last.
    for label in REVOKE:
        key, _ = create_key(host.runtime, host.account.id, "revoked by the fuzzer")
        assert fuzz(app, asgi, headers={"Authorization": f"Bearer {key}"},
                    skip=[x for x in labels if x != label], examples=FEW_EXAMPLES) == []


def test_fuzzed_urls_are_refused_before_any_connection(cdn_host: Callable[..., CdnHost],
                                                        origin: Origin) -> None:
    """What the fuzzer's URL uploads meet: every name resolves at once to
    127.0.0.1, which the default policy refuses, as it refuses the literal."""
    host = fuzz_host(cdn_host)
    client = host.client()
    origin.reply("/x", b"x")
    for name in ("example.com", "a.b.c.test", "xn--bcher-kva.example", "127.0.0.1"):
        r = client.simulate_post("/api/v4/upload_from_url", headers=host.auth,
                                 json={"url": f"http://{name}:{origin.port}/x"})
        assert (r.status_code, r.json) == (422, {"error": "Upload failed: IP address not allowed"})
    assert origin.seen == []


def test_document_under_a_prefix_and_from_the_cli(tmp_path: Path, app_kind: str) -> None:
    data = tmp_path / "host"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--data", str(data), "init"]) == 0
    runtime = build_runtime(load_config(data))
    try:
        assert runtime.config.service("cdn").prefix == "/cdn"
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        r = client.simulate_get("/cdn/openapi.json")
        assert r.status_code == 200
        served = r.json
    finally:
        runtime.close()
    assert served["servers"] == [{"url": "/cdn"}]
    assert "/api/v4/me" in served["paths"]
    proc = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "openapi",
                           "cdn"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == served


# --- every documented reply, produced and checked against the document -----------

CONFORMANCE = [status_code_conformance, content_type_conformance,
               response_headers_conformance, response_schema_conformance]


class Gate:
    """A moderation plugin: bytes starting ``BLOCK`` are refused, ``CRASH`` is a bug."""

    @hookimpl
    def hepcore_inspect_upload(self, candidate: UploadCandidate) -> Rejection | None:
        if candidate.head.startswith(b"CRASH"):
            raise RuntimeError("the moderation plugin broke")
        if candidate.head.startswith(b"BLOCK"):
            return Rejection("blocked", "Blocked by moderation", status=415)
        return None


class Checked:
    """Requests made from the service's own document (schemathesis cases), each
    answer checked against it: status, content type, headers and body."""

    def __init__(self, host: CdnHost) -> None:
        self.host = host
        self.schema = load_schema(create_app(host.runtime, asgi=host.asgi), host.asgi)

    def __call__(self, method: str, path: str, status: int, *, auth: bool = True,
                 **case: Any) -> Any:
        headers = {**(self.host.auth if auth else {}), **case.pop("headers", {})}
        made = self.schema[path][method].Case(headers=headers, **case)
        response = made.call()
        made.validate_response(response, checks=CONFORMANCE)
        assert response.status_code == status, (method, path, response.content)
        return response


def test_every_documented_reply_is_what_the_service_sends(
        cdn_host: Callable[..., CdnHost], origin: Origin) -> None:
    host = cdn_host(settings={"cdn_max_file_size": 1000, "cdn_storage_limit": 1500},
                    options={"url_upload_rate_per_minute": 4}, plugins=[Gate()])
    call = Checked(host)
    mp = "multipart/form-data"
    me = call("GET", "/api/v4/me", 200).json()
    assert (me["storage_limit"], me["quota_tier"]) == (1500, "unverified")
    assert call("GET", "/api/v4/me.json", 401, auth=False).json() == {"error": "invalid_auth"}
    for form in (f"Token {host.key}", f'Token token="{host.key}"'):
        call("GET", "/api/v4/me", 200, headers={"Authorization": form})
    for form in (f"bearer {host.key}", host.key, f'Bearer token="{host.key}"'):
        assert call("GET", "/api/v4/me", 401, headers={"Authorization": form}).json() == {
            "error": "invalid_auth"}
    # one upload
    up = call("POST", "/api/v4/upload", 201, body={"file": b"hello"}, media_type=mp).json()
    assert call("POST", "/api/v4/upload", 400, body={}, media_type=mp).json() == {
        "error": "Missing file parameter"}
    too_big = call("POST", "/api/v4/upload.json", 402, body={"file": b"x" * 1001},
                   media_type=mp).json()
    assert too_big == {"error": "File size exceeds your limit of 1000 Bytes per file",
                       "quota": {"storage_used": 5, "storage_limit": 1500,
                                 "quota_tier": "unverified", "percentage_used": 0.33}}
    assert call("POST", "/api/v4/upload", 415, body={"file": b"BLOCK"}, media_type=mp
                ).json() == {"error": "Blocked by moderation"}
    crash = call("POST", "/api/v4/upload", 500, body={"file": b"CRASH"}, media_type=mp).json()
    assert crash == {"error": "Internal server error", "error_id": crash["error_id"]}
    # a batch
    got = call("POST", "/api/v4/uploads", 201, body={"files[]": [b"a", b"b" * 1001]},
               media_type=mp).json()
    assert [u["size"] for u in got["uploads"]] == [1]
    assert got["failed"] == [{"filename": "files[]",
                              "reason": "File size (1001 Bytes) exceeds limit of 1000 Bytes"}]
    assert call("POST", "/api/v4/uploads", 422, body={"files[]": [b"b" * 1001]},
                media_type=mp).json()["uploads"] == []
    assert call("POST", "/api/v4/uploads.json", 413, body={"files[]": [b"c" * 110_000]},
                media_type=mp).json() == {"error": "Request too large"}
    assert call("POST", "/api/v4/uploads", 400, body={}, media_type=mp).json() == {
        "error": "Missing files[] parameter"}
    # from a URL (four calls a minute)
    url = origin.reply("/pic.png", b"fetched bytes", headers=[("Content-Type", "image/png")])
    fetched = call("POST", "/api/v4/upload_from_url", 201, body={"url": url},
                   media_type="application/json").json()
    assert (fetched["filename"], fetched["size"]) == ("pic.png", 13)
    assert call("POST", "/api/v4/upload_from_url", 415, media_type="multipart/form-data",
                body={"url": origin.reply("/bad", b"BLOCKED")}).json() == {
        "error": "Blocked by moderation"}
    assert call("POST", "/api/v4/upload_from_url", 422, query={"url": "http://10.0.0.1/a"}
                ).json() == {"error": "Upload failed: IP address not allowed"}
    assert call("POST", "/api/v4/upload_from_url.json", 400, body={"url": ""},
                media_type="application/x-www-form-urlencoded").json() == {
        "error": "Missing url parameter"}
    limited = call("POST", "/api/v4/upload_from_url", 429, body={"url": url},
                   media_type="application/json")
    assert limited.json() == {"error": "Too many requests"}
    assert int(limited.headers["retry-after"][0]) >= 1
    # rename, delete
    renamed = call("PATCH", "/api/v4/uploads/{upload_id}/rename", 200,
                   path_parameters={"upload_id": up["id"]}, body={"filename": "greeting.txt"},
                   media_type="application/json").json()
    assert renamed["filename"] == "greeting.txt"
    assert call("PATCH", "/api/v4/uploads/{upload_id}/rename.json", 400,
                path_parameters={"upload_id": up["id"]}, query={"filename": " "}).json() == {
        "error": "Missing filename parameter"}
    assert call("PATCH", "/api/v4/uploads/{upload_id}/rename", 404,
                path_parameters={"upload_id": "nope"}, body={"filename": "x"},
                media_type="application/json").json() == {"error": "Upload not found"}
    # serving
    file = {"upload_id": up["id"], "filename": "greeting.txt"}
    whole = call("GET", "/{upload_id}/{filename}", 200, path_parameters=file)
    assert whole.content == b"hello"
    etag = whole.headers["etag"][0]
    assert call("GET", "/{upload_id}/{filename}", 206, path_parameters=file,
                headers={"Range": "bytes=1-2"}).content == b"el"
    call("GET", "/{upload_id}/{filename}", 304, path_parameters=file,
         headers={"If-None-Match": etag})
    call("GET", "/{upload_id}/{filename}", 416, path_parameters=file,
         headers={"Range": "bytes=10-"})
    assert call("HEAD", "/{upload_id}/{filename}", 200, path_parameters=file).content == b""
    call("GET", "/{upload_id}/{filename}", 404,
         path_parameters={"upload_id": UUID, "filename": "x"})
    call("OPTIONS", "/{upload_id}/{filename}", 204, path_parameters=file)
    call("OPTIONS", "/{upload_id}/{filename}", 404,
         path_parameters={"upload_id": "nope", "filename": "x"})
    call("GET", "/up", 200)
    call("GET", "/rescue", 302, query={"url": url})
    assert call("GET", "/rescue", 200, query={"url": "https://gone.example/a.JPG"}
                ).content.startswith(b"<svg")
    assert call("GET", "/rescue", 404, query={"url": "https://gone.example/a"}).content == b""
    assert call("GET", "/rescue", 400, query={"url": " "}).content == b""
    # deleting, then revoking the key
    assert call("DELETE", "/api/v4/upload/{upload_id}", 200, path_parameters={
        "upload_id": fetched["id"]}).json() == {"id": fetched["id"], "deleted": True}
    assert call("DELETE", "/api/v4/upload/{upload_id}", 404, path_parameters={
        "upload_id": fetched["id"] + ".json"}).json() == {"error": "Not found"}
    assert call("DELETE", "/api/v4/uploads/batch", 200, query={"ids[]": [up["id"], "nope"]}
                ).json() == {"deleted": [{"id": up["id"], "filename": "greeting.txt"}],
                             "not_found": ["nope"]}
    assert call("DELETE", "/api/v4/uploads/batch.json", 400, query={"ids": " "}).json() == {
        "error": "Missing ids[] parameter"}
    assert call("POST", "/api/v4/revoke", 200).json() == {
        "success": True, "owner_email": "carol@example.org", "key_name": "test",
        "status": "complete"}
    assert call("POST", "/api/v4/revoke.json", 401).json() == {"error": "invalid_auth"}


def test_redirect_mode_reply_is_documented(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(options={"storage_public_base_url": "https://files.example"})
    call = Checked(host)
    up = call("POST", "/api/v4/upload", 201, body={"file": b"hello"},
              media_type="multipart/form-data").json()
    r = call("GET", "/{upload_id}/{filename}", 302,
             path_parameters={"upload_id": up["id"], "filename": "file"})
    assert r.headers["location"] == [f"https://files.example/cdn/{up['id']}/file"]


def test_an_invalid_content_length_is_a_documented_400(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host()
    app = create_app(host.runtime, asgi=host.asgi)
    document = host.client().simulate_get("/openapi.json").json
    for method, path, template in (("GET", "/up", "/up"),
                                   ("POST", "/api/v4/upload", "/api/v4/upload"),
                                   ("GET", f"/{UUID}/a.png", "/{upload_id}/{filename}")):
        r = call_raw(app, method, path, headers=[("Content-Length", "12a"), *host.auth.items()])
        assert (r.status, json.loads(r.body)) == (400, {"error": "Invalid Content-Length header"})
        assert r.header("content-type") == "application/json"
        documented = document["paths"][template][method.lower()]["responses"]["400"]
        assert documented["content"]["application/json"] == {
            "schema": {"$ref": "#/components/schemas/Error"}}


def test_fuzz_on_real_uploads(cdn_host: Callable[..., CdnHost], app_kind: str) -> None:
    """The generic run rarely names an existing upload; here generated renames,
    ranges and validators are aimed at real ones (valid data only: a real id in
    place of a mutated one would make an invalid case valid)."""
    host = fuzz_host(cdn_host)
    asgi = app_kind == "asgi"
    app = create_app(host.runtime, asgi=asgi)
    client = falcon.testing.TestClient(app)
    ids = [upload(client, host.auth, name, data).json["id"]
           for name, data in (("a.png", png_bytes()), ("page.html", b"<p>hi</p>"),
                              ("empty.txt", b""))]
    schema = load_schema(app, asgi)
    checks = [not_a_server_error, *CONFORMANCE]
    for path, method in (("/{upload_id}/{filename}", "GET"), ("/{upload_id}/{filename}", "HEAD"),
                         ("/api/v4/uploads/{upload_id}/rename", "PATCH")):
        strategy = schema[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE)

        @given(case=strategy, upload_id=st.sampled_from(ids))
        @settings(max_examples=REAL_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        def run(case: Any, upload_id: str) -> None:
            case.path_parameters["upload_id"] = upload_id
            case.call_and_validate(headers=host.auth, checks=checks)

        run()
