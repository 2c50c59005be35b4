"""The uploader end to end on real servers: gunicorn (WSGI) and uvicorn (ASGI)
started by ``hepcore serve`` on 127.0.0.1, driven with ``requests``."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hostkit import uploader_host
from httpkit import multipart

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

BIG = os.urandom(5 * 1024 * 1024 + 123)


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory set up with the admin CLI, and a fresh uploader token."""
    data = tmp_path_factory.mktemp("host")
    token = uploader_host(data, "erin")
    assert token.startswith("hyd-up-") and len(token) == 39
    return data, token


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, host_dir: tuple[Path, str]) -> Iterator[RunningServer]:
    with run_server(host_dir[0], request.param, workers=1, threads=4) as srv:
        yield srv


@pytest.fixture
def token(host_dir: tuple[Path, str]) -> str:
    return host_dir[1]


def test_big_upload_round_trip(server: RunningServer, token: str) -> None:
    r = requests.post(server.url + "/upload", headers={"Authorization": token},
                      files={"file": ("random.bin", BIG)}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    item = r.json()["ID"]
    assert r.json()["url"] == f"{server.url}/{item}"
    assert item.endswith(".bin") and len(item) == 13

    got = requests.get(r.json()["url"], timeout=30)
    assert got.status_code == 200
    assert got.content == BIG
    assert got.headers["Content-Length"] == str(len(BIG))
    unchanged = requests.get(r.json()["url"], headers={"If-None-Match": got.headers["ETag"]},
                             timeout=30)
    assert unchanged.status_code == 304
    assert "Content-Length" not in unchanged.headers
    assert got.headers["ETag"] == '"' + hashlib.sha256(BIG).hexdigest() + '"'
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["X-Content-Type-Options"] == "nosniff"

    part = requests.get(r.json()["url"], headers={"Range": "bytes=4194300-4194399"}, timeout=30)
    assert part.status_code == 206
    assert part.content == BIG[4194300:4194400]
    assert part.headers["Content-Range"] == f"bytes 4194300-4194399/{len(BIG)}"
    tail = requests.get(r.json()["url"], headers={"Range": "bytes=-10"}, timeout=30)
    assert (tail.status_code, tail.content) == (206, BIG[-10:])
    bad = requests.get(r.json()["url"], headers={"Range": f"bytes={len(BIG)}-"}, timeout=30)
    assert (bad.status_code, bad.headers["Content-Range"]) == (416, f"bytes */{len(BIG)}")

    head = requests.head(r.json()["url"], timeout=30)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Content-Disposition",
                 "Cache-Control"):
        assert head.headers[name] == got.headers[name]


