"""``POST /api/v4/uploads`` (6.4) and the batch service's quota plan (upstream
"Batch upload" and "Batch service" assertions)."""

from __future__ import annotations

from collections.abc import Callable

import falcon.testing
import pytest
from cdnkit import MB, CdnHost, batch, path_of, post_files, rows, stored_files, usage
from httpkit import call, multipart

from hepcore import Account, Rejection, Runtime, UploadCandidate, hookimpl
from hepcore.web import create_app
from hepcore_cdn.batch import BatchResult, Incoming
from hepcore_cdn.service import CdnService


def service_of(runtime: Runtime) -> CdnService:
    return runtime.services["cdn"]  # type: ignore[return-value]


def incoming(runtime: Runtime, files: list[tuple[str, bytes]], per_file: int) -> list[Incoming]:
    """Files as the route hands them to the service: written, not yet committed."""
    out = []
    for name, data in files:
        writer = runtime.storage.writer(max_size=per_file) if len(data) <= per_file else None
        if writer is not None:
            writer.write(data)
        out.append(Incoming(name, len(data), None, writer))
    return out


# --- the route ---------------------------------------------------------------


def test_two_files(client: falcon.testing.TestClient, runtime: Runtime, account: Account,
                   auth: dict[str, str]) -> None:
    r = batch(client, auth, [("a.png", b"aaa"), ("b b.txt", b"bb")])
    assert r.status_code == 201
    assert r.json["failed"] == []
    assert [u["filename"] for u in r.json["uploads"]] == ["a.png", "b b.txt"]
    for item, data in zip(r.json["uploads"], (b"aaa", b"bb"), strict=True):
        assert list(item) == ["id", "filename", "size", "content_type", "url", "created_at"]
        assert item["url"].startswith(f"http://falconframework.org/{item['id']}/")
        assert client.simulate_get(path_of(item["url"])).content == data
    assert r.json["uploads"][1]["content_type"] == "text/plain; charset=utf-8"
    assert len(rows(runtime, account.id)) == 2
    assert usage(runtime, account.id) == (5, 2)


@pytest.mark.parametrize("parts", [
    [], [("files", "a.png", None, b"a")], [("file", "a.png", None, b"a")],
    [("files[]", None, None, b"a field, not a file")], [("files[]", "", None, b"a")],
    [("files[]", "  ", None, b"a blank name")],
])
def test_missing_files(client: falcon.testing.TestClient, runtime: Runtime,
                       auth: dict[str, str], parts: list) -> None:
    r = post_files(client, "/api/v4/uploads", parts, auth)
    assert (r.status_code, r.json) == (400, {"error": "Missing files[] parameter"})
    r = client.simulate_post("/api/v4/uploads", json={"files": []}, headers=auth)
    assert (r.status_code, r.json) == (400, {"error": "Missing files[] parameter"})
    assert stored_files(runtime) == []


@pytest.mark.parametrize("path", ["/api/v4/uploads", "/api/v4/uploads.json"])
@pytest.mark.parametrize(("ctype", "body"), [
    ("application/json", b"{bad"),
    ("application/json; charset=utf-8", b'{"files": ['),
    ("application/vnd.api+json", b"{'files': []}"),
])
def test_malformed_json_body(client: falcon.testing.TestClient, runtime: Runtime,
                             auth: dict[str, str], path: str, ctype: str, body: bytes) -> None:
    """Section 3: a malformed JSON body is 400 ``Invalid JSON body``; a
    well-formed one has no ``files[]`` part (6.4 step 4)."""
    r = client.simulate_post(path, body=body, headers={**auth, "Content-Type": ctype})
    assert (r.status_code, r.json) == (400, {"error": "Invalid JSON body"})
    for good in (b'{"files": ["a.txt"]}', b"null", b""):
        r = client.simulate_post(path, body=good, headers={**auth, "Content-Type": ctype})
        assert (r.status_code, r.json) == (400, {"error": "Missing files[] parameter"})
    assert stored_files(runtime) == []


def test_windows_paths_are_sanitised_as_sent(client: falcon.testing.TestClient,
                                             runtime: Runtime, account: Account,
                                             auth: dict[str, str]) -> None:
    """4.2 turns each ``\\`` and ``:`` into ``-``; a rejected file is reported
    under the whole name it was sent with (6.4)."""
    big = b"\0" * (10 * MB + 1)
    r = batch(client, auth, [("C:\\x\\y.txt", b"y"), ("\\\\server\\share\\f.txt", b"f"),
                             ("D:\\big.bin", big)])
    assert r.status_code == 201
    assert [u["filename"] for u in r.json["uploads"]] == ["C--x-y.txt", "--server-share-f.txt"]
    assert r.json["failed"] == [{"filename": "D:\\big.bin",
                                 "reason": "File size (10 MB) exceeds limit of 10 MB"}]
    assert sorted(row["filename"] for row in rows(runtime, account.id)) == [
        "--server-share-f.txt", "C--x-y.txt"]


