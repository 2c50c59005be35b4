"""Helpers shared by the benchmarks in ``bench/`` (``upload.py``, ``uploader.py``).

Starting the bare comparison servers with the same server software and
settings as ``hepcore serve``, preparing a hepcore data directory, the
worker processes' CPU time and peak RSS from ``/proc``, a closed-loop
runner for fixed-count request phases, and the versions line.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MIB = 1024 * 1024
MB = 1_000_000
GUNICORN_THREADS = 8
BOUNDARY = "hepcorebenchboundary7MA4YWxkTrZu0gW"

try:  # run from a checkout without installing
    import hepcore  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "plugins"))

from hepcore.testing.servers import (  # noqa: F401
    free_port,
    run_server,
    stop_group,
    wait_until_up,
)

C = TypeVar("C")


# --- request bodies and HTTP -------------------------------------------------


def multipart_body(data: bytes, filename: str = "bench.bin", name: str = "file") -> bytes:
    disposition = f"form-data; name=\"{name}\""
    if filename:
        disposition += f"; filename=\"{filename}\""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
            + ("Content-Type: application/octet-stream\r\n" if filename else "")
            + "\r\n").encode()
    return b"".join((head, data, f"\r\n--{BOUNDARY}--\r\n".encode()))


MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """``POST /upload`` of a multipart ``body``; the JSON answer (200 with an ``ID``)."""
    conn.request("POST", "/upload", body=body, headers={**headers, "Content-Type": MULTIPART_TYPE})
    resp = conn.getresponse()
    raw = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"upload answered {resp.status}: {raw[:300]!r}")
    doc = json.loads(raw)
    if not isinstance(doc, dict) or not doc.get("ID"):
        raise RuntimeError(f"upload answer has no ID: {raw[:300]!r}")
    return doc


# --- processes and memory ----------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        text = fh.read()
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) "


def worker_pids(leader: int) -> list[int]:
    """Processes of the server's process group other than its leader (the
    gunicorn master); the leader itself when it has none (uvicorn, 1 worker)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(int(entry))
            if int(fields[2]) == leader:  # pgrp
                members.append(int(entry))
    workers = [p for p in members if p != leader]
    return workers or [leader]


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


class RssProbe:
    """Peak RSS of the workers during a phase, against their RSS after warm-up.

    ``VmHWM`` is reset by writing ``5`` to ``/proc/PID/clear_refs``; where that
    is not allowed, a thread samples ``VmRSS`` every 2 ms instead.
    """

    def __init__(self, pids: list[int], baseline_kib: int) -> None:
        self.pids = pids
        self.baseline_kib = baseline_kib
        self.sampled_kib = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.exact = True

    def __enter__(self) -> Self:
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as fh:
                    fh.write("5")
            except OSError:
                self.exact = False
        if not self.exact:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            with contextlib.suppress(OSError, RuntimeError):
                now = sum(status_kib(p, "VmRSS") for p in self.pids)
                self.sampled_kib = max(self.sampled_kib, now)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.exact:
            self.peak_kib = sum(status_kib(p, "VmHWM") for p in self.pids)
        else:
            self.peak_kib = self.sampled_kib

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.baseline_kib) / 1024


# --- servers -------------------------------------------------------------------


@contextlib.contextmanager
def bare_server(kind: str, workdir: Path, module: str = "bare_app",
                env: dict[str, str] | None = None) -> Iterator[tuple[str, int, Path]]:
    """A bare app of ``bench/<module>.py`` (its ``wsgi_app``/``asgi_app`` factory)
    under the same server and settings as ``hepcore serve``: gunicorn, 1 worker,
    gthread x8, access log on; or uvicorn, 1 worker, keep-alive 30 s.
    Yields ``(url, process group leader, $BARE_STORE)``."""
    port = free_port()
    store = workdir / f"{module}-store"
    store.mkdir()
    if kind == "wsgi":
        cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
               "--workers", "1", "--worker-class", "gthread", "--threads", str(GUNICORN_THREADS),
               "--timeout", "120", "--access-logfile", "-", "--pythonpath", str(HERE),
               f"{module}:wsgi_app()"]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", f"{module}:asgi_app",
               "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--log-level", "info", "--timeout-keep-alive", "30"]
    log_path = workdir / f"{module}-{kind}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                env={**os.environ, "BARE_STORE": str(store), **(env or {})},
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(url + "/", proc)
        except RuntimeError:
            sys.stderr.write(log_path.read_text(errors="replace")[-3000:])
            raise
        yield url, proc.pid, store
    finally:
        stop_group(proc)


