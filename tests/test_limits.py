"""The SQLite rate limiter and quota store: the contracts, and limits that hold
across connections and processes sharing one database file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hepcore.db import Database
from hepcore.errors import QuotaExceeded
from hepcore.limits import Limit, SQLiteQuotaStore, SQLiteRateLimiter, Usage
from hepcore.migrations import core
from hepcore.testing import FakeClock
from hepcore.testing.contracts import QuotaStoreContract, RateLimiterContract


def open_db(path: Path) -> Database:
    db = Database(path)
    db.migrate([core])
    return db


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "limits.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = open_db(db_path)
    yield database
    database.close()


class TestSQLiteRateLimiter(RateLimiterContract):
    @pytest.fixture
    def limiter(self, db: Database, clock: FakeClock) -> SQLiteRateLimiter:
        return SQLiteRateLimiter(db, clock)


class TestSQLiteQuotaStore(QuotaStoreContract):
    @pytest.fixture
    def quotas(self, db: Database) -> SQLiteQuotaStore:
        return SQLiteQuotaStore(db)


def test_limit_holds_across_two_database_objects(db_path: Path, clock: FakeClock) -> None:
    first, second = open_db(db_path), open_db(db_path)
    try:
        a, b = SQLiteRateLimiter(first, clock), SQLiteRateLimiter(second, clock)
        limit = Limit(4, 60)
        results = [limiter.hit("shared", [limit]).allowed for limiter in (a, b, a, b, a, b)]
        assert results == [True, True, True, True, False, False]
        b.reset("shared")
        assert a.hit("shared", [limit]).allowed
    finally:
        first.close()
        second.close()


def test_quota_holds_across_two_database_objects(db_path: Path) -> None:
    first, second = open_db(db_path), open_db(db_path)
    try:
        a, b = SQLiteQuotaStore(first), SQLiteQuotaStore(second)
        a.charge("cdn:acc", 600, limit_bytes=1000)
        with pytest.raises(QuotaExceeded):
            b.charge("cdn:acc", 600, limit_bytes=1000)
        assert b.charge("cdn:acc", 400, limit_bytes=1000) == Usage(1000, 2)
        assert a.usage("cdn:acc") == Usage(1000, 2)
    finally:
        first.close()
        second.close()


def test_quota_charge_rolls_back_with_the_callers_transaction(db: Database) -> None:
    quotas = SQLiteQuotaStore(db)
    with pytest.raises(RuntimeError), db.write():
        quotas.charge("cdn:acc", 500, limit_bytes=1000)
        raise RuntimeError("the row this charge pays for failed")
    assert quotas.usage("cdn:acc") == Usage(0, 0)


def test_limit_holds_across_threads(db: Database) -> None:
    limiter = SQLiteRateLimiter(db)
    limit = Limit(30, 3600)
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            ok = limiter.hit("threads", [limit]).allowed
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 30
    assert len(allowed) == 60


WORKER = textwrap.dedent(
    """
    import sys
    from hepcore.db import Database
    from hepcore.limits import Limit, SQLiteRateLimiter
    from hepcore.migrations import core

    db = Database(sys.argv[1])
    db.migrate([core])
    limiter = SQLiteRateLimiter(db)
    sys.stdin.readline()  # start together
    allowed = sum(limiter.hit("procs", [Limit(25, 3600)]).allowed for _ in range(20))
    print(allowed)
    """
)


def test_limit_holds_across_processes(db_path: Path) -> None:
    open_db(db_path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(db_path)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    db = open_db(db_path)
    limiter = SQLiteRateLimiter(db)
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        here = sum(limiter.hit("procs", [Limit(25, 3600)]).allowed for _ in range(20))
        outputs = [proc.communicate(timeout=60) for proc in procs]
        for proc, (out, err) in zip(procs, outputs):
            assert proc.returncode == 0, err
        there = [int(out) for out, _ in outputs]
        # 60 hits from three processes against one limit of 25: exactly 25 get through.
        assert here + sum(there) == 25
        (rows,) = db.one("SELECT count(*) FROM rate_hits WHERE scope = 'procs'")
        assert rows == 25
    finally:
        db.close()


def test_a_full_window_is_counted_exactly_as_hits_expire(db: Database) -> None:
    clock = FakeClock(1000.0)
    limiter = SQLiteRateLimiter(db, clock)
    limit = Limit(500, 100, "busy")
    for _ in range(500):
        assert limiter.hit("busy", [limit]).allowed
        clock.advance(0.125)
    refused = limiter.hit("busy", [limit])  # at +62.5 s: the first hit leaves at +100 s
    assert (refused.allowed, refused.retry_after) == (False, 38)
    clock.advance(37.51)  # the first hit (at +0) has left the window, the second not yet
    assert limiter.hit("busy", [limit]).allowed
    assert not limiter.hit("busy", [limit]).allowed
    clock.advance(0.125)
    assert limiter.hit("busy", [limit]).allowed
    (rows,) = db.one("SELECT count(*) FROM rate_hits WHERE scope = 'busy'")
    (kept,) = db.one("SELECT n FROM rate_counts WHERE scope = 'busy'")
    assert rows == kept == 500
    limiter.reset("busy")
    assert db.one("SELECT n FROM rate_counts WHERE scope = 'busy'") is None
    assert limiter.hit("busy", [limit]).allowed


def test_a_generous_limit_keeps_few_expired_hits(db: Database) -> None:
    """Expired hits are pruned in batches, so the table stays bounded by the
    window's hits, and a limit is still exact across the prune points."""
    clock = FakeClock(0.0)
    limiter = SQLiteRateLimiter(db, clock)
    generous = Limit(1_000_000, 10, "generous")
    for _ in range(1000):
        assert limiter.hit("many", [generous]).allowed
        clock.advance(1)  # ten hits in any window
    (rows,) = db.one("SELECT count(*) FROM rate_hits WHERE scope = 'many'")
    (kept,) = db.one("SELECT n FROM rate_counts WHERE scope = 'many'")
    assert rows == kept <= 10 + SQLiteRateLimiter.PRUNE_EVERY
    tight = Limit(10, 10, "tight")
    clock.advance(0.5)  # the window (990.5, 1000.5] holds the hits at 991..999
    assert [limiter.hit("many", [tight]).allowed for _ in range(3)] == [True, False, False]
    assert db.one("SELECT count(*) FROM rate_hits WHERE scope = 'many' AND ts <= ?",
                  (clock() - 10,))[0] == 0  # at the limit, expired hits were pruned


