"""SQLite access: a reading connection per thread, one writing connection per
process, WAL, short write transactions, migrations.

Every connection runs in WAL mode with a busy timeout, so several worker
processes on one machine share one database file. Write transactions are
durable by default: they commit with ``synchronous=FULL`` (the WAL is synced
before the commit returns), so a row that acknowledges an upload survives a
power cut, as its bytes do. Writes whose loss is harmless (view counts,
usage counters, rate-limit hits) ask for ``durable=False`` and commit with
``synchronous=NORMAL``: they survive a crash of the process, not of the
machine, and cost no disk sync.

Calls made inside :meth:`Database.write` on the same thread share its
transaction, which lets the quota store and a service's row insert commit
together.

Why one writing connection: SQLite drops a connection's whole page cache
when another connection has committed since its last read. With a
connection per thread every write transaction would start by reading its
pages again (one ``pread`` each); the process's single writer keeps its
cache, because writes in this process all go through it. For the same
reason :meth:`Database.one`, the single-row lookups on every request's
path, runs on that writer while no thread is writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT_MS = 10_000
NORMAL, FULL = 1, 2  # PRAGMA synchronous levels


class WriteWouldBlock(BaseException):
    """Raised by :meth:`Database.write` under :meth:`Database.no_wait` when the
    write would have to wait for another writer. A ``BaseException``, so that
    handlers' ``except Exception`` clauses let it through to the caller that
    asked for no waiting (the ASGI shell, which then runs the handler again in
    a worker thread)."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF == sqlite3.SQLITE_BUSY


