"""Webhook delivery (images.md 10.1): outbox in the upload's transaction, signed POSTs
to a real receiver on 127.0.0.1, failures recorded, backoff on the host clock."""

from __future__ import annotations

import io
import json
from typing import Any

import falcon.testing
import pytest
from conftest import PUBLIC_BASE
from httpkit import multipart
from PIL import Image
from webhookkit import Receiver, spec_signature_ok

from hepcore import Account, Runtime
from hepcore.clock import iso_ms
from hepcore.testing import FakeClock
from hepcore_images.webhooks import Webhooks

TIMEOUT = 0.5  # the 8 s of the spec, shortened for the slow-receiver tests
DELAYS = [30, 120, 480, 1920]


@pytest.fixture
def images_options() -> dict[str, Any]:
    return {"webhook_timeout": TIMEOUT, "webhook_lease_seconds": 30}


@pytest.fixture
def outbound_allow() -> list[str]:
    return ["127.0.0.1"]


@pytest.fixture
def key(runtime: Runtime, account: Account) -> str:
    token, _ = runtime.keys.create("images", account.id, label="ci")
    return token


@pytest.fixture
def webhooks(runtime: Runtime) -> Webhooks:
    hooks = runtime.services["images"].webhooks  # type: ignore[attr-defined]
    assert isinstance(hooks, Webhooks)
    return hooks


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def png(seed: int = 1) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16 + seed, 9), (seed * 40 % 256, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def upload(client: falcon.testing.TestClient, key: str, data: bytes) -> dict[str, Any]:
    body, ctype = multipart([("file", "shot.png", "image/png", data)])
    done = client.simulate_post("/api/v1/upload", body=body,
                                headers={**auth(key), "Content-Type": ctype})
    assert done.status_code == 200, done.text
    return done.json  # type: ignore[no-any-return]


def add_hook(client: falcon.testing.TestClient, key: str, url: str,
             enabled: bool = True) -> tuple[dict[str, Any], str]:
    made = client.simulate_post("/api/v1/webhooks", headers=auth(key),
                                json={"url": url, "enabled": enabled})
    assert made.status_code == 200, made.text
    return made.json["webhook"], made.json["signing_secret"]


def hook_state(client: falcon.testing.TestClient, key: str, hook_id: str) -> dict[str, Any]:
    listed = client.simulate_get("/api/v1/webhooks", headers=auth(key)).json["webhooks"]
    return next(h for h in listed if h["id"] == hook_id)  # type: ignore[no-any-return]


def pending(runtime: Runtime) -> int:
    return int(runtime.db.one("SELECT count(*) FROM images_webhook_outbox")[0])


def test_upload_created_is_signed_and_delivered(client: falcon.testing.TestClient, key: str,
                                                runtime: Runtime, clock: FakeClock,
                                                webhooks: Webhooks,
                                                receiver: Receiver) -> None:
    hook, secret = add_hook(client, key, receiver.url)
    done = upload(client, key, png())
    assert pending(runtime) == 1  # committed with the upload, not yet sent
    assert receiver.requests == []

    assert webhooks.deliver_due() == 1
    (got,) = receiver.requests
    assert got.path == "/hooks/fixitfy"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Fixitfy-Event"] == "upload.created"
    signature = got.headers["X-Fixitfy-Signature"]
    assert signature.startswith("sha256=") and spec_signature_ok(secret, got.body, signature)
    assert not spec_signature_ok("0" * 64, got.body, signature)
    upload_fields = {k: done[k] for k in ("filename", "url", "size", "mime", "width", "height",
                                          "hash_sha256")}
    created = runtime.db.one("SELECT created_at FROM images_uploads WHERE filename = ?",
                             (done["filename"],))[0]
    expected = {"event": "upload.created", "upload": upload_fields, "timestamp": iso_ms(created)}
    assert json.loads(got.body) == expected
    assert got.body == json.dumps(expected, separators=(",", ":")).encode()  # compact, in order
    assert pending(runtime) == 0
    assert hook_state(client, key, hook["id"]) == hook  # no failure recorded
    assert webhooks.deliver_due() == 0


def test_only_enabled_endpoints_of_the_account_get_events(
        client: falcon.testing.TestClient, key: str, runtime: Runtime, webhooks: Webhooks,
        receiver: Receiver) -> None:
    add_hook(client, key, receiver.url + "?a=1")
    add_hook(client, key, receiver.url + "?a=2")
    add_hook(client, key, receiver.url + "?off", enabled=False)
    bob = runtime.accounts.create("bob")
    bob_key, _ = runtime.keys.create("images", bob.id)
    add_hook(client, bob_key, receiver.url + "?bob")
    upload(client, key, png())
    webhooks.deliver_due()
    assert sorted(r.path for r in receiver.requests) == ["/hooks/fixitfy?a=1",
                                                         "/hooks/fixitfy?a=2"]
    assert receiver.requests[0].body == receiver.requests[1].body


def test_dedupe_hits_send_nothing(client: falcon.testing.TestClient, key: str,
                                  runtime: Runtime, webhooks: Webhooks,
                                  receiver: Receiver) -> None:
    add_hook(client, key, receiver.url)
    upload(client, key, png())
    again = upload(client, key, png())
    assert again["duplicate"] is True
    assert pending(runtime) == 1
    webhooks.deliver_due()
    assert len(receiver.requests) == 1


def test_rejected_uploads_send_nothing(client: falcon.testing.TestClient, key: str,
                                       runtime: Runtime, receiver: Receiver) -> None:
    add_hook(client, key, receiver.url)
    body, ctype = multipart([("file", "x.png", "image/png", b"not an image at all")])
    refused = client.simulate_post("/api/v1/upload", body=body,
                                   headers={**auth(key), "Content-Type": ctype})
    assert refused.status_code == 415
    assert pending(runtime) == 0


def test_the_outbox_row_shares_the_upload_transaction(runtime: Runtime, account: Account,
                                                      webhooks: Webhooks,
                                                      receiver: Receiver) -> None:
    webhooks.create(account.id, receiver.url)
    data = {"filename": "FIXITFY-abcdefghijkl.png", "url": PUBLIC_BASE + "/images/x.png",
            "size": 1, "mime": "image/png", "width": 1, "height": 1, "hash_sha256": "0" * 64,
            "timestamp": "2026-06-01T12:00:00.000Z"}
    with pytest.raises(RuntimeError), runtime.db.write() as conn:
        webhooks.enqueue(conn, account.id, "upload.created", data)
        raise RuntimeError("the upload's insert failed")
    assert pending(runtime) == 0
    with runtime.db.write() as conn:
        webhooks.enqueue(conn, account.id, "upload.created", data)
    webhooks.deliver_due()
    assert json.loads(receiver.requests[0].body)["timestamp"] == "2026-06-01T12:00:00.000Z"


def test_a_receiver_that_is_down_then_up(client: falcon.testing.TestClient, key: str,
                                         runtime: Runtime, clock: FakeClock,
                                         webhooks: Webhooks, receiver: Receiver) -> None:
    hook, _ = add_hook(client, key, receiver.url)
    receiver.stop()
    upload(client, key, png())
    assert webhooks.deliver_due() == 1
    failed_at = clock()
    state = hook_state(client, key, hook["id"])
    assert state == {**hook, "failure_count": 1, "last_status": None,
                     "last_error": "connection failed", "last_failure_at": iso_ms(failed_at)}
    assert pending(runtime) == 1

    # Not due before the first delay (30 s, plus up to 10 % jitter) has passed.
    clock.advance(29)
    assert webhooks.deliver_due() == 0
    receiver.start()
    clock.advance(DELAYS[0] * 0.1 + 2)
    assert webhooks.deliver_due() == 1
    assert len(receiver.requests) == 1
    assert pending(runtime) == 0
    # The failure record stays; a success does not erase history.
    assert hook_state(client, key, hook["id"])["failure_count"] == 1


def test_a_slow_receiver_times_out_then_recovers(client: falcon.testing.TestClient, key: str,
                                                 runtime: Runtime, clock: FakeClock,
                                                 webhooks: Webhooks,
                                                 receiver: Receiver) -> None:
    hook, secret = add_hook(client, key, receiver.url)
    upload(client, key, png())
    receiver.replies = [(200, TIMEOUT * 4)]
    webhooks.deliver_due()
    state = hook_state(client, key, hook["id"])
    assert (state["failure_count"], state["last_status"], state["last_error"]) == (
        1, None, "timeout")
    clock.advance(DELAYS[0] * 1.1 + 1)
    webhooks.deliver_due()
    first, second = receiver.requests
    assert first.body == second.body  # the same bytes on every attempt
    assert spec_signature_ok(secret, second.body, second.headers["X-Fixitfy-Signature"])
    assert pending(runtime) == 0


def test_status_errors_and_redirects_are_failures(client: falcon.testing.TestClient, key: str,
                                                  runtime: Runtime, clock: FakeClock,
                                                  webhooks: Webhooks,
                                                  receiver: Receiver) -> None:
    hook, _ = add_hook(client, key, receiver.url)
    upload(client, key, png())
    receiver.replies = [(500, 0), (302, 0), (204, 0)]
    webhooks.deliver_due()
    state = hook_state(client, key, hook["id"])
    assert (state["failure_count"], state["last_status"], state["last_error"]) == (
        1, 500, "HTTP 500")
    clock.advance(DELAYS[0] * 1.1 + 1)
    webhooks.deliver_due()
    state = hook_state(client, key, hook["id"])
    assert (state["failure_count"], state["last_status"], state["last_error"]) == (
        2, 302, "redirect not followed")
    assert [r.path for r in receiver.requests] == ["/hooks/fixitfy"] * 2  # not followed
    clock.advance(DELAYS[1] * 1.1 + 1)
    webhooks.deliver_due()
    assert len(receiver.requests) == 3 and pending(runtime) == 0  # 204 is a 2xx


def test_five_attempts_with_exponential_backoff(client: falcon.testing.TestClient, key: str,
                                                runtime: Runtime, clock: FakeClock,
                                                webhooks: Webhooks,
                                                receiver: Receiver) -> None:
    hook, _ = add_hook(client, key, receiver.url)
    upload(client, key, png())
    receiver.replies = [(503, 0)] * 10
    gaps = []
    for attempt in range(1, 6):
        assert webhooks.deliver_due() == 1
        assert len(receiver.requests) == attempt
        if attempt < 5:
            due = webhooks.store.next_due()
            assert due is not None
            gaps.append(due - clock())
            clock.advance(gaps[-1])
    for gap, delay in zip(gaps, DELAYS, strict=True):
        assert delay <= gap <= delay * 1.1  # exponential, with up to 10 % jitter
    assert pending(runtime) == 0  # dropped after the fifth attempt
    clock.advance(10 * 86400)
    assert webhooks.deliver_due() == 0
    state = hook_state(client, key, hook["id"])
    assert (state["failure_count"], state["last_status"], state["last_error"]) == (
        5, 503, "HTTP 503")


def test_private_targets_are_refused_unless_allowed(client: falcon.testing.TestClient,
                                                    key: str, runtime: Runtime,
                                                    webhooks: Webhooks,
                                                    receiver: Receiver) -> None:
    hook, _ = add_hook(client, key, "http://10.0.0.7/hooks")
    # Loopback, but not the allowed 127.0.0.1.
    local, _ = add_hook(client, key, receiver.url.replace("127.0.0.1", "127.0.0.2"))
    upload(client, key, png())
    webhooks.deliver_due()
    for blocked in (hook, local):
        state = hook_state(client, key, blocked["id"])
        assert (state["failure_count"], state["last_status"], state["last_error"]) == (
            1, None, "destination not allowed")
    assert receiver.requests == []


def test_rotating_the_secret_signs_pending_events_with_the_new_one(
        client: falcon.testing.TestClient, key: str, webhooks: Webhooks,
        receiver: Receiver) -> None:
    _, old = add_hook(client, key, receiver.url)
    upload(client, key, png())
    new = client.simulate_post("/api/v1/webhooks/rotate-secret",
                               headers=auth(key)).json["signing_secret"]
    webhooks.deliver_due()
    (got,) = receiver.requests
    assert spec_signature_ok(new, got.body, got.headers["X-Fixitfy-Signature"])
    assert not spec_signature_ok(old, got.body, got.headers["X-Fixitfy-Signature"])


def test_disabling_or_deleting_cancels_pending_deliveries(
        client: falcon.testing.TestClient, key: str, runtime: Runtime, webhooks: Webhooks,
        receiver: Receiver) -> None:
    one, _ = add_hook(client, key, receiver.url + "?one")
    two, _ = add_hook(client, key, receiver.url + "?two")
    upload(client, key, png(1))
    assert pending(runtime) == 2
    client.simulate_patch(f"/api/v1/webhooks/{one['id']}", headers=auth(key),
                          json={"enabled": False})
    client.simulate_delete(f"/api/v1/webhooks/{two['id']}", headers=auth(key))
    assert pending(runtime) == 0
    webhooks.deliver_due()
    assert receiver.requests == []
    # Enabled again, it gets new events only.
    client.simulate_patch(f"/api/v1/webhooks/{one['id']}", headers=auth(key),
                          json={"enabled": True})
    upload(client, key, png(2))
    webhooks.deliver_due()
    assert [r.path for r in receiver.requests] == ["/hooks/fixitfy?one"]


def test_a_changed_url_receives_pending_events(client: falcon.testing.TestClient, key: str,
                                               webhooks: Webhooks, receiver: Receiver) -> None:
    hook, _ = add_hook(client, key, receiver.url + "?old")
    upload(client, key, png())
    client.simulate_patch(f"/api/v1/webhooks/{hook['id']}", headers=auth(key),
                          json={"url": receiver.url + "?new"})
    webhooks.deliver_due()
    assert [r.path for r in receiver.requests] == ["/hooks/fixitfy?new"]


def test_a_lease_that_runs_out_is_delivered_again(client: falcon.testing.TestClient, key: str,
                                                  runtime: Runtime, clock: FakeClock,
                                                  webhooks: Webhooks,
                                                  receiver: Receiver) -> None:
    add_hook(client, key, receiver.url)
    upload(client, key, png())
    # A worker claims the row and dies before recording anything.
    (claimed,) = webhooks.store.claim(10, lease_seconds=30, max_attempts=5)
    assert webhooks.deliver_due() == 0  # leased: nobody else sends it
    clock.advance(31)
    assert webhooks.deliver_due() == 1
    assert receiver.requests[0].body == claimed.body
    assert pending(runtime) == 0


def test_the_job_delivers_in_the_background(client: falcon.testing.TestClient, key: str,
                                            runtime: Runtime, receiver: Receiver) -> None:
    """With jobs started (as ``hepcore serve`` does), an upload is delivered without
    anyone calling the job: enqueue wakes it."""
    add_hook(client, key, receiver.url)
    runtime.jobs.start()
    try:
        upload(client, key, png())
        receiver.wait_for(1)
    finally:
        runtime.jobs.stop()
    assert json.loads(receiver.requests[0].body)["event"] == "upload.created"


def test_uploads_with_an_upload_token_send_events(client: falcon.testing.TestClient, key: str,
                                                  webhooks: Webhooks,
                                                  receiver: Receiver) -> None:
    _, secret = add_hook(client, key, receiver.url)
    token = client.simulate_post("/api/v1/upload-token", headers=auth(key)).json["token"]
    done = upload(client, token, png())
    webhooks.deliver_due()
    (got,) = receiver.requests
    assert json.loads(got.body)["upload"]["filename"] == done["filename"]
    assert spec_signature_ok(secret, got.body, got.headers["X-Fixitfy-Signature"])
