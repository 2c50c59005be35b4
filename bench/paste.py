#!/usr/bin/env python3
"""Paste benchmark: creation against a bare Falcon handler, and the reader page.

For each host kind (``wsgi``: gunicorn, 1 worker, gthread x8; ``asgi``:
uvicorn, 1 worker) this starts a real hepcore server on 127.0.0.1 (a fresh
data directory, the paste service at ``/``, the create rate limit raised so
that nothing is a rate-limit test, one Prime account and its key) and the
bare app of ``bench/bare_paste.py`` under the same server software.

a) creation, requests/s: ``POST /api/paste`` of the spec's example body
   (title, 30 bytes of content, ``language``, ``unlisted``) from a few
   client threads over keep-alive connections. hepcore also authenticates
   the key, counts its use, rate-limits, validates, hashes and issues a
   unique ID. Bare: parse the JSON, ONE SQLite ``INSERT``. Target: hepcore
   >= 0.8x bare.
b) reader page, requests/s: ``GET /<id>`` of a 64 KiB Python paste whose
   highlighted block is cached (the first view rendered it); every view is
   still counted and the page (title, views, nonce) built per response.

    python bench/paste.py            # both kinds
    python bench/paste.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import sqlite3
import sys
import tempfile
from pathlib import Path

from bare_paste import SCHEMA
from common import bare_server, closed_loop, run_server, versions, worker_pids

TARGET = 0.8
BODY = json.dumps({"title": "deploy log", "content": "==> building\n==> done in 4.2s",
                   "language": "bash", "visibility": "unlisted"}).encode()
CONFIG = """\
[services.paste]
prefix = "/"
create_rate_per_minute = 1000000000

[services.uploader]
prefix = "/uploader"
"""


def setup(data: Path) -> str:
    import subprocess

    subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "init"], check=True,
                   stdout=subprocess.DEVNULL)
    (data / "hepcore.toml").write_text(CONFIG)
    import hepcore

    runtime = hepcore.build_runtime(hepcore.load_config(data))
    try:
        account = runtime.accounts.create("bench", plan="prime")
        key, _ = runtime.keys.create("paste", account.id, label="bench")
    finally:
        runtime.close()
    return key


def connect(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def poster(headers: dict[str, str]):  # type: ignore[no-untyped-def]
    def one(conn: http.client.HTTPConnection) -> None:
        conn.request("POST", "/api/paste", body=BODY, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status != 200 or b'"ok":true' not in raw:
            raise RuntimeError(f"create answered {resp.status}: {raw[:200]!r}")
    return one


def getter(path: str):  # type: ignore[no-untyped-def]
    def one(conn: http.client.HTTPConnection) -> None:
        conn.request("GET", path)
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status != 200 or b"<table" not in raw:
            raise RuntimeError(f"GET {path} answered {resp.status}")
    return one


def run_kind(kind: str, count: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="paste-bench-") as tmp:
        work = Path(tmp)
        data = work / "hepcore"
        data.mkdir()
        key = setup(data)
        bare_db = work / "bare.db"
        with contextlib.closing(sqlite3.connect(bare_db)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)
        with run_server(data, kind, workers=1, threads=8) as hep, \
                bare_server(kind, work, "bare_paste", env={"BARE_DB": str(bare_db)}) as bare:
            bare_url, bare_pid, _ = bare
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            results: dict[str, float] = {}
            for label, url, pid, hdrs in (("hepcore", hep.url, hep.pid, headers),
                                          ("bare", bare_url, bare_pid,
                                           {"Content-Type": "application/json"})):
                loop = closed_loop(count, concurrency, lambda u=url: connect(u),
                                   poster(hdrs), lambda c: c.close(),
                                   workers=worker_pids(pid), baseline_kib=0,
                                   label=f"{label} create")
                results[f"create_{label}"] = loop.rps
                results[f"cpu_ms_{label}"] = 1000 * loop.server_cpu / loop.count
            # b) a cached 64 KiB reader page.
            source = (Path(__file__).resolve().parents[1] / "src" / "hepcore" / "storage.py"
                      ).read_text()
            content = (source * 4)[:64 * 1024]
            conn = connect(hep.url)
            conn.request("POST", "/api/paste", headers=headers, body=json.dumps(
                {"content": content, "language": "python"}).encode())
            paste_id = json.loads(conn.getresponse().read())["data"]["id"]
            conn.close()
            loop = closed_loop(max(count // 2, 20), concurrency, lambda: connect(hep.url),
                               getter(f"/{paste_id}"), lambda c: c.close(),
                               workers=worker_pids(hep.pid), baseline_kib=0,
                               label="reader page")
            results["reader_64k"] = loop.rps
            return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("wsgi", "asgi"), action="append")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    count = 200 if args.quick else args.count
    print(json.dumps(versions()))
    for kind in args.kind or ["wsgi", "asgi"]:
        r = run_kind(kind, count, args.concurrency)
        ratio = r["create_hepcore"] / r["create_bare"]
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"{kind}: create hepcore {r['create_hepcore']:.0f} req/s, bare"
              f" {r['create_bare']:.0f} req/s, ratio {ratio:.2f} (target >= {TARGET}:"
              f" {verdict}); server CPU per create {r['cpu_ms_hepcore']:.2f} ms vs"
              f" {r['cpu_ms_bare']:.2f} ms; reader page (64 KiB, cached) {r['reader_64k']:.0f} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
