"""Existing uploader clients, unchanged, against real servers (gunicorn and uvicorn).

- The curl examples of the spec (section 4.7) and of the upstream pages,
  run with the real ``curl`` binary; only the host and the token are replaced.
- The upstream JavaScript ``fetch`` snippet, run with Node (18+ has fetch,
  FormData and Blob); only the host and the token are replaced.
- ShareX: the ``.sxcu`` from ``hepcore sharex`` (and the spec's minimal
  config), sent byte for byte the way ShareX's custom uploader sends it.
- The shell upload script from ``hepcore sharex --script``, run with ``sh``.
- Every ``curl`` example of docs/uploader.md, run against the server.

The client examples are quoted verbatim below; no network is used except
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from dockit import (
    Answer,
    Example,
    check_openapi,
    coverage_problems,
    curl_examples,
    route_of,
    run_example,
    service_mounts,
)
from PIL import Image

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent

# --- the client examples, verbatim ---------------------------------------

# Upstream "Uploader API" page, Quickstart (curl tab).
SEED_CURL_UPLOAD = """\
curl -X POST https://hep.gg/upload \\
-H "Authorization: hyd-up-xxxxxxxxxxxx" \\
-F "file=@screenshot.png\""""

# Upstream "Uploader API" page, Quickstart (JavaScript tab).
SEED_FETCH_SNIPPET = """\
import { readFileSync } from "node:fs";
const form = new FormData();
form.append(
"file",
new Blob([readFileSync("screenshot.png")]),
"screenshot.png",
);
const res = await fetch("https://hep.gg/upload", {
method: "POST",
headers: { Authorization: "hyd-up-xxxxxxxxxxxx" },
body: form,
});
const { ID, url } = await res.json();
console.log(url); // https://i.hep.gg/abc123.png
"""

# Upstream "Authentication and keys" page: the three header forms. They are
# fragments ending in "...": the rest of the Quickstart command completes them.
SEED_CURL_HEADER_FORMS = [
    'curl -H "Authorization: hyd-up-xxxxxxxxxxxx" ...',
    'curl -H "Authorization: Bearer hyd-up-xxxxxxxxxxxx" ...',
    'curl -H "Authorization: Token hyd-up-xxxxxxxxxxxx" ...',
]
QUICKSTART_REST = '-X POST https://hep.gg/upload -F "file=@screenshot.png"'

# Spec, section 4.7.
SPEC_CURL_FILE = """\
curl -X POST https://hep.gg/upload \\
  -H "Authorization: hyd-up-xxxxxxxxxxxx" \\
  -F "file=@screenshot.png\""""
SPEC_CURL_LINK = """\
curl -X POST https://hep.gg/upload \\
  -H "Authorization: Bearer hyd-up-xxxxxxxxxxxx" \\
  --data-urlencode "link=https://example.com/a/very/long/path\""""
SPEC_SHAREX = """\
{ "Name": "Hep.gg", "DestinationType": "ImageUploader, TextUploader, FileUploader",
  "RequestURL": "https://hep.gg/upload", "FileFormName": "file",
  "Headers": { "Authorization": "Your Key Here" }, "URL": "$json:url$" }"""

UPSTREAM_HOST = "https://hep.gg"
UPSTREAM_TOKEN = "hyd-up-xxxxxxxxxxxx"
# The placeholders docs/uploader.md uses.
DOC_HOST = "https://hep.example"
DOC_TOKEN = "hyd-up-YOURTOKEN"
DOC_IMAGE_SLUG = "hdlOo67BI"
DOC_LINK_ID = "RRLj-WEql"


def tool(name: str) -> str:
    """The path of a required program: missing means failing, never skipping."""
    path = shutil.which(name)
    assert path is not None, f"{name} is required by these tests and is not on PATH"
    return path


# --- fixtures ------------------------------------------------------------