def setup_hepcore(data_dir: Path) -> str:
    """``hepcore init``, no upload rate limit, one account and uploader key; the key."""
    subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data_dir), "init"],
                   check=True, stdout=subprocess.DEVNULL)
    config_path = data_dir / "hepcore.toml"
    text = config_path.read_text()
    # The default 240 uploads a minute per account would turn the small-upload
    # run into a rate-limit test; the limiter still runs on every request.
    text = text.replace("[services.uploader]\n",
                        "[services.uploader]\nupload_rate_per_minute = 1000000000\n", 1)
    config_path.write_text(text)
    import hepcore

    runtime = hepcore.build_runtime(hepcore.load_config(data_dir))
    try:
        if runtime.config.service("uploader").options.get("upload_rate_per_minute") != 10**9:
            raise RuntimeError("could not raise the upload rate limit in hepcore.toml")
        account = runtime.accounts.create("bench")
        token, _ = runtime.keys.create("uploader", account.id, label="bench")
    finally:
        runtime.close()
    return token


# --- fixed-count request phases ----------------------------------------------


@dataclass
class LoopResult:
    """One closed-loop phase: ``count`` requests from ``concurrency`` threads."""

    count: int
    wall: float
    latencies: list[float]  # seconds, sorted
    client_cpu: float
    server_cpu: float
    rss_growth_mib: float

    @property
    def rps(self) -> float:
        return self.count / self.wall

    def latency_ms(self, q: float) -> float:
        return 1000 * self.latencies[min(len(self.latencies) - 1, int(len(self.latencies) * q))]


def closed_loop(count: int, concurrency: int, connect: Callable[[], C],
                one: Callable[[C], None], close: Callable[[C], None], *,
                workers: list[int], baseline_kib: int, warmup: int = 5,
                label: str = "") -> LoopResult:
    """``count`` calls of ``one(conn)`` split over ``concurrency`` threads, each
    with its own connection from ``connect()`` (``warmup`` calls each before the
    clock starts). Times the whole run and every call, and takes the server
    ``workers``' CPU seconds and peak RSS growth and the client's CPU time."""
    per_thread = [count // concurrency + (1 if i < count % concurrency else 0)
                  for i in range(concurrency)]
    errors: list[BaseException] = []
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)

    def run(n: int) -> None:
        conn = None
        mine = []
        try:
            conn = connect()
            for _ in range(warmup):  # this connection's warm-up, before the clock starts
                one(conn)
            start.wait()
            for _ in range(n):
                t0 = time.perf_counter()
                one(conn)
                mine.append(time.perf_counter() - t0)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
            with contextlib.suppress(threading.BrokenBarrierError):
                start.abort()
        finally:
            if conn is not None:
                close(conn)
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(n,)) for n in per_thread]
    for th in threads:
        th.start()
    with RssProbe(workers, baseline_kib) as probe:
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait()
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(workers)
        client0 = time.process_time()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        client_cpu = time.process_time() - client0
        server_cpu = cpu_seconds(workers) - cpu0
    if errors:
        raise RuntimeError(f"{label}: requests failed: {errors[0]!r}") from errors[0]
    latencies.sort()
    return LoopResult(count, wall, latencies, client_cpu, server_cpu, probe.growth_mib)


# --- report ------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "sqlite": __import__("sqlite3").sqlite_version}
    for name in ("hepcore", "falcon", "gunicorn", "uvicorn", "h11", "httptools", "uvloop",
                 "multipart"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
