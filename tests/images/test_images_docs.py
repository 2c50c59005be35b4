"""docs/images.md: the page has a curl example for every route of the
service, and every example, run with the real ``curl`` binary against real
servers (gunicorn and uvicorn) with only the placeholders replaced, gets the
answer the page describes. The images are real JPEGs made by Pillow."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from dockit import (
    Answer,
    check_openapi,
    coverage_problems,
    curl_examples,
    route_of,
    run_example,
    service_mounts,
)
from httpkit import jpeg_bytes
from PIL import Image

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "images.md"
DOC_HOST = "https://img.example"
DOC_KEY = "fxf_YOUR_KEY"
DOC_UPLOAD_TOKEN = "ut_YOUR_UPLOAD_TOKEN"
DOC_FILENAME = "FIXITFY-aB3xZ7nQrL9p.jpg"
DOC_DELETE_TOKEN = "3f9a8c1e5b7d2a4f6e8c0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a"
DOC_WEBHOOK = "wh_5f2c9a1b7e3d4c60"
DOC_RECEIVER = "https://your-server.com/webhooks/fixitfy"
# Loopback and not allowed by [outbound]: deliveries are refused on the spot,
# so nothing leaves the machine.
RECEIVER = "http://127.0.0.1:9/webhooks/fixitfy"
CONFIG = """\
[plugins]
blocked = ["uploader", "paste", "cdn", "login", "phash_blocklist"]

[services.images]
prefix = "/"
"""
FILENAME = re.compile(r"FIXITFY-[A-Za-z0-9]{12}\.jpg")
UPLOAD_FIELDS = {"filename", "url", "mime", "size", "width", "height", "tags", "created_at"}


def cli(data: Path, *args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--data", str(data), *args]) == 0
    return out.getvalue()


@dataclass
class Host:
    data: Path
    server: RunningServer
    key: str


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def host(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A host of its own per server kind: the images service at ``/`` and an
    account ``docs`` with an ``fxf_`` key."""
    data = tmp_path_factory.mktemp(f"images-docs-{request.param}")
    cli(data, "init")
    (data / "hepcore.toml").write_text(CONFIG)
    cli(data, "accounts", "create", "docs", "--email", "docs@example.org")
    key = cli(data, "keys", "create", "--service", "images", "--account", "docs",
              "--label", "docs").strip().splitlines()[-1]
    assert re.fullmatch(r"fxf_[0-9a-f]{64}", key)
    with run_server(data, request.param, workers=1, threads=4) as srv:
        yield Host(data, srv, key)


def test_doc_has_an_example_for_every_route(tmp_path: Path) -> None:
    """Every method and path of the service (webhooks and GET /openapi.json
    included) has a curl example on the page, and every example calls a route."""
    mounts = service_mounts(tmp_path, {"images": ""})
    assert coverage_problems(curl_examples(DOC), mounts, DOC_HOST) == []


@dataclass
class DocState:
    url: str
    key: str
    sent: bytes = b""  # photo.jpg as it was when the example ran
    filename: str = ""  # the fresh upload behind the filename and delete token
    upload: dict[str, object] = field(default_factory=dict)
    webhook: str = ""  # the fresh endpoint behind wh_5f2c9a1b7e3d4c60
    webhooks: dict[str, str] = field(default_factory=dict)  # id -> url, made by the examples
    secret: str = ""

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def ok(a: Answer, status: int = 200) -> dict[str, object]:
    assert a.status == status and a.headers["content-type"] == "application/json", a
    reply = a.json()
    assert reply["ok"] is True, reply
    return dict(reply)


def check_upload(a: Answer, s: DocState) -> None:
    reply = ok(a)
    assert FILENAME.fullmatch(str(reply["filename"])), reply
    assert reply["url"] == f"{s.url}/images/{reply['filename']}"
    assert re.fullmatch(re.escape(s.url) + "/api/delete/[0-9a-f]{64}", str(reply["delete_url"]))
    with Image.open(io.BytesIO(s.sent)) as sent:
        expected = {"mime": "image/jpeg", "width": sent.width, "height": sent.height,
                    "hash_sha256": hashlib.sha256(s.sent).hexdigest()}
    assert {k: reply[k] for k in expected} == expected, reply
    served = requests.get(str(reply["url"]), timeout=10)
    assert served.status_code == 200 and len(served.content) == reply["size"]


