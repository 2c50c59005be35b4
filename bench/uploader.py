#!/usr/bin/env python3
"""Uploader benchmark: hepcore's hot request paths against bare Falcon handlers.

For each host kind (``wsgi``: gunicorn, 1 worker, gthread x8; ``asgi``:
uvicorn, 1 worker) this starts a real hepcore server on 127.0.0.1 (a fresh
``hepcore init`` data directory, one account, one uploader key,
``upload_rate_per_minute`` raised so that nothing is a rate-limit test; the
limiter still runs on every upload) and, under the same server software and
settings, the bare app of ``bench/bare_uploader.py``, which does only the
minimal work of each request. Both servers are up at once and the phases
alternate between them.

a) small uploads, requests/s: ``POST /upload`` of a 1 KiB file
   (``multipart/form-data``), a fixed count from a few client threads, each
   over its own keep-alive connection. Bare: the raw body to a temporary
   file, fsync, rename, directory fsync, ONE SQLite ``INSERT`` (WAL,
   ``synchronous=FULL``: a durable row, as hepcore's). hepcore also authenticates the key, counts its
   use, rate-limits, parses the multipart body, hashes, sniffs and issues a
   unique slug.
b) shortlink redirects, requests/s: ``GET /<ID>`` of shortlinks (made with
   ``POST /upload`` of a ``link`` field) answered 302. Bare: one ``SELECT``
   by primary key and the view-count ``UPDATE`` (counting the view is part
   of the minimal work: the uploader's spec counts every followed link), a
   302 with ``Location``.
c) file serving, MB/s: ``GET /<ID>`` of a 100 MiB upload, full body, several
   repetitions alternating between the servers. Bare: the same file (the one
   hepcore stored) through ``wsgi.file_wrapper`` (gunicorn: ``sendfile``), or
   under ASGI streamed in 1 MiB chunks read on the event loop.

The client is a minimal raw-socket HTTP/1.1 client (pre-built requests, no
header parsing beyond the status line, ``Location`` and ``Content-Length``)
so that it stays cheap; its CPU share of the wall time is printed. Every
answer is checked (status, ``ID``, ``Location``, byte count; the served file's
SHA-256 once per server). Targets: hepcore >= 0.8x bare for each of a), b)
and c) (c: both the ratio of the medians and the median of the
per-repetition ratios). PASS/FAIL is printed; the exit status is 0.

    python bench/uploader.py               # both kinds, about 30 s on 2 cores
    python bench/uploader.py --quick       # smoke run, a few seconds
    python bench/uploader.py --kind asgi --json results.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bare_uploader import SCHEMA
from common import (
    GUNICORN_THREADS,
    MB,
    MIB,
    MULTIPART_TYPE,
    LoopResult,
    RssProbe,
    bare_server,
    closed_loop,
    cpu_model,
    cpu_seconds,
    multipart_body,
    post,
    run_server,
    setup_hepcore,
    status_kib,
    versions,
    worker_pids,
)

TARGET = 0.8
LINKS = 32  # shortlinks the redirect phase cycles through
RECV_BUF = 4 * MIB


# --- a small HTTP/1.1 client ---------------------------------------------------


class RawConn:
    """One keep-alive connection sending pre-built requests; answers need a
    ``Content-Length`` (hepcore and the bare app always send one)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.sent = 0  # requests sent (the redirect phase cycles through its links)

    def _head(self) -> tuple[int, dict[bytes, bytes]]:
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        lines = buf[:end].split(b"\r\n")
        self.buf = buf[end + 4:]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" not in headers:
            raise RuntimeError(f"answer without Content-Length: {lines[0]!r}")
        return int(lines[0].split(b" ", 2)[1]), headers

    def request(self, raw: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send ``raw``; the status, lower-case headers and body of the answer."""
        self.sock.sendall(raw)
        status, headers = self._head()
        n = int(headers[b"content-length"])
        buf = self.buf
        while len(buf) < n:
            chunk = self.sock.recv(max(65536, n - len(buf)))
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            buf += chunk
        self.buf = buf[n:]
        return status, headers, buf[:n]

    def fetch(self, raw: bytes, sink: memoryview, hasher: Any = None) -> int:
        """Send a GET and read a large body into ``sink`` over and over; its length."""
        self.sock.sendall(raw)
        status, headers = self._head()
        if status != 200:
            raise RuntimeError(f"GET answered {status}")
        n = int(headers[b"content-length"])
        got = len(self.buf)
        if hasher is not None:
            hasher.update(self.buf)
        self.buf = b""
        while got < n:
            k = self.sock.recv_into(sink, min(len(sink), n - got))
            if not k:
                raise ConnectionError("server closed the connection mid-body")
            if hasher is not None:
                hasher.update(sink[:k])
            got += k
        return n

    def close(self) -> None:
        self.sock.close()


def build_request(method: str, path: str, host: str, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- servers -------------------------------------------------------------------


@dataclass
class Server:
    label: str  # "hepcore" or "bare"
    url: str
    pid: int
    workers: list[int] = field(default_factory=list)
    baseline_kib: int = 0
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def hostport(self) -> tuple[str, int]:
        host, _, port = self.url.removeprefix("http://").partition(":")
        return host, int(port)

    @property
    def netloc(self) -> str:
        return self.url.removeprefix("http://")

    def connect(self) -> RawConn:
        return RawConn(*self.hostport)


def make_links(hep: Server, token: str, bare_db: Path) -> dict[str, str]:
    """``LINKS`` shortlinks in hepcore (``POST /upload``) and the same IDs and
    targets in the bare database: ``{ID: target}``."""
    links = {}
    conn = http.client.HTTPConnection(*hep.hostport, timeout=60)
    try:
        for i in range(LINKS):
            target = f"https://example.com/bench/{i}?utm_source=hepcore-bench"
            doc = post(conn, multipart_body(target.encode(), filename="", name="link"),
                       {"Authorization": token})
            links[str(doc["ID"])] = target
    finally:
        conn.close()
    with contextlib.closing(sqlite3.connect(bare_db)) as db, db:
        db.executemany("INSERT INTO items (id, kind, link, created_at) VALUES (?, 'link', ?, ?)",
                       [(k, v, time.time()) for k, v in links.items()])
    return links


def make_big_file(hep: Server, token: str, data_dir: Path, bare_db: Path,
                  size_mib: int) -> tuple[str, str]:
    """Upload a ``size_mib`` file to hepcore; register its stored file in the
    bare database under the same ID. ``(ID, SHA-256)``."""
    data = os.urandom(size_mib * MIB)
    digest = hashlib.sha256(data).hexdigest()
    conn = http.client.HTTPConnection(*hep.hostport, timeout=120)
    try:
        item_id = str(post(conn, multipart_body(data), {"Authorization": token})["ID"])
    finally:
        conn.close()
    found = list(data_dir.rglob(f"uploader/{item_id}"))
    if len(found) != 1:
        raise RuntimeError(f"cannot find the stored file of {item_id}: {found}")
    with contextlib.closing(sqlite3.connect(bare_db)) as db, db:
        db.execute("INSERT INTO items (id, kind, path, size, created_at)"
                   " VALUES (?, 'file', ?, ?, ?)", (item_id, str(found[0]), len(data), time.time()))
    return item_id, digest


# --- phases ------------------------------------------------------------------


def merge(parts: list[LoopResult]) -> LoopResult:
    return LoopResult(sum(p.count for p in parts), sum(p.wall for p in parts),
                      sorted(x for p in parts for x in p.latencies),
                      sum(p.client_cpu for p in parts), sum(p.server_cpu for p in parts),
                      max(p.rss_growth_mib for p in parts))


def alternate(servers: list[Server], rounds: int, count: int, concurrency: int,
              one_for: dict[str, Any], key: str) -> None:
    """``count`` requests per server in ``rounds`` closed-loop runs, the
    servers' order swapped every round; results under ``key``."""
    parts: dict[str, list[LoopResult]] = {s.label: [] for s in servers}
    per_round = [count // rounds + (1 if i < count % rounds else 0) for i in range(rounds)]
    for r, n in enumerate(per_round):
        for s in servers if r % 2 == 0 else servers[::-1]:
            parts[s.label].append(closed_loop(
                n, concurrency, s.connect, one_for[s.label], RawConn.close,
                workers=s.workers, baseline_kib=s.baseline_kib, label=f"{s.label} {key}"))
    for s in servers:
        res = merge(parts[s.label])
        s.results[key] = {
            "rps": round(res.rps, 1),
            "rps_rounds": [round(p.rps, 1) for p in parts[s.label]],
            "latency_ms_p50": round(res.latency_ms(0.5), 2),
            "latency_ms_p99": round(res.latency_ms(0.99), 2),
            "server_cpu_ms_per_request": round(1000 * res.server_cpu / res.count, 3),
            "client_cpu_share": round(res.client_cpu / res.wall, 3),
            "rss_growth_mib": round(res.rss_growth_mib, 2),
        }


def small_uploads(servers: list[Server], token: str, args: argparse.Namespace) -> None:
    body = multipart_body(os.urandom(1024))
    one_for = {}
    for s in servers:
        raw = build_request("POST", "/upload", s.netloc, {
            "Authorization": token, "Content-Type": MULTIPART_TYPE}, body)

        def one(conn: RawConn, raw: bytes = raw, label: str = s.label) -> None:
            status, _, answer = conn.request(raw)
            if status != 200 or not json.loads(answer).get("ID"):
                raise RuntimeError(f"{label}: upload answered {status}: {answer[:300]!r}")

        one_for[s.label] = one
    alternate(servers, args.rounds, args.uploads, args.concurrency, one_for, "upload")


def redirects(servers: list[Server], links: dict[str, str], args: argparse.Namespace) -> None:
    one_for = {}
    for s in servers:
        reqs = [(build_request("GET", f"/{item_id}", s.netloc), target.encode())
                for item_id, target in links.items()]

        def one(conn: RawConn, reqs: list[tuple[bytes, bytes]] = reqs,
                label: str = s.label) -> None:
            raw, target = reqs[conn.sent % len(reqs)]
            conn.sent += 1
            status, headers, _ = conn.request(raw)
            if status != 302 or headers.get(b"location") != target:
                raise RuntimeError(f"{label}: redirect answered {status} {headers!r}")

        one_for[s.label] = one
    alternate(servers, args.rounds, args.redirects, args.concurrency, one_for, "redirect")


def file_serving(servers: list[Server], item_id: str, digest: str, size: int,
                 args: argparse.Namespace) -> None:
    """Full GETs of the big file, alternating; MB/s per repetition."""
    sink = memoryview(bytearray(RECV_BUF))
    reqs = {s.label: build_request("GET", f"/{item_id}", s.netloc) for s in servers}
    for s in servers:  # warm-up and check: the served bytes hash right
        conn = s.connect()
        try:
            hasher = hashlib.sha256()
            if conn.fetch(reqs[s.label], sink, hasher) != size or hasher.hexdigest() != digest:
                raise RuntimeError(f"{s.label}: served bytes of {item_id} differ")
            conn.fetch(reqs[s.label], sink)
        finally:
            conn.close()
    times: dict[str, list[float]] = {s.label: [] for s in servers}
    with contextlib.ExitStack() as stack:
        probes = {s.label: stack.enter_context(RssProbe(s.workers, s.baseline_kib))
                  for s in servers}
        cpu0 = {s.label: cpu_seconds(s.workers) for s in servers}
        client0, wall0 = time.process_time(), time.perf_counter()
        for rep in range(args.file_reps):
            for s in servers if rep % 2 == 0 else servers[::-1]:
                conn = s.connect()
                try:
                    t0 = time.perf_counter()
                    if conn.fetch(reqs[s.label], sink) != size:
                        raise RuntimeError(f"{s.label}: short body")
                    times[s.label].append(time.perf_counter() - t0)
                finally:
                    conn.close()
        client_share = (time.process_time() - client0) / (time.perf_counter() - wall0)
        cpu = {s.label: cpu_seconds(s.workers) - cpu0[s.label] for s in servers}
    other = times[servers[-1].label]
    for s in servers:
        mine = times[s.label]
        s.results["file"] = {
            "mbps": round(size / statistics.median(mine) / MB, 1),
            "mbps_all": [round(size / t / MB, 1) for t in mine],
            "paired_ratio": round(statistics.median(o / t for t, o in zip(mine, other)), 3),
            "server_cpu_s_per_get": round(cpu[s.label] / args.file_reps, 4),
            "client_cpu_share": round(client_share, 3),
            "rss_growth_mib": round(probes[s.label].growth_mib, 2),
        }


def bench_kind(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    data_dir = workdir / "hepcore-data"
    token = setup_hepcore(data_dir)
    bare_db = workdir / "bare.db"
    with contextlib.closing(sqlite3.connect(bare_db)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(SCHEMA)
    with run_server(data_dir, kind, workers=1, threads=GUNICORN_THREADS) as hep_run, \
            bare_server(kind, workdir, "bare_uploader", {"BARE_DB": str(bare_db)}) as (
                bare_url, bare_pid, _store):
        hep = Server("hepcore", hep_run.url, hep_run.pid)
        bare = Server("bare", bare_url, bare_pid)
        servers = [hep, bare]
        try:
            links = make_links(hep, token, bare_db)
            big_id, digest = make_big_file(hep, token, data_dir, bare_db, args.big_mib)
            for s in servers:
                s.workers = worker_pids(s.pid)
            # Warm-up: every path once over, then the baselines.
            warm = argparse.Namespace(**{**vars(args), "uploads": 40, "redirects": 100,
                                         "rounds": 1})
            small_uploads(servers, token, warm)
            redirects(servers, links, warm)
            time.sleep(0.3)
            for s in servers:
                s.baseline_kib = sum(status_kib(p, "VmRSS") for p in s.workers)
            small_uploads(servers, token, args)
            redirects(servers, links, args)
            file_serving(servers, big_id, digest, args.big_mib * MIB, args)
        except Exception:
            sys.stderr.write(f"--- hepcore {kind} server log (tail) ---\n"
                             f"{hep_run.log()[-3000:]}\n")
            raise
    out = {s.label: s.results for s in servers}
    for s in servers:
        s.results["baseline_rss_mib"] = round(s.baseline_kib / 1024, 1)
    return out


# --- report ------------------------------------------------------------------


def report(kind: str, res: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, bool]]:
    hep, bare = res["hepcore"], res["bare"]
    server = f"gunicorn, 1 worker, gthread x{GUNICORN_THREADS}" if kind == "wsgi" \
        else "uvicorn, 1 worker"
    print(f"\n== {kind} ({server}) ==")
    print(f"{'metric':<44}{'hepcore':>10}{'bare':>10}{'ratio':>8}  target")

    def row(title: str, h: float, b: float, fmt: str, target: str = "",
            ratio: bool = True) -> None:
        r = f"{h / b:.2f}" if ratio and b else ""
        print(f"{title:<44}{format(h, fmt):>10}{format(b, fmt):>10}{r:>8}  {target}")

    checks = []
    for key, title, count in (("upload", f"a) 1 KiB uploads, req/s (c={args.concurrency})",
                               args.uploads),
                              ("redirect", f"b) shortlink 302s, req/s (c={args.concurrency})",
                               args.redirects)):
        h, b = hep[key], bare[key]
        ratio = h["rps"] / b["rps"]
        ok = ratio >= TARGET
        row(title, h["rps"], b["rps"], ".0f", f">= {TARGET}x: {'PASS' if ok else 'FAIL'}")
        row("   latency p50, ms", h["latency_ms_p50"], b["latency_ms_p50"], ".2f")
        row("   latency p99, ms", h["latency_ms_p99"], b["latency_ms_p99"], ".2f")
        row("   server CPU ms per request", h["server_cpu_ms_per_request"],
            b["server_cpu_ms_per_request"], ".3f")
        row("   client CPU share of wall time", h["client_cpu_share"], b["client_cpu_share"],
            ".0%", ratio=False)
        text = (f"{kind}: {key}s at {ratio:.2f}x bare ({h['rps']:.0f} / {b['rps']:.0f}"
                f" req/s, {count} each; target >= {TARGET}x)")
        checks.append((text, ok))
    h, b = hep["file"], bare["file"]
    of_medians = h["mbps"] / b["mbps"]
    ratio = min(of_medians, h["paired_ratio"])
    ok = ratio >= TARGET
    row(f"c) GET {args.big_mib} MiB file, MB/s (median)", h["mbps"], b["mbps"], ".0f",
        f">= {TARGET}x: {'PASS' if ok else 'FAIL'}")
    print(f"{'   median of per-repetition ratios':<44}{'':>20}{h['paired_ratio']:>8.2f}")
    row("   server CPU s per GET", h["server_cpu_s_per_get"], b["server_cpu_s_per_get"], ".3f")
    row("   RSS growth, MiB", h["rss_growth_mib"], b["rss_growth_mib"], ".1f", ratio=False)
    print(f"   client CPU share of wall time (both): {h['client_cpu_share']:.0%}")
    print(f"   MB/s per rep: hepcore {h['mbps_all']}, bare {b['mbps_all']}")
    row("worker RSS after warm-up, MiB", hep["baseline_rss_mib"], bare["baseline_rss_mib"],
        ".1f", ratio=False)
    text = (f"{kind}: {args.big_mib} MiB GET at {ratio:.2f}x bare (ratio of medians "
            f"{of_medians:.2f}, median of paired ratios {h['paired_ratio']:.2f}; "
            f"target >= {TARGET}x)")
    checks.append((text, ok))
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {text}")
    return checks


def load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("wsgi", "asgi", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke run")
    parser.add_argument("--uploads", type=int, help="1 KiB uploads per server (default 2000)")
    parser.add_argument("--redirects", type=int, help="redirects per server (default 5000)")
    parser.add_argument("--file-reps", type=int, help="big-file GETs per server (default 10)")
    parser.add_argument("--big-mib", type=int, default=100, help="big file size in MiB")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads, a) and b)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="a) and b) are split in this many runs, alternating the servers")
    parser.add_argument("--tmpdir", help="where the data directories go (default: system temp)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    args.uploads = args.uploads or (200 if args.quick else 2000)
    args.redirects = args.redirects or (500 if args.quick else 5000)
    args.file_reps = args.file_reps or (2 if args.quick else 10)

    start_load = load_average()
    # SIGTERM unwinds like Ctrl-C, so servers and temporary files go away.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    kinds = ("wsgi", "asgi") if args.kind == "both" else (args.kind,)
    print(f"hepcore uploader benchmark: {', '.join(kinds)}; {os.cpu_count()} CPUs "
          f"({cpu_model()}); " + " ".join(f"{k} {v}" for k, v in versions().items()))
    print(f"load average (1, 5, 15 min) at start: {start_load}; other work on the machine"
          " skews the figures")
    print(f"a) {args.uploads} x 1 KiB uploads, b) {args.redirects} redirects "
          f"({args.concurrency} threads, {args.rounds} alternating runs), "
          f"c) {args.big_mib} MiB GET x{args.file_reps}")
    results: dict[str, Any] = {"versions": versions(), "args": {
        k: v for k, v in vars(args).items() if k not in ("json", "tmpdir")}}
    checks: list[tuple[str, bool]] = []
    started = time.monotonic()
    for kind in kinds:
        workdir = Path(tempfile.mkdtemp(prefix=f"hepcore-bench-uploader-{kind}-",
                                        dir=args.tmpdir))
        try:
            t0 = time.monotonic()
            results[kind] = bench_kind(kind, args, workdir)
            results[kind]["seconds"] = round(time.monotonic() - t0, 1)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        checks += report(kind, results[kind], args)
    results["load_average"] = {"start": start_load, "end": load_average()}
    print(f"\nload average at the end: {results['load_average']['end']}")
    print(f"total {time.monotonic() - started:.0f} s; "
          f"{sum(ok for _, ok in checks)}/{len(checks)} targets met")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
