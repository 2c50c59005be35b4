"""``[server] malloc_arenas``: ``hepcore serve`` caps glibc's malloc arenas, so a
threaded worker's memory does not climb with every thread that streamed an upload."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hostkit import uploader_host

from hepcore import Config
from hepcore.errors import ConfigError
from hepcore.testing.servers import run_server

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc arenas")]

HEAP_MAX = 64 * 1024 * 1024  # a glibc thread arena's heap: a 64 MiB-aligned reservation


def thread_arenas(pid: int) -> int:
    """glibc arenas besides the main one, counted from the process's mappings."""
    spans = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        spans.append((start, end, fields[1], len(fields) > 5))
    count = 0
    for i, (start, end, perms, named) in enumerate(spans):
        if named or perms != "rw-p" or start % HEAP_MAX:
            continue
        reserved_end = end
        if i + 1 < len(spans) and spans[i + 1][0] == end and spans[i + 1][2] == "---p":
            reserved_end = spans[i + 1][1]
        count += reserved_end - start == HEAP_MAX
    return count


def worker_pid(leader: int) -> int:
    """gunicorn's worker (the leader's child); uvicorn with one worker is the leader."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == leader:
                    return int(entry)
    return leader


def host(data: Path, arenas: int) -> str:
    token = uploader_host(data, "erin")
    config = data / "hepcore.toml"
    config.write_text(config.read_text().replace("malloc_arenas = 2",
                                                 f"malloc_arenas = {arenas}"))
    return token


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_served_workers_use_at_most_the_configured_arenas(tmp_path: Path, kind: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    found = {}
    for arenas in (2, 0):
        data = tmp_path / f"arenas-{arenas}"
        token = host(data, arenas)
        with run_server(data, kind, threads=8, extra_env=env) as srv, \
                ThreadPoolExecutor(8) as pool:
            def upload(n: int, url: str = srv.url, token: str = token) -> int:
                return requests.post(url + "/upload", headers={"Authorization": token},
                                     files={"file": (f"{n}.bin", os.urandom(1 << 20))},
                                     timeout=30).status_code

            assert list(pool.map(upload, range(24))) == [200] * 24
            found[arenas] = thread_arenas(worker_pid(srv.process.pid))
    # glibc's default gives each new thread an arena (up to eight per core)
    assert found[2] <= 1 < found[0], found


def limit_in_fresh_process(count: int, env: dict[str, str]) -> str:
    code = ("import os; from hepcore.memory import limit_malloc_arenas;"
            f" print(limit_malloc_arenas({count}), os.environ.get('MALLOC_ARENA_MAX'))")
    return subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_an_operator_setting_wins_and_zero_changes_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert limit_in_fresh_process(2, env) == "True 2"  # also for workers it spawns
    assert limit_in_fresh_process(0, env) == "False None"
    assert limit_in_fresh_process(2, {**env, "MALLOC_ARENA_MAX": "4"}) == "False 4"


@pytest.mark.parametrize("value", [-1, 65, "2", True, 1.5])
def test_bad_arena_counts_are_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match="server.malloc_arenas must be an integer from 0 to 64"):
        Config(data_dir=tmp_path, malloc_arenas=value)  # type: ignore[arg-type]
