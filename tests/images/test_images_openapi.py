"""The image service's OpenAPI 3.1 description: served at ``<mount>/openapi.json``
and printed by ``hepcore openapi images``; every route documented with its auth
and every error answer; schemathesis fuzzes every operation under both app
kinds with a real key and finds nothing; and real uploads, tokens, served
images, delete links and webhooks answer exactly as the document says."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import schemathesis
import schemathesis.auths
from apifuzz import CHECKS, EXAMPLES, fuzz, load_schema, validate_document
from conftest import PUBLIC_BASE, image_bytes

from hepcore import Account, Config, Runtime, ServiceConfig, build_runtime
from hepcore.testing import FakeClock
from hepcore.web import create_app

BLOCKED = ["uploader", "paste", "cdn", "phash_blocklist", "login"]
HOOK = "https://hooks.example.com/fixitfy"
KEY_ONLY = [{"fxfKey": []}]
KEY_OR_TOKEN = [{"fxfKey": []}, {"uploadToken": []}]
KEYED = {"200", "400", "401", "403", "429"}

# Every documented status of every operation (errors in the CodeEnvelope).
STATUSES = {
    ("post", "/api/v1/upload-token"): KEYED,
    ("post", "/api/v1/upload"): KEYED | {"413", "415", "500"},
    ("delete", "/api/delete/{token}"): {"200", "400", "404"},
    ("post", "/api/delete/{token}"): {"200", "400", "404"},
    ("get", "/images/{filename}"): {"200", "206", "304", "400", "404", "416"},
    ("head", "/images/{filename}"): {"200", "206", "304", "400", "404", "416"},
    ("get", "/api/v1/uploads"): KEYED,
    ("get", "/api/v1/uploads/{filename}"): KEYED | {"404"},
    ("delete", "/api/v1/uploads/{filename}"): KEYED | {"404"},
    ("get", "/api/v1/me"): KEYED,
    ("get", "/api/v1/webhooks"): KEYED,
    ("post", "/api/v1/webhooks"): KEYED,
    ("post", "/api/v1/webhooks/rotate-secret"): KEYED,
    ("patch", "/api/v1/webhooks/{webhook_id}"): KEYED | {"404"},
    ("delete", "/api/v1/webhooks/{webhook_id}"): KEYED | {"404"},
    ("get", "/openapi.json"): {"200", "400"},
}


@pytest.fixture
def images_options() -> dict[str, Any]:
    """The fuzzer sends hundreds of requests within one FakeClock minute: limits
    that let them reach the handlers (429 stays documented, and is checked
    against the document in :func:`test_limits_and_bans_answer_as_documented`)."""
    return {"upload_rate_per_minute": 100_000, "upload_rate_per_day": 100_000,
            "manage_rate_per_minute": 100_000}


def document(client: falcon.testing.TestClient, path: str = "/openapi.json") -> dict[str, Any]:
    result = client.simulate_get(path)
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    return dict(result.json)


def test_document_describes_every_route(client: falcon.testing.TestClient,
                                        runtime: Runtime) -> None:
    doc = document(client)
    assert validate_document(doc) == []
    assert doc["info"]["title"] == "Fixitfy image upload"
    assert doc["servers"] == [{"url": "/"}]
    operations = {(method, path): op for path, item in doc["paths"].items()
                  for method, op in item.items()}
    assert {key: set(op["responses"]) for key, op in operations.items()} == STATUSES

    service = runtime.services["images"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["fxfKey"]["scheme"] == schemes["uploadToken"]["scheme"] == "bearer"
    for route in service.routes():
        path = route.path
        for method in route.methods:
            op = operations[(method.lower(), path)]
            assert any(s[0] in "23" for s in op["responses"]), (method, path)
            if route.auth is None:
                assert "security" not in op, (method, path)
                continue
            expected = KEY_OR_TOKEN if path == "/api/v1/upload" else KEY_ONLY
            assert op["security"] == expected, (method, path)
            assert all(name in schemes for alt in op["security"] for name in alt)


def error_codes(reply: dict[str, Any]) -> list[str]:
    schema = reply["content"]["application/json"]["schema"]
    assert schema["allOf"] == [{"$ref": "#/components/schemas/Error"}]
    code = schema["properties"]["code"]
    return list(code.get("enum") or code["examples"])


def test_error_answers_name_their_codes(client: falcon.testing.TestClient) -> None:
    doc = document(client)
    upload = doc["paths"]["/api/v1/upload"]["post"]["responses"]
    assert {status: error_codes(upload[status]) for status in
            ("400", "401", "403", "413", "415", "429", "500")} == {
        "400": ["bad_request", "missing_file", "empty_file"],
        "401": ["unauthorized"], "403": ["banned"], "413": ["too_large"],
        "415": ["unsupported_type", "processing_failed", "nsfw_rejected"],
        "429": ["rate_limit", "rate_limit_day"], "500": ["storage_failed", "db_failed"]}
    # A moderation plugin may answer its own code: 415's codes are examples.
    assert "enum" not in upload["415"]["content"]["application/json"]["schema"][
        "properties"]["code"]
    assert "Upload tokens can only be used to upload." not in upload["401"]["description"]
    me = doc["paths"]["/api/v1/me"]["get"]["responses"]
    assert "Upload tokens can only be used to upload." in me["401"]["description"]
    assert me["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    served = doc["paths"]["/images/{filename}"]["get"]["responses"]
    assert served["404"]["headers"]["Cache-Control"]["schema"] == {"const": "no-store"}
    assert error_codes(served["416"]) == ["range_not_satisfiable"]
    assert served["416"]["headers"]["Cache-Control"]["schema"] == {"const": "no-store"}
    assert "Content-Range" in served["416"]["headers"]
    assert set(served["200"]["content"]) == {"image/png", "image/jpeg", "image/gif",
                                             "image/webp", "image/avif"}


@contextlib.contextmanager
def key_auth(key: str) -> Iterator[None]:
    """Send ``key`` on every generated request as schemathesis auth.

    Not ``fuzz(headers=...)``: explicit headers put the key back on a negative
    case that left it out, so such a case that only adds an unknown query
    parameter (ignored, as upstream does) reaches the handler with the key
    and is wrongly reported as invalid data accepted. Auth set this way is
    left out when a case removes it, and still counts as explicit for the
    ``ignored_auth`` probes.
    """

    @schemathesis.auth(refresh_interval=None)
    class FxfKey:
        def get(self, case: Any, context: Any) -> str:
            return key

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    try:
        yield
    finally:
        schemathesis.auths.unregister()


def test_fuzzing_finds_nothing(runtime: Runtime, app_kind: str, key: str) -> None:
    """Every operation, valid and invalid input, with a real key. Uploads get
    small real images and junk; webhooks get random URLs, which are never
    called: background jobs do not run here, so no delivery is attempted."""
    app = create_app(runtime, asgi=app_kind == "asgi")
    with key_auth(key):
        failures = fuzz(app, app_kind == "asgi")
    assert failures == [], "\n\n".join(failures)
    attempts = runtime.db.one("SELECT count(*) AS n FROM images_webhook_outbox"
                              " WHERE attempts > 0 OR leased_until IS NOT NULL")
    touched = runtime.db.one("SELECT count(*) AS n FROM images_webhook_endpoints"
                             " WHERE failure_count > 0 OR last_status IS NOT NULL")
    assert (attempts["n"], touched["n"]) == (0, 0)
    assert EXAMPLES > 0


def call(operation: Any, *, auth: str | None = None, **case: Any) -> Any:
    """Send one explicit case and run every check of the fuzz run on its answer
    (status, content type, headers and body as documented; auth enforced)."""
    headers = {"Authorization": f"Bearer {auth}"} if auth else None
    return operation.Case(**case).call_and_validate(headers=headers, checks=CHECKS)


def test_real_objects_answer_as_documented(runtime: Runtime, app_kind: str, key: str) -> None:
    """The fuzzer cannot guess filenames, delete tokens or webhook ids; here they
    are real, and every answer is checked against the document."""
    schema = load_schema(create_app(runtime, asgi=app_kind == "asgi"), app_kind == "asgi")
    png = image_bytes("PNG", (40, 30))
    form = {"media_type": "multipart/form-data"}

    first = call(schema["/api/v1/upload"]["POST"], auth=key, body={"file": png}, **form)
    assert first.status_code == 200
    name = first.json()["filename"]
    assert first.json()["url"] == f"{PUBLIC_BASE}/images/{name}"
    again = call(schema["/api/v1/upload"]["POST"], auth=key, body={"file": png}, **form)
    assert (again.status_code, again.json()["duplicate"], again.json()["delete_url"]) == (
        200, True, None)
    made = call(schema["/api/v1/upload-token"]["POST"], auth=key, body={"ttl_seconds": 600},
                media_type="application/json")
    token = made.json()["token"]
    second = call(schema["/api/v1/upload"]["POST"], auth=token,
                  body={"file": image_bytes("GIF", (9, 9))}, **form)
    assert (second.status_code, second.json()["mime"]) == (200, "image/gif")
    junk = call(schema["/api/v1/upload"]["POST"], auth=key,
                body={"file": b"\x89PNG\r\n\x1a\n junk"}, **form)
    assert (junk.status_code, junk.json()["code"]) == (415, "processing_failed")

    image = schema["/images/{filename}"]
    served = call(image["GET"], path_parameters={"filename": name})
    assert (served.status_code, served.headers["content-type"]) == (200, ["image/png"])
    etag = served.headers["etag"][0]
    assert call(image["HEAD"], path_parameters={"filename": name}).status_code == 200
    part = call(image["GET"], path_parameters={"filename": name}, headers={"Range": "bytes=0-9"})
    assert (part.status_code, len(part.content)) == (206, 10)
    assert call(image["GET"], path_parameters={"filename": name},
                headers={"If-None-Match": etag}).status_code == 304
    for method in ("GET", "HEAD"):
        unsatisfiable = call(image[method], path_parameters={"filename": name},
                             headers={"Range": "bytes=99999999-"})
        assert (unsatisfiable.status_code, unsatisfiable.headers["content-type"],
                unsatisfiable.headers["cache-control"]) == (
            416, ["application/json"], ["no-store"])
        assert unsatisfiable.headers["content-range"] == [f"bytes */{first.json()['size']}"]
    assert unsatisfiable.content == b""  # HEAD
    assert call(image["GET"], path_parameters={"filename": name},
                headers={"Range": "bytes=99999999-"}).json()["code"] == "range_not_satisfiable"

    page = call(schema["/api/v1/uploads"]["GET"], auth=key, query={"limit": 1})
    assert (page.json()["count"], page.json()["uploads"][0]["filename"]) == (
        1, second.json()["filename"])
    rest = call(schema["/api/v1/uploads"]["GET"], auth=key,
                query={"before": page.json()["next_before"]})
    assert [u["filename"] for u in rest.json()["uploads"]] == [name]
    one = schema["/api/v1/uploads/{filename}"]
    assert call(one["GET"], auth=key, path_parameters={"filename": name}).json()[
        "upload"]["hash_sha256"] == first.json()["hash_sha256"]
    me = call(schema["/api/v1/me"]["GET"], auth=key).json()
    assert (me["account"]["uploads_active"], me["key"]["label"]) == (2, "ci")

    hooks = schema["/api/v1/webhooks"]
    created = call(hooks["POST"], auth=key, body={"url": HOOK, "enabled": False},
                   media_type="application/json").json()
    hook_id = created["webhook"]["id"]
    one_hook = schema["/api/v1/webhooks/{webhook_id}"]
    changed = call(one_hook["PATCH"], auth=key, path_parameters={"webhook_id": hook_id},
                   body={"enabled": True}, media_type="application/json")
    assert changed.json()["webhook"]["enabled"] is True
    refused = call(one_hook["PATCH"], auth=key, path_parameters={"webhook_id": hook_id},
                   body={"url": "ftp://hooks.example.com/"}, media_type="application/json")
    assert (refused.status_code, refused.json()["error"]) == (
        400, "url must be an absolute http(s) URL.")
    rotated = call(schema["/api/v1/webhooks/rotate-secret"]["POST"], auth=key).json()
    listed = call(hooks["GET"], auth=key).json()
    assert listed["signing_secret"] == rotated["signing_secret"] != created["signing_secret"]
    assert call(one_hook["DELETE"], auth=key,
                path_parameters={"webhook_id": hook_id}).json()["deleted"] == hook_id
    assert call(one_hook["DELETE"], auth=key,
                path_parameters={"webhook_id": hook_id}).status_code == 404

    delete_token = first.json()["delete_url"].rsplit("/", 1)[1]
    link = schema["/api/delete/{token}"]
    assert call(link["POST"], path_parameters={"token": delete_token}).json() == {
        "ok": True, "deleted": name}
    assert call(link["DELETE"], path_parameters={"token": delete_token}).status_code == 404
    gone = call(image["GET"], path_parameters={"filename": name})
    assert (gone.status_code, gone.headers["cache-control"]) == (404, ["no-store"])
    assert call(one["DELETE"], auth=key, path_parameters={
        "filename": second.json()["filename"]}).status_code == 200
    assert call(one["GET"], auth=key, path_parameters={"filename": name}).status_code == 404


def test_limits_and_bans_answer_as_documented(tmp_path: Path, clock: FakeClock,
                                              app_kind: str) -> None:
    """429 (with Retry-After) and 403 answers match the document too."""
    runtime = build_runtime(Config(
        data_dir=tmp_path / "limited", secrets=["s"], blocked_plugins=BLOCKED,
        services={"images": ServiceConfig("images", prefix="/", options={
            "manage_rate_per_minute": 1, "upload_rate_per_minute": 1})}), clock=clock)
    try:
        schema = load_schema(create_app(runtime, asgi=app_kind == "asgi"), app_kind == "asgi")
        account: Account = runtime.accounts.create("bob")
        key, _ = runtime.keys.create("images", account.id)
        me = schema["/api/v1/me"]["GET"]
        assert call(me, auth=key).status_code == 200
        limited = call(me, auth=key)
        assert (limited.status_code, limited.json()["code"], limited.headers["retry-after"]) == (
            429, "rate_limit", ["60"])
        upload = schema["/api/v1/upload"]["POST"]
        form = {"media_type": "multipart/form-data"}
        assert call(upload, auth=key, body={"file": image_bytes()}, **form).status_code == 200
        day = call(upload, auth=key, body={"file": image_bytes()}, **form)
        assert (day.status_code, day.json()["code"]) == (429, "rate_limit")
        runtime.accounts.update(account.id, status="banned")
        banned = call(upload, auth=key, body={"file": image_bytes()}, **form)
        assert (banned.status_code, banned.json()) == (
            403, {"ok": False, "code": "banned", "error": "Your account is banned."})
    finally:
        runtime.close()


def test_document_under_a_prefix_and_from_the_cli(tmp_path: Path, app_kind: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text(
        '[plugins]\nblocked = ["uploader", "paste", "cdn", "phash_blocklist", "login"]\n\n'
        '[services.images]\nprefix = "/img"\n')
    (data / "secret").write_text("cli-secret\n")
    from hepcore.config import load_config

    runtime = build_runtime(load_config(data))
    try:
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        served = document(client, "/img/openapi.json")
    finally:
        runtime.close()
    assert served["servers"] == [{"url": "/img"}]
    assert "/api/v1/upload" in served["paths"]
    printed = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "openapi",
                              "images"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(printed.stdout) == served
