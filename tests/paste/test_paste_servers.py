"""The paste service on real servers (gunicorn and uvicorn via ``hepcore serve``):
the spec's curl and ``jq | curl`` examples run unchanged (only host and key
replaced), every curl example of docs/paste.md, the ``hepcore paste`` client,
``hepcore purge`` and ``hepcore login-link``. Loopback only."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Spec section 4.5, verbatim.
SPEC_CURL = """\
curl https://paste.hep.gg/api/paste \\
  -H "Authorization: Bearer hepgg_pst_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \\
  -H "Content-Type: application/json" \\
  -d '{"title": "deploy log", "content": "==> building\\n==> done in 4.2s",
       "language": "bash", "visibility": "unlisted"}'"""
SPEC_JQ = """\
jq -Rs '{content: ., language: "python"}' main.py | \\
  curl https://paste.hep.gg/api/paste \\
    -H "Authorization: Bearer hepgg_pst_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \\
    -H "Content-Type: application/json" --data-binary @-"""
SPEC_HOST = "https://paste.hep.gg"
PLACEHOLDER_KEY = "hepgg_pst_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
DOC_HOST = "https://paste.example"
DOC_ID = "aB3dE6kp"
MAIN_PY = 'import sys\n\n\ndef main():\n    print("héllo", sys.argv[1:])\n\n\nmain()\n'
CONFIG = """\
[services.paste]
prefix = "/"

[services.uploader]
prefix = "/uploader"
"""


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is required by these tests and is not on PATH"
    return path


