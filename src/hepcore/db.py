"""SQLite access: a connection per thread, WAL, short write transactions, migrations.

Every connection runs in WAL mode with ``synchronous=NORMAL`` and a busy
timeout, so several worker processes on one machine share one database file.
Calls made inside :meth:`Database.write` on the same thread share its
transaction, which lets the quota store and a service's row insert commit
together.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

BUSY_TIMEOUT_MS = 10_000


class Database:
    """A SQLite database file shared by threads and processes.

    ``conn`` is this thread's connection (opened on first use). Use
    :meth:`write` for every change: it opens ``BEGIN IMMEDIATE`` (so writers
    queue instead of failing on upgrade) and commits or rolls back; nested
    calls join the outer transaction.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._all.append(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.depth = 0
        return conn

    @property
    def utils(self) -> sqlite_utils.Database:
        """A sqlite-utils view of this thread's connection (for admin paths, not hot ones)."""
        db = getattr(self._local, "utils", None)
        if db is None:
            db = self._local.utils = sqlite_utils.Database(self.conn)
        return db

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection; nested calls join it."""
        conn = self.conn
        depth = self._local.depth
        if depth:
            self._local.depth = depth + 1
            try:
                yield conn
            finally:
                self._local.depth = depth
            return
        # Threads of this process queue on a mutex instead of SQLite's busy
        # handler, which sleeps in steps of milliseconds; other processes still
        # wait through busy_timeout.
        with self._write_lock:
            yield from self._transaction(conn)

    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            self._local.depth = 0
            # An error such as RAISE(ROLLBACK) may already have ended the
            # transaction; a second ROLLBACK would mask the original error.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._local.depth = 0
        try:
            conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (deferred constraint) leaves the transaction open;
            # end it so this thread's connection stays usable.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @property
    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

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

    def close(self) -> None:
        """Close every connection this object opened (on any thread)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
