"""Nothing half-written (G3): a storage or database failure at any step leaves
no file, no partial write, no row and no quota charged, and answers in the
CDN's envelope (never a 500)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cdnkit import CdnHost, Origin, batch, path_of, rows, stored_files, upload, usage
from httpkit import call, multipart

from hepcore import Config, hookimpl
from hepcore.errors import StorageError
from hepcore.storage import LocalStorage, ObjectWriter


class FaultyWriter(ObjectWriter):
    """A local write that fails like a full disk after ``fail_after`` bytes, or at commit."""

    def __init__(self, storage: FaultyStorage, max_size: int | None) -> None:
        super().__init__(max_size)
        self.storage = storage
        self.inner = LocalStorage.writer(storage, max_size=None)

    def _write(self, data: Any) -> None:
        limit = self.storage.fail_after
        if limit is not None and self.size + len(data) > limit:
            self.abort()
            raise StorageError("write failed: No space left on device")
        self.inner.write(data)

    def _commit(self, key: str) -> None:
        if self.storage.fail_commit(key):
            self.inner.abort()
            raise StorageError("commit failed: Input/output error")
        self.inner.commit(key)

    def _abort(self) -> None:
        self.inner.abort()


class FaultyStorage(LocalStorage):
    name = "faulty"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fail_after: int | None = None
        self.fail_commit: Callable[[str], bool] = lambda key: False
        self.fail_delete = False

    def writer(self, *, max_size: int | None = None) -> ObjectWriter:
        return FaultyWriter(self, max_size)

    def delete(self, key: str) -> bool:
        if self.fail_delete:
            raise StorageError("delete failed: Read-only file system")
        return super().delete(key)


class FaultyPlugin:
    @hookimpl
    def hepcore_storage_backends(self, config: Config) -> dict[str, Any]:
        return {"faulty": lambda cfg: FaultyStorage(cfg.data_dir / "files")}


@pytest.fixture
def faulty(cdn_host: Callable[..., CdnHost]) -> Iterator[CdnHost]:
    yield cdn_host(storage_backend="faulty", plugins=[FaultyPlugin()])


def storage_of(host: CdnHost) -> FaultyStorage:
    storage = host.runtime.storage
    assert isinstance(storage, FaultyStorage)
    return storage


def nothing_left(host: CdnHost) -> None:
    assert stored_files(host.runtime) == []
    assert rows(host.runtime) == []
    assert usage(host.runtime, host.account.id) == (0, 0)


def test_disk_full_while_streaming(faulty: CdnHost) -> None:
    storage_of(faulty).fail_after = 1000
    r = upload(faulty.client(), faulty.auth, "big.bin", b"x" * 5000)
    assert (r.status_code, r.json) == (422, {"error": "Upload failed: storage error"})
    nothing_left(faulty)


def test_commit_failure(faulty: CdnHost) -> None:
    storage_of(faulty).fail_commit = lambda key: True
    r = upload(faulty.client(), faulty.auth, "a.txt", b"hello")
    assert (r.status_code, r.json) == (422, {"error": "Upload failed: storage error"})
    nothing_left(faulty)


def test_database_failure_removes_the_committed_bytes(faulty: CdnHost) -> None:
    with faulty.runtime.db.write() as conn:
        conn.execute("CREATE TRIGGER fail_insert BEFORE INSERT ON cdn_uploads"
                     " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    r = upload(faulty.client(), faulty.auth, "a.txt", b"hello")
    assert (r.status_code, r.json) == (422, {"error": "Upload failed: storage error"})
    nothing_left(faulty)
    with faulty.runtime.db.write() as conn:
        conn.execute("DROP TRIGGER fail_insert")
    assert upload(faulty.client(), faulty.auth, "a.txt", b"hello").status_code == 201


def test_batch_with_one_failing_file(faulty: CdnHost) -> None:
    storage_of(faulty).fail_commit = lambda key: key.endswith("/bad.txt")
    r = batch(faulty.client(), faulty.auth, [("a.txt", b"a"), ("bad.txt", b"bad"),
                                             ("c.txt", b"c")])
    assert r.status_code == 201
    assert [u["filename"] for u in r.json["uploads"]] == ["a.txt", "c.txt"]
    assert r.json["failed"] == [{"filename": "bad.txt",
                                 "reason": "Upload failed due to an internal error"}]
    assert usage(faulty.runtime, faulty.account.id) == (2, 2)
    assert len(stored_files(faulty.runtime)) == 2 and len(rows(faulty.runtime)) == 2


def test_batch_with_a_disk_full_part(faulty: CdnHost) -> None:
    storage_of(faulty).fail_after = 100
    r = batch(faulty.client(), faulty.auth, [("small.txt", b"s"), ("big.bin", b"b" * 500)])
    assert r.status_code == 201
    assert [u["filename"] for u in r.json["uploads"]] == ["small.txt"]
    assert r.json["failed"] == [{"filename": "big.bin",
                                 "reason": "Upload failed due to an internal error"}]
    assert usage(faulty.runtime, faulty.account.id) == (1, 1)


def test_batch_where_everything_fails(faulty: CdnHost) -> None:
    storage_of(faulty).fail_commit = lambda key: True
    r = batch(faulty.client(), faulty.auth, [("a.txt", b"a"), ("b.txt", b"b")])
    assert r.status_code == 422
    assert r.json == {"uploads": [], "failed": [
        {"filename": "a.txt", "reason": "Upload failed due to an internal error"},
        {"filename": "b.txt", "reason": "Upload failed due to an internal error"}]}
    nothing_left(faulty)


def test_url_upload_storage_failure(faulty: CdnHost, origin: Origin) -> None:
    storage_of(faulty).fail_after = 10
    r = faulty.client().simulate_post("/api/v4/upload_from_url",
                                      json={"url": origin.reply("/f.bin", b"f" * 100)},
                                      headers=faulty.auth)
    assert (r.status_code, r.json) == (422, {"error": "Upload failed: storage error"})
    storage_of(faulty).fail_after = None
    storage_of(faulty).fail_commit = lambda key: True
    r = faulty.client().simulate_post("/api/v4/upload_from_url",
                                      json={"url": origin.reply("/f.bin", b"f" * 100)},
                                      headers=faulty.auth)
    assert (r.status_code, r.json) == (422, {"error": "Upload failed: storage error"})
    nothing_left(faulty)


def test_delete_when_the_bytes_cannot_be_removed(faulty: CdnHost) -> None:
    client = faulty.client()
    item = upload(client, faulty.auth, "a.txt", b"abc").json
    storage_of(faulty).fail_delete = True
    r = client.simulate_delete(f"/api/v4/upload/{item['id']}", headers=faulty.auth)
    assert (r.status_code, r.json) == (200, {"id": item["id"], "deleted": True})
    assert rows(faulty.runtime) == []
    assert usage(faulty.runtime, faulty.account.id) == (0, 0)
    assert client.simulate_get(path_of(item["url"])).status_code == 404


def test_client_disconnect_mid_upload(faulty: CdnHost) -> None:
    body, ctype = multipart([("file", "a.bin", None, b"z" * 50_000)])
    r = call(faulty.client().app, "POST", "/api/v4/upload", body=body[:30_000],
             headers=[*faulty.auth.items(), ("Content-Type", ctype),
                      ("Content-Length", str(len(body)))])
    assert r.status == 400
    assert r.body == b'{"error":"Malformed multipart body"}'
    nothing_left(faulty)


def test_missing_bytes_are_a_404_not_a_500(faulty: CdnHost) -> None:
    client = faulty.client()
    item = upload(client, faulty.auth, "a.txt", b"abc").json
    LocalStorage.delete(storage_of(faulty), rows(faulty.runtime)[0]["storage_key"])
    r = client.simulate_get(path_of(item["url"]))
    assert (r.status_code, r.content) == (404, b"")
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_unexpected_errors_get_an_error_id(faulty: CdnHost,
                                           caplog: pytest.LogCaptureFixture) -> None:
    service = faulty.runtime.services["cdn"]

    def broken(account: Any) -> Any:
        raise RuntimeError("boom")

    service.quota = broken  # type: ignore[method-assign]
    r = faulty.client().simulate_get("/api/v4/me", headers=faulty.auth)
    assert r.status_code == 500
    assert set(r.json) == {"error", "error_id"}
    assert r.json["error"] == "Internal server error"
    assert r.json["error_id"] in caplog.text
    assert r.headers["X-Request-Id"] == r.json["error_id"]  # one id for the whole story
    assert "boom" not in r.text
    mine = faulty.client().simulate_get("/api/v4/me",
                                        headers={**faulty.auth, "X-Request-Id": "ticket-42"})
    assert (mine.json["error_id"], mine.headers["X-Request-Id"]) == ("ticket-42", "ticket-42")
    assert "unhandled error ticket-42 " in caplog.text


def test_a_failed_cleanup_does_not_hide_the_original_error(
        cdn_host: Callable[..., CdnHost], origin: Origin,
        caplog: pytest.LogCaptureFixture) -> None:
    """When the bytes of an unrecorded upload cannot be removed, the client still
    gets the answer for what went wrong first, and the orphan is logged."""
    host = cdn_host(storage_backend="faulty", plugins=[FaultyPlugin()],
                    settings={"cdn_storage_limit": 1000})
    storage_of(host).fail_delete = True

    def meanwhile(wfile: Any) -> None:
        host.runtime.quotas.charge(f"cdn:{host.account.id}", 700)  # another upload lands
        wfile.write(b"x" * 400)

    r = host.client().simulate_post("/api/v4/upload_from_url",
                                    json={"url": origin.reply("/x", stream=meanwhile)},
                                    headers=host.auth)
    assert (r.status_code, r.json["error"]) == (402, "Storage quota exceeded")
    assert rows(host.runtime) == []
    assert usage(host.runtime, host.account.id) == (700, 1)
    [orphan] = stored_files(host.runtime)
    assert f"could not delete the bytes of {orphan}" in caplog.text
    assert host.runtime.pending.keys() == [orphan]  # so the sweep removes it later

    caplog.clear()
    with host.runtime.db.write() as conn:
        conn.execute("CREATE TRIGGER fail_insert BEFORE INSERT ON cdn_uploads"
                     " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    r = upload(host.client(), host.auth, "a.txt", b"hello")
    assert (r.status_code, r.json) == (422, {"error": "Upload failed: storage error"})
    assert "could not delete the bytes of cdn/" in caplog.text
    assert "could not record upload" in caplog.text  # the database error, not the delete's
    assert rows(host.runtime) == [] and len(stored_files(host.runtime)) == 2
