"""Stored bytes under ``hepcore check --repair``, reads of a paste whose bytes
are gone, the snippets API and anonymous callers, the cost of large reader
pages, the order of detection and refusals, temporary files on failures, and
the queries a create or a raw read makes (both app kinds where HTTP-visible)."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from conftest import Captcha, bearer
from pygments import highlight
from pygments.lexers import TextLexer

from hepcore import BytesBody, Request
from hepcore.maintenance import check
from hepcore_paste.render import HighlightCache, _formatter, plain_block
from hepcore_paste.store import ORPHAN_GRACE

API = "/api/v1/snippets"
BIG = "".join(f"line {n}: <tag> & \"quoted\"\n" for n in range(6000))  # ~170 KB: a file


def create(client, key, content=BIG, **fields):
    r = client.simulate_post("/api/paste", json={"content": content, **fields},
                             headers=bearer(key))
    assert r.status_code == 200, r.text
    return r.json["data"]["id"]


def storage_key_of(runtime, pid):
    return runtime.db.one("SELECT storage_key FROM paste_pastes WHERE id = ?", (pid,))[0]


def shape(r):
    return r.status_code, r.headers.get("content-type"), r.headers.get("cache-control"), \
        r.content


# --- hepcore check --repair ---------------------------------------------------


def test_check_repair_keeps_large_pastes(client, runtime, key, clock) -> None:
    pid = create(client, key)
    storage_key = storage_key_of(runtime, pid)
    assert storage_key is not None
    # A replaced object waiting out its grace is not an orphan either.
    edited = create(client, key)
    old_key = storage_key_of(runtime, edited)
    assert client.simulate_patch(f"{API}/{edited}", headers=bearer(key),
                                 json={"content": BIG.upper()}).status_code == 200
    report = check(runtime, repair=True, grace=0)
    assert report.orphans == [] and report.missing["paste"] == []
    assert (report.removed_orphans, report.forgotten_rows) == (0, 0)
    assert runtime.storage.exists(storage_key) and runtime.storage.exists(old_key)
    assert client.simulate_get(f"/{pid}/raw").text == BIG
    assert client.simulate_get(f"/{edited}/raw").text == BIG.upper()
    assert client.simulate_get(f"/{pid}").status_code == 200
    # Once drained, the old object is no longer referenced and check is clean.
    clock.advance(ORPHAN_GRACE)
    assert runtime.services["paste"].purge()["objects_removed"] == 1
    assert check(runtime, repair=True, grace=0).clean
    assert client.simulate_get(f"/{edited}/raw").text == BIG.upper()


def test_check_repair_forgets_pastes_whose_bytes_are_gone(client, runtime, key) -> None:
    pid = create(client, key, title="doomed")
    kept = create(client, key)
    storage_key = storage_key_of(runtime, pid)
    assert runtime.storage.delete(storage_key)
    report = check(runtime)
    assert report.missing["paste"] == [storage_key] and not report.clean
    report = check(runtime, repair=True, grace=0)
    assert report.forgotten_rows == 1
    assert check(runtime).clean
    row = runtime.db.one("SELECT deleted_at, title, storage_key FROM paste_pastes"
                         " WHERE id = ?", (pid,))
    assert row["deleted_at"] is not None and row["title"] is None
    assert row["storage_key"] is None
    assert client.simulate_get(f"/{pid}").status_code == 404
    assert client.simulate_get(f"/{pid}/raw").status_code == 404
    listed = client.simulate_get(API, headers=bearer(key)).json["data"]["snippets"]
    assert [s["id"] for s in listed] == [kept]
    assert client.simulate_get(f"/{kept}/raw").text == BIG


def test_check_repair_drops_queued_keys_whose_bytes_are_gone(client, runtime, key) -> None:
    pid = create(client, key)
    storage_key = storage_key_of(runtime, pid)
    assert client.simulate_delete(f"{API}/{pid}", headers=bearer(key)).status_code == 200
    assert runtime.db.one("SELECT count(*) FROM paste_orphans")[0] == 1
    runtime.storage.delete(storage_key)
    assert check(runtime, repair=True, grace=0).forgotten_rows == 1
    assert runtime.db.one("SELECT count(*) FROM paste_orphans")[0] == 0
    assert check(runtime).clean


# --- bytes missing: each route's own 404 --------------------------------------


def test_missing_bytes_read_as_a_missing_paste(client, runtime, key) -> None:
    pid = create(client, key)
    runtime.storage.delete(storage_key_of(runtime, pid))
    absent = "nope1234"
    for path in ("/{id}", "/{id}/raw", "/raw/{id}", "/documents/{id}"):
        gone = client.simulate_get(path.format(id=pid))
        never = client.simulate_get(path.format(id=absent))
        assert gone.status_code == 404, path
        if path == "/{id}":  # the HTML page: same page but for its per-response nonce
            assert gone.headers["content-type"] == "text/html; charset=utf-8"
            assert gone.headers["cache-control"] == "no-store"
            assert "Paste not found" in gone.text
        else:
            assert shape(gone) == shape(never), path
    head = client.simulate_head(f"/{pid}")
    assert head.status_code == 404 and head.content == b""
    api = client.simulate_get(f"{API}/{pid}", headers=bearer(key))
    assert api.status_code == 404 and api.json == {"ok": False, "error": "Paste not found"}
    redetect = client.simulate_patch(f"{API}/{pid}", headers=bearer(key),
                                     json={"language": None})
    assert redetect.status_code == 404
    assert redetect.json == {"ok": False, "error": "Paste not found"}
    assert runtime.db.one("SELECT views FROM paste_pastes WHERE id = ?", (pid,))[0] == 0


def test_request_paths_drain_only_orphans_past_the_grace(client, runtime, key, clock) -> None:
    first = create(client, key)
    first_key = storage_key_of(runtime, first)
    client.simulate_delete(f"{API}/{first}", headers=bearer(key))
    clock.advance(ORPHAN_GRACE - 1)
    second = create(client, key)
    second_key = storage_key_of(runtime, second)
    client.simulate_delete(f"{API}/{second}", headers=bearer(key))
    assert runtime.storage.exists(first_key) and runtime.storage.exists(second_key)
    clock.advance(1)
    third = create(client, key, content="small")
    client.simulate_delete(f"{API}/{third}", headers=bearer(key))
    assert not runtime.storage.exists(first_key)  # its grace is over
    assert runtime.storage.exists(second_key)  # a reader may still hold its row


@pytest.mark.parametrize("change", ["delete", "patch"])
def test_a_failing_cleanup_after_the_commit_does_not_turn_the_change_into_a_500(
        client, runtime, key, clock, monkeypatch, change) -> None:
    # Orphans past their grace are removed after a change commits. A storage
    # backend that fails there with its own error (not OSError) must not make
    # the committed change answer 500; the orphan stays queued.
    old = create(client, key)
    client.simulate_delete(f"{API}/{old}", headers=bearer(key))
    clock.advance(ORPHAN_GRACE)
    pid = create(client, key, content="small")

    def broken_delete(storage_key: str) -> bool:
        raise RuntimeError("object store unreachable")

    monkeypatch.setattr(runtime.storage, "delete", broken_delete)
    if change == "delete":
        r = client.simulate_delete(f"{API}/{pid}", headers=bearer(key))
        assert (r.status_code, r.json) == (200, {"ok": True, "data": {"id": pid,
                                                                      "deleted": True}})
        assert client.simulate_get(f"/{pid}/raw").status_code == 404
    else:
        r = client.simulate_patch(f"{API}/{pid}", headers=bearer(key),
                                  json={"content": "edited"})
        assert r.status_code == 200 and r.json["data"]["id"] == pid
        assert client.simulate_get(f"/{pid}/raw").text == "edited"
    assert runtime.db.one("SELECT count(*) FROM paste_orphans")[0] == 1
    monkeypatch.undo()
    assert runtime.services["paste"].purge()["objects_removed"] == 1


# --- section 8: no anonymous snippets ----------------------------------------


def test_snippets_api_refuses_anonymous_callers(paste_host) -> None:
    runtime, client = paste_host(plugins=[Captcha()], anonymous=True)
    body = {"content": "from nobody", "turnstileToken": "solved"}
    r = client.simulate_post(API, json=body)
    assert r.status_code == 401 and r.json == {"ok": False, "error": "Invalid API key"}
    r = client.simulate_post(API, json={**body, "content": "x" * 100_000})
    assert r.status_code == 401 and r.json == {"ok": False, "error": "Invalid API key"}
    assert runtime.db.one("SELECT count(*) FROM paste_pastes")[0] == 0
    # /api/paste on the same host does take them (P10).
    assert client.simulate_post("/api/paste", json=body).status_code == 200


# --- reader pages of large pastes ---------------------------------------------


def test_large_pastes_are_shown_plain_by_default(client, runtime, prime_key) -> None:
    code = "def f(x):\n    return x < 2 and '&'\n" * 4000  # 148 KB of Python
    pid = create(client, prime_key, content=code, language="python")
    page = client.simulate_get(f"/{pid}")
    assert page.status_code == 200
    assert '<span class="k">' not in page.text  # no keyword colours
    assert "return x &lt; 2 and &#39;&amp;&#39;" not in page.text
    assert "    return x &lt; 2 and '&amp;'\n" in page.text
    assert '<span class="normal">8000</span></pre>' in page.text
    assert len(runtime.services["paste"].cache) == 0  # cheap, so not cached
    small = create(client, prime_key, content=code[:2000], language="python")
    assert '<span class="k">def</span>' in client.simulate_get(f"/{small}").text
    assert len(runtime.services["paste"].cache) == 1


def test_highlight_limit_is_an_option(paste_host) -> None:
    runtime, client = paste_host(highlight_max_bytes=100)
    account = runtime.accounts.create("hil")
    key, _ = runtime.keys.create("paste", account.id)
    at = create(client, key, content="x = 1\n" * 16 + "y=1\n", language="python")  # 100 B
    over = create(client, key, content="x = 1\n" * 16 + "y=12\n", language="python")
    assert '<span class="n">x</span>' in client.simulate_get(f"/{at}").text
    assert '<span class="n">x</span>' not in client.simulate_get(f"/{over}").text
    assert "x = 1\nx = 1\n" in client.simulate_get(f"/{over}").text


@pytest.mark.parametrize("text", [
    "", " ", "\n\n", "a<b\n\nc & d", "a<b\n\nc & d\n", "a\r\nb\tc\x0c\r", "x\n" * 12,
    "\ufeffq\"'<script>\n", "é😀\u2028x\n", "</code></pre>" * 3,
])
def test_plain_block_is_the_markup_pygments_gives(text) -> None:
    expected = highlight(text, TextLexer(stripnl=False, ensurenl=False), _formatter())
    assert plain_block(text) == expected


def test_render_cache_counts_memory_not_characters() -> None:
    cache = HighlightCache(10_000)
    wide = "😀" * 3000  # 3000 characters, ~12 KB of memory
    cache.put(("a", "1"), wide)
    assert cache.get(("a", "1")) is None and cache.size == 0
    narrow = "x" * 3000
    cache.put(("b", "1"), narrow)
    cache.put(("c", "1"), narrow)
    cache.put(("d", "1"), narrow)
    cache.put(("e", "1"), narrow)  # four of ~3 KB exceed 10 KB: the oldest goes
    assert cache.get(("b", "1")) is None and cache.get(("e", "1")) == narrow
    assert len(cache) == 3 and cache.size <= 10_000


# --- detection after the refusals (4.2 steps 10 and 11) -----------------------


@pytest.fixture
def detections(monkeypatch) -> Iterator[list[str]]:
    from hepcore_paste import service as service_module

    calls: list[str] = []
    real = service_module.detect

    def counting(text: str, **kwargs):  # the real detector, counted
        calls.append(text)
        return real(text, **kwargs)

    monkeypatch.setattr(service_module, "detect", counting)
    yield calls


def test_total_cap_retry_after_is_when_a_place_frees(paste_host, clock) -> None:
    # Every 429 carries Retry-After: here, until the first live paste expires.
    runtime, client = paste_host(free_total_cap=2)
    account = runtime.accounts.create("cap", plan="prime")
    key, _ = runtime.keys.create("paste", account.id)
    first = create(client, key, content="one")
    runtime.accounts.update(account.id, plan="free")
    clock.advance(100)
    assert create(client, key, content="two")
    r = client.simulate_post("/api/paste", json={"content": "three"}, headers=bearer(key))
    assert r.status_code == 429 and r.json["code"] == "PASTE_TOTAL_CAP"
    # The Prime paste got its Free expiry with the downgrade: it frees first.
    assert r.headers["retry-after"] == str(365 * 86400 - 100)
    client.simulate_delete(f"/api/v1/snippets/{first}", headers=bearer(key))
    assert create(client, key, content="three")
    clock.advance(1000)
    r = client.simulate_post("/api/paste", json={"content": "four"}, headers=bearer(key))
    assert r.headers["retry-after"] == str(365 * 86400 - 1000)
    # Nothing that will expire: a day.
    runtime.db.write_one("UPDATE paste_pastes SET expires_at = NULL")
    r = client.simulate_post("/api/paste", json={"content": "four"}, headers=bearer(key))
    assert r.headers["retry-after"] == "86400"


def test_refused_creates_do_not_pay_for_detection(paste_host, detections) -> None:
    runtime, client = paste_host(free_total_cap=1)
    account = runtime.accounts.create("cap")
    key, _ = runtime.keys.create("paste", account.id)
    code = "import os\nprint(os.getcwd())\n"
    assert create(client, key, content=code)
    assert len(detections) == 1
    r = client.simulate_post("/api/paste", json={"content": code}, headers=bearer(key))
    assert r.status_code == 429 and r.json == {
        "ok": False, "error": "You've reached your snippet limit. Delete a few or upgrade"
        " to Prime.", "code": "PASTE_TOTAL_CAP"}
    assert r.headers["retry-after"] == str(365 * 86400)  # when the first paste expires
    assert len(detections) == 1

    runtime, client = paste_host(create_rate_per_minute=1)
    account = runtime.accounts.create("rate")
    key, _ = runtime.keys.create("paste", account.id)
    assert create(client, key, content=code)
    r = client.simulate_post("/api/paste", json={"content": code}, headers=bearer(key))
    assert r.status_code == 429 and r.json["code"] == "RATE_LIMITED"
    assert r.headers["retry-after"]
    assert len(detections) == 2
    # The key's use and the rate-limit hit of the refused create still count.
    assert runtime.db.one("SELECT request_count FROM api_keys")[0] == 2


# --- temporary files on unexpected failures ----------------------------------


class BrokenBody:
    """A request body that fails after ``good`` bytes (a reset connection)."""

    def __init__(self, good: int) -> None:
        self.left = good

    def read(self, n: int) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError("peer went away")
        n = min(n, self.left, 64 * 1024)
        self.left -= n
        return b"a" * n


def test_a_failing_body_leaves_no_temporary_file(runtime, key) -> None:
    service = runtime.services["paste"]
    request = Request(method="POST", path="/documents", headers={
        "authorization": f"Bearer {key}"}, body=BrokenBody(300_000), content_length=400_000)
    with pytest.raises(ConnectionResetError):
        service.hastebin_create(request)
    assert os.listdir(runtime.storage.tmp_dir) == []
    assert list(runtime.storage.keys()) == []


def test_a_failing_storage_write_leaves_no_temporary_file(runtime, key, monkeypatch) -> None:
    from hepcore.storage import ObjectWriter

    real_write = ObjectWriter.write
    written: list[int] = []

    def write(self, data: bytes) -> None:  # the disk fills up after the first chunk
        if written:
            raise OSError(28, "No space left on device")
        written.append(len(data))
        real_write(self, data)

    monkeypatch.setattr(ObjectWriter, "write", write)
    service = runtime.services["paste"]
    body = json.dumps({"content": "b" * 600_000}).encode()
    request = Request(method="POST", path="/api/paste", headers={
        "authorization": f"Bearer {key}", "content-type": "application/json"},
        body=BytesBody(body), content_length=len(body))
    with pytest.raises(OSError):
        service.api_create(request)
    assert written and os.listdir(runtime.storage.tmp_dir) == []


# --- queries --------------------------------------------------------------------


@contextmanager
def statements(runtime) -> Iterator[list[str]]:
    """The SQL the database's connections run inside the block (this thread's
    reader and the process's writer)."""
    seen: list[str] = []
    with runtime.db.write():  # opens the writer, so that it is traced too
        pass
    conns: list[sqlite3.Connection] = runtime.db.connections()
    for conn in conns:
        conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        for conn in conns:
            conn.set_trace_callback(None)


def test_a_free_create_counts_live_pastes_once(runtime, key) -> None:
    """Once with the insert; a create that needs detection detects outside the
    write lock, so it counts again atomically with its row."""
    service = runtime.services["paste"]
    for language, counts in (("python", 1), (None, 2)):
        body = json.dumps({"content": "print(1)\n", "language": language}).encode()
        request = Request(method="POST", path="/api/paste", headers={
            "authorization": f"Bearer {key}", "content-type": "application/json"},
            body=BytesBody(body), content_length=len(body))
        with statements(runtime) as seen:
            assert service.api_create(request).status == 200
        assert sum("count(*)" in s for s in seen) == counts, seen


def test_a_raw_read_is_one_query(client, runtime, key) -> None:
    pid = create(client, key, content="small and inline")
    service = runtime.services["paste"]
    request = Request(method="GET", path=f"/{pid}/raw", headers={}, body=BytesBody(b""),
                      params={"paste_id": pid})
    with statements(runtime) as seen:
        r = service.raw(request)
    assert r.status == 200 and r.body == b"small and inline"
    assert sum(s.lstrip().upper().startswith("SELECT") for s in seen) == 1, seen
