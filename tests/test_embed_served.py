"""docs/examples/embed_app.py served for real, as docs/embedding.md says:
through ``hepcore serve --factory`` and through plain gunicorn and uvicorn.

In each, the embedder's own route and the mounted service answer, the
service's requests reach the access log, and the background jobs run (their
lock files appear in ``<data>/locks/``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hepcore.testing.servers import free_port, run_server, stop_group, wait_until_up

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def init(data: Path) -> None:
    subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "init"],
                   check=True, capture_output=True)


@contextmanager
def plain_server(data: Path, kind: str) -> Iterator[tuple[str, Path]]:
    """The commands of docs/embedding.md ("serve it like any Falcon app")."""
    port = free_port()
    if kind == "wsgi":
        cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
               "--worker-class", "gthread", "embed_app:get_app()"]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "--port", str(port), "--factory",
               "embed_app:get_asgi_app"]
    log_path = data / f"plain-{kind}.log"
    env = {**os.environ, "HEPCORE_DATA": str(data)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=EXAMPLES, stdout=log, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url + "/", process)
        yield url, log_path
    finally:
        stop_group(process)


def check_served(url: str, data: Path, log_path: Path) -> None:
    assert get(url + "/") == (200, b'{"uploads": 0}')
    status, body = get(url + "/files/no-such-item")
    assert status == 404 and b"Nothing lives here" in body  # the uploader's own 404 page
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        locks = data / "locks"
        logged = [json.loads(line) for line in log_path.read_text(errors="replace").splitlines()
                  if line.startswith('{"ts"')]
        if (locks / "job-storage.sweep.lock").exists() and any(
                entry["path"] == "/files/no-such-item" for entry in logged):
            break
        time.sleep(0.2)
    assert (data / "locks" / "job-storage.sweep.lock").exists(), "background jobs never ran"
    assert any(entry["path"] == "/files/no-such-item" and entry["status"] == 404
               and entry["service"] == "uploader" for entry in logged), log_path.read_text()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_hepcore_serve_with_the_embedding_factory(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    init(data)
    with run_server(data, kind, factory="embed_app:get_app", app_dir=str(EXAMPLES)) as srv:
        check_served(srv.url, data, srv.log_path)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_plain_servers_with_the_embedding_factory(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    init(data)
    with plain_server(data, kind) as (url, log_path):
        check_served(url, data, log_path)
