"""G3 through ``POST /upload``: when the database, the storage or the client
fails part-way, the response is an error in the uploader's envelope and
nothing is left behind (no object, no partial file, no row, no counter)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import falcon.testing
import pytest

from hepcore import Account, Runtime, UploadCandidate, hookimpl
from hepcore.errors import StorageError
from hepcore.storage import LocalStorage, ObjectWriter
from hepcore_uploader.service import size_in_mb

INTERNAL_ERROR = b'{"ok":false,"error":"Internal server error"}'
FILE_BYTES = bytes(range(256)) * 1200  # 300 KiB, several writes
TEXT_VALUE = "some text that is not a link\n" * 20


def multipart_file(data: bytes, filename: str = "blob.bin",
                   content_type: str = "application/x-test") -> tuple[bytes, str]:
    boundary = "fault-" + secrets.token_hex(8)
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\";"
        f" filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(client: falcon.testing.TestClient, token: str, kind: str) -> falcon.testing.Result:
    if kind == "file":
        body, ctype = multipart_file(FILE_BYTES)
    else:
        value = TEXT_VALUE if kind == "text" else "https://example.com/some/long/path"
        body, ctype = urlencode({"link": value}).encode(), "application/x-www-form-urlencoded"
    return client.simulate_post("/upload", body=body,
                                headers={"Authorization": token, "Content-Type": ctype})


def stored_files(runtime: Runtime) -> list[str]:
    root = Path(runtime.config.data_dir / "files")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def assert_nothing_left(runtime: Runtime) -> None:
    root = Path(runtime.config.data_dir / "files")
    assert stored_files(runtime) == []
    assert list((root / ".tmp").iterdir()) == []
    assert runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 0
    assert runtime.db.one("SELECT count(*) FROM uploader_names")[0] == 0
    assert runtime.counter("uploader.uploads") == 0


def assert_internal_error(result: falcon.testing.Result) -> None:
    assert result.status_code == 500
    assert result.headers["Content-Type"] == "application/json"
    assert result.content == INTERNAL_ERROR


def assert_healthy_after(client: falcon.testing.TestClient, runtime: Runtime,
                         token: str) -> None:
    """The host keeps working once the fault is gone."""
    ok = upload(client, token, "file")
    assert ok.status_code == 200, ok.text
    assert client.simulate_get("/" + ok.json["ID"]).content == FILE_BYTES
    assert runtime.counter("uploader.uploads") == 1
    assert len(stored_files(runtime)) == 1


# --- the database insert fails -----------------------------------------------------


@pytest.mark.parametrize("table", ["uploader_items", "uploader_names"])
@pytest.mark.parametrize("kind", ["file", "text", "link"])
def test_failed_insert_gives_500_and_removes_the_bytes(client: falcon.testing.TestClient,
                                                       runtime: Runtime, uploader_token: str,
                                                       table: str, kind: str) -> None:
    runtime.db.execute(f"CREATE TRIGGER fail_insert BEFORE INSERT ON {table}"
                       " BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END")
    result = upload(client, uploader_token, kind)
    assert_internal_error(result)
    assert_nothing_left(runtime)
    runtime.db.execute("DROP TRIGGER fail_insert")
    assert_healthy_after(client, runtime, uploader_token)


def test_transaction_destroying_failure_gives_500(client: falcon.testing.TestClient,
                                                  runtime: Runtime, uploader_token: str) -> None:
    runtime.db.execute("CREATE TRIGGER fail_insert BEFORE INSERT ON uploader_names"
                       " BEGIN SELECT RAISE(ROLLBACK, 'database is corrupt'); END")
    assert_internal_error(upload(client, uploader_token, "file"))
    assert_nothing_left(runtime)
    runtime.db.execute("DROP TRIGGER fail_insert")
    assert_healthy_after(client, runtime, uploader_token)


# --- the storage fails ---------------------------------------------------------------


class BrokenWriter(ObjectWriter):
    """Passes ``budget`` bytes to the real writer, then fails as a dying disk
    would (or fails on commit)."""

    def __init__(self, inner: ObjectWriter, budget: int, fail_on: str) -> None:
        super().__init__(inner.max_size)
        self.inner = inner
        self.budget = budget
        self.fail_on = fail_on

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if self.fail_on == "write" and len(data) > self.budget:
            self.inner.write(data[: self.budget])
            self.budget = 0
            raise StorageError("write failed: Input/output error")
        self.budget -= len(data)
        self.inner.write(data)

    def _commit(self, key: str) -> None:
        if self.fail_on == "commit":
            raise StorageError("commit failed: Input/output error")
        self.inner.commit(key)

    def _abort(self) -> None:
        self.inner.abort()


class FailingStorage(LocalStorage):
    """Local storage whose writers fail part-way."""

    def __init__(self, root: Path, budget: int, fail_on: str) -> None:
        super().__init__(root)
        self.budget = budget
        self.fail_on = fail_on
        self.writers: list[BrokenWriter] = []

    def writer(self, *, max_size: int | None = None) -> ObjectWriter:
        writer = BrokenWriter(super().writer(max_size=max_size), self.budget, self.fail_on)
        self.writers.append(writer)
        return writer


BreakStorage = Callable[..., FailingStorage]


@pytest.fixture
def break_storage(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> BreakStorage:
    """Swap the host's storage for a :class:`FailingStorage` on the same root."""

    def install(budget: int, fail_on: str) -> FailingStorage:
        failing = FailingStorage(runtime.config.data_dir / "files", budget, fail_on)
        monkeypatch.setattr(runtime, "storage", failing)
        monkeypatch.setattr(runtime.services["uploader"], "storage", failing)
        return failing

    return install


