"""hepcore behind a real nginx, configured with the site block of docs/deploying.md:
a 100 MiB upload streams through it and comes back via X-Accel-Redirect."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hostkit import uploader_host

from hepcore.testing.servers import free_port, run_server, stop_group

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parent.parent / "docs" / "deploying.md"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
MIB = 1024 * 1024


def site_block() -> str:
    text = DOCS.read_text()
    match = re.search(r"<!-- nginx-site -->\n```nginx\n(.*?)```", text, re.DOTALL)
    assert match, "docs/deploying.md lost its nginx site block"
    return match.group(1)


@pytest.fixture
def nginx_site(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    if NGINX is None:
        if os.environ.get("HEPCORE_REQUIRE_NGINX") == "1":
            pytest.fail("nginx is not installed (make test installs Debian's nginx as root)")
        pytest.skip("nginx is not installed; make test installs it when run as root")
    data = tmp_path / "data"
    token = uploader_host(data, "nia")
    conf = data / "hepcore.toml"
    text = conf.read_text().replace("trust_proxy = false", "trust_proxy = true")
    text = text.replace('serve_mode = "direct"', 'serve_mode = "x-accel-redirect"')
    conf.write_text(text)

    with run_server(data, "wsgi", workers=2, threads=4) as server:
        port = free_port()
        upstream = server.url.removeprefix("http://")
        site = (site_block()
                .replace("127.0.0.1:8000", upstream)
                .replace("listen 80;", f"listen 127.0.0.1:{port};")
                .replace("/srv/hepcore/files/", f"{data}/files/"))
        run = tmp_path / "nginx"
        run.mkdir()
        user = "user root;" if os.geteuid() == 0 else ""
        (run / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log info;
daemon off;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    log_format hep '$remote_addr "$request" $status $body_bytes_sent '
                   'accel="$upstream_http_x_accel_redirect"';
    access_log {run}/access.log hep;
{site}
}}
""")
        process = subprocess.Popen([NGINX, "-p", str(run), "-c", str(run / "nginx.conf")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(100):
                with contextlib.suppress(requests.ConnectionError):
                    requests.get(url + "/healthz", timeout=2)
                    break
                assert process.poll() is None, (run / "error.log").read_text()
                time.sleep(0.05)
            yield url, run, token
            server_log = server.log_path
        finally:
            stop_group(process)
    (run / "server.log").write_bytes(server_log.read_bytes())


def access_lines(run: Path, item: str, status: str) -> list[str]:
    """nginx's access-log lines for GETs of ``item`` with ``status``; nginx writes a
    line only after the response went out, so wait a little for it."""
    for _ in range(100):
        lines = [line for line in (run / "access.log").read_text().splitlines()
                 if f'"GET /{item} ' in line and f" {status} " in line]
        if lines:
            return lines
        time.sleep(0.05)
    return []


def test_100_mib_upload_through_nginx_and_download_via_x_accel_redirect(nginx_site) -> None:
    url, run, token = nginx_site
    digest = hashlib.sha256()
    block = os.urandom(MIB)

    def body() -> Iterator[bytes]:
        # A multipart body streamed in 1 MiB blocks: never all in memory here either.
        yield (b'--b0undary\r\nContent-Disposition: form-data; name="file"; '
               b'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n')
        for i in range(100):
            chunk = block[i:] + block[:i]
            digest.update(chunk)
            yield chunk
        yield b"\r\n--b0undary--\r\n"

    r = requests.post(url + "/upload", data=body(), timeout=300, headers={
        "Authorization": token, "Content-Type": "multipart/form-data; boundary=b0undary",
        "X-Forwarded-For": "198.51.100.66"})
    assert r.status_code == 200, r.text
    item = r.json()["ID"]
    assert r.json()["url"] == f"{url}/{item}"

    got = hashlib.sha256()
    size = 0
    with requests.get(f"{url}/{item}", stream=True, timeout=300) as resp:
        assert resp.status_code == 200
        assert resp.headers["Content-Length"] == str(100 * MIB)
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "X-Accel-Redirect" not in resp.headers
        for chunk in resp.iter_content(MIB):
            got.update(chunk)
            size += len(chunk)
    assert (size, got.hexdigest()) == (100 * MIB, digest.hexdigest())

    ranged = requests.get(f"{url}/{item}", headers={"Range": "bytes=5-9"}, timeout=30)
    assert (ranged.status_code, ranged.content) == (206, (block[0:] + block[:0])[5:10])

    # HEAD is answered by hepcore itself: the nginx-served GET carries the same headers.
    head = requests.head(f"{url}/{item}", timeout=30).headers
    with requests.get(f"{url}/{item}", stream=True, timeout=30) as again:
        for name, value in head.items():
            if name.lower() not in ("date", "server", "connection", "x-request-id"):
                assert again.headers.get(name) == value, name

    served = access_lines(run, item, "200")
    assert served and f'accel="/_hepcore_files/uploader/{item}"' in served[0]
    ranged_line = access_lines(run, item, "206")
    assert ranged_line and 'accel="-"' in ranged_line[0]  # ranges are hepcore's own


def test_user_html_keeps_its_sandbox_when_nginx_serves_it(nginx_site) -> None:
    url, run, token = nginx_site
    r = requests.post(url + "/upload", headers={"Authorization": token}, timeout=30,
                      files={"file": ("x.html", b"<script>alert(1)</script>", "text/html")})
    assert r.status_code == 200, r.text
    item = r.json()["ID"]
    direct = requests.head(f"{url}/{item}", timeout=30).headers
    assert "sandbox" in direct["Content-Security-Policy"]
    served = requests.get(f"{url}/{item}", timeout=30)
    assert served.content == b"<script>alert(1)</script>"
    assert served.headers["Content-Security-Policy"] == direct["Content-Security-Policy"]
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["ETag"] == direct["ETag"]
    accel = access_lines(run, item, "200")
    assert accel and f'accel="/_hepcore_files/uploader/{item}"' in accel[0]


def test_an_image_served_by_nginx_keeps_vary_user_agent(nginx_site) -> None:
    from PIL import Image

    url, run, token = nginx_site
    png = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 40, 40)).save(png, "PNG")
    r = requests.post(url + "/upload", headers={"Authorization": token}, timeout=30,
                      files={"file": ("dot.png", png.getvalue(), "image/png")})
    assert r.status_code == 200, r.text
    item = r.json()["ID"]
    # Bots get an HTML embed page from the same URL: caches must key on User-Agent.
    assert requests.head(f"{url}/{item}", timeout=30).headers["Vary"] == "User-Agent"
    served = requests.get(f"{url}/{item}", timeout=30)
    assert served.content == png.getvalue()
    assert served.headers["Vary"] == "User-Agent"
    accel = access_lines(run, item, "200")
    assert accel and f'accel="/_hepcore_files/uploader/{item}"' in accel[0]
    bot = requests.get(f"{url}/{item}", headers={"User-Agent": "Discordbot/2.0"}, timeout=30)
    assert bot.headers["Content-Type"].startswith("text/html")
    assert bot.headers["Vary"] == "User-Agent"


def test_hepcore_sees_the_address_nginx_saw_not_a_forged_one(nginx_site) -> None:
    url, run, _token = nginx_site
    requests.get(url + "/no-such-item", timeout=10, headers={
        "X-Forwarded-For": "198.51.100.66", "Forwarded": "for=203.0.113.9;proto=https",
        "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    mine: list[dict[str, object]] = []
    for _ in range(100):
        logs = (run.parent / "data").glob("server-wsgi-*.log")
        lines = [json.loads(line) for path in logs for line in path.read_text().splitlines()
                 if line.startswith('{"ts"')]
        mine = [line for line in lines if line["path"] == "/no-such-item"]
        if mine:
            break
        time.sleep(0.05)
    assert mine and mine[0]["client"] == "127.0.0.1"
    # Nor can a client choose the host or scheme of the URLs hepcore answers with.
    r = requests.post(url + "/upload", headers={
        "Authorization": _token, "Forwarded": "host=evil.example;proto=https",
        "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
        files={"file": ("a.txt", b"hi", "text/plain")}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["url"].startswith(url + "/")
