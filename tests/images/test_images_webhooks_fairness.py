"""Fair webhook delivery: one account's backlog or unanswering receivers cannot keep
another account's events (or the same account's other endpoints) waiting.

The claim is tested on a real SQLite file; the delivery job with real receivers on
127.0.0.1: tarpits that accept connections and never answer, and a receiver that
answers at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from test_images_webhooks_delivery import add_hook, png, upload
from webhookkit import Receiver

from hepcore import Runtime
from hepcore.db import Database
from hepcore.testing import FakeClock
from hepcore_images.webhook_delivery import JOB_NAME
from hepcore_images.webhook_store import Delivery, WebhookStore, webhook_migrations
from hepcore_images.webhooks import Webhooks

PUBLIC_BASE = "https://upload.fixitfy.com.tr"
TIMEOUT = 0.5  # the 8 s of the spec, shortened: a tarpit holds a slot this long
CONCURRENCY = 2
LEASE = 60.0


# --- the claim, on a real SQLite file -------------------------------------------------


@pytest.fixture
def hooks_db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hooks.db"
    db = Database(path)
    db.migrate([webhook_migrations])
    db.close()
    yield path


def open_store(path: Path, clock: FakeClock) -> WebhookStore:
    """A store on the file: one per worker process."""
    return WebhookStore(Database(path), clock)


@pytest.fixture
def store(hooks_db: Path, clock: FakeClock) -> Iterator[WebhookStore]:
    s = open_store(hooks_db, clock)
    yield s
    s.db.close()


def endpoint(store: WebhookStore, account: str, name: str) -> str:
    made = store.create(account, f"http://127.0.0.1:9/{name}", True, limit=10)
    assert made is not None
    return made[0].id


def events(store: WebhookStore, account: str, count: int, tag: str = "") -> None:
    """``count`` events for every enabled endpoint of ``account``; bodies
    ``<account><tag><n>``, n from 1."""
    for n in range(1, count + 1):
        with store.db.write() as conn:
            store.enqueue(conn, account, "upload.created", f"{account}{tag}{n}".encode(),
                          store.clock())


def claim(store: WebhookStore, limit: int) -> list[Delivery]:
    return store.claim(limit, lease_seconds=LEASE, max_attempts=5)


def bodies(deliveries: list[Delivery]) -> list[str]:
    return [d.body.decode() for d in deliveries]


def accounts(deliveries: list[Delivery]) -> Counter[str]:
    return Counter(d.account_id for d in deliveries)


def test_accounts_with_nothing_in_flight_share_the_free_slots(store: WebhookStore) -> None:
    endpoint(store, "A", "a")
    endpoint(store, "B", "b")
    endpoint(store, "C", "c")
    events(store, "A", 10)
    events(store, "B", 3)
    events(store, "C", 1)
    got = claim(store, 4)
    assert accounts(got) == {"A": 2, "B": 1, "C": 1}
    assert sorted(bodies(got)) == ["A1", "A2", "B1", "C1"]  # each account's oldest


def test_one_slot_goes_round_robin(store: WebhookStore) -> None:
    """Slots that free one at a time (each attempt ends before the next claim)
    go to the accounts in turn, not to the oldest row."""
    for account in "ABC":
        endpoint(store, account, account)
    events(store, "A", 5)
    events(store, "B", 2)
    events(store, "C", 1)
    order = []
    while got := claim(store, 1):
        order += bodies(got)
        store.delivered(got[0])
    assert order == ["A1", "B1", "C1", "A2", "B2", "A3", "A4", "A5"]


def test_an_account_alone_gets_every_free_slot(store: WebhookStore) -> None:
    endpoint(store, "A", "a1")
    endpoint(store, "A", "a2")
    endpoint(store, "B", "b")
    events(store, "B", 1)
    assert bodies(claim(store, 1)) == ["B1"]  # B has one in flight and nothing waiting
    events(store, "A", 20)
    first = claim(store, 8)
    assert accounts(first) == {"A": 8}
    assert sorted(Counter(d.endpoint_id for d in first).values()) == [4, 4]
    assert accounts(claim(store, 8)) == {"A": 8}  # its own rows in flight do not cap it


def test_rows_in_flight_with_any_worker_count_against_their_account(
        store: WebhookStore, hooks_db: Path, clock: FakeClock) -> None:
    for name in ("a1", "a2", "a3"):
        endpoint(store, "A", name)
    endpoint(store, "B", "b")
    events(store, "A", 4)
    other = open_store(hooks_db, clock)  # another worker process
    try:
        held = claim(other, 3)
        assert accounts(held) == {"A": 3}
        events(store, "B", 2)
        got = claim(store, 3)
        assert accounts(got) == {"B": 2, "A": 1}  # A has 3 in flight, B none
    finally:
        other.db.close()
    # The other worker died: its leases run out, and its rows are sent again.
    clock.advance(LEASE + 1)
    again = claim(store, 20)
    assert {d.id for d in held} <= {d.id for d in again}
    assert {d.attempt for d in again if d.id in {h.id for h in held}} == {2}


def test_a_slow_endpoint_does_not_hold_up_its_accounts_other_endpoint(
        store: WebhookStore) -> None:
    endpoint(store, "A", "slow")
    events(store, "A", 6)
    assert bodies(claim(store, 2)) == ["A1", "A2"]  # both slots on the slow one
    fast = endpoint(store, "A", "fast")
    events(store, "A", 1, tag="new")  # one row for each endpoint
    (got,) = claim(store, 1)
    assert (got.endpoint_id, got.body) == (fast, b"Anew1")


def test_retries_keep_their_order_within_an_endpoint(store: WebhookStore,
                                                     clock: FakeClock) -> None:
    endpoint(store, "A", "a")
    endpoint(store, "B", "b")
    events(store, "A", 3)
    one, two, three = claim(store, 3)
    for delivery, delay in ((one, 20), (two, 10), (three, 15)):
        store.failed(delivery, 503, "HTTP 503", clock() + delay)
    events(store, "B", 1)
    clock.advance(5)
    assert bodies(claim(store, 5)) == ["B1"]  # the retries are not due yet
    clock.advance(30)
    order = [bodies(claim(store, 1)) for _ in range(4)]
    assert order == [["A2"], ["A3"], ["A1"], []]  # by next attempt, as before


# --- the delivery job, with real receivers ---------------------------------------------


class Tarpit:
    """A webhook receiver on 127.0.0.1 that accepts connections and never answers.

    ``seen`` is called at each accepted connection; :attr:`log` holds what it
    returned, in order.
    """

    def __init__(self, seen: Callable[[], int]) -> None:
        self.seen = seen
        self.log: list[int] = []
        self.arrived = threading.Condition()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.02)
        self._held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/{name}"

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with self.arrived:
                self._held.append(conn)
                self.log.append(self.seen())
                self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.log) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.log)} of {count} connections arrived")
                self.arrived.wait(left)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def images_options() -> dict[str, Any]:
    return {"webhook_timeout": TIMEOUT, "webhook_lease_seconds": 30,
            "webhook_concurrency": CONCURRENCY}


@pytest.fixture
def outbound_allow() -> list[str]:
    return ["127.0.0.1"]


@pytest.fixture
def tarpit(receiver: Receiver) -> Iterator[Tarpit]:
    """Logs, for each connection, how many events the (healthy) receiver had then."""
    t = Tarpit(lambda: len(receiver.requests))
    yield t
    t.stop()


@pytest.fixture
def webhooks(runtime: Runtime) -> Webhooks:
    hooks = runtime.services["images"].webhooks  # type: ignore[attr-defined]
    assert isinstance(hooks, Webhooks)
    return hooks


@contextmanager
def delivering(runtime: Runtime) -> Iterator[None]:
    """The delivery job running in the background, as under ``hepcore serve``;
    at the end, pending events are dropped so that its run ends."""
    runtime.jobs.start()
    runtime.jobs.wake(JOB_NAME)
    try:
        yield
    finally:
        runtime.db.write_one("DELETE FROM images_webhook_outbox")
        runtime.jobs.stop()


def sent_to_tarpits_first(tarpit: Tarpit) -> int:
    """Attempts that reached the tarpits before the receiver's first event."""
    return tarpit.log.index(1) if 1 in tarpit.log else len(tarpit.log)


