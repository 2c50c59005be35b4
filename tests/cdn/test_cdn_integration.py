"""The CDN end to end on real servers: gunicorn (WSGI) and uvicorn (ASGI) started
by ``hepcore serve`` on a data directory set up with the admin CLI, the CDN
at its default prefix ``/cdn``, URL uploads from a real origin on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cdnkit import Origin
from httpkit import multipart

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

BIG = os.urandom(6 * 1024 * 1024 + 77)


def cli(data: Path, *args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(data), *args]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data = tmp_path_factory.mktemp("cdnhost")
    cli(data, "init")
    with open(data / "hepcore.toml", "a") as fh:
        fh.write('\n[outbound]\nallow = ["127.0.0.1"]\n')
    cli(data, "accounts", "create", "erin", "--email", "erin@example.org")
    cli(data, "cdn", "quota", "--account", "erin", "--tier", "verified")
    key = cli(data, "cdn", "key", "--account", "erin", "--name", "integration").split()[-1]
    assert key.startswith("sk_cdn_") and len(key) == 71
    return data, key


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, host_dir: tuple[Path, str]) -> Iterator[RunningServer]:
    with run_server(host_dir[0], request.param, workers=1, threads=4) as srv:
        yield srv


@pytest.fixture
def auth(host_dir: tuple[Path, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {host_dir[1]}"}


def test_upload_serve_and_delete(server: RunningServer, auth: dict[str, str]) -> None:
    api = server.url + "/cdn/api/v4"
    r = requests.post(api + "/upload", headers=auth, files={"file": ("big file.bin", BIG)},
                      timeout=60)
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["url"] == f"{server.url}/cdn/{item['id']}/big%20file.bin"
    assert item["size"] == len(BIG)
    got = requests.get(item["url"], timeout=60)
    assert got.status_code == 200 and got.content == BIG
    assert got.headers["ETag"] == f'"{item["id"]}"'
    assert got.headers["Cache-Control"] == "max-age=31536000, public"
    assert got.headers["Access-Control-Allow-Origin"] == "*"
    part = requests.get(item["url"], headers={"Range": "bytes=1000000-1000099"}, timeout=30)
    assert (part.status_code, part.content) == (206, BIG[1000000:1000100])
    head = requests.head(item["url"], timeout=30)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(len(BIG))
    pre = requests.options(item["url"], headers={"Origin": "https://x.example",
                                                 "Access-Control-Request-Method": "GET"},
                           timeout=10)
    assert pre.status_code == 204 and pre.headers["Access-Control-Max-Age"] == "86400"
    me = requests.get(api + "/me", headers=auth, timeout=10).json()
    assert me["quota_tier"] == "verified" and me["storage_used"] >= len(BIG)
    r = requests.delete(f"{api}/upload/{item['id']}", headers=auth, timeout=10)
    assert r.json() == {"id": item["id"], "deleted": True}
    assert requests.get(item["url"], timeout=10).status_code == 404


def test_long_filenames_give_urls_servers_accept(server: RunningServer,
                                                 auth: dict[str, str]) -> None:
    """Display names are cut to 255 characters (extension kept): the url of a
    2,000-character name would be 18 KB, past every server's request line."""
    api = server.url + "/cdn/api/v4"
    r = requests.post(api + "/upload", headers=auth,
                      files={"file": ("€" * 2000 + ".txt", b"long name")}, timeout=30)
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["filename"] == "€" * 251 + ".txt"
    got = requests.get(item["url"], timeout=30)
    assert (got.status_code, got.content) == (200, b"long name")
    assert len(got.headers["Content-Disposition"]) < 2600
    r = requests.patch(f"{api}/uploads/{item['id']}/rename", headers=auth,
                       json={"filename": "x" * 100_000}, timeout=30)
    assert r.status_code == 200 and r.json()["filename"] == "x" * 251 + ".txt"
    got = requests.get(r.json()["url"], timeout=30)
    assert (got.status_code, got.content) == (200, b"long name")


def test_chunked_batch_upload(server: RunningServer, auth: dict[str, str]) -> None:
    body, ctype = multipart([("files[]", "a.txt", None, b"alpha"),
                             ("files[]", "b.png", "image/png", BIG[:300_000])])

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = requests.post(server.url + "/cdn/api/v4/uploads", data=chunks(), timeout=30,
                      headers={**auth, "Content-Type": ctype})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 201, r.text
    uploads = r.json()["uploads"]
    assert [u["content_type"] for u in uploads] == ["text/plain; charset=utf-8", "image/png"]
    assert requests.get(uploads[1]["url"], timeout=30).content == BIG[:300_000]


def test_upload_from_a_real_origin(server: RunningServer, auth: dict[str, str]) -> None:
    with Origin() as origin:
        origin.reply("/private/photo.bin", BIG[:2_000_000])
        origin.reply("/go", status=302, headers=[("Location", "/private/photo.bin")])
        r = requests.post(server.url + "/cdn/api/v4/upload_from_url",
                          json={"url": origin.url + "/go"}, timeout=60,
                          headers={**auth, "X-Download-Authorization": "Bearer source_token"})
        assert r.status_code == 201, r.text
        assert r.json()["filename"] == "go"
        assert [s.headers.get("authorization") for s in origin.seen] == ["Bearer source_token"] * 2
        assert requests.get(r.json()["url"], timeout=30).content == BIG[:2_000_000]
        rescue = requests.get(server.url + "/cdn/rescue", params={"url": origin.url + "/go"},
                              allow_redirects=False, timeout=10)
        assert (rescue.status_code, rescue.headers["Location"]) == (302, r.json()["url"])
        r = requests.post(server.url + "/cdn/api/v4/upload_from_url",
                          json={"url": origin.url + "/missing"}, headers=auth, timeout=30)
        assert (r.status_code, r.json()) == (422, {"error": "Upload failed: Failed to download: 404"})


def test_auth_and_errors(server: RunningServer, auth: dict[str, str]) -> None:
    r = requests.post(server.url + "/cdn/api/v4/upload", files={"file": ("a", b"a")}, timeout=10)
    assert (r.status_code, r.content) == (401, b'{"error":"invalid_auth"}')
    assert r.headers["Content-Type"] == "application/json"
    r = requests.post(server.url + "/cdn/api/v4/upload", headers=auth, timeout=10,
                      files={"other": ("a", b"a")})
    assert (r.status_code, r.json()) == (400, {"error": "Missing file parameter"})
    r = requests.get(server.url + "/cdn/up", timeout=10)
    assert r.status_code == 200


def test_oversized_content_length_is_refused_unread(server: RunningServer,
                                                    auth: dict[str, str]) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = (f"POST /cdn/api/v4/upload HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {auth['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\nConnection: close\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"x" * 1024)  # the rest never comes
        reply = b""
        while not reply.rstrip().endswith(b"}}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 402 ")
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body["error"] == "File size exceeds your limit of 100 MB per file"
    assert body["quota"]["quota_tier"] == "verified"
