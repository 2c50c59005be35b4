"""Durability (G3): a write that acknowledges an upload is on disk before the
reply; counters (views, key usage, rate-limit hits) commit without a disk sync.

Checked on real processes with ``strace``: the ``fdatasync``/``fsync`` calls
SQLite makes on the database's write-ahead log. Without strace these tests
skip, unless ``HEPCORE_REQUIRE_STRACE=1`` (as in CI) makes them fail.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

STRACE = shutil.which("strace")


@pytest.fixture(autouse=True)
def _need_strace() -> None:
    if STRACE is not None:
        return
    if os.environ.get("HEPCORE_REQUIRE_STRACE") == "1":
        pytest.fail("strace is required (HEPCORE_REQUIRE_STRACE=1) and is not installed")
    pytest.skip("strace is not installed (set HEPCORE_REQUIRE_STRACE=1 to make this fail)")


def strace(log: Path) -> list[str]:
    assert STRACE is not None
    return [STRACE, "-f", "-qq", "-y", "-e", "signal=none",
            "-e", "trace=fsync,fdatasync,access,faccessat,faccessat2", "-o", str(log)]


def wal_syncs(text: str, db_file: Path) -> int:
    """How many syncs of ``db_file``'s WAL the trace holds (a call another
    thread interrupts is printed as ``<unfinished ...>``, then resumed)."""
    wal = re.escape(f"{db_file}-wal>")
    return len(re.findall(rf"\bf(?:data)?sync\(\d+<{wal}(?:\) = 0| <unfinished)", text))


PHASES = textwrap.dedent("""
    import os, sys
    from hepcore.db import Database

    def phase(n):  # a marker in the trace
        os.access(f"/hepcore-phase-{n}", os.F_OK)

    db = Database(sys.argv[1])
    db.execute("CREATE TABLE t (v)")
    phase(1)
    for _ in range(3):
        db.write_one("INSERT INTO t VALUES (1)", durable=False)
    with db.write(durable=False) as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    phase(2)
    for _ in range(2):
        with db.write() as conn:
            conn.execute("INSERT INTO t VALUES (2)")
            with db.write(durable=False):  # joins: the commit stays durable
                conn.execute("INSERT INTO t VALUES (2)")
    phase(3)
    db.write_one("INSERT INTO t VALUES (3)")
    phase(4)
""")


def test_durable_commits_sync_the_log_and_others_do_not(tmp_path: Path) -> None:
    db_file = tmp_path / "phases.db"
    log = tmp_path / "trace.log"
    subprocess.run([*strace(log), sys.executable, "-c", PHASES, str(db_file)], check=True,
                   timeout=60)
    parts = re.split(r"access\(\"/hepcore-phase-\d\".*\n", log.read_text())
    assert len(parts) == 5
    assert [wal_syncs(part, db_file) for part in parts[1:4]] == [0, 2, 1]


# --- through a real server ------------------------------------------------------


def cli(data: Path, *args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["--data", str(data), *args]) == 0
    return out.getvalue().strip().splitlines()[-1]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A data directory with every service and a key for each."""
    data = tmp_path_factory.mktemp("durable")
    cli(data, "init")
    cli(data, "accounts", "create", "erin")
    keys = {service: cli(data, "keys", "create", "--service", service, "--account", "erin")
            for service in ("uploader", "paste", "images")}
    cli(data, "cdn", "quota", "--account", "erin", "--tier", "verified")
    keys["cdn"] = cli(data, "cdn", "key", "--account", "erin", "--name", "durable").split()[-1]
    return data, keys


@pytest.fixture(params=["wsgi", "asgi"])
def traced(request: pytest.FixtureRequest, host: tuple[Path, dict[str, str]],
           tmp_path: Path) -> Iterator[tuple[RunningServer, Callable[[], int]]]:
    data = host[0]
    log = tmp_path / "server-trace.log"
    with run_server(data, request.param, workers=1, threads=4,
                    wrapper=strace(log)) as server:
        yield server, lambda: wal_syncs(log.read_text(errors="replace"), data / "hepcore.db")


def noise_jpeg() -> bytes:
    """A JPEG no earlier test uploaded (the images service dedupes per account)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (8, 8), os.urandom(8 * 8 * 3)).save(out, "JPEG")
    return out.getvalue()


def settled(count: Callable[[], int], at_least: int) -> int:
    """The sync count once it reaches ``at_least`` (strace writes as it goes)."""
    deadline = time.monotonic() + 10
    while (n := count()) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def test_each_acknowledged_upload_follows_one_log_sync_and_reads_sync_nothing(
        traced: tuple[RunningServer, Callable[[], int]],
        host: tuple[Path, dict[str, str]]) -> None:
    server, syncs = traced
    keys = host[1]
    url = server.url

    def create(name: str, send: Callable[[], requests.Response]) -> requests.Response:
        before = syncs()
        reply = send()
        assert reply.status_code in (200, 201), (name, reply.status_code, reply.text)
        assert settled(syncs, before + 1) >= before + 1, f"{name}: acknowledged without a sync"
        return reply

    # The first write after start-up begins a new log, whose header SQLite
    # syncs once whatever the level; count from after it.
    me = requests.get(url + "/cdn/api/v4/me", timeout=30,
                      headers={"Authorization": f"Bearer {keys['cdn']}"})
    assert me.status_code == 200
    time.sleep(0.2)
    start = syncs()
    item = create("uploader", lambda: requests.post(
        url + "/upload", headers={"Authorization": keys["uploader"]},
        files={"file": ("a.txt", b"hello\n", "text/plain")}, timeout=30)).json()["ID"]
    paste = create("paste", lambda: requests.post(
        url + "/paste/api/paste", headers={"Authorization": f"Bearer {keys['paste']}"},
        json={"content": "print('kept')", "language": "python"}, timeout=30)).json()
    cdn = create("cdn", lambda: requests.post(
        url + "/cdn/api/v4/upload", headers={"Authorization": f"Bearer {keys['cdn']}"},
        files={"file": ("b.txt", b"cdn bytes\n", "text/plain")}, timeout=30)).json()
    create("images", lambda: requests.post(
        url + "/img/api/v1/upload", headers={"Authorization": f"Bearer {keys['images']}"},
        files={"file": ("c.jpg", noise_jpeg(), "image/jpeg")}, timeout=30))

    # Counted reads: views and key usage commit without a sync.
    for _ in range(3):
        assert requests.get(f"{url}/{item}", timeout=30).status_code == 200
        assert requests.get(f"{url}/paste/{paste['data']['id']}/raw",
                            timeout=30).status_code == 200
        assert requests.get(cdn["url"],
                            timeout=30, allow_redirects=False).status_code in (200, 302)
        assert requests.get(url + "/cdn/api/v4/me", timeout=30, headers={
            "Authorization": f"Bearer {keys['cdn']}"}).status_code == 200
    # A last create, so that everything before it has surely reached the trace.
    create("fence", lambda: requests.post(
        url + "/paste/api/paste", headers={"Authorization": f"Bearer {keys['paste']}"},
        json={"content": "fence"}, timeout=30))
    time.sleep(0.2)
    assert syncs() - start == 5