def create_private(path: str | os.PathLike[str]) -> None:
    """Create the file ``path`` readable by its owner only, unless it exists.

    For a database before SQLite opens it: SQLite gives its ``-wal`` and
    ``-shm`` files the database file's mode, and the database holds private
    pastes, sessions and webhook signing secrets. Any other failure is left
    for SQLite to report as it opens the file.
    """
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class Database:
    """A SQLite database file shared by threads and processes.

    ``conn`` is the connection this thread should use now: inside
    :meth:`write`, the process's writing connection (which this thread holds
    alone until the transaction ends); otherwise this thread's reading
    connection, opened on first use. Use :meth:`write` for every change: it
    opens ``BEGIN IMMEDIATE`` (so writers queue instead of failing on upgrade)
    and commits or rolls back; nested calls join the outer transaction.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._quick_writer: sqlite3.Connection | None = None
        self._last_writer: sqlite3.Connection | None = None
        self._synchronous: dict[sqlite3.Connection, int] = {}

    def _connect(self, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
        create_private(self.path)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        conn.execute("PRAGMA foreign_keys=ON")
        # Sorts, GROUP BY and the webhook claim's windows build temporary
        # b-trees; file-backed ones cost about 0.1 ms each to set up here (the
        # claim's statement with 2,000 rows queued: 0.74 ms against 0.04 ms in
        # memory), and they hold only rows a statement has already selected.
        conn.execute("PRAGMA temp_store=MEMORY")
        with self._lock:
            self._all.append(conn)
            self._synchronous[conn] = NORMAL
        return conn

    def _synchronous_level(self, conn: sqlite3.Connection, durable: bool) -> None:
        """Set a writing connection's ``synchronous`` for the transaction about to
        begin (SQLite refuses the change inside one), only when it differs."""
        level = FULL if durable else NORMAL
        if self._synchronous.get(conn) != level:
            conn.execute(f"PRAGMA synchronous={level}")
            self._synchronous[conn] = level

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "active", None)
        if conn is None:
            conn = self._local.conn = self._local.active = self._connect()
            self._local.depth = 0
        return conn

    def _writer_for(self, no_wait: bool) -> sqlite3.Connection:
        """The process's writing connection (call with the write mutex held).
        ``no_wait``: its twin with no busy timeout, which fails at once when
        another process holds SQLite's write lock."""
        if no_wait:
            if self._quick_writer is None:
                self._quick_writer = self._connect(busy_timeout_ms=0)
            conn = self._last_writer = self._quick_writer
            return conn
        if self._writer is None:
            self._writer = self._connect()
        conn = self._last_writer = self._writer
        return conn

    def write(self, *, durable: bool = True) -> _Write:
        """A write transaction on the process's writing connection, held by this
        thread until it ends; nested calls join it, and ``conn`` (so
        :meth:`one`, :meth:`all`, :meth:`execute`) is that connection meanwhile.

        ``durable``: the commit is on disk when the block ends (see the module
        docstring). ``durable=False`` is for writes whose loss in a power cut is
        harmless. A non-durable call may join a durable transaction; a durable
        one may not join a non-durable transaction (``RuntimeError``). Under
        :meth:`no_wait` a durable write raises :class:`WriteWouldBlock`: it
        waits for the disk, which an event loop must not do.

        Threads of this process queue on a mutex instead of SQLite's busy
        handler, which sleeps in steps of milliseconds; other processes still
        wait through busy_timeout. Use as ``with db.write() as conn:``.
        """
        return _Write(self, durable)

    def write_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = (), *,
                  durable: bool = True) -> int:
        """Run one statement (without ``RETURNING``) as a write transaction of its
        own, queued like :meth:`write`, or in the open one; its row count.

        Same effect as ``with db.write(durable=...) as conn: conn.execute(sql,
        params)``, in one statement instead of three: SQLite makes a lone
        statement a transaction, and takes its write lock before reading anything.
        """
        local = self._local
        conn = self.conn
        if local.depth:
            _check_join(local, durable)
            return conn.execute(sql, params).rowcount
        no_wait = getattr(local, "no_wait", False)
        if no_wait and durable:
            raise WriteWouldBlock()
        if not self._write_lock.acquire(blocking=not no_wait):
            raise WriteWouldBlock()
        try:
            try:
                writer = self._writer_for(no_wait)
                self._synchronous_level(writer, durable)
                return writer.execute(sql, params).rowcount
            except sqlite3.OperationalError as exc:
                if no_wait and _is_busy(exc):
                    raise WriteWouldBlock() from None
                raise
        finally:
            self._write_lock.release()

    def no_wait(self) -> _NoWait:
        """Within the block, on this thread, :meth:`write` raises
        :class:`WriteWouldBlock` instead of waiting for another writer (a
        thread of this process or another process); for code on an event loop."""
        return _NoWait(self._local)

    @property
    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        """The first row of a query, or ``None``.

        Outside a transaction it runs on the writing connection that committed
        last, when no other thread holds it: that connection's page cache is
        warm, while this thread's reader lost its cache to the last commit
        (see the module docstring). Otherwise, or when that connection finds
        the database busy (the no-wait writer does not wait), on :attr:`conn`.
        """
        local = self._local
        if not getattr(local, "depth", 0):
            writer = self._last_writer
            if writer is not None and self._write_lock.acquire(blocking=False):
                try:
                    row: sqlite3.Row | None = writer.execute(sql, params).fetchone()
                    return row
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                finally:
                    self._write_lock.release()
        found: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return found

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def migrate(self, migration_sets: Iterable[Migrations]) -> None:
        """Apply pending migrations of every set, holding a file lock so that
        worker processes starting together apply each migration once."""
        lock_path = self.path.with_suffix(self.path.suffix + ".migrate.lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                db = sqlite_utils.Database(self.conn)
                for migrations in migration_sets:
                    migrations.apply(db)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def connections(self) -> list[sqlite3.Connection]:
        """Every connection open now, readers and writers (for tracing and
        diagnostics: statements of one request may run on two of them)."""
        self.conn  # noqa: B018 - this thread's reader counts too
        with self._lock:
            return list(self._all)

    def close(self) -> None:
        """Close every connection this object opened (on any thread)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
        self._writer = self._quick_writer = self._last_writer = None
        self._synchronous = {}


def next_creation_time(conn: sqlite3.Connection, table: str, account_id: str,
                       now: float) -> float:
    """A creation time for a new row of ``table`` (a trusted name with
    ``account_id`` and ``created_at`` columns, indexed together): ``now`` in whole
    milliseconds, or one millisecond past the account's latest row when that is
    not earlier. Unique, increasing creation times keep ``before`` cursors from
    skipping rows; one index seek however fast an account uploads. Call it
    inside the write transaction that inserts."""
    created = round(now, 3)
    (latest,) = conn.execute(f"SELECT MAX(created_at) FROM {table} WHERE account_id = ?",
                             (account_id,)).fetchone()
    if latest is not None and latest >= created:
        created = round(latest + 0.001, 3)
    return created


def _check_join(local: threading.local, durable: bool) -> None:
    if durable and not local.durable:
        raise RuntimeError("a durable write cannot join a non-durable transaction")


class _NoWait:
    """The context manager of :meth:`Database.no_wait` (a class, as :class:`_Write`:
    the ASGI shell enters one for every inline request)."""

    __slots__ = ("_before", "_local")

    def __init__(self, local: threading.local) -> None:
        self._local = local

    def __enter__(self) -> None:
        self._before = getattr(self._local, "no_wait", False)
        self._local.no_wait = True

    def __exit__(self, *exc: object) -> None:
        self._local.no_wait = self._before


class _Write:
    """The context manager of :meth:`Database.write` (a class, not a generator:
    this is on every request's path, and a generator-based one costs more)."""

    __slots__ = ("_conn", "_db", "_depth", "_durable")

    def __init__(self, db: Database, durable: bool) -> None:
        self._db = db
        self._durable = durable

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db.conn  # noqa: B018 - opens this thread's state on first use
        local = db._local
        depth = self._depth = local.depth
        if depth:  # join the open transaction
            _check_join(local, self._durable)
            local.depth = depth + 1
            active: sqlite3.Connection = local.active
            return active
        no_wait = getattr(local, "no_wait", False)
        if no_wait and self._durable:
            raise WriteWouldBlock()
        if not db._write_lock.acquire(blocking=not no_wait):
            raise WriteWouldBlock()
        try:
            conn = self._conn = db._writer_for(no_wait)
            db._synchronous_level(conn, self._durable)
            local.durable = self._durable
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            db._write_lock.release()
            if no_wait and _is_busy(exc):
                raise WriteWouldBlock() from None
            raise
        except BaseException:
            db._write_lock.release()
            raise
        local.depth = 1
        local.active = conn
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        db = self._db
        local = db._local
        local.depth = self._depth
        if self._depth:
            return
        local.active = local.conn
        conn = self._conn
        try:
            if exc_type is not None:
                # An error such as RAISE(ROLLBACK) may already have ended the
                # transaction; a second ROLLBACK would mask the original error.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                return
            try:
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (deferred constraint) leaves the transaction open;
                # end it so the writing connection stays usable.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            db._write_lock.release()
