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