def test_a_shorter_limit_is_checked_inside_the_longer_window(db: Database) -> None:
    clock = FakeClock(0.0)
    limiter = SQLiteRateLimiter(db, clock)
    minute, day = Limit(3, 60, "minute"), Limit(5, 86400, "day")
    for _ in range(3):
        assert limiter.hit("two", [minute, day]).allowed
    decision = limiter.hit("two", [minute, day])
    assert (decision.allowed, decision.limit, decision.retry_after) == (False, minute, 60)
    clock.advance(61)
    assert limiter.hit("two", [minute, day]).allowed
    assert limiter.hit("two", [minute, day]).allowed
    decision = limiter.hit("two", [minute, day])
    assert (decision.allowed, decision.limit) == (False, day)
    assert decision.retry_after == 86400 - 61


def test_the_count_follows_rows_written_by_anyone(db: Database) -> None:
    """A worker running older code, or an operator, may write rate_hits directly."""
    clock = FakeClock(0.0)
    limiter = SQLiteRateLimiter(db, clock)
    day = Limit(5, 86400, "day")
    with db.write() as conn:
        for i in range(3):
            conn.execute("INSERT INTO rate_hits (scope, ts) VALUES ('other', ?)", (i,))
    clock.advance(10)
    assert [limiter.hit("other", [day]).allowed for _ in range(3)] == [True, True, False]
    with db.write() as conn:
        conn.execute("DELETE FROM rate_hits WHERE scope = 'other' AND ts < 2")
    assert [limiter.hit("other", [day]).allowed for _ in range(3)] == [True, True, False]


def test_migration_counts_the_hits_a_database_already_has(tmp_path: Path) -> None:
    """A database from before the count triggers: its rows are counted on upgrade."""
    path = tmp_path / "old.db"
    db = open_db(path)
    with db.write() as conn:  # back to the state before m003
        conn.execute("DROP TRIGGER rate_hits_counted")
        conn.execute("DROP TRIGGER rate_hits_uncounted")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_rate_count_triggers'")
        conn.execute("INSERT INTO rate_hits (scope, ts) VALUES ('s', 1), ('s', 2), ('t', 3)")
        conn.execute("INSERT INTO rate_counts (scope, n) VALUES ('s', 7)")  # drifted
    db.close()
    db = open_db(path)
    try:
        assert sorted(tuple(r) for r in db.all("SELECT scope, n FROM rate_counts")) == [
            ("s", 2), ("t", 1)]
    finally:
        db.close()