def test_41_files_store_nothing(client: falcon.testing.TestClient, runtime: Runtime,
                                account: Account, auth: dict[str, str]) -> None:
    r = batch(client, auth, [(f"f{i}.txt", b"x") for i in range(41)])
    assert r.status_code == 400
    assert r.json == {"error": "Too many files", "detail": "Maximum 40 files per batch, got 41"}
    assert rows(runtime) == [] and stored_files(runtime) == []
    assert usage(runtime, account.id) == (0, 0)
    r = batch(client, auth, [(f"f{i}.txt", b"x") for i in range(200)])
    assert r.json["detail"] == "Maximum 40 files per batch, got 200"
    assert stored_files(runtime) == []


def test_41_parts_with_a_headers_only_file_are_not_40_files(
        client: falcon.testing.TestClient, runtime: Runtime, account: Account,
        auth: dict[str, str]) -> None:
    """Found by the schema fuzzer: 39 files and two empty ones written without a
    blank line after their headers (RFC 2046 allows it; werkzeug does it) were
    read as 40 files, the first empty one holding the second's framing, and
    stored. Such a body is refused, and nothing is stored."""
    parts = b"".join(b'\r\n--b\r\nContent-Disposition: form-data; name="files[]";'
                     b' filename="f%d.txt"\r\n\r\nx' % i for i in range(39))
    parts += b"".join(b'\r\n--b\r\nContent-Disposition: form-data; name="files[]";'
                      b' filename="e%d.txt"\r\n' % i for i in range(2))
    r = client.simulate_post("/api/v4/uploads", body=parts + b"\r\n--b--\r\n",
                             headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json) == (400, {"error": "Malformed multipart body"})
    assert stored_files(runtime) == []
    assert usage(runtime, account.id) == (0, 0)


def test_40_files_are_fine(client: falcon.testing.TestClient, auth: dict[str, str]) -> None:
    r = batch(client, auth, [(f"f{i}.txt", b"x") for i in range(40)])
    assert r.status_code == 201
    assert len(r.json["uploads"]) == 40


def test_partial_failure_keeps_request_order(client: falcon.testing.TestClient,
                                             runtime: Runtime, account: Account,
                                             auth: dict[str, str]) -> None:
    big = b"\0" * (10 * MB + 1)
    r = batch(client, auth, [("a.txt", b"a"), ("too?big.bin", big), ("b.txt", b"b")])
    assert r.status_code == 201
    assert [u["filename"] for u in r.json["uploads"]] == ["a.txt", "b.txt"]
    assert r.json["failed"] == [{"filename": "too?big.bin",
                                 "reason": "File size (10 MB) exceeds limit of 10 MB"}]
    assert usage(runtime, account.id) == (2, 2)
    assert len(stored_files(runtime)) == 2


