"""LocalStorage: the storage contract, plus what only a local disk can show
(temporary files, fsync, sweeping, disk errors)."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepcore.errors import BodyTooLarge, StorageError
from hepcore.storage import LocalStorage
from hepcore.testing.contracts import StorageContract, read_all


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files")


class TestLocalStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, local: LocalStorage) -> LocalStorage:
        return local


def tmp_entries(storage: LocalStorage) -> list[str]:
    return sorted(os.listdir(storage.tmp_dir))


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_partial_write_lives_only_in_tmp_and_commit_leaves_no_temp_file(
        local: LocalStorage) -> None:
    with local.writer() as writer:
        writer.write(b"payload")
        assert len(tmp_entries(local)) == 1
        assert all_files(local.root) == [f".tmp/{tmp_entries(local)[0]}"]
        writer.commit("uploader/abc.txt")
    assert tmp_entries(local) == []
    assert all_files(local.root) == ["uploader/abc.txt"]
    assert (local.root / "uploader" / "abc.txt").read_bytes() == b"payload"
    assert local.internal_path("uploader/abc.txt") == "uploader/abc.txt"


def test_hash_on_demand_hashes_nothing_unless_asked(local: LocalStorage,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[int] = []
    real = hashlib.sha256

    class Counting:
        def __init__(self) -> None:
            self._hash = real()

        def update(self, data: bytes) -> None:
            hashed.append(len(data))
            self._hash.update(data)

        def hexdigest(self) -> str:
            return self._hash.hexdigest()

    monkeypatch.setattr(hashlib, "sha256", Counting)
    with local.writer() as writer:
        writer.hash_on_demand()
        writer.write_all([b"x" * 200_000, b"y" * 200_000])
        stored = writer.commit("cdn/unhashed.bin")
        with pytest.raises(StorageError):
            writer.sha256  # noqa: B018 - too late to read the bytes back
    assert (stored.sha256, hashed) == (None, [])
    assert (local.root / "cdn" / "unhashed.bin").read_bytes() == b"x" * 200_000 + b"y" * 200_000


def test_commit_fsyncs_the_file_and_its_directory(local: LocalStorage,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append("dir" if stat.S_ISDIR(mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    local.put("uploader/durable.bin", [b"x" * 1000])
    # The data reaches the disk before the rename, the rename before the commit returns.
    assert synced == ["file", "dir"]


def test_failed_directory_fsync_leaves_no_object(local: LocalStorage,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def failing_dir_fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_dir_fsync)
    with pytest.raises(StorageError):
        local.put("uploader/not-durable.bin", [b"data"])
    monkeypatch.undo()
    assert not local.exists("uploader/not-durable.bin")
    assert all_files(local.root) == []


def test_body_too_large_removes_the_temporary_file_at_once(local: LocalStorage) -> None:
    writer = local.writer(max_size=10)
    writer.write(b"0123456789")
    assert len(tmp_entries(local)) == 1
    with pytest.raises(BodyTooLarge):
        writer.write(b"!")
    assert tmp_entries(local) == []
    assert all_files(local.root) == []


def test_abort_and_failed_commit_remove_the_temporary_file(local: LocalStorage) -> None:
    with local.writer() as writer:
        writer.write(b"gone")
    local.put("taken", [b"first"])
    with pytest.raises(StorageError):
        local.put("taken", [b"second"])
    assert tmp_entries(local) == []
    assert all_files(local.root) == ["taken"]


def test_sweep_removes_only_old_partial_files(local: LocalStorage) -> None:
    old = local.tmp_dir / "1000-deadbeef.part"
    old.write_bytes(b"abandoned by a crashed worker")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    young = local.tmp_dir / "2000-cafebabe.part"
    young.write_bytes(b"someone is still uploading")
    local.put("uploader/kept.png", [b"committed long ago"])
    os.utime(local.path_of("uploader/kept.png"), (two_hours_ago, two_hours_ago))

    with local.writer() as in_progress:
        in_progress.write(b"live upload")
        assert local.sweep(older_than=3600) == 1
        in_progress.write(b", still writable")
        in_progress.commit("uploader/live.txt")

    assert not old.exists()
    assert young.exists()
    assert read_all(local.open("uploader/kept.png")) == b"committed long ago"
    assert read_all(local.open("uploader/live.txt")) == b"live upload, still writable"
    assert local.sweep(older_than=3600) == 0


class FullDisk:
    """Stands in for a writer's temporary file: accepts ``budget`` bytes, then
    fails as a full disk does."""

    def __init__(self, real: Any, budget: int) -> None:
        self.real = real
        self.budget = budget

    def write(self, data: Any) -> int:
        if len(data) > self.budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return int(self.real.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("chunk", [1000, 100_000])  # written inline / by the helper thread
def test_disk_error_mid_stream_raises_storage_error_and_leaves_nothing(
        local: LocalStorage, chunk: int) -> None:
    with pytest.raises(StorageError, match="No space left on device"), local.writer() as writer:
        writer._fh = FullDisk(writer._fh, budget=int(chunk * 2.5))  # type: ignore[attr-defined]
        for _ in range(10):
            writer.write(b"z" * chunk)
    assert writer.aborted
    assert writer.size < 10 * chunk
    assert tmp_entries(local) == []
    assert all_files(local.root) == []
    assert list(local.keys()) == []
    with pytest.raises(StorageError):
        writer.commit("uploader/half.bin")
    assert list(local.keys()) == []


def test_disk_error_on_the_last_chunk_fails_the_commit(local: LocalStorage) -> None:
    writer = local.writer()
    writer._fh = FullDisk(writer._fh, budget=150_000)  # type: ignore[attr-defined]
    writer.write(b"a" * 100_000)
    with pytest.raises(StorageError, match="No space left on device"):
        writer.write(b"b" * 100_000)  # fails now or, when written behind, at commit
        writer.commit("uploader/last.bin")
    assert writer.aborted and not writer.committed
    assert tmp_entries(local) == []
    assert all_files(local.root) == []


_keys = itertools.count()


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(max_size=3000), max_size=8), data=st.data())
def test_round_trip_of_arbitrary_chunks(local: LocalStorage, chunks: list[bytes],
                                        data: st.DataObject) -> None:
    whole = b"".join(chunks)
    key = f"prop/{next(_keys)}.bin"
    with local.writer(max_size=len(whole)) as writer:
        writer.write_all(chunks)
        stored = writer.commit(key)
    digest = hashlib.sha256(whole).hexdigest()
    assert (stored.size, stored.sha256) == (len(whole), digest)
    assert local.size(key) == len(whole)
    back = read_all(local.open(key), block=data.draw(st.integers(1, 5000), label="block"))
    assert hashlib.sha256(back).hexdigest() == digest
    for _ in range(3):
        start = data.draw(st.integers(0, len(whole)), label="start")
        length = data.draw(st.integers(0, len(whole) - start), label="length")
        assert read_all(local.open(key, start, length)) == whole[start:start + length]
    start = data.draw(st.integers(0, len(whole)), label="open-ended start")
    assert read_all(local.open(key, start)) == whole[start:]
    assert tmp_entries(local) == []
