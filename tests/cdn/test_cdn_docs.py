"""docs/cdn.md: every ``curl`` example runs against a real server (gunicorn and
uvicorn) with only the placeholders replaced, and every ``hepcore cdn``
command and option is documented."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cdnkit import OTHER_PLUGINS, Origin
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

from hepcore import Runtime
from hepcore.cli import build_parser, main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "cdn.md"
DOC_HOST = "https://cdn.example"
DOC_KEY = "sk_cdn_YOURKEY"
DOC_ID = "0190f1a2-b3c4-7d5e-8f90-a1b2c3d4e5f6"
DOC_OTHER_ID = "0190f1a2-0000-7000-8000-000000000000"
DOC_ORIGIN = "https://origin.example"
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def doc_commands(program: str) -> list[str]:
    """Every line of the ```sh blocks of docs/cdn.md that starts with ``program``."""
    lines = []
    for block in _SH_BLOCK.findall(DOC.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith(program + " "):
                lines.append(line.strip())
    return lines


def cli(data: Path, *args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(data), *args]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cdndocs")
    cli(root, "init")
    (root / "hepcore.toml").write_text(
        f"[plugins]\nblocked = {json.dumps(list(OTHER_PLUGINS))}\n\n"
        '[services.cdn]\nprefix = "/"\n\n[outbound]\nallow = ["127.0.0.1"]\n')
    cli(root, "accounts", "create", "orpheus", "--email", "orpheus@example.org")
    return root


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, data: Path) -> Iterator[RunningServer]:
    with run_server(data, request.param, workers=1, threads=4) as srv:
        yield srv


def new_key(data: Path) -> str:
    return cli(data, "cdn", "key", "--account", "orpheus", "--name", "docs").split()[-1]


def test_doc_has_an_example_for_every_route(tmp_path: Path) -> None:
    """Every method and path of the service (GET /openapi.json and, through one
    example, the ``.json`` aliases included) has a curl example on the page."""
    mounts = service_mounts(tmp_path, {"cdn": ""})
    assert coverage_problems(curl_examples(DOC), mounts, DOC_HOST) == []


UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass
class DocState:
    url: str
    data: Path
    key: str
    photo: bytes
    ids: list[str] = field(default_factory=list)  # the fresh uploads behind the two ids
    fetched: dict[str, str] = field(default_factory=dict)  # original URL -> file URL

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def upload_object(a: Answer, s: DocState, status: int, filename: str) -> dict[str, Any]:
    assert a.status == status, a
    upload = a.json()
    assert set(upload) == {"id", "filename", "size", "content_type", "url", "created_at"}
    assert UUID7.fullmatch(upload["id"]) and upload["filename"] == filename, upload
    assert upload["url"] == f"{s.url}/{upload['id']}/{filename}"
    return dict(upload)


def check_me(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    me = a.json()
    assert {k: me[k] for k in ("email", "name", "storage_limit", "quota_tier")} == {
        "email": "orpheus@example.org", "name": "orpheus", "storage_limit": 50 * 1024 * 1024,
        "quota_tier": "unverified"}
    assert me["id"].startswith("usr_") and me["storage_used"] >= 2 * len(s.photo)


def check_upload(a: Answer, s: DocState) -> None:
    upload = upload_object(a, s, 201, "photo.jpg")
    assert (upload["size"], upload["content_type"]) == (len(s.photo), "image/jpeg")
    assert requests.get(upload["url"], timeout=10).content == s.photo


def check_batch(a: Answer, s: DocState) -> None:
    assert a.status == 201, a
    reply = a.json()
    assert reply["failed"] == [], reply
    assert [u["filename"] for u in reply["uploads"]] == ["photo.jpg", "notes.txt"]
    assert reply["uploads"][1]["content_type"] == "text/plain; charset=utf-8"
    assert requests.get(reply["uploads"][1]["url"], timeout=10).text == "notes\n"


def check_from_url(a: Answer, s: DocState) -> None:
    upload = upload_object(a, s, 201, "image.jpg")
    assert (upload["size"], upload["content_type"]) == (len(s.photo), "image/jpeg")
    s.fetched[json.loads(str(a.sent.value("-d")))["url"]] = upload["url"]


def check_rename(a: Answer, s: DocState) -> None:
    upload = upload_object(a, s, 200, "holiday.jpg")  # the extension is kept
    assert upload["id"] == s.ids[0]
    assert requests.get(upload["url"], timeout=10).content == s.photo


def check_delete(a: Answer, s: DocState) -> None:
    assert (a.status, a.json()) == (200, {"id": s.ids[0], "deleted": True}), a
    assert requests.get(f"{s.url}/{s.ids[0]}/photo.jpg", timeout=10).status_code == 404


def check_delete_batch(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    assert a.json() == {"deleted": [{"id": s.ids[0], "filename": "photo.jpg"},
                                    {"id": s.ids[1], "filename": "photo.jpg"}]}


def check_revoke(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    assert a.json() == {"success": True, "owner_email": "orpheus@example.org",
                        "key_name": "docs", "status": "complete"}
    refused = requests.get(s.url + "/api/v4/me", headers=s.auth(), timeout=10)
    assert (refused.status_code, refused.json()) == (401, {"error": "invalid_auth"})
    s.key = new_key(s.data)


def check_file(a: Answer, s: DocState) -> None:
    assert a.headers["access-control-allow-origin"] == "*", a.headers
    assert a.headers["cache-control"] == "max-age=31536000, public"
    if a.example.has("-I", "--head"):
        assert a.status == 200 and a.body == b"", a
        assert a.headers["content-length"] == str(len(s.photo))
    elif a.example.has("-r", "--range"):
        assert a.status == 206, a
        assert a.headers["content-range"] == f"bytes 0-99/{len(s.photo)}"
        assert a.output() == s.photo[:100]
    else:
        assert a.status == 200 and a.headers["content-type"] == "image/jpeg", a
        assert a.output() == s.photo


def check_preflight(a: Answer, s: DocState) -> None:
    assert a.status == 204, a
    assert {k: a.headers[k] for k in ("access-control-allow-origin",
                                      "access-control-allow-methods",
                                      "access-control-max-age")} == {
        "access-control-allow-origin": "*", "access-control-allow-methods": "GET, HEAD",
        "access-control-max-age": "86400"}


def check_rescue(a: Answer, s: DocState) -> None:
    original = parse_qs(urlsplit(a.sent.url).query)["url"][0]
    assert a.status == 302 and a.headers["location"] == s.fetched[original], a
    assert a.headers["access-control-allow-origin"] == "*"


def check_up(a: Answer, s: DocState) -> None:
    assert a.status == 200 and a.headers["content-type"] == "text/html; charset=utf-8", a
    assert a.body.startswith(b"<!DOCTYPE html>")


DOC_CHECKS: dict[str, Callable[[Answer, DocState], None]] = {
    "me": check_me, "upload": check_upload, "uploads": check_batch,
    "upload_from_url": check_from_url, "rename": check_rename, "delete": check_delete,
    "delete_batch": check_delete_batch, "revoke": check_revoke, "file": check_file,
    "preflight": check_preflight, "rescue": check_rescue, "up": check_up,
}


def test_doc_curl_examples_work(server: RunningServer, data: Path, tmp_path: Path,
                                tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every curl example of the page, run in page order with only the
    placeholders replaced, gets the answer the page describes."""
    (mount,) = service_mounts(tmp_path_factory.mktemp("routes"), {"cdn": ""})
    examples = curl_examples(DOC)
    assert len(examples) >= 15, examples
    photo = jpeg_bytes(32, 24)
    (tmp_path / "photo.jpg").write_bytes(photo)
    (tmp_path / "notes.txt").write_text("notes\n")
    state = DocState(server.url, data, new_key(data), photo)
    checked = set()
    with Origin() as origin:
        origin.reply("/image.jpg", photo)
        origin.reply("/private/image.jpg", photo)
        for example in examples:
            endpoint = route_of(example, [mount])
            assert endpoint is not None, example.line
            state.ids = []
            for _ in range(2):  # fresh uploads for the ids the example names
                r = requests.post(server.url + "/api/v4/upload", timeout=10,
                                  headers=state.auth(), files={"file": ("photo.jpg", photo)})
                state.ids.append(r.json()["id"])
            answer = run_example(example, {
                DOC_HOST: server.url, DOC_KEY: state.key, DOC_ID: state.ids[0],
                DOC_OTHER_ID: state.ids[1], DOC_ORIGIN: origin.url}, tmp_path)
            if endpoint.name == "openapi":
                check_openapi(answer, mount)
            else:
                DOC_CHECKS[endpoint.name](answer, state)
            checked.add(endpoint.name)
        private = [s for s in origin.seen if s.path == "/private/image.jpg"]
        assert private and private[0].headers["authorization"] == "Bearer source_token_here"
    assert checked == {e.name for e in mount.endpoints}


def test_doc_covers_every_cdn_command_and_option() -> None:
    text = DOC.read_text(encoding="utf-8")
    parser = build_parser()
    (cdn,) = [a.choices["cdn"] for a in parser._actions
              if isinstance(a, argparse._SubParsersAction) and "cdn" in a.choices]
    (actions,) = [a for a in cdn._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(actions.choices) == {"key", "quota", "list", "delete", "import", "recount"}
    for name, sub in actions.choices.items():
        assert f"hepcore cdn {name}" in text, name
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in text, f"hepcore cdn {name} {option}"
    for command in doc_commands("hepcore"):
        args = shlex.split(command, comments=True)[1:]
        with contextlib.redirect_stderr(io.StringIO()):
            parser.parse_args(args)  # every documented command line parses


def test_doc_names_every_option_and_endpoint(runtime: Runtime) -> None:
    text = DOC.read_text(encoding="utf-8")
    for option in ("storage_public_base_url", "url_upload_rate_per_minute", "default_tier",
                   "tiers", "[outbound] allow"):
        assert option in text, option
    paths = {r.path.removesuffix(".json").replace("{upload_id}", ":id")
             for r in runtime.services["cdn"].routes() if r.path.startswith("/api/")}
    assert len(paths) == 8
    for path in paths:
        for method in ("GET", "POST", "PATCH", "DELETE"):
            if f"## `{method} {path}`" in text:
                break
        else:
            raise AssertionError(f"{path} has no section")