def test_nothing_stored_is_422(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(settings={"cdn_storage_limit": 10})
    r = batch(host.client(), host.auth, [("a.bin", b"x" * 11)])
    assert r.status_code == 422
    assert r.json == {"uploads": [], "failed": [
        {"filename": "a.bin", "reason": "Would exceed storage quota (10 Bytes remaining)"}]}
    assert stored_files(host.runtime) == []


def test_request_too_large(runtime: Runtime, app_kind: str, auth: dict[str, str]) -> None:
    app = create_app(runtime, asgi=app_kind == "asgi")
    body, ctype = multipart([("files[]", "a.bin", None, b"x")])
    r = call(app, "POST", "/api/v4/uploads", body=body[:20],
             headers=[*auth.items(), ("Content-Type", ctype),
                      ("Content-Length", str(40 * 10 * MB + 64 * 1024 + 1))])
    assert r.status == 413
    assert r.body == b'{"error":"Request too large"}'


def test_chunked_body_over_the_batch_limit(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(settings={"cdn_max_file_size": 100})
    body, ctype = multipart([("files[]", "a.bin", None, b"x" * (40 * 100 + 70 * 1024))])
    r = call(host.client().app, "POST", "/api/v4/uploads", body=[body], chunked=True,
             headers=[*host.auth.items(), ("Content-Type", ctype)])
    assert r.status == 413
    assert stored_files(host.runtime) == []


# --- the batch service (quota logic, unverified tier) -------------------------


def test_three_1mb_files(runtime: Runtime, account: Account) -> None:
    result = service_of(runtime).store_batch(
        account, incoming(runtime, [(f"{i}.bin", b"\1" * MB) for i in range(3)], 10 * MB))
    assert len(result.uploads) == 3 and result.failed == []


def test_one_file_one_byte_over_the_limit(runtime: Runtime, account: Account) -> None:
    result = service_of(runtime).store_batch(
        account, incoming(runtime, [("ok.bin", b"\1" * MB), ("big.bin", b"\2" * (10 * MB + 1))],
                          10 * MB))
    assert [u.filename for u in result.uploads] == ["ok.bin"]
    assert result.failed == [{"filename": "big.bin",
                              "reason": "File size (10 MB) exceeds limit of 10 MB"}]
    assert "exceeds limit" in result.failed[0]["reason"]


def test_seven_10mb_files(runtime: Runtime, account: Account) -> None:
    files = [(f"{i}.bin", bytes([i]) * (10 * MB)) for i in range(7)]
    result = service_of(runtime).store_batch(account, incoming(runtime, files, 10 * MB))
    assert [u.filename for u in result.uploads] == [f"{i}.bin" for i in range(5)]
    assert result.failed == [{"filename": f"{i}.bin",
                              "reason": "Would exceed storage quota (0 Bytes remaining)"}
                             for i in (5, 6)]
    assert all("exceed storage quota" in f["reason"] for f in result.failed)
    assert usage(runtime, account.id) == (50 * MB, 5)
    assert len(stored_files(runtime)) == 5


def test_quota_is_decided_before_the_first_write(runtime: Runtime, account: Account) -> None:
    files = [("a.txt", b"a"), ("too-big.txt", b"x" * (10 * MB + 1)), ("b.txt", b"b")]
    result = service_of(runtime).store_batch(account, incoming(runtime, files, 10 * MB))
    assert [u.filename for u in result.uploads] == ["a.txt", "b.txt"]
    assert [f["filename"] for f in result.failed] == ["too-big.txt"]


def test_remaining_quota_counts_accepted_files(cdn_host: Callable[..., CdnHost]) -> None:
    host = cdn_host(settings={"cdn_storage_limit": 2 * MB + 10})
    service = service_of(host.runtime)
    files = [("a", b"a" * MB), ("b", b"b" * (MB + 20)), ("c", b"c" * MB), ("d", b"d" * 11),
             ("e", b"e" * 10)]
    result = service.store_batch(host.account, incoming(host.runtime, files, 10 * MB))
    assert [u.filename for u in result.uploads] == ["a", "c", "e"]
    assert result.failed == [
        {"filename": "b", "reason": "Would exceed storage quota (1 MB remaining)"},
        {"filename": "d", "reason": "Would exceed storage quota (10 Bytes remaining)"}]
    assert usage(host.runtime, host.account.id) == (2 * MB + 10, 3)
    host2 = cdn_host(settings={"cdn_storage_limit": 3 * MB})
    result = service_of(host2.runtime).store_batch(
        host2.account, incoming(host2.runtime, [("a", b"a" * (MB + 300_000)),
                                                ("b", b"b" * (2 * MB))], 10 * MB))
    assert result.failed == [{"filename": "b",
                              "reason": "Would exceed storage quota (1.71 MB remaining)"}]


def test_account_already_over_the_total(runtime: Runtime, account: Account) -> None:
    runtime.quotas.charge(f"cdn:{account.id}", 50 * MB)
    result = service_of(runtime).store_batch(
        account, incoming(runtime, [("a.txt", b"a"), ("b.txt", b""),
                                    ("c.bin", b"c" * (10 * MB + 1))], 10 * MB))
    assert result.uploads == []
    assert [f["reason"] for f in result.failed] == ["Storage quota already exceeded"] * 3
    assert stored_files(runtime) == []


def test_42_files_given_to_the_service(runtime: Runtime, account: Account) -> None:
    result = service_of(runtime).store_batch(
        account, incoming(runtime, [(f"{i}.txt", b"x") for i in range(42)], 10 * MB))
    assert len(result.uploads) == 40
    assert result.failed == [{"filename": f"{i}.txt",
                              "reason": "Too many files in batch (maximum is 40)"}
                             for i in (40, 41)]
    assert all("Too many files in batch" in f["reason"] for f in result.failed)


def test_text_plain_is_normalised(runtime: Runtime, account: Account) -> None:
    writer = runtime.storage.writer(max_size=10 * MB)
    writer.write(b"hello")
    result = service_of(runtime).store_batch(account, [Incoming("a.txt", 5, "text/plain",
                                                                writer)])
    assert result.uploads[0].content_type == "text/plain; charset=utf-8"


def store_overtaken(host: CdnHost, files: list[Incoming], concurrent: int) -> BatchResult:
    """``store_batch`` with ``concurrent`` bytes of another upload charged
    between the quota plan and the writes."""
    service = service_of(host.runtime)
    original = service.quota

    def raced(account: Account) -> object:
        quota = original(account)
        host.runtime.quotas.charge(f"cdn:{account.id}", concurrent)
        return quota

    service.quota = raced  # type: ignore[method-assign]
    try:
        return service.store_batch(host.account, files)
    finally:
        service.quota = original  # type: ignore[method-assign]


def test_concurrent_uploads_past_the_quota_are_removed(cdn_host: Callable[..., CdnHost]) -> None:
    """Another upload lands between the plan and the writes: the batch's files that
    no longer fit are removed and reported, and usage never passes the total."""
    host = cdn_host(settings={"cdn_storage_limit": 100})
    files = incoming(host.runtime, [("a?.bin", b"a" * 40), ("b?.bin", b"b" * 40)], 100)
    result = store_overtaken(host, files, 50)
    assert [u.filename for u in result.uploads] == ["a-.bin"]
    assert result.failed == [{"filename": "b-.bin",
                              "reason": "Removed: concurrent uploads exceeded quota"}]
    assert usage(host.runtime, host.account.id) == (90, 2)
    assert len(stored_files(host.runtime)) == 1


def test_concurrent_removal_keeps_the_first_files_that_fit(
        cdn_host: Callable[..., CdnHost]) -> None:
    """As if all were stored and the newest deleted until usage fits: a later,
    smaller file is removed too, and removals are reported newest first."""
    host = cdn_host(settings={"cdn_storage_limit": 100})
    files = incoming(host.runtime, [("A.bin", b"a" * 40), ("huge.bin", b"h" * 200),
                                    ("B.bin", b"b" * 40), ("C.bin", b"c" * 10)], 100)
    result = store_overtaken(host, files, 30)
    assert [u.filename for u in result.uploads] == ["A.bin"]
    removed = "Removed: concurrent uploads exceeded quota"
    assert result.failed == [
        {"filename": "huge.bin", "reason": "Would exceed storage quota (60 Bytes remaining)"},
        {"filename": "C.bin", "reason": removed}, {"filename": "B.bin", "reason": removed}]
    assert usage(host.runtime, host.account.id)[0] == 70
    assert len(stored_files(host.runtime)) == 1


def test_more_parts_than_the_reader_takes_are_too_many_files(
        client: falcon.testing.TestClient, runtime: Runtime, account: Account,
        auth: dict[str, str]) -> None:
    """The body stops being read at 1000 parts; the answer is still 6.4's."""
    too_many = {"error": "Too many files",
                "detail": "Maximum 40 files per batch, got more than 1000"}
    r = batch(client, auth, [(f"f{i}.txt", b"x") for i in range(1001)])
    assert (r.status_code, r.json) == (400, too_many)
    r = post_files(client, "/api/v4/uploads", [("files[]", "a.txt", None, b"a")]
                   + [("note", None, None, b"n")] * 1000, auth)
    assert (r.status_code, r.json) == (400, too_many)
    r = batch(client, auth, [(f"f{i}.txt", b"x") for i in range(1000)])
    assert r.json["detail"] == "Maximum 40 files per batch, got 1000"
    assert rows(runtime) == [] and stored_files(runtime) == []
    assert usage(runtime, account.id) == (0, 0)


class FailsOn:
    """A moderation plugin that breaks on one filename."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    @hookimpl
    def hepcore_inspect_upload(self, candidate: UploadCandidate) -> Rejection | None:
        if candidate.filename == self.filename:
            raise RuntimeError("moderation service unreachable")
        return None


def test_a_plugin_failing_on_one_file_fails_that_file_only(
        cdn_host: Callable[..., CdnHost]) -> None:
    # 6.4 step 7: the files stored before and after it stay, and are reported;
    # a 500 would hide files that were kept and charged.
    host = cdn_host(plugins=[FailsOn("b.bin")])
    r = batch(host.client(), host.auth, [("a.bin", b"a" * 10), ("b.bin", b"b" * 20),
                                         ("c.bin", b"c" * 30)])
    assert r.status_code == 201
    assert [u["filename"] for u in r.json["uploads"]] == ["a.bin", "c.bin"]
    assert r.json["failed"] == [{"filename": "b.bin",
                                 "reason": "Upload failed due to an internal error"}]
    assert usage(host.runtime, host.account.id) == (40, 2)
    assert len(rows(host.runtime)) == 2 and len(stored_files(host.runtime)) == 2
    r = batch(host.client(), host.auth, [("b.bin", b"b")])
    assert r.status_code == 422
    assert usage(host.runtime, host.account.id) == (40, 2)
