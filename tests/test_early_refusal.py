"""An early refusal (401, 413 before the body is read: G5) reaches a client that
sends its whole body before it reads the answer, as Python's http.client and
.NET's HttpClient (ShareX) do, on gunicorn as on uvicorn.

gunicorn reads at most 64 KiB of a body the application left unread, then
closes; the client's further bytes then draw a reset and it sees a broken
pipe. The WSGI app reads the rest after the answer is out, within bounds
(``hepcore.web.wsgi.drain_after``)."""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hostkit import uploader_host

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server
from hepcore.web import wsgi
from hepcore.web.wsgi import BODY_KEY, WsgiBody, drain_after

pytestmark = pytest.mark.integration

LIMIT = int(2.5 * 1024 * 1024)
TOO_LARGE = (b'{"ok":false,"error":"File exceeds your upload size limit of 2.5 MB",'
             b'"code":"TOO_LARGE"}')
MISSING = b'{"ok":false,"error":"Missing bearer token"}'
MB = 1000 * 1000


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A host whose account may upload files of 2.5 MiB at most; its token."""
    data = tmp_path_factory.mktemp("host")
    token = uploader_host(data, "ada")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--data", str(data), "accounts", "set", "ada",
                     "--max-upload-size", str(LIMIT)]) == 0
    return data, token


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, host_dir: tuple[Path, str]) -> Iterator[RunningServer]:
    with run_server(host_dir[0], request.param, workers=1, threads=4) as srv:
        yield srv


def multipart(size: int) -> bytes:
    """A multipart body of ``size`` bytes with one file in it."""
    head = (b'--XB\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    tail = b"\r\n--XB--\r\n"
    return head + b"x" * (size - len(head) - len(tail)) + tail


def connect(server: RunningServer, timeout: float = 30) -> http.client.HTTPConnection:
    host, port = server.url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def post_whole_body(conn: http.client.HTTPConnection, body: bytes | Iterator[bytes],
                    headers: dict[str, str]) -> tuple[int, bytes]:
    """http.client sends the whole body and only then reads the answer."""
    conn.request("POST", "/upload", body=body, headers={
        "Content-Type": "multipart/form-data; boundary=XB", **headers},
        encode_chunked=not isinstance(body, bytes))
    reply = conn.getresponse()
    return reply.status, reply.read()


@pytest.mark.parametrize("over", [1, 5, 50])
def test_a_client_sending_its_whole_body_first_gets_the_413(
        server: RunningServer, host_dir: tuple[Path, str], over: int) -> None:
    conn = connect(server)
    try:
        status, body = post_whole_body(conn, multipart(LIMIT + 64 * 1024 + over * MB),
                                       {"Authorization": host_dir[1]})
        assert (status, body) == (413, TOO_LARGE)
        # The rest of the body was read: the connection serves another request.
        conn.request("GET", "/uploadCounter")
        again = conn.getresponse()
        assert again.status == 200 and again.read().startswith(b'{"count":')
    finally:
        conn.close()


def test_a_client_sending_its_whole_body_first_gets_the_401(server: RunningServer) -> None:
    conn = connect(server)
    try:
        assert post_whole_body(conn, multipart(20 * MB), {}) == (401, MISSING)
    finally:
        conn.close()


def test_a_chunked_body_over_the_limit_gets_the_413(
        server: RunningServer, host_dir: tuple[Path, str]) -> None:
    # No Content-Length: the limit is found while reading, and the rest is
    # still coming when the answer goes out.
    whole = multipart(LIMIT + 20 * MB)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(whole), 256 * 1024):
            yield whole[i:i + 256 * 1024]

    conn = connect(server)
    try:
        assert post_whole_body(conn, chunks(), {"Authorization": host_dir[1]}) == (
            413, TOO_LARGE)
    finally:
        conn.close()


def stalled_upload(server: RunningServer, token: str) -> tuple[socket.socket, bytes, float]:
    """A connection announcing 50 MB of body, sending 1 KiB of it and then
    nothing; the answer it got at once, and when it got it."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall((f"POST /upload HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
                  "Content-Type: multipart/form-data; boundary=XB\r\n"
                  f"Content-Length: {50 * MB}\r\n\r\n").encode() + b"x" * 1024)
    answer = b""
    while not answer.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return sock, answer, time.monotonic()