@pytest.mark.parametrize("kind", ["file", "text"])
def test_storage_failing_mid_stream_gives_500_and_leaves_nothing(
        client: falcon.testing.TestClient, runtime: Runtime, uploader_token: str,
        break_storage: BreakStorage, kind: str) -> None:
    failing = break_storage(budget=100, fail_on="write")
    assert_internal_error(upload(client, uploader_token, kind))
    assert len(failing.writers) == 1
    assert failing.writers[0].inner.size == 100  # some bytes had reached the disk
    assert failing.writers[0].inner.aborted
    assert_nothing_left(runtime)
    failing.fail_on = "never"  # the disk recovers
    assert_healthy_after(client, runtime, uploader_token)


def test_storage_failing_on_commit_gives_500_and_leaves_nothing(
        client: falcon.testing.TestClient, runtime: Runtime, uploader_token: str,
        break_storage: BreakStorage) -> None:
    break_storage(budget=0, fail_on="commit")
    assert_internal_error(upload(client, uploader_token, "file"))
    assert_nothing_left(runtime)


class BrokenModerator:
    """Upload inspection that fails: by raising, or by answering no Rejection."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    @hookimpl
    def hepcore_inspect_upload(self, candidate: UploadCandidate) -> object:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer", [RuntimeError("classifier down"), {"code": "nope"}])
@pytest.mark.parametrize("kind", ["file", "text"])
def test_a_broken_moderation_plugin_gives_500_and_leaves_nothing(
        client: falcon.testing.TestClient, runtime: Runtime, uploader_token: str,
        answer: object, kind: str) -> None:
    plugin = BrokenModerator(answer)
    runtime.pm.register(plugin)
    try:
        assert_internal_error(upload(client, uploader_token, kind))
        assert_nothing_left(runtime)
    finally:
        runtime.pm.unregister(plugin)
    assert_healthy_after(client, runtime, uploader_token)


# --- the client goes away -------------------------------------------------------------


def post_declaring_length(client: falcon.testing.TestClient, app_kind: str, token: str,
                          body: bytes, ctype: str, declared: int) -> falcon.testing.Result:
    """POST ``body`` while claiming ``declared`` bytes of Content-Length."""
    if app_kind == "wsgi":
        return client.simulate_post("/upload", body=body, headers={
            "Authorization": token, "Content-Type": ctype, "Content-Length": str(declared)})
    headers = [(b"host", b"falconframework.org"), (b"authorization", token.encode()),
               (b"content-type", ctype.encode()), (b"content-length", str(declared).encode())]
    return client.simulate_post("/upload", body=body, extras={"headers": headers})


@pytest.mark.parametrize("cut_at", [0.1, 0.5, 0.99])
def test_body_cut_short_gives_400_and_stores_nothing(client: falcon.testing.TestClient,
                                                     runtime: Runtime, uploader_token: str,
                                                     app_kind: str, cut_at: float) -> None:
    body, ctype = multipart_file(FILE_BYTES)
    sent = body[: int(len(body) * cut_at)]
    result = post_declaring_length(client, app_kind, uploader_token, sent, ctype, len(body))
    assert result.status_code == 400
    assert result.json["ok"] is False
    assert result.json["error"].startswith("Malformed request body")
    assert_nothing_left(runtime)
    assert_healthy_after(client, runtime, uploader_token)


# --- the account's size limit -------------------------------------------------------


@pytest.mark.parametrize(("limit", "shown"), [(100 * 1024 * 1024, "100"),
                                               (int(2.5 * 1024 * 1024), "2.5"),
                                               (1179648, "1.125"),
                                               (1000, "0.0009536743164")])
def test_size_in_mb_rule(limit: int, shown: str) -> None:
    assert size_in_mb(limit) == shown


@pytest.mark.parametrize("kind", ["file", "text"])
def test_account_size_limit_gives_413_and_leaves_nothing(client: falcon.testing.TestClient,
                                                         runtime: Runtime, account: Account,
                                                         uploader_token: str,
                                                         kind: str) -> None:
    runtime.accounts.update(account.id, settings={"max_file_size": 1000})
    if kind == "file":
        body, ctype = multipart_file(b"x" * 2000)
    else:
        body = urlencode({"link": "y" * 2000}).encode()
        ctype = "application/x-www-form-urlencoded"
    result = client.simulate_post("/upload", body=body,
                                  headers={"Authorization": uploader_token,
                                           "Content-Type": ctype})
    assert result.status_code == 413
    expected = f"File exceeds your upload size limit of {size_in_mb(1000)} MB"
    assert expected == "File exceeds your upload size limit of 0.0009536743164 MB"
    assert result.json == {"ok": False, "error": expected, "code": "TOO_LARGE"}
    assert_nothing_left(runtime)
    small, ctype = multipart_file(b"x" * 1000)  # exactly the limit is allowed
    ok = client.simulate_post("/upload", body=small,
                              headers={"Authorization": uploader_token, "Content-Type": ctype})
    assert ok.status_code == 200


def test_a_delete_whose_bytes_cannot_be_removed_still_succeeds_and_sweeps_later(
        client: falcon.testing.TestClient, runtime: Runtime, uploader_token: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The row is gone, so the answer is the delete's; the bytes stay recorded
    for the sweep, which removes them once the storage works again."""
    item = upload(client, uploader_token, "file").json["ID"]
    [stored] = stored_files(runtime)

    def refuse(key: str) -> bool:
        raise StorageError("delete failed: Read-only file system")

    with monkeypatch.context() as patched:
        patched.setattr(runtime.storage, "delete", refuse)
        result = client.simulate_delete(f"/api/v1/uploads/{item}",
                                        headers={"Authorization": uploader_token})
    assert (result.status_code, result.json) == (200, {"ok": True, "data": {
        "ID": item, "deleted": True}})
    assert client.simulate_get("/" + item).status_code == 404
    assert stored_files(runtime) == [stored]
    runtime.pending.sweep()
    assert stored_files(runtime) == []
