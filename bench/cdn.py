#!/usr/bin/env python3
"""CDN benchmark: a 100 MiB ``POST /api/v4/upload`` against a bare Falcon handler.

For each host kind (``wsgi``: gunicorn, 1 worker, gthread x8; ``asgi``:
uvicorn, 1 worker) this starts a real hepcore server on 127.0.0.1 (a fresh
``hepcore init`` data directory, the CDN at its default prefix ``/cdn``, one
account on the ``functionally_unlimited`` tier and one ``sk_cdn_`` key) and,
with the same server software and settings, the bare app of
``bench/bare_app.py`` (raw body to disk, fsync, rename: the upper bound for
"receive and store"). The repetitions alternate between the two servers, so
drift in the machine hits both alike.

Measured, for both servers: upload throughput (MB/s, 1 MB = 10**6 bytes,
median of the repetitions) of a ``multipart/form-data`` file over a
keep-alive connection, timed from the first byte sent to the response read,
the worker CPU time per upload (a figure the disk's moods do not move) and
the peak RSS growth of the worker process(es) while uploading. Every
hepcore upload must answer 201 with the upload object; the first one's bytes
are read back from its ``url`` and their SHA-256 compared; every stored file
is deleted with ``DELETE /api/v4/upload/:id`` once measured (which also
refunds the quota). Targets (PASS/FAIL; the exit status is 0 whatever the
numbers): >= 0.8x the bare handler's MB/s and <= 16 MiB peak RSS growth.

    python bench/cdn.py                  # both kinds, 20 repetitions of 100 MiB
    python bench/cdn.py --quick          # smoke run: 2 repetitions
    python bench/cdn.py --kind asgi --big-mib 50 --json cdn.json
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    GUNICORN_THREADS,
    MB,
    MIB,
    MULTIPART_TYPE,
    RssProbe,
    bare_server,
    cpu_seconds,
    multipart_body,
    run_server,
    status_kib,
    versions,
    worker_pids,
)

THROUGHPUT_TARGET = 0.8
RSS_TARGET_MIB = 16.0
API = "/cdn/api/v4"


def setup_cdn(data_dir: Path) -> str:
    """``hepcore init``, an account on the largest tier and a named CDN key; the key."""
    def hepcore(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data_dir), *args],
                              check=True, capture_output=True, text=True).stdout

    hepcore("init")
    hepcore("accounts", "create", "bench", "--email", "bench@example.org")
    hepcore("cdn", "quota", "--account", "bench", "--tier", "functionally_unlimited")
    return hepcore("cdn", "key", "--account", "bench", "--name", "bench").split()[-1]


class Server:
    """One server under test and its keep-alive connection."""

    def __init__(self, label: str, url: str, pid: int, path: str,
                 headers: dict[str, str]) -> None:
        self.label, self.url, self.pid, self.path, self.headers = label, url, pid, path, headers
        host, _, port = url.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.conn: http.client.HTTPConnection | None = None
        self.last_used = 0.0
        self.times: list[float] = []
        self.cpu = 0.0  # worker CPU seconds spent in the measured uploads

    def connection(self) -> http.client.HTTPConnection:
        """A fresh connection after an idle second (gunicorn closes idle ones after 2 s)."""
        if self.conn is None or time.monotonic() - self.last_used > 1.0:
            self.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            self.conn.connect()
        return self.conn

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = self.connection()
        conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        self.last_used = time.monotonic()
        return resp.status, raw

    def upload(self, body: bytes) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        status, raw = self.request("POST", self.path, body, {"Content-Type": MULTIPART_TYPE})
        elapsed = time.perf_counter() - t0
        if status not in (200, 201):
            raise RuntimeError(f"{self.label}: upload answered {status}: {raw[:300]!r}")
        return elapsed, json.loads(raw)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def check_and_delete(hep: Server, item: dict[str, Any], data: bytes | None) -> None:
    """Read the upload back (when ``data`` is given) and delete it through the API."""
    if data is not None:
        path = "/" + item["url"].split("/", 3)[3]
        conn = http.client.HTTPConnection(hep.host, hep.port, timeout=300)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            got = hashlib.sha256()
            while block := resp.read(MIB):
                got.update(block)
            if resp.status != 200 or got.hexdigest() != hashlib.sha256(data).hexdigest():
                raise RuntimeError(f"GET {path}: {resp.status}, or the bytes differ")
        finally:
            conn.close()
    status, raw = hep.request("DELETE", f"{API}/upload/{item['id']}")
    if status != 200:
        raise RuntimeError(f"DELETE answered {status}: {raw[:200]!r}")


def bench_kind(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    data_dir = workdir / "hepcore-data"
    key = setup_cdn(data_dir)
    data = os.urandom(args.big_mib * MIB)
    body = multipart_body(data, "bench.bin")
    warm = multipart_body(os.urandom(MIB), "warm.bin")
    with run_server(data_dir, kind, workers=1, threads=GUNICORN_THREADS) as srv, \
            bare_server(kind, workdir) as (bare_url, bare_pid, store):
        hep = Server("hepcore", srv.url, srv.pid, f"{API}/upload",
                     {"Authorization": f"Bearer {key}"})
        bare = Server("bare", bare_url, bare_pid, "/upload", {})
        servers = [hep, bare]
        try:
            for server in servers:
                for _ in range(3):
                    _, doc = server.upload(warm)
                    if server is hep:
                        check_and_delete(hep, doc, None)
                server.close()
            time.sleep(0.5)
            pids = {s.label: worker_pids(s.pid) for s in servers}
            base = {s.label: sum(status_kib(p, "VmRSS") for p in pids[s.label]) for s in servers}
            probes = {s.label: RssProbe(pids[s.label], base[s.label]) for s in servers}
            for probe in probes.values():
                probe.__enter__()
            try:
                for rep in range(args.reps):
                    for server in servers if rep % 2 == 0 else servers[::-1]:
                        cpu0 = cpu_seconds(pids[server.label])
                        elapsed, doc = server.upload(body)
                        server.cpu += cpu_seconds(pids[server.label]) - cpu0
                        server.times.append(elapsed)
                        if server is hep:
                            if doc.get("size") != len(data):
                                raise RuntimeError(f"unexpected upload object {doc}")
                            check_and_delete(hep, doc, data if rep == 0 else None)
                        else:
                            (store / doc["ID"]).unlink()
            finally:
                for probe in probes.values():
                    probe.__exit__(None, None, None)
        except Exception:
            sys.stderr.write(f"--- hepcore {kind} server log (tail) ---\n{srv.log()[-3000:]}\n")
            raise
        finally:
            for server in servers:
                server.close()
    out: dict[str, Any] = {}
    for server in servers:
        med = statistics.median(server.times)
        out[server.label] = {
            "mbps": round(len(data) / med / MB, 1),
            "mbps_all": [round(len(data) / t / MB, 1) for t in server.times],
            "cpu_ms_per_upload": round(1000 * server.cpu / len(server.times), 1),
            "rss_growth_mib": round(probes[server.label].growth_mib, 2),
            "rss_exact": probes[server.label].exact,
            "baseline_rss_mib": round(base[server.label] / 1024, 1),
        }
    out["hepcore"]["paired_ratio"] = round(statistics.median(
        b / h for h, b in zip(hep.times, bare.times, strict=True)), 3)
    return out


def report(kind: str, res: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, bool]]:
    hep, bare = res["hepcore"], res["bare"]
    server = "gunicorn, 1 worker, gthread x8" if kind == "wsgi" else "uvicorn, 1 worker"
    print(f"\n== {kind} ({server}) ==")
    print(f"{'metric':<40}{'hepcore':>10}{'bare':>10}")
    print(f"{f'POST /api/v4/upload {args.big_mib} MiB, MB/s':<40}{hep['mbps']:>10.1f}"
          f"{bare['mbps']:>10.1f}")
    print(f"{'server CPU per upload, ms':<40}{hep['cpu_ms_per_upload']:>10.1f}"
          f"{bare['cpu_ms_per_upload']:>10.1f}")
    print(f"{'peak RSS growth, MiB':<40}{hep['rss_growth_mib']:>10.1f}"
          f"{bare['rss_growth_mib']:>10.1f}")
    print(f"{'worker RSS after warm-up, MiB':<40}{hep['baseline_rss_mib']:>10.1f}"
          f"{bare['baseline_rss_mib']:>10.1f}")
    print(f"MB/s per rep: hepcore {hep['mbps_all']}, bare {bare['mbps_all']}")
    ratio = min(hep["mbps"] / bare["mbps"], hep["paired_ratio"])
    checks = [
        ((f"{kind}: {args.big_mib} MiB at {ratio:.2f}x bare (ratio of medians "
         f"{hep['mbps'] / bare['mbps']:.2f}, median of paired ratios {hep['paired_ratio']:.2f};"
         f" target >= {THROUGHPUT_TARGET}x)"), ratio >= THROUGHPUT_TARGET),
        ((f"{kind}: peak RSS growth {hep['rss_growth_mib']:.1f} MiB (target <= "
         f"{RSS_TARGET_MIB:g} MiB)"), hep["rss_growth_mib"] <= RSS_TARGET_MIB),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("wsgi", "asgi", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="2 repetitions, a smoke run")
    # 20 by default: a VM's disk stalls now and then, and a median of 20 pairs
    # moves less with a stall than one of 10.
    parser.add_argument("--reps", type=int, help="uploads per server (default 20)")
    parser.add_argument("--big-mib", type=int, default=100, help="file size in MiB")
    parser.add_argument("--tmpdir", help="where the data directories go (default: system temp)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.reps = args.reps or (2 if args.quick else 20)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    kinds = ("wsgi", "asgi") if args.kind == "both" else (args.kind,)
    print(f"hepcore CDN benchmark: {', '.join(kinds)}; {os.cpu_count()} CPUs; "
          + " ".join(f"{k} {v}" for k, v in versions().items()))
    print(f"{args.big_mib} MiB x{args.reps} per server")
    results: dict[str, Any] = {"versions": versions(), "args": {
        k: v for k, v in vars(args).items() if k not in ("json", "tmpdir")}}
    checks: list[tuple[str, bool]] = []
    for kind in kinds:
        workdir = Path(tempfile.mkdtemp(prefix=f"hepcore-bench-cdn-{kind}-", dir=args.tmpdir))
        try:
            results[kind] = bench_kind(kind, args, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        checks += report(kind, results[kind], args)
    print(f"\n{sum(ok for _, ok in checks)}/{len(checks)} targets met")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