def check_upload_token(a: Answer, s: DocState) -> None:
    reply = ok(a)
    assert set(reply) == {"ok", "token", "expires_at"}, reply
    assert str(reply["token"]).startswith("ut_"), reply
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(reply["expires_at"]))
    refused = requests.get(s.url + "/api/v1/me", timeout=10,
                           headers={"Authorization": f"Bearer {reply['token']}"})
    assert (refused.status_code, refused.json()["error"]) == (
        401, "Upload tokens can only be used to upload.")


def check_delete_link(a: Answer, s: DocState) -> None:
    assert ok(a) == {"ok": True, "deleted": s.filename}
    assert requests.get(f"{s.url}/images/{s.filename}", timeout=10).status_code == 404
    again = requests.delete(a.sent.url, timeout=10)
    assert (again.status_code, again.json()) == (404, {
        "ok": False, "code": "not_found", "error": "Delete link is invalid or was already used."})


def check_image(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    assert {k: a.headers[k] for k in ("content-type", "cache-control",
                                      "x-content-type-options")} == {
        "content-type": "image/jpeg", "cache-control": "public, max-age=86400",
        "x-content-type-options": "nosniff"}
    assert a.headers["content-length"] == str(s.upload["size"])
    if a.example.method == "HEAD":
        assert a.body == b"", a
        return
    stored = a.output()
    assert a.headers["etag"] == f'"{hashlib.sha256(stored).hexdigest()}"'
    with Image.open(io.BytesIO(stored)) as img:
        assert (img.format, img.size) == ("JPEG", (s.upload["width"], s.upload["height"]))


def check_uploads(a: Answer, s: DocState) -> None:
    reply = ok(a)
    limit = int(parse_qs(urlsplit(a.example.url).query)["limit"][0])
    uploads = reply["uploads"]
    assert isinstance(uploads, list) and 0 < len(uploads) <= limit, reply
    assert reply["count"] == len(uploads) and "next_before" in reply
    assert set(uploads[0]) == UPLOAD_FIELDS and FILENAME.fullmatch(uploads[0]["filename"])


def check_upload_get(a: Answer, s: DocState) -> None:
    upload = ok(a)["upload"]
    assert isinstance(upload, dict) and set(upload) == UPLOAD_FIELDS | {"hash_sha256"}
    assert (upload["filename"], upload["hash_sha256"]) == (
        s.filename, hashlib.sha256(s.sent).hexdigest())


def check_upload_delete(a: Answer, s: DocState) -> None:
    assert ok(a) == {"ok": True, "deleted": s.filename}
    gone = requests.get(f"{s.url}/images/{s.filename}", timeout=10)
    assert (gone.status_code, gone.json()["error"]) == (404, "Image not found.")


def check_me(a: Answer, s: DocState) -> None:
    reply = ok(a)
    account, key = reply["account"], reply["key"]
    assert isinstance(account, dict) and isinstance(key, dict)
    assert (account["email"], account["role"]) == ("docs@example.org", "user")
    assert account["uploads_active"] >= 1 and account["storage_used_bytes"] > 0
    assert key["label"] == "docs" and str(key["prefix"]).startswith("fxf_")
    assert key["request_count"] >= 10  # every request above made with it


def check_webhooks(a: Answer, s: DocState) -> None:
    reply = ok(a)
    assert reply["signing_secret"] == s.secret
    assert isinstance(reply["webhooks"], list)
    assert {w["id"]: w["url"] for w in reply["webhooks"]} == s.webhooks


def check_webhook_create(a: Answer, s: DocState) -> None:
    reply = ok(a)
    webhook = reply["webhook"]
    assert isinstance(webhook, dict) and re.fullmatch(r"wh_[0-9a-f]{16}", webhook["id"])
    assert (webhook["url"], webhook["enabled"], webhook["failure_count"]) == (RECEIVER, True, 0)
    assert re.fullmatch(r"[0-9a-f]{64}", str(reply["signing_secret"]))
    s.secret = str(reply["signing_secret"])
    s.webhooks[webhook["id"]] = RECEIVER


def check_webhook_update(a: Answer, s: DocState) -> None:
    webhook = ok(a)["webhook"]
    assert isinstance(webhook, dict)
    assert (webhook["id"], webhook["enabled"]) == (s.webhook, False)


def check_webhook_delete(a: Answer, s: DocState) -> None:
    assert ok(a) == {"ok": True, "deleted": s.webhook}
    del s.webhooks[s.webhook]
    listed = requests.get(s.url + "/api/v1/webhooks", headers=s.auth(), timeout=10).json()
    assert s.webhook not in [w["id"] for w in listed["webhooks"]]


def check_rotate(a: Answer, s: DocState) -> None:
    reply = ok(a)
    assert set(reply) == {"ok", "signing_secret"}
    assert re.fullmatch(r"[0-9a-f]{64}", str(reply["signing_secret"]))
    assert reply["signing_secret"] != s.secret
    s.secret = str(reply["signing_secret"])


DOC_CHECKS: dict[str, Callable[[Answer, DocState], None]] = {
    "upload": check_upload, "upload_token": check_upload_token,
    "delete_link": check_delete_link, "image": check_image, "uploads": check_uploads,
    "upload_get": check_upload_get, "upload_delete": check_upload_delete, "me": check_me,
    "images.webhooks.list": check_webhooks, "images.webhooks.create": check_webhook_create,
    "images.webhooks.update": check_webhook_update,
    "images.webhooks.delete": check_webhook_delete, "images.webhooks.rotate": check_rotate,
}


def test_doc_curl_examples_work(host: Host, tmp_path: Path,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every curl example of the page, run in page order with only the
    placeholders replaced, gets the answer the page describes."""
    (mount,) = service_mounts(tmp_path_factory.mktemp("routes"), {"images": ""})
    examples = curl_examples(DOC)
    assert len(examples) >= 16, examples
    state = DocState(host.server.url, host.key)
    checked = set()
    for number, example in enumerate(examples):
        endpoint = route_of(example, [mount])
        assert endpoint is not None, example.line
        # A new real JPEG per example (another size, so never a dedupe hit).
        state.sent = jpeg_bytes(40 + number, 30)
        (tmp_path / "photo.jpg").write_bytes(state.sent)
        values = {DOC_HOST: state.url, DOC_KEY: state.key, DOC_RECEIVER: RECEIVER}
        if DOC_FILENAME in example.line or DOC_DELETE_TOKEN in example.line:
            r = requests.post(state.url + "/api/v1/upload", headers=state.auth(), timeout=10,
                              files={"file": ("photo.jpg", state.sent, "image/jpeg")})
            assert r.status_code == 200, r.text
            state.upload = r.json()
            state.filename = str(state.upload["filename"])
            values[DOC_FILENAME] = state.filename
            values[DOC_DELETE_TOKEN] = str(state.upload["delete_url"]).rsplit("/", 1)[1]
        if DOC_WEBHOOK in example.line:
            r = requests.post(state.url + "/api/v1/webhooks", headers=state.auth(),
                              json={"url": RECEIVER}, timeout=10)
            state.webhook = values[DOC_WEBHOOK] = r.json()["webhook"]["id"]
            state.webhooks[state.webhook] = RECEIVER
        if DOC_UPLOAD_TOKEN in example.line:
            values[DOC_UPLOAD_TOKEN] = requests.post(
                state.url + "/api/v1/upload-token", headers=state.auth(), json={},
                timeout=10).json()["token"]
        answer = run_example(example, values, tmp_path)
        if endpoint.name == "openapi":
            check_openapi(answer, mount)
        else:
            DOC_CHECKS[endpoint.name](answer, state)
        checked.add(endpoint.name)
    assert checked == {e.name for e in mount.endpoints}
