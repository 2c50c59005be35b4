"""A host killed with SIGKILL loses no webhook event: the outbox survives, and a
delivery that was in flight when the process died is sent again after its lease.

Real servers (gunicorn, uvicorn) in subprocesses, a real receiver on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from PIL import Image
from webhookkit import Receiver, spec_signature_ok

from hepcore import build_runtime, load_config
from hepcore.testing.servers import RunningServer, run_server

CONFIG = """\
[outbound]
allow = ["127.0.0.1"]

[plugins]
blocked = ["uploader", "paste", "cdn", "login", "phash_blocklist"]

[services.images]
prefix = "/"
webhook_timeout = 3.0
webhook_lease_seconds = 4.0
webhook_retry_delays = [1.0, 1.0, 1.0, 1.0]
webhook_poll_seconds = 0.2
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text(CONFIG)
    (data / "secret").write_text("restart-test-secret\n")
    return data


def set_up_account(data: Path, hook_url: str) -> tuple[str, str]:
    """An account with an ``fxf_`` key and one webhook; (key, signing secret)."""
    runtime = build_runtime(load_config(data))
    try:
        account = runtime.accounts.create("alice")
        key, _ = runtime.keys.create("images", account.id)
        _, secret = runtime.services["images"].webhooks.create(  # type: ignore[attr-defined]
            account.id, hook_url)
        return key, secret
    finally:
        runtime.close()


def upload(server: RunningServer, key: str) -> dict[str, object]:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), (1, 2, 3)).save(buf, "PNG")
    session = requests.Session()
    session.trust_env = False  # no proxy for loopback
    done = session.post(server.url + "/api/v1/upload", headers={"Authorization": "Bearer " + key},
                        files={"file": ("a.png", buf.getvalue(), "image/png")}, timeout=30)
    assert done.status_code == 200, done.text
    return done.json()  # type: ignore[no-any-return]


def query(data: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data / "hepcore.db", timeout=10) as conn:
        return conn.execute(sql).fetchall()


def wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def kill(server: RunningServer) -> None:
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_undelivered_events_survive_a_kill(data_dir: Path, receiver: Receiver,
                                           kind: str) -> None:
    key, secret = set_up_account(data_dir, receiver.url)
    receiver.stop()  # the receiver is down: the event stays in the outbox
    with run_server(data_dir, kind) as server:
        done = upload(server, key)
        wait_until(lambda: query(data_dir, "SELECT failure_count FROM images_webhook_endpoints")
                   [0][0] >= 1)
        kill(server)
    assert query(data_dir, "SELECT count(*) FROM images_webhook_outbox") == [(1,)]

    receiver.start()
    with run_server(data_dir, kind):
        (got,) = receiver.wait_for(1)
        wait_until(lambda: query(data_dir, "SELECT count(*) FROM images_webhook_outbox")
                   == [(0,)])
    assert spec_signature_ok(secret, got.body, got.headers["X-Fixitfy-Signature"])
    event = json.loads(got.body)
    assert event["event"] == "upload.created"
    assert event["upload"]["filename"] == done["filename"]
    assert event["upload"]["hash_sha256"] == done["hash_sha256"]


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_delivery_in_flight_at_the_kill_is_sent_again(data_dir: Path, receiver: Receiver,
                                                        kind: str) -> None:
    key, secret = set_up_account(data_dir, receiver.url)
    receiver.replies = [(200, 30.0)]  # holds the first delivery open
    with run_server(data_dir, kind) as server:
        upload(server, key)
        receiver.wait_for(1)
        kill(server)  # while the receiver still holds the request
    (leased,) = query(data_dir, "SELECT attempts, leased_until FROM images_webhook_outbox")
    assert leased[0] == 1 and leased[1] is not None

    with run_server(data_dir, kind):
        first, second = receiver.wait_for(2)
        wait_until(lambda: query(data_dir, "SELECT count(*) FROM images_webhook_outbox")
                   == [(0,)])
    assert second.body == first.body
    assert spec_signature_ok(secret, second.body, second.headers["X-Fixitfy-Signature"])
