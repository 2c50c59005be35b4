#!/usr/bin/env python3
"""Webhook delivery benchmark: deliveries per second to a local receiver.

Builds an images host in a fresh data directory (the outbound allow list
opened for 127.0.0.1), adds one account with one webhook endpoint, writes
``--events`` ``upload.created`` events to the outbox the way an upload does
(``Webhooks.enqueue`` inside a write transaction, one event per
transaction), then times the delivery job (``images-webhooks``) until the
outbox is empty. The receiver runs in its own process (``ThreadingHTTPServer``,
answers ``204``) and checks every signature; a bad one fails the run.

Measured per ``webhook_concurrency`` setting: deliveries per second (every
one a fresh TCP connection, as the fetcher sends ``Connection: close``) and,
for context, the time to enqueue the events.

    python bench/webhooks.py                  # 2000 events, concurrency 1 and 8
    python bench/webhooks.py --quick          # 200 events
    python bench/webhooks.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:  # run from a checkout without installing
    import hepcore  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(HERE.parent / "src"))
    sys.path.insert(0, str(HERE.parent / "plugins"))

from hepcore import Config, ServiceConfig, build_runtime

RECEIVER = r"""
import hashlib, hmac, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
secret = sys.argv[1].encode()
count = 0
bad = 0
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        global count, bad
        body = self.rfile.read(int(self.headers["Content-Length"]))
        sig = self.headers.get("X-Fixitfy-Signature", "")
        good = hmac.compare_digest("sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
                                   sig)
        with lock:
            count += 1
            bad += not good
        self.send_response(204)
        self.end_headers()
    def do_GET(self):
        data = f"{count} {bad}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def receiver_counts(port: int) -> tuple[int, int]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/")
    count, bad = conn.getresponse().read().decode().split()
    conn.close()
    return int(count), int(bad)


def run(events: int, concurrency: int, workdir: Path) -> dict[str, Any]:
    data = workdir / f"c{concurrency}"
    runtime = build_runtime(Config(
        data_dir=data, secrets=["bench-secret"], outbound_allow=["127.0.0.1"],
        services={"images": ServiceConfig("images", prefix="/", options={
            "webhook_concurrency": concurrency})},
        blocked_plugins=["uploader", "paste", "cdn", "login", "phash_blocklist"]))
    receiver = None
    try:
        hooks = runtime.services["images"].webhooks  # type: ignore[attr-defined]
        account = runtime.accounts.create("bench")
        # The secret exists once the first endpoint does; the receiver needs it.
        _, secret = hooks.create(account.id, "http://127.0.0.1:1/placeholder")
        receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, secret],
                                    stdout=subprocess.PIPE, text=True)
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        endpoint = hooks.store.list(account.id)[0]
        hooks.update(endpoint, {"url": f"http://127.0.0.1:{port}/hook"})

        start = time.perf_counter()
        for i in range(events):
            with runtime.db.write() as conn:
                hooks.enqueue(conn, account.id, "upload.created", {
                    "filename": f"FIXITFY-{i:012d}.png",
                    "url": f"https://upload.fixitfy.com.tr/images/FIXITFY-{i:012d}.png",
                    "size": 184237, "mime": "image/png", "width": 1920, "height": 1080,
                    "hash_sha256": "9b" * 32, "created_at": runtime.clock()})
        enqueue_s = time.perf_counter() - start

        start = time.perf_counter()
        attempts = 0
        while runtime.db.one("SELECT count(*) FROM images_webhook_outbox")[0]:
            attempts += hooks.deliver_due()
        deliver_s = time.perf_counter() - start
        received, bad = receiver_counts(port)
        failures = hooks.store.list(account.id)[0].failure_count
        if bad or received != events or failures:
            raise SystemExit(f"FAIL: {received} received, {bad} bad signatures,"
                             f" {failures} failed attempts")
        return {"events": events, "concurrency": concurrency, "attempts": attempts,
                "deliveries_per_s": round(events / deliver_s, 1),
                "enqueue_per_s": round(events / enqueue_s, 1)}
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(10)
        runtime.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--quick", action="store_true", help="200 events")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    events = 200 if args.quick else args.events
    results = []
    with tempfile.TemporaryDirectory(prefix="hepcore-bench-webhooks-") as tmp:
        for concurrency in args.concurrency:
            result = run(events, concurrency, Path(tmp))
            results.append(result)
            print(f"concurrency {concurrency:>2}: {result['deliveries_per_s']:>8.1f} deliveries/s"
                  f"  (enqueue {result['enqueue_per_s']:.0f} events/s, {events} events)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
