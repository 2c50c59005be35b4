"""The SQLite layer: WAL on every connection, joined write transactions that
roll back as a whole, durable commits unless asked otherwise, and migrations
that apply exactly once, even when several processes start together."""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils
from sqlite_utils.migrations import Migrations

from hepcore.db import BUSY_TIMEOUT_MS, Database, WriteWouldBlock
from hepcore.migrations import core
from hepcore_uploader.migrations import uploader


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hepcore.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database(db_path)
    database.execute("CREATE TABLE things (name TEXT NOT NULL)")
    yield database
    database.close()


def names(db: Database) -> list[str]:
    return sorted(r[0] for r in db.all("SELECT name FROM things"))


def pragmas(conn: sqlite3.Connection) -> tuple[str, int, int]:
    return (conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("PRAGMA synchronous").fetchone()[0],
            conn.execute("PRAGMA busy_timeout").fetchone()[0])


# --- connections ---------------------------------------------------------------


def test_every_connection_uses_wal_and_synchronous_normal(db: Database, db_path: Path) -> None:
    expected = ("wal", 1, BUSY_TIMEOUT_MS)
    assert pragmas(db.conn) == expected
    seen: dict[str, object] = {}

    def on_thread() -> None:
        seen["conn"] = db.conn
        seen["pragmas"] = pragmas(db.conn)

    thread = threading.Thread(target=on_thread)
    thread.start()
    thread.join()
    assert seen["conn"] is not db.conn  # a connection per thread
    assert seen["pragmas"] == expected
    other = Database(db_path)
    try:
        assert pragmas(other.conn) == expected
    finally:
        other.close()
    # WAL is recorded in the file itself, so other tools open it in WAL mode too.
    plain = sqlite3.connect(db_path)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        plain.close()


def test_close_closes_every_threads_connection(db_path: Path) -> None:
    database = Database(db_path)
    conns = [database.conn]
    thread = threading.Thread(target=lambda: conns.append(database.conn))
    thread.start()
    thread.join()
    database.close()
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    assert database.one("SELECT 1")[0] == 1  # reopens on next use
    database.close()


# --- write transactions --------------------------------------------------------


def test_nested_write_joins_the_outer_transaction(db: Database, db_path: Path) -> None:
    observer = Database(db_path)
    try:
        with db.write() as conn:
            conn.execute("INSERT INTO things VALUES ('outer')")
            with db.write() as inner:
                assert inner is conn
                inner.execute("INSERT INTO things VALUES ('inner')")
            assert db.in_transaction
            # The inner block ended, but nothing is committed until the outer one ends.
            assert names(observer) == []
        assert not db.in_transaction
        assert names(observer) == ["inner", "outer"]
    finally:
        observer.close()


