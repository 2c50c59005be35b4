"""Contract test suites for the core interfaces, for every backend to reuse.

Each class is a pytest mixin: subclass it in a test module under a name
starting with ``Test`` and provide the fixtures its docstring names. The
embedded defaults run these same suites, so a third-party backend that
passes them behaves as the core expects::

    from hepcore.testing.contracts import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(...)

The suites need pytest; importing :mod:`hepcore.testing` alone does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import pytest

from ..accounts import Account
from ..errors import BodyTooLarge, CredentialError, QuotaExceeded, StorageError
from ..limits import Limit, QuotaStore, RateLimiter, Usage
from ..storage import Storage
from ..tokens import Actor, TokenVerifier
from .clock import FakeClock

__all__ = [
    "QuotaStoreContract",
    "RateLimiterContract",
    "StorageContract",
    "TokenVerifierContract",
]

INVALID_KEYS = ("", "..", "../x", "a/../b", "/abs", "a//b", "a/", "a/b\n")


def read_all(stream: BinaryIO, block: int = 7) -> bytes:
    """Read ``stream`` to its end in small blocks (as a server would), then close it."""
    parts: list[bytes] = []
    try:
        while True:
            chunk = stream.read(block)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)
    finally:
        stream.close()


class StorageContract:
    """What every :class:`~hepcore.storage.Storage` backend must do.

    Provide a fixture ``storage`` returning an empty backend instance.

    - A writer streams bytes in, counting and hashing them as they arrive;
      ``commit(key)`` returns a ``StoredObject`` with that size and SHA-256.
    - ``max_size`` is inclusive; the write that passes it raises
      :class:`~hepcore.errors.BodyTooLarge` at once, finishes the writer and
      leaves nothing behind (a later ``commit`` fails).
    - Commit is atomic: no key is visible before it, the whole object after.
      A committed object reads back whole and by range (``open(key, start,
      length)``).
    - ``abort()``, or leaving the writer's ``with`` block without committing,
      leaves nothing. Committing twice, after an abort, or onto an existing
      key raises :class:`~hepcore.errors.StorageError` and keeps the old object.
    - ``delete`` returns ``True``/``False`` and never raises for a missing key.
    - ``size`` and ``open`` raise :class:`FileNotFoundError` for a key that is
      not a committed object (including a prefix of one).
    - Invalid keys (empty, ``..`` segments, absolute, empty segments) raise
      :class:`ValueError`.
    - ``keys(prefix)`` lists committed keys only.
    """

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("provide a `storage` fixture returning the backend under test")

    def test_writer_counts_and_hashes_while_streaming(self, storage: Storage) -> None:
        chunks = [b"hello ", b"", b"streaming ", bytes(range(256)) * 40]
        expected = hashlib.sha256()
        with storage.writer(max_size=None) as writer:
            total = 0
            for chunk in chunks:
                writer.write(chunk)
                total += len(chunk)
                expected.update(chunk)
                assert writer.size == total
                assert writer.sha256 == expected.hexdigest()
            assert writer.head == b"".join(chunks)[:4096]
            stored = writer.commit("contract/streamed.bin")
        data = b"".join(chunks)
        assert stored.key == "contract/streamed.bin"
        assert stored.size == len(data)
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert storage.size("contract/streamed.bin") == len(data)
        assert read_all(storage.open("contract/streamed.bin")) == data

    def test_hash_on_demand_gives_the_same_digest(self, storage: Storage) -> None:
        # Large chunks too: a backend may write them behind the caller.
        chunks = [b"on demand ", bytes(range(256)) * 1024, b"", b"tail" * 70_000]
        data = b"".join(chunks)
        with storage.writer() as writer:
            writer.hash_on_demand()
            writer.write_all(chunks[:2])
            assert writer.sha256 == hashlib.sha256(b"".join(chunks[:2])).hexdigest()
            writer.write_all(chunks[2:])  # after a digest was asked, writes are hashed
            assert writer.sha256 == hashlib.sha256(data).hexdigest()
            stored = writer.commit("contract/asked")
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert read_all(storage.open("contract/asked")) == data
        with storage.writer() as writer:
            writer.hash_on_demand()
            writer.write_all(chunks)
            stored = writer.commit("contract/never-asked")
        # ``None`` where the backend skipped the hash; a backend that cannot read
        # back hashes anyway.
        assert stored.sha256 in (None, hashlib.sha256(data).hexdigest())
        assert read_all(storage.open("contract/never-asked")) == data

    def test_empty_object(self, storage: Storage) -> None:
        stored = storage.put("contract/empty", [])
        assert stored.size == 0
        assert stored.sha256 == hashlib.sha256(b"").hexdigest()
        assert storage.size("contract/empty") == 0
        assert read_all(storage.open("contract/empty")) == b""

    def test_max_size_is_inclusive(self, storage: Storage) -> None:
        stored = storage.put("contract/exact", [b"12345", b"67890"], max_size=10)
        assert stored.size == 10
        assert read_all(storage.open("contract/exact")) == b"1234567890"

    def test_body_too_large_stops_at_once_and_leaves_nothing(self, storage: Storage) -> None:
        consumed = []

        def body() -> Iterator[bytes]:
            for i in range(100):
                consumed.append(i)
                yield b"x" * 400

        with pytest.raises(BodyTooLarge) as info, storage.writer(max_size=1000) as writer:
            writer.write_all(body())
        # The third chunk passes 1000 bytes: nothing after it is read.
        assert consumed == [0, 1, 2]
        assert info.value.limit == 1000
        assert writer.size <= 1000
        assert list(storage.keys()) == []
        with pytest.raises(StorageError):
            writer.commit("contract/truncated")
        assert not storage.exists("contract/truncated")
        assert list(storage.keys()) == []

    def test_body_too_large_without_a_with_block(self, storage: Storage) -> None:
        writer = storage.writer(max_size=3)
        writer.write(b"abc")
        with pytest.raises(BodyTooLarge):
            writer.write(b"d")
        with pytest.raises(StorageError):
            writer.commit("contract/oversized")
        assert list(storage.keys()) == []

    def test_nothing_visible_before_commit(self, storage: Storage) -> None:
        with storage.writer() as writer:
            writer.write(b"partial data")
            assert list(storage.keys()) == []
            assert not storage.exists("contract/pending")
            with pytest.raises(FileNotFoundError):
                storage.size("contract/pending")
            writer.commit("contract/pending")
        assert list(storage.keys()) == ["contract/pending"]

    def test_read_whole_and_by_range(self, storage: Storage) -> None:
        data = bytes(range(256)) * 10
        storage.put("contract/ranged", [data[:1000], data[1000:]])
        assert read_all(storage.open("contract/ranged")) == data
        assert read_all(storage.open("contract/ranged", 0, 1)) == data[:1]
        assert read_all(storage.open("contract/ranged", 100, 250)) == data[100:350]
        assert read_all(storage.open("contract/ranged", 2559, 1)) == data[-1:]
        assert read_all(storage.open("contract/ranged", 1000)) == data[1000:]
        assert read_all(storage.open("contract/ranged", 5, 0)) == b""
        # Reading a range in one call never returns bytes past the range.
        with storage.open("contract/ranged", 10, 20) as stream:
            assert stream.read() == data[10:30]

    def test_abort_leaves_nothing(self, storage: Storage) -> None:
        writer = storage.writer()
        writer.write(b"to be discarded")
        writer.abort()
        writer.abort()  # idempotent
        assert list(storage.keys()) == []
        with pytest.raises(StorageError):
            writer.commit("contract/aborted")
        assert list(storage.keys()) == []

    def test_leaving_with_block_without_commit_leaves_nothing(self, storage: Storage) -> None:
        with storage.writer() as writer:
            writer.write(b"never committed")
        assert writer.aborted
        with pytest.raises(RuntimeError), storage.writer() as writer:
            writer.write(b"the caller failed mid-way")
            raise RuntimeError("caller failure")
        assert list(storage.keys()) == []

    def test_commit_twice_fails(self, storage: Storage) -> None:
        with storage.writer() as writer:
            writer.write(b"once")
            writer.commit("contract/once")
            with pytest.raises(StorageError):
                writer.commit("contract/twice")
        assert list(storage.keys()) == ["contract/once"]

    def test_write_after_commit_fails(self, storage: Storage) -> None:
        with storage.writer() as writer:
            writer.write(b"done")
            writer.commit("contract/done")
            with pytest.raises(StorageError):
                writer.write(b"more")
        assert read_all(storage.open("contract/done")) == b"done"

    def test_commit_onto_existing_key_fails_and_keeps_the_original(self, storage: Storage) -> None:
        storage.put("contract/taken", [b"original"])
        with pytest.raises(StorageError):
            storage.put("contract/taken", [b"impostor"])
        assert read_all(storage.open("contract/taken")) == b"original"
        assert list(storage.keys()) == ["contract/taken"]

    def test_delete(self, storage: Storage) -> None:
        storage.put("contract/gone", [b"bye"])
        assert storage.delete("contract/gone") is True
        assert storage.delete("contract/gone") is False
        assert storage.delete("contract/never-existed") is False
        assert not storage.exists("contract/gone")
        with pytest.raises(FileNotFoundError):
            storage.size("contract/gone")
        with pytest.raises(FileNotFoundError):
            storage.open("contract/gone")
        assert list(storage.keys()) == []
        # The key is free again once deleted.
        storage.put("contract/gone", [b"again"])
        assert read_all(storage.open("contract/gone")) == b"again"

    def test_unknown_keys_raise_file_not_found(self, storage: Storage) -> None:
        with pytest.raises(FileNotFoundError):
            storage.size("contract/missing")
        with pytest.raises(FileNotFoundError):
            storage.open("contract/missing")
        with pytest.raises(FileNotFoundError):
            storage.open("contract/missing", 3, 4)
        assert storage.exists("contract/missing") is False

    def test_prefixes_and_paths_through_objects_are_not_objects(self, storage: Storage) -> None:
        storage.put("contract/dir/object", [b"data"])
        for key in ("contract", "contract/dir", "contract/dir/object/below"):
            assert storage.exists(key) is False, key
            with pytest.raises(FileNotFoundError):
                storage.size(key)
            with pytest.raises(FileNotFoundError):
                storage.open(key)
            assert storage.delete(key) is False, key
        assert list(storage.keys()) == ["contract/dir/object"]

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys_raise_value_error(self, storage: Storage, key: str) -> None:
        with pytest.raises(ValueError):
            storage.size(key)
        with pytest.raises(ValueError):
            storage.open(key)
        with pytest.raises(ValueError):
            storage.delete(key)
        with storage.writer() as writer:
            writer.write(b"data")
            with pytest.raises(ValueError):
                writer.commit(key)
        assert list(storage.keys()) == []

    def test_keys_lists_committed_keys_by_prefix(self, storage: Storage) -> None:
        for key in ("a/1", "a/2.txt", "ab/3", "b/deep/4", "top"):
            storage.put(key, [key.encode()])
        with storage.writer() as pending:
            pending.write(b"not committed")
            assert sorted(storage.keys()) == ["a/1", "a/2.txt", "ab/3", "b/deep/4", "top"]
            assert sorted(storage.keys("a/")) == ["a/1", "a/2.txt"]
            assert sorted(storage.keys("a")) == ["a/1", "a/2.txt", "ab/3"]
            assert sorted(storage.keys("b/deep/")) == ["b/deep/4"]
            assert list(storage.keys("zzz")) == []

    def test_writers_are_independent(self, storage: Storage) -> None:
        first, second = storage.writer(), storage.writer()
        first.write(b"first")
        second.write(b"second")
        second.abort()
        first.commit("contract/first")
        assert read_all(storage.open("contract/first")) == b"first"
        assert list(storage.keys()) == ["contract/first"]


class RateLimiterContract:
    """What every :class:`~hepcore.limits.RateLimiter` must do.

    Provide a fixture ``limiter`` (an empty limiter) that reads the time from
    the ``clock`` fixture, a :class:`~hepcore.testing.FakeClock` (hepcore's
    own ``tests/conftest.py`` defines one; define it yourself otherwise).

    - ``count`` hits in any rolling ``period`` are allowed; the next is
      refused with ``retry_after`` >= 1, the exact whole seconds (rounded
      up) until it would be accepted.
    - With several limits on one scope, every limit applies, and
      ``retry_after`` covers all of the refusing ones.
    - Refused hits are not recorded; scopes are independent; ``reset``
      forgets a scope.
    """

    @pytest.fixture
    def limiter(self, clock: FakeClock) -> RateLimiter:
        raise NotImplementedError("provide a `limiter` fixture that uses the `clock` fixture")

    def test_allows_count_hits_then_refuses(self, limiter: RateLimiter,
                                            clock: FakeClock) -> None:
        limit = Limit(3, 60, "minute")
        for _ in range(3):
            assert limiter.hit("contract:user", [limit]).allowed
            clock.advance(1)
        decision = limiter.hit("contract:user", [limit])
        assert not decision.allowed
        assert decision.limit == limit
        # The first hit leaves the window 60 s after it was made, 57 s from now.
        assert decision.retry_after == 57

    def test_retry_after_is_exact_to_the_second(self, limiter: RateLimiter,
                                                clock: FakeClock) -> None:
        limit = Limit(2, 60)
        clock.advance(0.25)
        assert limiter.hit("contract:user", [limit]).allowed
        clock.advance(10)
        assert limiter.hit("contract:user", [limit]).allowed
        clock.advance(19.75)
        decision = limiter.hit("contract:user", [limit])
        assert (decision.allowed, decision.retry_after) == (False, 31)  # ceil(30.25)
        clock.advance(decision.retry_after - 1)
        decision = limiter.hit("contract:user", [limit])
        assert (decision.allowed, decision.retry_after) == (False, 1)
        clock.advance(1)
        assert limiter.hit("contract:user", [limit]).allowed

    def test_retry_after_is_at_least_one_second(self, limiter: RateLimiter,
                                                clock: FakeClock) -> None:
        limit = Limit(1, 0.5)
        assert limiter.hit("contract:user", [limit]).allowed
        clock.advance(0.4)
        decision = limiter.hit("contract:user", [limit])
        assert not decision.allowed
        assert decision.retry_after == 1

    def test_window_rolls(self, limiter: RateLimiter, clock: FakeClock) -> None:
        limit = Limit(3, 60)
        start = clock()
        for offset in (0, 20, 40):
            clock.now = start + offset
            assert limiter.hit("contract:user", [limit]).allowed
        clock.now = start + 59
        assert not limiter.hit("contract:user", [limit]).allowed
        clock.now = start + 60  # the hit at 0 is now a full period old
        assert limiter.hit("contract:user", [limit]).allowed
        clock.now = start + 61  # hits at 20, 40 and 60 fill the window
        decision = limiter.hit("contract:user", [limit])
        assert (decision.allowed, decision.retry_after) == (False, 19)

    def test_several_limits_on_one_scope(self, limiter: RateLimiter, clock: FakeClock) -> None:
        minute, hour = Limit(3, 60, "minute"), Limit(5, 3600, "hour")
        start = clock()
        for _ in range(3):
            assert limiter.hit("contract:user", [minute, hour]).allowed
        decision = limiter.hit("contract:user", [minute, hour])
        assert (decision.allowed, decision.limit, decision.retry_after) == (False, minute, 60)
        clock.advance(60)
        for _ in range(2):
            assert limiter.hit("contract:user", [minute, hour]).allowed
        # The minute limit has room, the hour limit refuses: the longer one refuses later.
        decision = limiter.hit("contract:user", [minute, hour])
        assert (decision.allowed, decision.limit, decision.retry_after) == (False, hour, 3540)
        clock.now = start + 3599
        assert not limiter.hit("contract:user", [minute, hour]).allowed
        clock.now = start + 3600
        assert limiter.hit("contract:user", [minute, hour]).allowed

    def test_retry_after_covers_every_refusing_limit(self, limiter: RateLimiter,
                                                     clock: FakeClock) -> None:
        minute, hour = Limit(3, 60, "minute"), Limit(5, 3600, "hour")
        start = clock()
        for offset in (0, 1, 100, 101, 102):
            clock.now = start + offset
            assert limiter.hit("contract:user", [minute, hour]).allowed
        clock.now = start + 103
        decision = limiter.hit("contract:user", [minute, hour])
        # Both refuse; waiting out only the minute (57 s) would be refused again.
        assert (decision.allowed, decision.limit, decision.retry_after) == (False, hour, 3497)
        clock.advance(decision.retry_after - 1)
        assert not limiter.hit("contract:user", [minute, hour]).allowed
        clock.advance(1)
        assert limiter.hit("contract:user", [minute, hour]).allowed

    def test_refused_hits_are_not_recorded(self, limiter: RateLimiter, clock: FakeClock) -> None:
        limit = Limit(2, 60)
        assert limiter.hit("contract:user", [limit]).allowed
        assert limiter.hit("contract:user", [limit]).allowed
        for _ in range(10):
            clock.advance(5)
            assert not limiter.hit("contract:user", [limit]).allowed
        clock.advance(10)  # 60 s after the two allowed hits
        assert limiter.hit("contract:user", [limit]).allowed
        assert limiter.hit("contract:user", [limit]).allowed
        assert not limiter.hit("contract:user", [limit]).allowed

    def test_scopes_are_independent(self, limiter: RateLimiter, clock: FakeClock) -> None:
        limit = Limit(1, 60)
        assert limiter.hit("contract:alice", [limit]).allowed
        assert not limiter.hit("contract:alice", [limit]).allowed
        assert limiter.hit("contract:bob", [limit]).allowed
        assert limiter.hit("contract:alice:other-route", [limit]).allowed

    def test_reset(self, limiter: RateLimiter, clock: FakeClock) -> None:
        limit = Limit(1, 3600)
        assert limiter.hit("contract:alice", [limit]).allowed
        assert limiter.hit("contract:bob", [limit]).allowed
        limiter.reset("contract:alice")
        assert limiter.hit("contract:alice", [limit]).allowed
        assert not limiter.hit("contract:alice", [limit]).allowed
        assert not limiter.hit("contract:bob", [limit]).allowed
        limiter.reset("contract:nobody")  # resetting an unknown scope is fine

    def test_no_limits_always_allows(self, limiter: RateLimiter, clock: FakeClock) -> None:
        for _ in range(50):
            assert limiter.hit("contract:user", []).allowed


class QuotaStoreContract:
    """What every :class:`~hepcore.limits.QuotaStore` must do.

    Provide a fixture ``quotas`` returning an empty store.

    - An unknown scope has zero usage.
    - ``charge`` adds bytes and count when both stay within their limits
      (``None`` = unlimited); a limit is inclusive, so usage may reach it.
    - A charge that would pass a limit raises
      :class:`~hepcore.errors.QuotaExceeded` (with the usage before it and
      the limits) and changes nothing.
    - ``refund`` subtracts but never goes below zero. Scopes are independent.
    """

    @pytest.fixture
    def quotas(self) -> QuotaStore:
        raise NotImplementedError("provide a `quotas` fixture returning an empty store")

    def test_unknown_scope_is_empty(self, quotas: QuotaStore) -> None:
        assert quotas.usage("contract:nobody") == Usage(0, 0)

    def test_charges_accumulate(self, quotas: QuotaStore) -> None:
        assert quotas.charge("contract:a", 100, limit_bytes=1000, limit_count=10) == Usage(100, 1)
        usage = quotas.charge("contract:a", 250, 2, limit_bytes=1000, limit_count=10)
        assert usage == Usage(350, 3)
        assert quotas.usage("contract:a") == Usage(350, 3)

    def test_unlimited_without_limits(self, quotas: QuotaStore) -> None:
        quotas.charge("contract:a", 10**12, 10**6)
        assert quotas.charge("contract:a", 10**12) == Usage(2 * 10**12, 10**6 + 1)

    def test_byte_limit_is_inclusive(self, quotas: QuotaStore) -> None:
        quotas.charge("contract:a", 600, limit_bytes=1000)
        assert quotas.charge("contract:a", 400, limit_bytes=1000) == Usage(1000, 2)
        with pytest.raises(QuotaExceeded) as info:
            quotas.charge("contract:a", 1, limit_bytes=1000)
        assert (info.value.used_bytes, info.value.used_count) == (1000, 2)
        assert info.value.limit_bytes == 1000
        assert quotas.usage("contract:a") == Usage(1000, 2)
        # A charge of zero bytes still fits a full byte quota.
        assert quotas.charge("contract:a", 0, limit_bytes=1000) == Usage(1000, 3)

    def test_over_limit_changes_nothing(self, quotas: QuotaStore) -> None:
        quotas.charge("contract:a", 10, limit_bytes=100, limit_count=5)
        with pytest.raises(QuotaExceeded):
            quotas.charge("contract:a", 500, limit_bytes=100, limit_count=5)
        with pytest.raises(QuotaExceeded):
            quotas.charge("contract:a", 1, 10, limit_bytes=100, limit_count=5)
        assert quotas.usage("contract:a") == Usage(10, 1)
        with pytest.raises(QuotaExceeded):
            quotas.charge("contract:fresh", 101, limit_bytes=100)
        assert quotas.usage("contract:fresh") == Usage(0, 0)

    def test_count_limit(self, quotas: QuotaStore) -> None:
        for i in range(3):
            assert quotas.charge("contract:a", 1, limit_count=3) == Usage(i + 1, i + 1)
        with pytest.raises(QuotaExceeded) as info:
            quotas.charge("contract:a", 1, limit_count=3)
        assert info.value.limit_count == 3
        assert quotas.usage("contract:a") == Usage(3, 3)
        quotas.refund("contract:a", 1)
        assert quotas.charge("contract:a", 1, limit_count=3) == Usage(3, 3)

    def test_refund_never_goes_below_zero(self, quotas: QuotaStore) -> None:
        quotas.charge("contract:a", 100, 2)
        assert quotas.refund("contract:a", 30) == Usage(70, 1)
        assert quotas.refund("contract:a", 1000, 5) == Usage(0, 0)
        assert quotas.usage("contract:a") == Usage(0, 0)
        assert quotas.refund("contract:nobody", 5) == Usage(0, 0)
        assert quotas.charge("contract:a", 5) == Usage(5, 1)

    def test_scopes_are_independent(self, quotas: QuotaStore) -> None:
        quotas.charge("contract:a", 100, limit_bytes=100)
        assert quotas.charge("contract:b", 100, limit_bytes=100) == Usage(100, 1)
        quotas.refund("contract:b", 100)
        assert quotas.usage("contract:a") == Usage(100, 1)


class TokenVerifierContract:
    """What every :class:`~hepcore.tokens.TokenVerifier` must do.

    Provide fixtures ``verifier`` (the verifier under test), ``service``
    (the service name it is asked about), ``good_credential`` (usable),
    ``bad_credential`` (one the verifier owns but must refuse: unknown,
    disabled, revoked, expired or tampered) and ``foreign_credential`` (one
    it does not own, such as another service's key).

    - A good credential gives an :class:`~hepcore.tokens.Actor` with its account.
    - A bad one raises a :class:`~hepcore.errors.CredentialError` subclass.
    - A foreign one gives ``None`` so the next verifier may try.
    """

    @pytest.fixture
    def verifier(self) -> TokenVerifier:
        raise NotImplementedError("provide a `verifier` fixture")

    def test_good_credential_gives_an_actor(self, verifier: TokenVerifier, service: str,
                                            good_credential: str) -> None:
        actor = verifier.verify(service, good_credential)
        assert isinstance(actor, Actor)
        assert isinstance(actor.account, Account)
        again = verifier.verify(service, good_credential)
        assert isinstance(again, Actor)
        assert again.account.id == actor.account.id

    def test_bad_credential_raises_credential_error(self, verifier: TokenVerifier, service: str,
                                                    bad_credential: str) -> None:
        with pytest.raises(CredentialError):
            verifier.verify(service, bad_credential)

    def test_foreign_credential_gives_none(self, verifier: TokenVerifier, service: str,
                                           foreign_credential: str) -> None:
        assert verifier.verify(service, foreign_credential) is None

    def test_good_credential_altered_is_not_accepted(self, verifier: TokenVerifier,
                                                     service: str,
                                                     good_credential: str) -> None:
        altered = good_credential[:-1] + ("A" if good_credential[-1] != "A" else "B")
        result: Any
        try:
            result = verifier.verify(service, altered)
        except CredentialError:
            return
        assert result is None