def test_chunked_upload(server: RunningServer, token: str) -> None:
    data = BIG[: 2 * 1024 * 1024]
    body, ctype = multipart([("file", "chunked.dat", None, data)])

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 100_000):
            yield body[i:i + 100_000]

    r = requests.post(server.url + "/upload", data=chunks(), timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in r.request.headers
    assert r.status_code == 200, r.text
    assert requests.get(r.json()["url"], timeout=30).content == data


def test_auth_errors(server: RunningServer, token: str) -> None:
    files = {"file": ("a.txt", b"hello")}
    r = requests.post(server.url + "/upload", files=files, timeout=10)
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"
    assert r.content == b'{"ok":false,"error":"Missing bearer token"}'
    r = requests.post(server.url + "/upload", files=files, timeout=10,
                      headers={"Authorization": "Bearer hyd-up-" + "x" * 32})
    assert r.status_code == 401
    assert r.json() == {"ok": False, "error": "Token revoked"}


def test_oversized_content_length_is_refused_unread(server: RunningServer, token: str) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = (f"POST /upload HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\nConnection: close\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # Only the first KiB follows: the answer must not wait for the rest. (Falcon's
        # ASGI app starts once the first body chunk has arrived, as ASGI asks.)
        sock.sendall(head.encode() + b"x" * 1024)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    # The same status line from gunicorn and uvicorn (Falcon's own wording differs).
    assert reply.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert reply.endswith(b'{"ok":false,"error":"File exceeds your upload size limit of 100 MB",'
                          b'"code":"TOO_LARGE"}')


def _exchange(server: RunningServer, request: bytes) -> bytes:
    """Everything the server sends back to ``request`` (which asks to close)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("target,version", [
    ("/uploadCounter", "HTTP/1.2"),  # an unknown minor version is served as HTTP/1.x
    ("http://{host}/uploadCounter", "HTTP/1.1"),  # absolute-form, as sent to a proxy
    ("HTTP://{host}/uploadCounter?x=1", "HTTP/1.0"),
    ("/uploadCounter#frag", "HTTP/1.1"),  # a fragment is no part of the path
    ("/uploadCounter#frag?x=1", "HTTP/1.1"),
    ("/uploadCounter?x=1#frag", "HTTP/1.1"),
    # long URLs (a CDN file named by a long filename, /rescue?url= of a signed
    # URL) are served up to 8 KB on both servers, as nginx passes them by default
    ("/uploadCounter?pad=" + "a" * 8100, "HTTP/1.1"),
])
def test_request_line_variants_are_served(server: RunningServer, target: str,
                                          version: str) -> None:
    host = server.url.removeprefix("http://")
    reply = _exchange(server, f"GET {target.format(host=host)} {version}\r\nHost: {host}\r\n"
                              "Connection: close\r\n\r\n".encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"200", reply[:300]
    assert body.startswith(b'{"count":')


@pytest.mark.parametrize("target", ["http://[::1/uploadCounter", "http://[zz]/uploadCounter"])
def test_a_target_that_is_no_url_is_a_400(server: RunningServer, target: str) -> None:
    host = server.url.removeprefix("http://")
    reply = _exchange(server, f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
                              "Connection: close\r\n\r\n".encode())
    assert reply.split(b" ", 2)[1] == b"400", reply[:300]
    assert b"Traceback" not in server.log_path.read_bytes()


def test_shortlink_and_not_found(server: RunningServer, token: str) -> None:
    r = requests.post(server.url + "/upload", data={"link": "https://example.com/dest"},
                      headers={"Authorization": token}, timeout=10)
    assert r.status_code == 200
    hop = requests.get(r.json()["url"], allow_redirects=False, timeout=10)
    assert hop.status_code == 302
    assert hop.headers["Location"] == "https://example.com/dest"
    assert hop.headers["Cache-Control"] == "private, max-age=0"
    missing = requests.get(server.url + "/nothing-here", timeout=10)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "text/html; charset=utf-8"
    assert requests.get(server.url + "/a/b", timeout=10).json() == {"ok": False,
                                                                    "error": "Not found"}


def _final_answer(server: RunningServer, head: bytes) -> bytes:
    """The first final (not 1xx) response to a request head sent without its
    body, within 10 s."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        got = b""
        while True:
            chunk = sock.recv(4096)
            assert chunk, f"closed after {got!r}"
            got += chunk
            while got.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in got:
                got = got.split(b"\r\n\r\n", 1)[1]  # gunicorn sends 100 Continue at once
            if b"\r\n" in got:
                return got


@pytest.mark.parametrize("expect", [False, True])
def test_refused_before_a_byte_of_the_body_is_asked_for(
        server: RunningServer, host_dir: tuple[Path, str], expect: bool) -> None:
    # G5: an announced size over the account's limit is refused unread, and
    # so is a request without a token. Falcon's ASGI app used to wait for the
    # first body bytes before routing, so uvicorn answered nothing until then.
    data, token = host_dir
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--data", str(data), "accounts", "set", "erin",
                     "--max-upload-size", "1000"]) == 0
    try:
        for auth, status in ((f"Authorization: {token}\r\n", b"413"), ("", b"401")):
            head = (f"POST /upload HTTP/1.1\r\nHost: {server.url[7:]}\r\n{auth}"
                    "Content-Type: multipart/form-data; boundary=b\r\n"
                    f"Content-Length: {10 ** 9}\r\n"
                    + ("Expect: 100-continue\r\n" if expect else "") + "\r\n").encode()
            answer = _final_answer(server, head)
            assert answer.split(b" ", 2)[1] == status, answer[:200]
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["--data", str(data), "accounts", "set", "erin",
                         "--unset", "max_file_size"]) == 0