def test_tarpits_of_one_account_do_not_hold_up_another_accounts_event(
        client: falcon.testing.TestClient, key: str, runtime: Runtime, receiver: Receiver,
        tarpit: Tarpit) -> None:
    for n in range(3):
        add_hook(client, key, tarpit.url(f"alice{n}"))
    for seed in range(8):
        upload(client, key, png(seed))  # 24 events for alice's tarpits
    bob = runtime.accounts.create("bob")
    bob_key, _ = runtime.keys.create("images", bob.id)
    add_hook(client, bob_key, receiver.url)
    with delivering(runtime):
        tarpit.wait_for(CONCURRENCY)  # every slot is held by a tarpit
        upload(client, bob_key, png(99))
        before = len(tarpit.log)
        receiver.wait_for(1)
    # Bob's event took the first slot that freed up (the rest of that claim, and
    # attempts claimed before his upload committed, may reach the tarpits first),
    # long before alice's backlog drained.
    assert sent_to_tarpits_first(tarpit) <= before + 2 * CONCURRENCY < 24


def test_a_tarpit_does_not_hold_up_the_same_accounts_other_endpoint(
        client: falcon.testing.TestClient, key: str, runtime: Runtime,
        receiver: Receiver, tarpit: Tarpit) -> None:
    for n in range(CONCURRENCY):
        add_hook(client, key, tarpit.url(f"slow{n}"))
    for seed in range(8):
        upload(client, key, png(seed))  # 16 events for the tarpits
    with delivering(runtime):
        tarpit.wait_for(CONCURRENCY)
        add_hook(client, key, receiver.url)
        upload(client, key, png(99))  # one more for each tarpit, and one for the receiver
        before = len(tarpit.log)
        receiver.wait_for(1)
    assert sent_to_tarpits_first(tarpit) <= before + 2 * CONCURRENCY < 18