def test_error_in_nested_write_rolls_back_everything(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO things VALUES ('outer')")
        with db.write() as inner:
            inner.execute("INSERT INTO things VALUES ('inner')")
            raise RuntimeError("inner failure")
    assert names(db) == []
    assert not db.in_transaction
    with db.write() as conn:
        conn.execute("INSERT INTO things VALUES ('after')")
    assert names(db) == ["after"]


def test_error_after_a_nested_write_also_undoes_it(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as conn:
        with db.write() as inner:
            inner.execute("INSERT INTO things VALUES ('inner')")
        conn.execute("INSERT INTO things VALUES ('outer')")
        raise RuntimeError("outer failure")
    assert names(db) == []


def test_error_that_ends_the_transaction_itself_propagates(db: Database) -> None:
    db.execute("CREATE TRIGGER veto BEFORE INSERT ON things WHEN NEW.name = 'veto'"
               " BEGIN SELECT RAISE(ROLLBACK, 'vetoed'); END")
    with pytest.raises(sqlite3.IntegrityError, match="vetoed"), db.write() as conn:
        conn.execute("INSERT INTO things VALUES ('first')")
        conn.execute("INSERT INTO things VALUES ('veto')")
    assert names(db) == []
    with db.write() as conn:
        conn.execute("INSERT INTO things VALUES ('next')")
    assert names(db) == ["next"]


def test_failed_commit_rolls_back_and_keeps_the_connection_usable(db: Database) -> None:
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE child (parent_id INTEGER REFERENCES parent(id)"
               " DEFERRABLE INITIALLY DEFERRED)")
    used: list[sqlite3.Connection] = []
    with pytest.raises(sqlite3.IntegrityError), db.write() as conn:
        used.append(conn)
        conn.execute("INSERT INTO things VALUES ('lost')")
        conn.execute("INSERT INTO child VALUES (42)")  # checked only at COMMIT
    assert not used[0].in_transaction and not db.in_transaction
    assert names(db) == []
    with db.write() as conn:
        conn.execute("INSERT INTO things VALUES ('next')")
    assert names(db) == ["next"]


def test_reads_inside_a_write_see_its_changes_and_others_do_not(db: Database) -> None:
    seen: list[list[str]] = []
    with db.write() as conn:
        conn.execute("INSERT INTO things VALUES ('pending')")
        assert names(db) == ["pending"]  # db.all runs on the transaction's connection
        assert pragmas(db.conn) == ("wal", 2, BUSY_TIMEOUT_MS)  # the writer, durable
        thread = threading.Thread(target=lambda: seen.append(names(db)))
        thread.start()
        thread.join()
    assert seen == [[]]  # another thread reads what is committed
    assert names(db) == ["pending"]


@contextlib.contextmanager
def another_thread_writing(db: Database, name: str) -> Iterator[None]:
    """For the block, another thread holds a write transaction in which it has
    inserted ``name``; it commits when the block ends."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.write() as conn:
            conn.execute("INSERT INTO things VALUES (?)", (name,))
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join()


def test_single_row_reads_never_wait_for_or_see_another_threads_write(db: Database) -> None:
    db.write_one("INSERT INTO things VALUES ('committed')", durable=False)
    writer = db._last_writer
    assert writer is not None and writer is not db.conn
    on_writer: list[str] = []
    writer.set_trace_callback(on_writer.append)
    # Free, the writer that committed last answers (its page cache is warm).
    assert db.one("SELECT count(*) FROM things")[0] == 1
    assert on_writer == ["SELECT count(*) FROM things"]

    counts: list[int] = []
    with another_thread_writing(db, "pending"):
        # Held by another thread: answered at once, from committed data only.
        reader = threading.Thread(target=lambda: counts.append(
            db.one("SELECT count(*) FROM things")[0]))
        reader.start()
        reader.join(5)
        with db.no_wait():
            counts.append(db.one("SELECT count(*) FROM things")[0])
    assert counts == [1, 1]
    assert db.one("SELECT count(*) FROM things")[0] == 2


class _BusyConnection(sqlite3.Connection):
    """A connection that finds the database locked, as a no-wait connection does
    while another process holds an exclusive lock (which cannot be staged on a
    database this process already has open)."""

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
        raise sqlite3.OperationalError("database is locked")


def test_a_single_row_read_the_writer_finds_busy_runs_on_the_reader(
        db: Database, db_path: Path) -> None:
    db.write_one("INSERT INTO things VALUES ('committed')", durable=False)
    busy = sqlite3.connect(db_path, factory=_BusyConnection, check_same_thread=False)
    db._last_writer = busy  # the connection that committed last
    try:
        assert db.one("SELECT name FROM things")[0] == "committed"
        # Only a busy database is retried elsewhere: other errors are the caller's.
        db._last_writer = sqlite3.connect(db_path, check_same_thread=False)
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            db.one("SELECT name FROM absent")
    finally:
        busy.close()
        db._last_writer.close()
    assert not db._write_lock.locked()


def test_no_wait_refuses_at_once_when_a_thread_holds_the_write(db: Database) -> None:
    with another_thread_writing(db, "held"), db.no_wait():
        with pytest.raises(WriteWouldBlock), db.write(durable=False):
            pass
        with pytest.raises(WriteWouldBlock):
            db.write_one("INSERT INTO things VALUES ('refused')", durable=False)
    with db.no_wait():
        assert db.write_one("INSERT INTO things VALUES ('later')", durable=False) == 1
    assert names(db) == ["held", "later"]


def test_no_wait_refuses_at_once_when_another_process_holds_the_write(
        db: Database, db_path: Path) -> None:
    """Another Database object has its own connections and mutex, as another
    worker process does: only SQLite's lock stands between them."""
    other = Database(db_path)
    try:
        with other.write() as conn:
            conn.execute("INSERT INTO things VALUES ('other')")
            started = time.monotonic()
            with db.no_wait():
                with pytest.raises(WriteWouldBlock), db.write(durable=False):
                    pass
                with pytest.raises(WriteWouldBlock):
                    db.write_one("INSERT INTO things VALUES ('refused')", durable=False)
            assert time.monotonic() - started < 1  # not after the busy timeout
            assert not db.in_transaction
        with db.no_wait(), db.write(durable=False) as conn:  # usable again once the lock is free
            conn.execute("INSERT INTO things VALUES ('mine')")
    finally:
        other.close()
    assert names(db) == ["mine", "other"]


# --- durability ------------------------------------------------------------------
# test_durability.py watches the disk syncs themselves; these check the rules.


def test_durable_writes_commit_with_full_sync_and_counters_with_normal(db: Database) -> None:
    with db.write() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        conn.execute("INSERT INTO things VALUES ('kept')")
    with db.write(durable=False) as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
        conn.execute("INSERT INTO things VALUES ('counted')")
    with db.write() as conn:  # and back
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert names(db) == ["counted", "kept"]


def test_a_durable_write_cannot_join_a_non_durable_one(db: Database) -> None:
    with pytest.raises(RuntimeError, match="durable"), db.write(durable=False) as conn:
        conn.execute("INSERT INTO things VALUES ('lost')")
        db.write_one("INSERT INTO things VALUES ('also lost')")
    with db.write() as conn:  # the other way round joins
        conn.execute("INSERT INTO things VALUES ('outer')")
        db.write_one("INSERT INTO things VALUES ('inner')", durable=False)
        with db.write(durable=False) as inner:
            assert inner is conn
    assert names(db) == ["inner", "outer"]


def test_no_wait_refuses_a_durable_write_even_when_nobody_holds_the_lock(db: Database) -> None:
    """A durable commit waits for the disk, which code on an event loop must not do."""
    with db.no_wait():
        with pytest.raises(WriteWouldBlock), db.write():
            pass
        with pytest.raises(WriteWouldBlock):
            db.write_one("INSERT INTO things VALUES ('refused')")
        assert not db.in_transaction
        assert db.write_one("INSERT INTO things VALUES ('counted')", durable=False) == 1
    assert names(db) == ["counted"]


def test_writers_on_other_threads_wait_for_the_transaction(db: Database) -> None:
    order: list[str] = []
    started = threading.Event()

    def other_writer() -> None:
        started.set()
        with db.write() as conn:
            order.append("other")
            conn.execute("INSERT INTO things VALUES ('other')")

    with db.write() as conn:
        conn.execute("INSERT INTO things VALUES ('first')")
        thread = threading.Thread(target=other_writer)
        thread.start()
        started.wait()
        time.sleep(0.2)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "other"]
    assert names(db) == ["first", "other"]


# --- migrations -----------------------------------------------------------------


def applied(db: Database) -> list[tuple[str, str]]:
    return [(r["migration_set"], r["name"]) for r in db.all(
        "SELECT migration_set, name FROM _sqlite_migrations ORDER BY id")]


def test_migrations_apply_once_and_are_idempotent(db_path: Path) -> None:
    database = Database(db_path)
    try:
        database.migrate([core, uploader])
        first = applied(database)
        assert ("hepcore", "m001_accounts_and_keys") in first
        assert ("hepcore_uploader", "m001_items") in first
        assert len(first) == len(set(first))
        database.execute("INSERT INTO counters (name, value) VALUES ('kept', 7)")
        database.migrate([core, uploader])
        database.migrate([core])
        assert applied(database) == first
        assert database.one("SELECT value FROM counters WHERE name = 'kept'")[0] == 7
    finally:
        database.close()


def test_new_migrations_in_a_set_apply_later(db_path: Path) -> None:
    calls: list[str] = []
    extra = Migrations("test_extra")

    @extra()
    def m001_create(db: sqlite_utils.Database) -> None:
        calls.append("m001")
        db.execute("CREATE TABLE extra (x INTEGER)")

    database = Database(db_path)
    try:
        database.migrate([extra])

        @extra()
        def m002_column(db: sqlite_utils.Database) -> None:
            calls.append("m002")
            db.execute("ALTER TABLE extra ADD COLUMN y TEXT")

        database.migrate([extra])
        database.migrate([extra])
        assert calls == ["m001", "m002"]
        assert applied(database) == [("test_extra", "m001_create"), ("test_extra", "m002_column")]
    finally:
        database.close()


slow = Migrations("test_slow")


@slow()
def m001_slow(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE slow_log (pid INTEGER)")
    time.sleep(0.3)  # keep the other process waiting at the same moment
    import os

    db.execute("INSERT INTO slow_log VALUES (?)", [os.getpid()])


def _migrate_in_child(path: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    database = Database(path)
    barrier.wait(timeout=30)
    database.migrate([core, uploader, slow])
    database.close()


def test_two_processes_migrating_at_once_both_succeed(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_migrate_in_child, args=(str(db_path), barrier))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0, 0]
    database = Database(db_path)
    try:
        rows = applied(database)
        assert len(rows) == len(set(rows))
        assert ("test_slow", "m001_slow") in rows
        assert ("hepcore", "m001_accounts_and_keys") in rows
        (count,) = database.one("SELECT count(*) FROM slow_log")
        assert count == 1
    finally:
        database.close()