def closed_after(sock: socket.socket, since: float) -> float:
    """Seconds from ``since`` until the server closed ``sock``."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - since


def test_a_stalled_body_holds_no_worker(server: RunningServer,
                                        host_dir: tuple[Path, str]) -> None:
    sock, answer, answered = stalled_upload(server, host_dir[1])
    with sock:
        assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(TOO_LARGE)
        started = time.monotonic()
        r = requests.get(server.url + "/uploadCounter", timeout=10)
        assert r.status_code == 200
        assert time.monotonic() - started < 2
        if "--asgi" in server.process.args:
            return  # uvicorn holds no thread for it (and keeps it open)
        # gunicorn: one read waits DRAIN_STALL for the next bytes, then the
        # connection is shut down.
        waited = closed_after(sock, answered)
        assert wsgi.DRAIN_STALL - 0.5 < waited < wsgi.DRAIN_STALL + 3, waited


def test_a_body_too_large_to_drain_is_not_read_after_the_refusal(
        server: RunningServer, host_dir: tuple[Path, str]) -> None:
    # 2 GB announced, far more than the 256 MiB either server would read and
    # throw away: the connection ends with the answer (G5: counting stops the
    # transfer), where uvicorn used to discard all that the client sent.
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"POST /upload HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: {host_dir[1]}\r\n"
                      "Content-Type: multipart/form-data; boundary=XB\r\n"
                      f"Content-Length: {2000 * MB}\r\n\r\n").encode() + b"x" * 1024)
        answered = time.monotonic()
        sock.settimeout(0.2)
        reply, closed, sent = b"", False, 0
        while not closed and time.monotonic() - answered < 10:
            try:
                sent += sock.send(b"x" * 65536)
            except TimeoutError:
                pass
            except OSError:
                closed = True
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                closed = True
                continue
            reply += data
            closed = not data
    assert reply.startswith(b"HTTP/1.1 413 ") and reply.endswith(TOO_LARGE), reply
    assert closed, f"still open after sending {sent} more bytes"
    assert sent < 256 * 1024 * 1024


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_an_idle_body_is_given_up_after_body_timeout(tmp_path: Path, kind: str) -> None:
    # A client that stops sending mid-body must not hold the worker's only
    # thread for ever: after [server] body_timeout (1 s here) without a byte,
    # the read fails, the client gets a 400 and other requests are served.
    data = tmp_path / "host"
    token = uploader_host(data, "ida")
    conf = data / "hepcore.toml"
    text = conf.read_text()
    assert "body_timeout = 300" in text
    conf.write_text(text.replace("body_timeout = 300", "body_timeout = 1"))
    with run_server(data, kind, workers=1, threads=1) as srv:
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall((f"POST /upload HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n"
                          "Content-Type: multipart/form-data; boundary=XB\r\n"
                          f"Content-Length: {MB}\r\n\r\n").encode() + multipart(MB)[:1024])
            sent = time.monotonic()
            reply = b""
            while not reply.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, reply
                reply += chunk
            waited = time.monotonic() - sent
        assert reply.startswith(b"HTTP/1.1 400 "), reply
        assert reply.endswith(b'{"ok":false,"error":"Malformed request body:'
                              b' no bytes of the body for 1 s"}')
        assert 0.9 < waited < 5, waited
        assert requests.get(srv.url + "/uploadCounter", timeout=10).json() == {"count": 0}


FACTORY = """
from hepcore.web import wsgi
from hepcore.web.entry import default_factory

def short_drains(asgi=False):
    wsgi.DRAIN_TIME = 2.0
    return default_factory(asgi=asgi)
"""


def test_a_trickling_body_is_cut_after_the_drain_time(
        tmp_path: Path, host_dir: tuple[Path, str]) -> None:
    # A client sending a byte every half second never lets one read stall: the
    # drain's own clock ends it (DRAIN_TIME, made 2 s here).
    (tmp_path / "drain_factory.py").write_text(FACTORY)
    with run_server(host_dir[0], "wsgi", workers=1, threads=2, app_dir=str(tmp_path),
                    factory="drain_factory:short_drains") as srv:
        sock, answer, answered = stalled_upload(srv, host_dir[1])
        with sock:
            assert answer.endswith(TOO_LARGE)
            sock.settimeout(0.5)
            closed = None
            while closed is None and time.monotonic() - answered < 15:
                try:
                    sock.send(b"x")
                    if sock.recv(65536) == b"":
                        closed = time.monotonic() - answered
                except TimeoutError:
                    continue
                except OSError:
                    closed = time.monotonic() - answered
            assert closed is not None and 1.5 < closed < 6, closed


# --- the drain's conditions, in-process -----------------------------------


def environ(sock: object, length: str | None, read: int, chunked: bool = False,
            body: bytes = b"x" * 10) -> dict[str, object]:
    env: dict[str, object] = {"wsgi.input": io.BytesIO(body), "gunicorn.socket": sock,
                              "SERVER_PROTOCOL": "HTTP/1.1"}
    if length is not None:
        env["CONTENT_LENGTH"] = length
    if chunked:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    raw = WsgiBody(env["wsgi.input"])
    while read > 0 and (data := raw.read(read)):  # ``read`` past the end: the end is seen
        read -= len(data)
    env[BODY_KEY] = raw
    return env


def test_a_fully_read_body_is_left_alone() -> None:
    result = [b"answer"]
    left, right = socket.socketpair()
    with left, right:
        assert drain_after(environ(left, "10", 10), result) is result
        assert drain_after(environ(left, "0", 0), result) is result
        assert drain_after(environ(left, None, 11, chunked=True), result) is result  # hit the end
        assert drain_after(environ(left, str(wsgi.DRAIN_MAX_BYTES + 1), 0), result) is result
        assert drain_after(environ(None, "10", 0), result) is result  # no socket: a test client
        http2 = environ(left, "10", 0)
        http2["SERVER_PROTOCOL"] = "HTTP/2"
        assert drain_after(http2, result) is result


def test_the_rest_of_a_body_is_read_when_the_response_is_closed() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.settimeout(None)
        env = environ(left, "10", 4)
        wrapped = drain_after(env, [b"answer"])
        assert list(wrapped) == [b"answer"]
        stream = env["wsgi.input"]
        assert isinstance(stream, io.BytesIO) and stream.tell() == 4
        wrapped.close()  # type: ignore[attr-defined]
        assert stream.tell() == 10
        assert left.gettimeout() is None  # restored
        chunked = environ(left, None, 3, chunked=True)
        drain_after(chunked, [b"answer"]).close()  # type: ignore[attr-defined]
        assert chunked["wsgi.input"].read() == b""  # type: ignore[attr-defined]
