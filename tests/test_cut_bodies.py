"""A chunked body whose client goes away before its last chunk stores nothing,
on real servers (gunicorn and uvicorn via ``hepcore serve``).

What arrived before the cut can be a whole value on its own (a link, a
hastebin document, a JSON object); only the missing last chunk says the body
was cut. gunicorn raises on the read; uvicorn reports ``http.disconnect``,
which Falcon's request stream takes for the end of the body (G3).
"""

from __future__ import annotations

import contextlib
import io
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostkit import uploader_host

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def host(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Path, dict[str, str]]]:
    """A default host (uploader at ``/``, paste at ``/paste``, images at ``/img``);
    its server, data directory and an Authorization value per service."""
    data = tmp_path_factory.mktemp(f"cut-{request.param}")
    token = uploader_host(data, "cora")
    auth = {"uploader": token}
    for service in ("paste", "images"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["--data", str(data), "keys", "create", "--service", service,
                         "--account", "cora"]) == 0
        auth[service] = "Bearer " + out.getvalue().strip().splitlines()[-1]
    with run_server(data, request.param, workers=1, threads=4) as srv:
        yield srv, data, auth


def rows(data: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(data / "hepcore.db")) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("uploader_items", "paste_pastes", "images_webhook_endpoints",
                              "pending_objects")}


def cut_off(server: RunningServer, path: str, headers: str, first_chunk: bytes) -> None:
    """Send the head and one chunk of a chunked body, then close the connection
    without the last chunk; return once the server has logged its answer."""
    host, port = server.url.removeprefix("http://").split(":")
    logged = server.log().count(f'"path":"{path}"')
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}"
                     "Transfer-Encoding: chunked\r\n\r\n".encode()
                     + f"{len(first_chunk):x}\r\n".encode() + first_chunk + b"\r\n")
        time.sleep(0.3)  # the chunk is read before the connection goes
    deadline = time.monotonic() + 10
    while server.log().count(f'"path":"{path}"') == logged:
        assert time.monotonic() < deadline, server.log()[-2000:]
        time.sleep(0.05)


@pytest.mark.parametrize("path,kind,service,body", [
    ("/upload", "application/x-www-form-urlencoded", "uploader",
     b"link=https%3A%2F%2Fexample.com%2Fa-long-way-down"),
    ("/upload", "application/x-www-form-urlencoded", "uploader", b"link=some+text+to+keep"),
    ("/upload", "application/json", "uploader", b'{"link": "https://example.com/json"}'),
    ("/paste/documents", "text/plain", "paste", b"0123456789abcdef"),
    ("/paste/api/paste", "application/json", "paste", b'{"content": "cut here"}'),
    ("/paste/api/v1/snippets", "application/json", "paste", b'{"content": "cut here"}'),
    ("/img/api/v1/webhooks", "application/json", "images", b'{"url": "https://example.com/h"}'),
])
def test_a_body_cut_before_its_last_chunk_stores_nothing(
        host: tuple[RunningServer, Path, dict[str, str]], path: str, kind: str, service: str,
        body: bytes) -> None:
    server, data, auth = host
    before = rows(data)
    cut_off(server, path, f"Authorization: {auth[service]}\r\nContent-Type: {kind}\r\n", body)
    last = server.log().rsplit(f'"path":"{path}"', 1)[1]
    assert '"status":400' in last.split("\n", 1)[0]
    assert rows(data) == before


# --- multipart: a whole form inside a body that is not whole -------------------------------

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")
MULTIPART_ROUTES = [("/upload", "uploader"), ("/img/api/v1/upload", "images"),
                    ("/cdn/api/v4/upload", "cdn")]


def form(tail: bytes = b"--b--\r\n") -> bytes:
    """A ``file`` part with a PNG, then ``tail`` (by default the closing delimiter)."""
    return (b'--b\r\nContent-Disposition: form-data; name="file"; filename="dot.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n" + tail)


def stored(data: Path) -> tuple[dict[str, int], list[Path]]:
    with contextlib.closing(sqlite3.connect(data / "hepcore.db")) as db:
        counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("uploader_items", "images_uploads", "cdn_uploads",
                                "pending_objects")}
    files = sorted(p for p in (data / "files").rglob("*") if p.is_file() and ".tmp" not in p.parts)
    return counts, files


@pytest.fixture(scope="module")
def cdn_auth(host: tuple[RunningServer, Path, dict[str, str]]) -> str:
    _, data, _ = host
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(data), "keys", "create", "--service", "cdn",
                     "--account", "cora", "--label", "cut"]) == 0
    return "Bearer " + out.getvalue().strip().splitlines()[-1]


def authorization(host: tuple[RunningServer, Path, dict[str, str]], cdn_auth: str,
                  service: str) -> str:
    return cdn_auth if service == "cdn" else host[2][service]


def post_form(server: RunningServer, path: str, auth: str, body: bytes, *,
              length: int) -> socket.socket:
    """A connection that has sent ``POST path`` with a multipart ``body`` and a
    ``Content-Length`` of ``length`` (asking to close after the answer)."""
    hostname, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((hostname, int(port)), timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n"
                 f"Authorization: {auth}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode() + body)
    return sock


@pytest.mark.parametrize("path,service", MULTIPART_ROUTES)
def test_a_whole_form_in_a_chunked_body_cut_before_its_last_chunk_stores_nothing(
        host: tuple[RunningServer, Path, dict[str, str]], cdn_auth: str, path: str,
        service: str) -> None:
    server, data, _ = host
    before = stored(data)
    cut_off(server, path, f"Authorization: {authorization(host, cdn_auth, service)}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n", form())
    last = server.log().rsplit(f'"path":"{path}"', 1)[1]
    assert '"status":400' in last.split("\n", 1)[0]
    assert stored(data) == before


@pytest.mark.parametrize("path,service", MULTIPART_ROUTES)
def test_a_whole_form_short_of_its_content_length_stores_nothing(
        host: tuple[RunningServer, Path, dict[str, str]], cdn_auth: str, path: str,
        service: str) -> None:
    """The client declares more bytes than it sends, then stops sending."""
    server, data, _ = host
    before = stored(data)
    body = form()
    logged = server.log().count(f'"path":"{path}"')
    with post_form(server, path, authorization(host, cdn_auth, service), body,
                   length=len(body) + 50) as sock:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 15
        while server.log().count(f'"path":"{path}"') == logged:
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.05)
    assert stored(data) == before


@pytest.mark.parametrize("path,service", MULTIPART_ROUTES)
def test_a_form_broken_after_its_file_part_stores_nothing(
        host: tuple[RunningServer, Path, dict[str, str]], cdn_auth: str, path: str,
        service: str) -> None:
    """The file part is whole; what follows is not multipart (no closing delimiter)."""
    server, data, _ = host
    before = stored(data)
    body = form(tail=b"--b\r\nno headers end here")
    with post_form(server, path, authorization(host, cdn_auth, service), body,
                   length=len(body)) as sock:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert stored(data) == before