@dataclass
class Host:
    data: Path
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def new_token(self, account: str) -> str:
        """A fresh account and its uploader token, made with the admin CLI."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert main(["--data", str(self.data), "accounts", "create", account]) == 0
            assert main(["--data", str(self.data), "keys", "create", "--service", "uploader",
                         "--account", account]) == 0
        token = out.getvalue().strip().splitlines()[-1]
        assert token.startswith("hyd-up-")
        return token

    def hepcore(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The ``hepcore`` command, as a self-hoster runs it."""
        return subprocess.run([sys.executable, "-m", "hepcore", "--data", str(self.data), *args],
                              capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A fresh data directory per server kind (the doc examples take fixed aliases)."""
    data = tmp_path_factory.mktemp(f"clients-{request.param}")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--data", str(data), "init"]) == 0
    with run_server(data, request.param, workers=1, threads=4) as srv:
        yield Host(data, srv)


def png(width: int = 40, height: int = 24) -> bytes:
    """A real PNG with random pixels, so every upload's bytes are unique."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The client's working directory, with the files the examples upload."""
    (tmp_path / "screenshot.png").write_bytes(png())
    (tmp_path / "notes.txt").write_text("Remember the milk.\nAnd the eggs.\n")
    return tmp_path


def for_host(text: str, host: Host, token: str, *, placeholder_host: str = UPSTREAM_HOST,
             placeholder_token: str = UPSTREAM_TOKEN) -> str:
    """The example with only its host and token replaced."""
    assert placeholder_host in text and placeholder_token in text
    return text.replace(placeholder_host, host.url).replace(placeholder_token, token)


def run_curl(command: str, cwd: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    """Run one shell-quoted curl command line (continuation lines allowed) with
    the real curl binary, no shell in between."""
    argv = shlex.split(command.replace("\\\n", " "), comments=True)
    assert argv[0] == "curl", command
    return subprocess.run([tool("curl"), *argv[1:], *extra], cwd=cwd, capture_output=True,
                          timeout=30, check=False)


def upload_reply(proc: subprocess.CompletedProcess[bytes]) -> dict[str, str]:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    reply = json.loads(proc.stdout)
    assert isinstance(reply, dict) and set(reply) == {"ID", "url"}, reply
    return reply


def assert_serves(url: str, data: bytes, type_prefix: str) -> requests.Response:
    got = requests.get(url, timeout=10)
    assert got.status_code == 200, (url, got.status_code)
    assert got.content == data
    assert got.headers["Content-Type"].startswith(type_prefix), got.headers["Content-Type"]
    return got


def assert_redirects(url: str, target: str) -> None:
    hop = requests.get(url, allow_redirects=False, timeout=10)
    assert hop.status_code == 302, (url, hop.status_code)
    assert hop.headers["Location"] == target


# --- curl ----------------------------------------------------------------


def test_upstream_and_spec_curl_examples(host: Host, work: Path) -> None:
    token = host.new_token("curl")
    shot = (work / "screenshot.png").read_bytes()

    for example in (SEED_CURL_UPLOAD, SPEC_CURL_FILE):
        reply = upload_reply(run_curl(for_host(example, host, token), work))
        assert re.fullmatch(r"[A-Za-z0-9_-]{9}\.png", reply["ID"]), reply
        assert reply["url"] == f"{host.url}/{reply['ID']}"
        assert_serves(reply["url"], shot, "image/png")

    # The three Authorization forms, completed with the rest of the Quickstart.
    for fragment in SEED_CURL_HEADER_FORMS:
        command = fragment.replace("...", QUICKSTART_REST)
        reply = upload_reply(run_curl(for_host(command, host, token), work))
        assert reply["ID"].endswith(".png")
        assert_serves(reply["url"], shot, "image/png")

    # The shortlink: an ID without an extension that redirects to the target.
    reply = upload_reply(run_curl(for_host(SPEC_CURL_LINK, host, token), work))
    assert re.fullmatch(r"[A-Za-z0-9_-]{9}", reply["ID"]), reply
    assert reply["url"] == f"{host.url}/{reply['ID']}"
    assert_redirects(reply["url"], "https://example.com/a/very/long/path")

    # A revoked token is refused the way the upstream page says.
    bad = run_curl(for_host(SEED_CURL_UPLOAD, host, "hyd-up-" + "0" * 32), work,
                   ("-sS", "-w", "\n%{http_code}"))
    body, status = bad.stdout.rsplit(b"\n", 1)
    assert status == b"401" and json.loads(body) == {"ok": False, "error": "Token revoked"}


def test_curl_values_that_cannot_go_into_headers(host: Host, work: Path) -> None:
    """Values a client may send that must not end up in an ID or a Location header."""
    token = host.new_token("edge")
    auth = f"Authorization: {token}"
    (work / "blob").write_bytes(b"\x00\x01\x02" + os.urandom(100))
    # A filename whose "extension" ends in an encoded newline: no extension at all.
    reply = upload_reply(run_curl(f"curl -sS -H '{auth}' -F 'file=@blob;filename=\"x.abc%0A\"'"
                                  f" {host.url}/upload", work))
    assert re.fullmatch(r"[A-Za-z0-9_-]{9}", reply["ID"]), reply
    assert_serves(reply["url"], (work / "blob").read_bytes(), "application/octet-stream")
    # A "link" with a line break inside is not a URL: it is stored as text.
    value = "https://example.com/x\r\nSet-Cookie: a=b"
    proc = subprocess.run([tool("curl"), "-sS", "-H", auth, "--data-urlencode", f"link={value}",
                           f"{host.url}/upload"], capture_output=True, timeout=30, check=False)
    reply = upload_reply(proc)
    assert reply["ID"].endswith(".txt"), reply
    assert_serves(reply["url"], value.encode(), "text/plain")
    refused = requests.post(host.url + "/api/v1/shorten", json={"url": value}, timeout=10,
                            headers={"Authorization": token})
    assert (refused.status_code, refused.json()["error"]) == (400, "Invalid URL")


# --- JavaScript fetch ----------------------------------------------------


def test_upstream_fetch_snippet_with_node(host: Host, work: Path) -> None:
    token = host.new_token("node")
    script = work / "upload.mjs"  # .mjs: the snippet uses import and top-level await
    script.write_text(for_host(SEED_FETCH_SNIPPET, host, token))
    proc = subprocess.run([tool("node"), str(script)], cwd=work, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    url = proc.stdout.strip()
    assert re.fullmatch(re.escape(host.url) + r"/[A-Za-z0-9_-]{9}\.png", url), proc.stdout
    assert_serves(url, (work / "screenshot.png").read_bytes(), "image/png")


# --- ShareX --------------------------------------------------------------

_JSON_SYNTAX = re.compile(r"\$json:([^$]+)\$")


def sharex_parse(template: str, *, input_value: str = "", response: str | None = None) -> str:
    """ShareX's syntax for the parts used here: ``$input$`` and ``$json:a.b$``."""
    out = template.replace("$input$", input_value)
    if response is not None:
        def lookup(m: re.Match[str]) -> str:
            value: Any = json.loads(response)
            for key in m.group(1).split("."):
                value = value[key]
            return str(value)

        out = _JSON_SYNTAX.sub(lookup, out)
    return out


SHAREX_MIME = {".png": "image/png", ".txt": "text/plain", ".pdf": "application/pdf"}


@dataclass
class ShareXResult:
    status: int
    body: str
    url: str | None
    error: str | None


def sharex_send(config: dict[str, Any], *, input_value: str,
                file: tuple[str, bytes] | None = None) -> ShareXResult:
    """Send what ShareX's custom uploader sends for ``config`` (Body
    MultipartFormData), following its RequestHelpers: the Arguments as form
    fields first, then the file under FileFormName with a Content-Type from
    its extension (none for a URL shortener), a ``----...<ticks hex>``
    boundary, Content-Length, ``Expect: 100-continue`` (.NET's default) and
    ShareX's User-Agent; then read the reply with the URL template."""
    boundary = "-" * 20 + format(time.time_ns() // 100 + 621355968000000000, "x")
    body = bytearray()
    for name, value in (config.get("Arguments") or {}).items():
        if name:
            value = sharex_parse(value, input_value=input_value)
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n").encode()
    if file is None:
        body += f"--{boundary}--\r\n".encode()
    else:
        filename, data = file
        mime = SHAREX_MIME.get(Path(filename).suffix.lower(), "application/octet-stream")
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{config["FileFormName"]}";'
                 f' filename="{filename}"\r\nContent-Type: {mime}\r\n\r\n').encode()
        body += data + f"\r\n--{boundary}--\r\n".encode()
    target = urlsplit(config["RequestURL"])
    headers = {name: sharex_parse(value, input_value=input_value)
               for name, value in (config.get("Headers") or {}).items()}
    headers.update({"Content-Type": f"multipart/form-data; boundary={boundary}",
                    "User-Agent": "ShareX/15.0.0", "Content-Length": str(len(body)),
                    "Expect": "100-continue", "Connection": "Keep-Alive"})
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=15)
    try:
        conn.putrequest(config.get("RequestMethod", "POST"), target.path or "/",
                        skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        assert conn.sock is not None
        select.select([conn.sock], [], [], 0.35)  # .NET waits this long for "100 Continue"
        conn.send(bytes(body))
        response = conn.getresponse()
        text = response.read().decode("utf-8")
        status = response.status
    finally:
        conn.close()
    if 200 <= status < 300:
        return ShareXResult(status, text, sharex_parse(config["URL"], response=text), None)
    error = sharex_parse(config["ErrorMessage"], response=text) if "ErrorMessage" in config else None
    return ShareXResult(status, text, None, error)


def check_sharex_uploads(config: dict[str, Any], host: Host, work: Path, *,
                         shortener: bool) -> None:
    shot = (work / "screenshot.png").read_bytes()
    # ImageUploader: ShareX's input is "" for files (CustomUploaderInput(fileName, "")).
    done = sharex_send(config, input_value="", file=("ShareX_2026-05-01_12-00-00.png", shot))
    assert done.status == 200 and done.url, done
    assert done.url.startswith(host.url + "/") and done.url.endswith(".png")
    assert_serves(done.url, shot, "image/png")
    # FileUploader with the file's name as the input: the file still wins (U5).
    pdf = b"%PDF-1.4\n" + os.urandom(2000) + b"\n%%EOF\n"
    done = sharex_send(config, input_value="C:\\Users\\me\\Documents\\report.pdf",
                       file=("report.pdf", pdf))
    assert done.status == 200 and done.url and done.url.endswith(".pdf"), done
    assert_serves(done.url, pdf, "application/pdf")
    # TextUploader: the text as a text/plain file part (and as the input).
    text = "hepcore from ShareX\nline two: ünïcode\n"
    done = sharex_send(config, input_value=text, file=("ShareX_text.txt", text.encode()))
    assert done.status == 200 and done.url and done.url.endswith(".txt"), done
    assert_serves(done.url, text.encode(), "text/plain")
    if shortener:
        # URLShortener: no file, the Arguments only (link=$input$ with the URL).
        target = "https://example.com/some/long/path?q=1&r=two#frag"
        done = sharex_send(config, input_value=target)
        assert done.status == 200 and done.url, done
        assert "." not in done.url.rsplit("/", 1)[1]
        assert_redirects(done.url, target)
        # A URL copied with non-ASCII characters: redirected the way browsers encode it.
        done = sharex_send(config, input_value="https://de.wikipedia.org/wiki/Überraschungsei")
        assert done.status == 200 and done.url, done
        assert_redirects(done.url, "https://de.wikipedia.org/wiki/%C3%9Cberraschungsei")
        done = sharex_send(config, input_value="https://例え.jp/パス?q=ü")
        assert done.status == 200 and done.url, done
        assert_redirects(done.url, "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9?q=%C3%BC")


def test_sharex_config_from_the_cli(host: Host, work: Path) -> None:
    account = "sharex"
    host.new_token(account)
    made = host.hepcore("sharex", "--account", account, "--api-base", host.url)
    assert made.returncode == 0, made.stderr
    config = json.loads(made.stdout)
    assert config["RequestURL"] == f"{host.url}/upload"
    assert config["Body"] == "MultipartFormData" and config["FileFormName"] == "file"
    assert config["Arguments"] == {"link": "$input$"} and config["URL"] == "$json:url$"
    token = config["Headers"]["Authorization"]
    assert token.startswith("hyd-up-"), "a raw token, no Bearer"
    assert "URLShortener" in config["DestinationType"]
    check_sharex_uploads(config, host, work, shortener=True)

    # GET /api/v1/sharex gives the same uploader for the calling token.
    fetched = requests.get(host.url + "/api/v1/sharex", headers={"Authorization": token},
                           timeout=10)
    assert fetched.status_code == 200
    assert "attachment" in fetched.headers["Content-Disposition"]
    assert {k: v for k, v in fetched.json().items() if k != "Name"} == \
        {k: v for k, v in config.items() if k != "Name"}

    # Rotating the token: the old config now shows ShareX the error message.
    rotated = requests.post(host.url + "/api/v1/me/token/regenerate",
                            headers={"Authorization": token}, timeout=10)
    assert rotated.status_code == 200
    stale = sharex_send(config, input_value="", file=("a.png", png()))
    assert (stale.status, stale.error) == (401, "Token revoked")
    new_token = rotated.json()["data"]["token"]
    fresh = requests.get(host.url + "/api/v1/sharex", timeout=10,
                         headers={"Authorization": new_token}).json()
    again = sharex_send(fresh, input_value="https://example.org/")
    assert again.status == 200 and again.url
    assert_redirects(again.url, "https://example.org/")

    # --token: a config for an existing token (no --account needed, nothing rotated).
    kept = host.hepcore("sharex", "--token", new_token, "--api-base", host.url)
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["Headers"] == {"Authorization": new_token}
    refused = host.hepcore("sharex", "--token", token, "--api-base", host.url)
    assert refused.returncode == 1
    assert "--token is not an active uploader token" in refused.stderr


def test_spec_minimal_sharex_config(host: Host, work: Path) -> None:
    token = host.new_token("sxmin")
    config = json.loads(for_host(SPEC_SHAREX, host, token, placeholder_token="Your Key Here"))
    # ShareX's defaults for what the config leaves out: POST, multipart (FileFormName is set).
    check_sharex_uploads(config, host, work, shortener=False)


# --- the shell upload script ---------------------------------------------


def test_shell_upload_script(host: Host, work: Path) -> None:
    token = host.new_token("script")
    made = host.hepcore("sharex", "--script", "--api-base", host.url)
    assert made.returncode == 0, made.stderr
    assert token not in made.stdout
    script = work / "hepcore-upload.sh"
    script.write_text(made.stdout)
    sh = tool("sh")
    tool("curl")
    env = {**os.environ, "HEPCORE_TOKEN": token}
    shot = (work / "screenshot.png").read_bytes()

    by_path = subprocess.run([sh, str(script), "screenshot.png"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=30, check=False)
    assert by_path.returncode == 0, by_path.stderr
    url = by_path.stdout.strip()
    assert re.fullmatch(re.escape(host.url) + r"/[A-Za-z0-9_-]{9}\.png", url), by_path.stdout
    assert_serves(url, shot, "image/png")

    piped = subprocess.run([sh, str(script)], cwd=work, env=env, input=shot,
                           capture_output=True, timeout=30, check=False)
    assert piped.returncode == 0, piped.stderr
    url = piped.stdout.decode().strip()
    assert url.startswith(host.url + "/") and url.endswith(".png"), piped.stdout
    assert_serves(url, shot, "image/png")

    notes = (work / "notes.txt").read_bytes()
    piped = subprocess.run([sh, str(script)], cwd=work, env=env, input=notes,
                           capture_output=True, timeout=30, check=False)
    assert piped.returncode == 0, piped.stderr
    assert_serves(piped.stdout.decode().strip(), notes, "text/plain")

    # Bytes of no known type from stdin: no extension (not the temporary file's suffix).
    blob = b"\x00\x01hepcore" + os.urandom(3000)
    piped = subprocess.run([sh, str(script)], cwd=work, env=env, input=blob,
                           capture_output=True, timeout=30, check=False)
    assert piped.returncode == 0, piped.stderr
    url = piped.stdout.decode().strip()
    assert re.fullmatch(re.escape(host.url) + r"/[A-Za-z0-9_-]{9}", url), url
    assert_serves(url, blob, "application/octet-stream")

    # Names that curl -F would otherwise split at "," or ";".
    odd = work / 'Shot 1, take 2; "final".png'
    odd.write_bytes(shot)
    named = subprocess.run([sh, str(script), odd.name], cwd=work, env=env,
                           capture_output=True, text=True, timeout=30, check=False)
    assert named.returncode == 0, named.stderr
    url = named.stdout.strip()
    assert_serves(url, shot, "image/png")
    listed = requests.get(host.url + "/api/v1/uploads?limit=1", timeout=10,
                          headers={"Authorization": token}).json()["data"]["uploads"]
    assert listed[0]["url"] == url and listed[0]["name"] == odd.name

    bad = subprocess.run([sh, str(script), "screenshot.png"], cwd=work, timeout=30,
                         env={**env, "HEPCORE_TOKEN": "hyd-up-" + "0" * 32},
                         capture_output=True, text=True, check=False)
    assert bad.returncode != 0
    assert bad.stdout == ""
    assert "Token revoked" in bad.stderr

    unset = {k: v for k, v in env.items() if k != "HEPCORE_TOKEN"}
    missing = subprocess.run([sh, str(script), "screenshot.png"], cwd=work, env=unset,
                             capture_output=True, text=True, timeout=30, check=False)
    assert missing.returncode != 0 and "HEPCORE_TOKEN" in missing.stderr


# --- docs/uploader.md ----------------------------------------------------

DOC = ROOT / "docs" / "uploader.md"


def test_doc_has_an_example_for_every_route(tmp_path: Path) -> None:
    """Every method and path of the service (GET /openapi.json included) has a
    curl example on the page, and every example calls a route."""
    mounts = service_mounts(tmp_path, {"uploader": ""})
    assert coverage_problems(curl_examples(DOC), mounts, DOC_HOST) == []


@dataclass
class DocState:
    """What the examples have done so far, for checking the next answers."""

    url: str
    token: str
    image: str  # the ID behind hdlOo67BI.png
    image_bytes: bytes
    redirects: dict[str, str]  # shortlink IDs and aliases, as written on the page -> target
    aliases: set[str]  # aliases of the image, as written on the page
    deleted: bool = False

    def auth(self) -> dict[str, str]:
        return {"Authorization": self.token}


def sent_link(example: Example) -> str | None:
    """The ``link`` value an upload example sends, if it sends one."""
    for option, value in example.options:
        if option in ("--data-urlencode", "-F", "--form-string") and value \
                and value.startswith("link="):
            return value.removeprefix("link=")
        if option in ("-d", "--data") and value and value.startswith("{"):
            link = json.loads(value).get("link")
            return str(link) if link is not None else None
    return None


def check_upload(a: Answer, s: DocState) -> None:
    reply = upload_reply_of(a, s)
    file_part = a.example.value("-F")
    link = sent_link(a.example)
    if file_part and file_part.startswith("file=@"):
        name, _, declared = file_part.removeprefix("file=@").partition(";type=")
        sent = (a.cwd / name).read_bytes()
        served = assert_serves(reply["url"], sent, declared or "image/png")
        if not declared:
            assert reply["ID"].endswith(Path(name).suffix), reply
        assert served.headers["Content-Disposition"] == f'inline; filename="{reply["ID"]}"'
    elif link is not None and link.startswith("https://"):
        assert re.fullmatch(r"[A-Za-z0-9_-]{9}", reply["ID"]), reply  # a shortlink
        assert_redirects(reply["url"], link)
    else:
        assert link is not None and reply["ID"].endswith(".txt"), reply
        assert_serves(reply["url"], link.encode(), "text/plain; charset=utf-8")


def upload_reply_of(a: Answer, s: DocState) -> dict[str, str]:
    assert a.status == 200, a
    reply = a.json()
    assert set(reply) == {"ID", "url"}, reply
    assert reply["url"] == f"{s.url}/{reply['ID']}"
    return reply


def check_serve(a: Answer, s: DocState) -> None:
    name = a.example.path.lstrip("/")  # as written on the page
    if name in s.redirects:
        assert a.status == 302, a
        assert a.headers["location"] == s.redirects[name]
        assert a.headers["cache-control"] == "private, max-age=0" and a.body == b""
        return
    assert name.startswith(DOC_IMAGE_SLUG) or name in s.aliases, name
    if a.example.has("--etag-compare"):
        assert a.status == 304 and a.body == b"", a
        return
    if "Discordbot" in (a.example.value("-A") or "") and "embed=raw" not in a.example.url:
        assert a.status == 200 and a.headers["content-type"].startswith("text/html"), a
        page = a.output().decode()
        assert 'property="og:image"' in page and f"{s.url}/{s.image}?embed=raw" in page, page
        return
    etag = '"' + hashlib.sha256(s.image_bytes).hexdigest() + '"'
    assert a.headers["etag"] == etag, a.headers
    if a.example.has("-I", "--head"):
        assert a.status == 200 and a.body == b"", a
        assert a.headers["content-length"] == str(len(s.image_bytes))
        assert a.headers["content-type"] == "image/png"
    elif a.example.has("-r", "--range"):
        assert a.status == 206, a
        assert a.headers["content-range"] == f"bytes 0-99/{len(s.image_bytes)}"
        assert a.output() == s.image_bytes[:100]
    else:
        assert a.status == 200, a
        assert a.headers["content-type"] == "image/png"
        assert a.output() == s.image_bytes
        if a.example.has("--etag-save"):
            assert (a.cwd / str(a.example.value("--etag-save"))).read_text().strip() == etag


def check_counter(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    count = a.json()["count"]
    assert isinstance(count, int) and count >= 6, a  # the uploads made above


def check_oembed(a: Answer, s: DocState) -> None:
    assert a.status == 200 and a.headers["access-control-allow-origin"] == "*", a
    assert a.json() == {"version": "1.0", "type": "photo", "provider_name": "Hep.gg",
                        "provider_url": s.url, "title": s.image,
                        "url": f"{s.url}/{s.image}?embed=raw", "width": 64, "height": 48}


def check_me(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    data = a.json()["data"]
    assert data["name"] == "docs" and data["serveUrl"] == s.url, data
    assert data["maxFileSize"] == 104857600 and data["allowedTypes"] == ["*/*"]
    assert data["uploadCount"] >= 6


def check_uploads(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    reply = a.json()
    assert reply["ok"] is True and set(reply["data"]) == {"uploads", "nextBefore"}, reply
    items = reply["data"]["uploads"]
    query = dict(parse_qsl(urlsplit(a.example.url).query))
    assert len(items) <= int(query.get("limit", 50))
    if query.get("type") == "files":
        assert items and {i["kind"] for i in items} <= {"file", "text"}, items
        assert s.image in [i["ID"] for i in items]
    if "before" in query:
        assert all(i["createdAt"] < query["before"] for i in items), items


def check_patch(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    item = a.json()["data"]
    changes = json.loads(str(a.example.value("-d")))
    for field_name, value in changes.items():
        assert item[field_name] == value, (field_name, item)
    target = a.example.path.rsplit("/", 1)[1]
    if changes.get("alias"):
        s.aliases.add(changes["alias"])
    if "link" in changes:
        s.redirects[target] = changes["link"]


def check_delete(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    assert a.json() == {"ok": True, "data": {"ID": s.image, "deleted": True}}
    assert requests.get(f"{s.url}/{s.image}", timeout=10).status_code == 404
    s.deleted = True


def check_shorten(a: Answer, s: DocState) -> None:
    reply = upload_reply_of(a, s)
    sent = json.loads(str(a.example.value("-d")))
    assert reply == {"ID": sent["alias"], "url": f"{s.url}/{sent['alias']}"}
    assert_redirects(reply["url"], sent["url"])
    s.redirects[sent["alias"]] = sent["url"]


def check_regenerate(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    new = a.json()["data"]["token"]
    assert re.fullmatch(r"hyd-up-[A-Za-z0-9_-]{32}", new) and new != s.token
    old = requests.get(s.url + "/api/v1/me", headers=s.auth(), timeout=10)
    assert (old.status_code, old.json()) == (401, {"ok": False, "error": "Token revoked"})
    s.token = new


def check_sharex(a: Answer, s: DocState) -> None:
    assert a.status == 200, a
    assert a.headers["content-disposition"] == 'attachment; filename="hepcore.sxcu"'
    config = json.loads(a.output())
    assert config["RequestURL"] == f"{s.url}/upload"
    assert config["Headers"] == {"Authorization": s.token}


DOC_CHECKS: dict[str, Callable[[Answer, DocState], None]] = {
    "upload": check_upload, "serve": check_serve, "upload_counter": check_counter,
    "oembed": check_oembed, "me": check_me, "uploads": check_uploads,
    "upload_patch": check_patch, "upload_delete": check_delete, "shorten": check_shorten,
    "token_regenerate": check_regenerate, "sharex": check_sharex,
}


def test_doc_curl_examples_work(host: Host, work: Path, tmp_path_factory: pytest.TempPathFactory
                                ) -> None:
    """Every curl example of the page, run in page order with only the
    placeholders replaced, gets the answer the page describes."""
    (mount,) = service_mounts(tmp_path_factory.mktemp("routes"), {"uploader": ""})
    examples = curl_examples(DOC)
    assert len(examples) >= 20, examples
    token = host.new_token("docs")
    # The items the examples refer to: a PNG upload and a shortlink.
    image_bytes = png(64, 48)
    image = requests.post(host.url + "/upload", headers={"Authorization": token}, timeout=10,
                          files={"file": ("screenshot.png", image_bytes)}).json()["ID"]
    link = requests.post(host.url + "/upload", headers={"Authorization": token}, timeout=10,
                         data={"link": "https://example.com/"}).json()["ID"]
    state = DocState(host.url, token, image, image_bytes, {DOC_LINK_ID: "https://example.com/"},
                     set())
    checked = set()
    for example in examples:
        endpoint = route_of(example, [mount])
        assert endpoint is not None, example.line
        answer = run_example(example, {DOC_HOST: host.url, DOC_TOKEN: state.token,
                                       DOC_IMAGE_SLUG: image.removesuffix(".png"),
                                       DOC_LINK_ID: link}, work)
        if endpoint.name == "openapi":
            check_openapi(answer, mount)
        else:
            DOC_CHECKS[endpoint.name](answer, state)
        checked.add(endpoint.name)
    assert checked == {e.name for e in mount.endpoints}
    assert state.deleted
