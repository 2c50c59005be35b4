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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


def test_a_paste_of_many_lines_gets_a_bounded_page(host: Host) -> None:
    """The reader page of a paste of 8 M newlines was 310 MB; it now shows the
    first 50,000 lines and links to the raw text, which is whole."""
    key = host.new_key("lines", plan="prime")
    content = "a" + "\n" * (4 * 1024 * 1024)
    r = requests.post(host.url + "/api/paste", json={"content": content, "language": "text"},
                      headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert r.status_code == 200, r.text
    pid = r.json()["data"]["id"]
    page = requests.get(f"{host.url}/{pid}", timeout=30)
    assert page.status_code == 200
    assert len(page.content) < 3_000_000
    assert '<span class="normal">50000</span></pre>' in page.text
    assert (f'<p class="cut">The page shows the first 50,000 lines. <a href="./{pid}/raw"'
            ' rel="nofollow">The raw text</a> holds the whole paste: 4.0 MiB (4,194,305'
            ' bytes).</p>') in page.text
    raw = requests.get(f"{host.url}/{pid}/raw", timeout=30)
    assert raw.content == content.encode()


DOC = ROOT / "docs" / "paste.md"
DOC_LOGIN_TOKEN = "eyJhIjoiYWxpY2UifQ.aF3kPw.5mQz8yTn2R0vXcLb7JdH"
DOC_MOUNTS = {"paste": "", "login": "/login"}


def test_doc_has_an_example_for_every_route(tmp_path: Path) -> None:
    """Every method and path of the paste and login services (their
    /openapi.json included) has a curl example on the page."""
    mounts = service_mounts(tmp_path, DOC_MOUNTS)
    assert coverage_problems(curl_examples(DOC), mounts, DOC_HOST) == []


@dataclass
class DocState:
    url: str
    key: str
    paste: str = ""  # the fresh paste behind aB3dE6kp
    content: str = ""
    session: str = ""  # the hepcore_login cookie of the last sign-in

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def snippet(self, pid: str) -> requests.Response:
        return requests.get(f"{self.url}/api/v1/snippets/{pid}", headers=self.auth(),
                            timeout=10)


SNIPPET_FIELDS = {"id", "url", "title", "language", "visibility", "isPermanent", "size",
                  "views", "anonymous", "createdAt", "updatedAt", "expiresAt"}


def check_create(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    reply = a.json()
    assert reply["ok"] is True and set(reply["data"]) == {"id", "url", "expiresAt", "anonymous"}
    data = reply["data"]
    assert data["url"] == f"{s.url}/{data['id']}" and data["anonymous"] is False, data
    sent = json.loads(str(a.example.value("-d")))
    stored = s.snippet(data["id"]).json()["data"]  # the key's account, also signed in
    assert stored["content"] == sent["content"]
    assert stored["visibility"] == sent.get("visibility", "public")
    if stored["visibility"] == "private":  # nobody else can read it
        assert requests.get(f"{data['url']}/raw", timeout=10).status_code == 404
    else:
        assert requests.get(f"{data['url']}/raw", timeout=10).text == sent["content"]


def check_snippets(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    data = a.json()["data"]
    assert set(data) == {"snippets", "nextBefore"}
    limit = int(parse_qs(urlsplit(a.example.url).query).get("limit", ["50"])[0])
    assert 0 < len(data["snippets"]) <= limit and data["snippets"][0]["id"] == s.paste
    assert set(data["snippets"][0]) == SNIPPET_FIELDS


def check_snippet_create(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    data = a.json()["data"]
    assert set(data) == SNIPPET_FIELDS and data["visibility"] == "unlisted", data
    assert s.snippet(data["id"]).json()["data"]["content"] == "unlisted by default"


def check_snippet(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    data = a.json()["data"]
    assert set(data) == SNIPPET_FIELDS | {"content"}
    assert (data["id"], data["content"], data["visibility"]) == (s.paste, s.content, "public")


def check_snippet_patch(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    data = a.json()["data"]
    assert (data["id"], data["title"], data["visibility"]) == (s.paste, "renamed", "public")
    assert "<title>\u2068renamed\u2069 · " in requests.get(f"{s.url}/{s.paste}", timeout=10).text


def check_snippet_delete(a: Answer, s: DocState) -> None:
    assert (a.status, a.json()) == (200, {"ok": True, "data": {"id": s.paste, "deleted": True}})
    assert requests.get(f"{s.url}/{s.paste}/raw", timeout=10).status_code == 404


def check_hastebin_create(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    (pid,) = a.json().values()
    assert set(a.json()) == {"key"}
    assert requests.get(f"{s.url}/raw/{pid}", timeout=10).text == "echo hello from hastebin"


def check_hastebin_get(a: Answer, s: DocState) -> None:
    assert (a.status, a.json()) == (200, {"key": s.paste, "data": s.content}), a


def check_raw(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    assert a.headers["content-type"] == "text/plain; charset=utf-8"
    assert a.headers["x-content-type-options"] == "nosniff"
    assert a.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert a.headers["cache-control"] == "public, max-age=60" and a.headers["etag"]
    if a.example.method == "HEAD":
        assert a.body == b"" and a.headers["content-length"] == str(len(s.content))
    else:
        assert a.body == s.content.encode()


def check_reader(a: Answer, s: DocState) -> None:
    assert a.status == 200 and a.headers["content-type"] == "text/html; charset=utf-8", a
    assert "style-src 'nonce-" in a.headers["content-security-policy"]
    if a.example.method == "HEAD":
        assert a.body == b"", a
    else:
        page = a.body.decode()
        assert "# &lt;b&gt;&amp;&lt;/b&gt;" in page and "<b>&" not in page, page  # escaped
        assert f'/{s.paste}/raw"' in page, page


def check_login_page(a: Answer, s: DocState) -> None:
    assert a.status == 200 and a.headers["content-type"] == "text/html; charset=utf-8", a
    page = a.body.decode()
    assert "Sign in as <strong>docs</strong>?" in page and '<form method="post">' in page


def check_sign_in(a: Answer, s: DocState) -> None:
    assert (a.status, a.headers["location"]) == (303, "/"), a
    cookie = a.headers["set-cookie"]
    assert cookie.startswith("hepcore_login=") and "HttpOnly" in cookie, cookie
    s.session = cookie.split(";", 1)[0]
    jar = (a.cwd / str(a.example.value("-c"))).read_text()
    assert s.session.split("=", 1)[1] in jar


def check_logout(a: Answer, s: DocState) -> None:
    assert (a.status, a.headers["location"]) == (303, "/"), a
    assert a.headers["set-cookie"].startswith("hepcore_login=; Path=/; Max-Age=0")
    stale = requests.post(s.url + "/api/paste", json={"content": "x"}, timeout=10,
                          headers={"Cookie": s.session})  # the old cookie no longer signs in
    assert (stale.status_code, stale.json()) == (401, {"ok": False, "error": "Invalid API key"})


DOC_CHECKS: dict[tuple[str, str], Callable[[Answer, DocState], None]] = {
    ("paste", "create"): check_create, ("paste", "create_v1"): check_create,
    ("paste", "snippets"): check_snippets, ("paste", "snippet_create"): check_snippet_create,
    ("paste", "snippet"): check_snippet, ("paste", "snippet_patch"): check_snippet_patch,
    ("paste", "snippet_delete"): check_snippet_delete,
    ("paste", "hastebin_create"): check_hastebin_create,
    ("paste", "hastebin_get"): check_hastebin_get, ("paste", "hastebin_raw"): check_raw,
    ("paste", "raw"): check_raw, ("paste", "reader"): check_reader,
    ("login", "login_page"): check_login_page, ("login", "login"): check_sign_in,
    ("login", "logout"): check_logout,
}


def test_doc_curl_examples(host: Host, work: Path,
                           tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every curl example of the page, run in page order with only the
    placeholders replaced, gets the answer the page describes."""
    mounts = service_mounts(tmp_path_factory.mktemp("routes"), DOC_MOUNTS)
    examples = curl_examples(DOC)
    assert len(examples) >= 20, examples
    state = DocState(host.url, host.new_key("docs"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(host.data), "login-link", "--account", "docs",
                     "--base", host.url]) == 0
    login_token = out.getvalue().strip().rsplit("/", 1)[1]
    checked = set()
    for number, example in enumerate(examples):
        endpoint = route_of(example, mounts)
        assert endpoint is not None, example.line
        state.content = f"echo 'docs example {number}' # <b>&</b>"
        state.paste = requests.post(host.url + "/api/paste", json={"content": state.content},
                                    headers=state.auth(), timeout=10).json()["data"]["id"]
        answer = run_example(example, {DOC_HOST: host.url, PLACEHOLDER_KEY: state.key,
                                       DOC_ID: state.paste, DOC_LOGIN_TOKEN: login_token}, work)
        if endpoint.name == "openapi":
            check_openapi(answer, next(m for m in mounts if m.service == endpoint.service))
        else:
            DOC_CHECKS[endpoint.service, endpoint.name](answer, state)
        checked.add((endpoint.service, endpoint.name))
    assert checked == {(e.service, e.name) for m in mounts for e in m.endpoints}


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
    bad = host.cli("login-link", "--account", "lena", "--base", "paste.example")
    assert bad.returncode == 2 and "is not an http(s) URL" in bad.stderr, bad.stderr
    link = host.cli("login-link", "--account", "lena", "--base", host.url + "/",
                    "--next", "/api/x")
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
