"""The pending-object journal: stored bytes whose row is not committed yet.

An upload commits its bytes to storage (G3: temporary file, fsync, atomic
rename) and then commits the row that references them. A process killed
between the two would leave bytes that no row references and nobody was
told about. So a service commits through :meth:`PendingObjects.commit`,
which records the key *before* the bytes land, and settles the record in
the very transaction that commits the row
(:meth:`PendingObjects.settle`). The row and the end of the record commit
together or not at all, so a record that outlives its request marks bytes
that were never acknowledged: :meth:`PendingObjects.sweep` (at start-up and
every few minutes) deletes them.

Deletes use the same journal the other way round: the transaction that
drops the last row referencing some bytes records them
(:meth:`PendingObjects.condemn`), and they are deleted after the commit
(:meth:`PendingObjects.discard`), or by the next sweep if the process dies
first.

The sweep claims a record (marks it, in a transaction) before it deletes
the bytes, and removes the record only once they are gone. ``settle`` fails
on a claimed or missing record, so a write that is merely slow (past the
sweep's age) fails cleanly instead of committing a row whose bytes were
swept; and a sweep that dies half-way leaves its claims for the next one.

The record is committed without a log sync of its own (``durable=False``):
it survives the death of the process at once, and a power cut from the
row's commit on, which syncs it with the row. So an upload still costs one
log sync. A power cut in the instant between the byte commit and the row
commit can lose the record; ``hepcore check`` then reports the object as an
orphan and ``check --repair`` removes it.
"""

from __future__ import annotations

import logging
import sqlite3

from .clock import Clock
from .db import Database
from .errors import StorageError
from .storage import ObjectWriter, Storage, StoredObject, check_key

log = logging.getLogger("hepcore.pending")

SWEEP_AGE = 3600.0
"""Seconds after which a pending record is taken for abandoned (like partial writes)."""
# ``created_at`` of records no upload may settle: bytes whose row is gone
# (open to the next sweep) and bytes a sweep is deleting.
CONDEMNED = 0.0
CLAIMED = -1.0


class PendingSwept(StorageError):
    """The record was swept before the row committed: the bytes may be gone."""


class PendingRecordFailed(StorageError):
    """The database would not take the record, so the bytes were not committed."""


class PendingObjects:
    """The journal of one host (its database, its storage backend)."""

    def __init__(self, db: Database, storage: Storage, clock: Clock) -> None:
        self._db = db
        self._storage = storage
        self._clock = clock

    def commit(self, writer: ObjectWriter, key: str) -> StoredObject:
        """Record ``key`` as pending, then commit ``writer``'s bytes under it.

        The record is committed before the bytes are visible. If the commit
        fails the record goes too and :class:`~hepcore.errors.StorageError`
        propagates (also when ``key`` is already pending); when the database
        refuses the record, that is :class:`PendingRecordFailed`, and nothing
        was written. The caller must
        then :meth:`settle` the key in the transaction that commits its row,
        or :meth:`discard` it.
        """
        check_key(key)
        try:
            self._db.write_one("INSERT INTO pending_objects (key, created_at) VALUES (?, ?)",
                               (key, self._clock()), durable=False)
        except sqlite3.IntegrityError:
            writer.abort()
            raise StorageError(f"object {key!r} is already being written") from None
        except sqlite3.Error as exc:
            writer.abort()
            raise PendingRecordFailed(f"cannot record the pending object: {exc}") from exc
        try:
            return writer.commit(key)
        except BaseException:
            self._forget(key)
            raise

    def settle(self, key: str) -> None:
        """End ``key``'s record; call inside the write transaction that commits
        the row referencing it (``with db.write(): ...``).

        Raises :class:`PendingSwept` when the sweep took the record meanwhile:
        the caller must let its transaction roll back and fail the upload.
        """
        if not self._db.in_transaction:
            raise RuntimeError("settle() belongs inside the row's write transaction")
        if self._db.execute("DELETE FROM pending_objects WHERE key = ? AND created_at > ?",
                            (key, CONDEMNED)).rowcount != 1:
            raise PendingSwept(f"pending object {key!r} was swept before its row committed")

    def condemn(self, key: str) -> None:
        """Inside the transaction that drops the last row referencing ``key``:
        record the bytes for deletion, at once open to the sweep. Call
        :meth:`discard` after the commit."""
        if not self._db.in_transaction:
            raise RuntimeError("condemn() belongs inside the row's write transaction")
        self._db.execute("INSERT OR REPLACE INTO pending_objects (key, created_at)"
                         " VALUES (?, ?)", (key, CONDEMNED))

    def discard(self, key: str) -> None:
        """The row will not be committed, or is gone (:meth:`condemn`): delete
        the bytes, then the record.

        Never raises: what cannot be removed now stays recorded, and the
        sweep removes it later.
        """
        try:
            self._storage.delete(key)
        except OSError:
            log.exception("could not delete the bytes of %s;"
                          " the sweep will retry", key)
            return
        self._forget(key)

    def sweep(self, older_than: float = SWEEP_AGE) -> int:
        """Delete the bytes of records older than ``older_than`` seconds, and the
        records; return how many objects were removed."""
        cutoff = self._clock() - older_than
        if self._db.one("SELECT 1 FROM pending_objects WHERE created_at < ? LIMIT 1",
                        (cutoff,)) is None:
            return 0  # the usual case: no write, so no log sync at every start-up
        with self._db.write() as conn:
            conn.execute("UPDATE pending_objects SET created_at = ? WHERE created_at < ?",
                         (CLAIMED, cutoff))
            keys = [row[0] for row in conn.execute(
                "SELECT key FROM pending_objects WHERE created_at = ?", (CLAIMED,))]
        removed = 0
        for key in keys:
            try:
                removed += self._storage.delete(key)
            except OSError:  # the claim stays: the next sweep tries again
                log.exception("could not sweep the unrecorded object %s", key)
                continue
            self._forget(key)
        return removed

    def keys(self) -> list[str]:
        """Every pending key (for ``hepcore check``)."""
        return [row[0] for row in self._db.all("SELECT key FROM pending_objects ORDER BY key")]

    def _forget(self, key: str) -> None:
        try:
            self._db.write_one("DELETE FROM pending_objects WHERE key = ?", (key,),
                               durable=False)
        except sqlite3.Error:
            log.exception("could not clear the pending record of %s", key)