@dataclass
class Host:
    data: Path
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def cli(self, *args: str, stdin: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hepcore", "--data", str(self.data), *args],
                              capture_output=True, text=True, timeout=60, check=False,
                              input=stdin, env={**os.environ, **(env or {})})

    def new_key(self, account: str, plan: str = "free") -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["--data", str(self.data), "accounts", "create", account,
                         "--plan", plan]) == 0
            assert main(["--data", str(self.data), "keys", "create", "--service", "paste",
                         "--account", account]) == 0
        key = out.getvalue().strip().splitlines()[-1]
        assert re.fullmatch(r"hepgg_pst_[A-Za-z0-9]{32}", key)
        return key


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def host(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    data = tmp_path_factory.mktemp(f"paste-{request.param}")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--data", str(data), "init"]) == 0
    (data / "hepcore.toml").write_text(CONFIG)
    with run_server(data, request.param, workers=1, threads=4) as srv:
        yield Host(data, srv)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(MAIN_PY, encoding="utf-8")
    return tmp_path


def run_curl(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[0] == "curl", command
    return subprocess.run([tool("curl"), "-sS", *argv[1:]], cwd=cwd, capture_output=True,
                          timeout=30, check=False)


def test_spec_examples_run_unchanged(host: Host, work: Path) -> None:
    key = host.new_key("spec")
    proc = run_curl(SPEC_CURL.replace(SPEC_HOST, host.url).replace(PLACEHOLDER_KEY, key), work)
    assert proc.returncode == 0, proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["ok"] is True and reply["data"]["anonymous"] is False
    pid = reply["data"]["id"]
    assert reply["data"]["url"] == f"{host.url}/{pid}"
    raw = requests.get(f"{host.url}/{pid}/raw", timeout=10)
    assert raw.text == "==> building\n==> done in 4.2s"
    assert raw.headers["Cache-Control"] == "no-store"  # unlisted

    tool("jq")
    pipeline = SPEC_JQ.replace(SPEC_HOST, host.url).replace(PLACEHOLDER_KEY, key)
    proc2 = subprocess.run([tool("bash"), "-c", pipeline], cwd=work, capture_output=True,
                           timeout=30, check=False)
    assert proc2.returncode == 0, proc2.stderr
    reply = json.loads(proc2.stdout)
    pid = reply["data"]["id"]
    raw = requests.get(f"{host.url}/{pid}/raw", timeout=10)
    assert raw.content == MAIN_PY.encode("utf-8")
    assert raw.headers["Content-Type"] == "text/plain; charset=utf-8"
    page = requests.get(f"{host.url}/{pid}", timeout=10)
    assert page.status_code == 200 and "<dd>python</dd>" in page.text


def test_errors_on_the_wire(host: Host) -> None:
    key = host.new_key("wire")
    r = requests.post(host.url + "/api/paste", json={"content": "x"}, timeout=10)
    assert (r.status_code, r.content) == (401, b'{"ok":false,"error":"Invalid API key"}')
    r = requests.post(host.url + "/api/v1/paste", data="{", timeout=10,
                      headers={"Authorization": f"Bearer {key}"})
    assert (r.status_code, r.json()) == (400, {"ok": False, "error": "Invalid JSON body"})
    r = requests.post(host.url + "/api/paste", json={"content": "x" * (1024 * 1024 + 1)},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert (r.status_code, r.json()) == (413, {"ok": False,
                                               "error": "Paste too large. Max 1 MB."})
    missing = requests.get(host.url + "/zzzzzzzz", timeout=10)
    assert missing.status_code == 404 and "text/html" in missing.headers["Content-Type"]


def doc_curl_commands() -> list[str]:
    text = (ROOT / "docs" / "paste.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                assert line.lstrip().startswith("curl"), line
                commands.append(line.strip())
    return commands


def test_doc_curl_examples(host: Host, work: Path) -> None:
    commands = doc_curl_commands()
    assert len(commands) >= 10, commands
    key = host.new_key("docs")
    pid = requests.post(host.url + "/api/paste", json={"content": "echo docs example"},
                        headers={"Authorization": f"Bearer {key}"}, timeout=10
                        ).json()["data"]["id"]
    for command in commands:
        assert DOC_HOST in command, command
        line = (command.replace(DOC_HOST, host.url).replace(PLACEHOLDER_KEY, key)
                .replace(DOC_ID, pid))
        proc = run_curl(line + " -o /dev/null -w %{http_code}", work)
        assert proc.returncode == 0, (command, proc.stderr)
        assert proc.stdout.decode() in ("200", "303"), (command, proc.stdout)
    assert requests.get(f"{host.url}/api/v1/snippets/{pid}", timeout=10, headers={
        "Authorization": f"Bearer {key}"}).json()["data"]["title"] == "renamed"


def test_paste_client_command(host: Host, work: Path) -> None:
    key = host.new_key("client")
    done = host.cli("paste", str(work / "main.py"), "--server", host.url, "--key", key,
                    "--title", "from the CLI")
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert re.fullmatch(re.escape(host.url) + r"/[A-Za-z0-9]{8}", url)
    assert requests.get(url + "/raw", timeout=10).content == MAIN_PY.encode()
    piped = host.cli("paste", stdin="from stdin\n", env={"HEPCORE_PASTE_URL": host.url,
                                                          "HEPCORE_PASTE_KEY": key})
    assert piped.returncode == 0, piped.stderr
    assert requests.get(piped.stdout.strip() + "/raw", timeout=10).text == "from stdin\n"
    refused = host.cli("paste", "--server", host.url, "--key", "hepgg_pst_" + "0" * 32,
                       stdin="x")
    assert refused.returncode == 1
    assert "refused the paste (401): Invalid API key" in refused.stderr


def test_purge_command(host: Host) -> None:
    key = host.new_key("purger")
    pid = requests.post(host.url + "/api/paste", json={"content": "short-lived"},
                        headers={"Authorization": f"Bearer {key}"}, timeout=10
                        ).json()["data"]["id"]
    with contextlib.closing(sqlite3.connect(host.data / "hepcore.db", timeout=10)) as db:
        db.execute("UPDATE paste_pastes SET expires_at = 1 WHERE id = ?", (pid,))
        db.commit()
    assert requests.get(f"{host.url}/{pid}/raw", timeout=10).status_code == 404
    done = host.cli("purge", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["purged"] >= 1
    with contextlib.closing(sqlite3.connect(host.data / "hepcore.db", timeout=10)) as db:
        row = db.execute("SELECT deleted_at, content FROM paste_pastes WHERE id = ?",
                         (pid,)).fetchone()
    assert row[0] is not None and row[1] is None


def test_login_link_and_private_pastes(host: Host) -> None:
    host.new_key("lena")
    link = host.cli("login-link", "--account", "lena", "--base", host.url, "--next", "/api/x")
    assert link.returncode == 0, link.stderr
    url = link.stdout.strip()
    assert url.startswith(host.url + "/login/")
    browser = requests.Session()
    page = browser.get(url, timeout=10)
    assert page.status_code == 200 and "Sign in as <strong>lena</strong>?" in page.text
    done = browser.post(url, allow_redirects=False, timeout=10)
    assert done.status_code == 303 and done.headers["Location"] == "/api/x"
    assert "HttpOnly" in done.headers["Set-Cookie"]
    assert browser.post(url, allow_redirects=False, timeout=10).status_code == 400  # once
    r = browser.post(host.url + "/api/paste", json={"content": "for my eyes",
                                                     "visibility": "private"}, timeout=10)
    assert r.status_code == 200, r.text
    pid = r.json()["data"]["id"]
    assert browser.get(f"{host.url}/{pid}/raw", timeout=10).text == "for my eyes"
    assert requests.get(f"{host.url}/{pid}/raw", timeout=10).status_code == 404
