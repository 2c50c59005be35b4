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
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cdnkit import OTHER_PLUGINS, Origin
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


def test_doc_curl_examples_work(server: RunningServer, data: Path, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "curl is required by this test"
    commands = doc_commands("curl")
    assert len(commands) >= 12, commands
    photo = jpeg_bytes(32, 24)
    (tmp_path / "photo.jpg").write_bytes(photo)
    (tmp_path / "notes.txt").write_text("notes\n")
    key = new_key(data)
    statuses: set[str] = set()
    with Origin() as origin:
        origin.reply("/image.jpg", photo)
        origin.reply("/private/image.jpg", photo)
        for command in commands:
            assert DOC_HOST in command, command
            ids = []
            for _ in range(2):  # fresh uploads for the ids the example names
                r = requests.post(server.url + "/api/v4/upload", timeout=10,
                                  headers={"Authorization": f"Bearer {key}"},
                                  files={"file": ("photo.jpg", photo)})
                ids.append(r.json()["id"])
            line = (command.replace(DOC_HOST, server.url).replace(DOC_KEY, key)
                    .replace(DOC_ID, ids[0]).replace(DOC_OTHER_ID, ids[1])
                    .replace(DOC_ORIGIN, origin.url))
            argv = shlex.split(line)
            proc = subprocess.run([curl, *argv[1:], "-sS", "-w", "\n%{http_code}"],
                                  cwd=tmp_path, capture_output=True, timeout=30, check=False)
            assert proc.returncode == 0, (command, proc.stderr)
            body, _, status = proc.stdout.rpartition(b"\n")
            assert 200 <= int(status) < 400, (command, status, body[:300])
            statuses.add(status.decode())
            if b'"status":"complete"' in body:  # the revoke example
                assert requests.get(server.url + "/api/v4/me", timeout=10,
                                    headers={"Authorization": f"Bearer {key}"}).status_code == 401
                key = new_key(data)
        private = [s for s in origin.seen if s.path == "/private/image.jpg"]
        assert private and private[0].headers["authorization"] == "Bearer source_token_here"
    assert {"200", "201", "204", "206", "302"} <= statuses
    assert (tmp_path / "copy.jpg").read_bytes() == photo
    assert (tmp_path / "first-100-bytes.bin").read_bytes() == photo[:100]


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
