"""Object storage: streaming, size-capped, hashed, durable writes and ranged reads.

Objects are addressed by *keys* such as ``uploader/hdlOo67BI.png``: relative
``/``-separated names of safe characters. No local path ever leaves a
backend, so an S3-compatible store can implement the same interface.
Backends raise the :class:`OSError` family (``FileNotFoundError`` for a
missing key, :class:`~hepcore.errors.StorageError` for failures).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Self

from .errors import BodyTooLarge, StorageError

KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
HEAD_BYTES = 4096
"""How many leading bytes a writer keeps for type sniffing."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise :class:`ValueError`."""
    if len(key) > 1024 or not KEY_RE.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


@dataclass(frozen=True)
class StoredObject:
    """What a committed write produced. ``sha256`` is ``None`` when the writer
    was told to hash on demand (:meth:`ObjectWriter.hash_on_demand`) and
    nobody asked for the digest before the commit."""

    key: str
    size: int
    sha256: str | None


class ObjectWriter(ABC):
    """One object being written.

    ``write`` streams bytes in, counting them and hashing them as they
    come; passing ``max_size`` aborts the writer and raises
    :class:`~hepcore.errors.BodyTooLarge` at once. ``commit(key)`` makes the
    object durable and visible under ``key`` atomically (never a partial
    object); ``abort()`` discards it.
    Used as a context manager, a writer that was not committed is aborted.

    A backend that can read back what it has written so far implements
    :meth:`_read_back`; its writers can then skip hashing while streaming
    (:meth:`hash_on_demand`).
    """

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self.size = 0
        self._hash: hashlib._Hash | None = hashlib.sha256()
        self._head = bytearray()
        self.committed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.committed or self.aborted:
            raise StorageError("writer already finished")
        n = len(data)
        if not n:
            return
        if self.max_size is not None and self.size + n > self.max_size:
            # Nothing of an oversized object may survive, nor be committed truncated.
            self.abort()
            raise BodyTooLarge(self.max_size)
        self._write_hashed(data)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self.size += n

    def write_all(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def hash_on_demand(self) -> None:
        """Do not hash while writing: :attr:`sha256` reads the bytes back when it is
        first asked for, before the commit. For services that need no digest
        unless a plugin asks (SHA-256 costs as much CPU as receiving the body).
        Call before the first write; a backend without :meth:`_read_back`
        keeps hashing as it writes."""
        if self.size == 0 and type(self)._read_back is not ObjectWriter._read_back:
            self._hash = None

    def _read_back(self) -> Iterator[bytes]:
        """The bytes written so far, in order (all writes settled). Optional."""
        raise NotImplementedError

    def _write_hashed(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` and add it to the hash (if hashing while writing). A
        backend may do both later, in order, if :meth:`_settle` waits for them."""
        self._write(data)
        if self._hash is not None:
            self._hash.update(data)

    def _settle(self) -> None:
        """Wait for writes still in flight (a write-behind backend); raises their error."""

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of the bytes written so far. For a writer hashing on
        demand, the first call reads them back (so it must come before the
        commit) and later writes are hashed as they come."""
        self._settle()
        if self._hash is None:
            if self.committed or self.aborted:
                raise StorageError("the digest was not asked for before the writer finished")
            digest = hashlib.sha256()
            try:
                for chunk in self._read_back():
                    digest.update(chunk)
            except StorageError:
                raise
            except OSError as exc:
                raise StorageError(f"cannot read the object back: {exc}") from exc
            self._hash = digest
        return self._hash.hexdigest()

    @property
    def head(self) -> bytes:
        """The first bytes written (up to :data:`HEAD_BYTES`), for sniffing the type."""
        return bytes(self._head)

    def commit(self, key: str) -> StoredObject:
        if self.committed or self.aborted:
            raise StorageError("writer already finished")
        check_key(key)
        self._commit(key)
        self.committed = True
        return StoredObject(key=key, size=self.size,
                            sha256=None if self._hash is None else self.sha256)

    def abort(self) -> None:
        if self.committed or self.aborted:
            return
        self.aborted = True
        self._abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.abort()

    @abstractmethod
    def _write(self, data: bytes | bytearray | memoryview) -> None: ...

    @abstractmethod
    def _commit(self, key: str) -> None: ...

    @abstractmethod
    def _abort(self) -> None: ...


class Storage(ABC):
    """The storage interface every backend implements (see the contract tests)."""

    name: str = "storage"

    @abstractmethod
    def writer(self, *, max_size: int | None = None) -> ObjectWriter:
        """Start writing a new object of at most ``max_size`` bytes."""

    @abstractmethod
    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        """A readable stream of ``length`` bytes (all, when ``None``) from ``start``.

        Raises :class:`FileNotFoundError` for an unknown key. The stream may
        have a ``fileno()`` (servers then use ``sendfile``); read it only up to
        ``length`` bytes.
        """

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size; :class:`FileNotFoundError` when absent."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the object; ``True`` if it existed. Never raises for a missing key."""

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every committed key starting with ``prefix`` (for checks and backups)."""

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def put(self, key: str, chunks: Iterable[bytes], *, max_size: int | None = None) -> StoredObject:
        """Write ``chunks`` under ``key`` in one go (convenience over :meth:`writer`)."""
        with self.writer(max_size=max_size) as writer:
            writer.write_all(chunks)
            return writer.commit(key)

    def public_url(self, key: str) -> str | None:
        """A URL where clients can fetch the object directly, or ``None``."""
        return None

    def internal_path(self, key: str) -> str | None:
        """The object's path relative to the storage root, for X-Accel-Redirect /
        X-Sendfile serving by a front proxy; ``None`` when the backend has no such thing."""
        return None

    def health(self) -> str | None:
        """``None`` when the backend answers, else what is wrong (for ``/healthz``).

        Must be quick: it runs on every health check.
        """
        try:
            self.exists("hepcore-health-probe")
        except OSError as exc:
            return str(exc)
        return None

    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove abandoned partial writes older than ``older_than`` seconds; return how many."""
        return 0


WRITE_BEHIND_MIN = 64 * 1024
"""Chunks at least this large are hashed and written by a helper thread (``_LocalWriter``)."""
WRITEBACK_STEP = 8 * 1024 * 1024
"""Every this many bytes, a local writer asks the kernel to start writing them to
disk, so that the fsync at commit has little left to do (Linux)."""
_START_WRITEBACK = sys.platform == "linux" and hasattr(os, "posix_fadvise")
_write_executor: concurrent.futures.ThreadPoolExecutor | None = None
_write_executor_lock = threading.Lock()


def _write_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _write_executor
    if _write_executor is None:
        with _write_executor_lock:
            if _write_executor is None:
                _write_executor = concurrent.futures.ThreadPoolExecutor(
                    thread_name_prefix="hepcore-write")
    return _write_executor


def _forget_write_pool() -> None:
    global _write_executor, _write_executor_lock
    _write_executor = None  # its threads do not exist in a forked child
    _write_executor_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_write_pool)


def _write_all(fh: IO[bytes], data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = fh.write(view)
        view = view[written:]


class _LocalWriter(ObjectWriter):
    def __init__(self, storage: LocalStorage, max_size: int | None) -> None:
        super().__init__(max_size)
        self._storage = storage
        self._tmp_path = os.path.join(storage.tmp_dir_str,
                                      f"{int(time.time())}-{secrets.token_hex(8)}.part")
        self._pending: tuple[concurrent.futures.Future[None], ...] = ()
        self._written = 0
        self._flushed = 0
        try:
            self._fh: IO[bytes] = open(self._tmp_path, "xb", buffering=0)  # noqa: SIM115 - closed by commit/abort
        except OSError as exc:
            raise StorageError(f"cannot create temporary file: {exc.strerror}") from exc

    def _write_hashed(self, data: bytes | bytearray | memoryview) -> None:
        # Write-behind, one chunk deep: a large ``bytes`` chunk is hashed by
        # one helper thread and written by another while the caller reads and
        # parses the next one (hashing and file writes release the GIL, so
        # the three run at once). The caller waits for the previous chunk
        # first: at most one chunk is in flight and the order of bytes is kept.
        if type(data) is not bytes or len(data) < WRITE_BEHIND_MIN:
            self._settle()
            super()._write_hashed(data)
            return
        self._settle()
        pool = _write_pool()
        put = pool.submit(self._put, data)
        self._pending = (put,) if self._hash is None else (put, pool.submit(self._hash.update, data))

    def _put(self, data: bytes | bytearray | memoryview) -> None:
        _write_all(self._fh, data)
        self._written += len(data)
        if _START_WRITEBACK and self._written - self._flushed >= WRITEBACK_STEP:
            # On Linux, DONTNEED starts asynchronous writeback of the range; the
            # pages, dirty or under writeback, stay cached. Only a hint: never fatal.
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fh.fileno(), self._flushed,
                                 self._written - self._flushed, os.POSIX_FADV_DONTNEED)
            self._flushed = self._written

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._put(data)
        except OSError as exc:
            self.abort()
            raise StorageError(f"write failed: {exc.strerror}") from exc

    def _read_back(self) -> Iterator[bytes]:
        with open(self._tmp_path, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                yield chunk

    def _settle(self) -> None:
        pending, self._pending = self._pending, ()
        try:
            for future in pending:
                future.result()
        except OSError as exc:
            self.abort()
            raise StorageError(f"write failed: {exc.strerror}") from exc

    def _commit(self, key: str) -> None:
        final = os.path.join(self._storage.root_str, check_key(key))
        parent = os.path.dirname(final)
        renamed = False
        try:
            self._settle()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._storage.ensure_dir(parent)
            if os.path.exists(final):
                raise StorageError(f"object {key!r} already exists")
            try:
                os.replace(self._tmp_path, final)
            except FileNotFoundError:  # the directory went away since it was made
                self._storage.ensure_dir(parent, recheck=True)
                os.replace(self._tmp_path, final)
            renamed = True
            _fsync_dir(parent)
        except OSError as exc:
            if renamed:  # a commit that fails must not leave the object visible
                with contextlib.suppress(OSError):
                    os.unlink(final)
            self._cleanup()
            self.aborted = True
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"commit failed: {exc.strerror}") from exc

    def _abort(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        pending, self._pending = self._pending, ()
        if pending:  # never close the file under a write in flight
            concurrent.futures.wait(pending)
        with contextlib.suppress(OSError):
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp_path)


class _RangeFile:
    """A file object limited to ``length`` bytes from its current offset.

    It keeps ``fileno()`` so WSGI servers can ``sendfile`` the range.
    """

    def __init__(self, fh: BinaryIO, length: int) -> None:
        self._fh = fh
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        if size < 0 or size > self.remaining:
            size = self.remaining
        data = self._fh.read(size)
        self.remaining -= len(data)
        return data

    def fileno(self) -> int:
        return self._fh.fileno()

    def tell(self) -> int:
        return self._fh.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalStorage(Storage):
    """Objects as files under ``root``; partial writes in ``root/.tmp`` on the same disk.

    Writes go to a temporary file that is fsynced, atomically renamed into
    place, and its directory fsynced (G3). Large chunks are hashed and
    written by a helper thread while the caller reads the next one (one
    chunk in flight), and the kernel is asked to start writeback every
    :data:`WRITEBACK_STEP` bytes, so the final fsync is short.
    """

    name = "local"

    def __init__(self, root: str | os.PathLike[str], *, public_base_url: str | None = None) -> None:
        self.root = Path(root)
        self.root_str = str(self.root)
        self.tmp_dir = self.root / ".tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir_str = str(self.tmp_dir)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._dirs: set[str] = set()

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    def ensure_dir(self, path: str, *, recheck: bool = False) -> None:
        """Create the directory ``path`` (and its parents) unless this storage
        already made or found it; ``recheck`` looks again."""
        if recheck:
            self._dirs.discard(path)
        elif path in self._dirs:
            return
        os.makedirs(path, exist_ok=True)
        self._dirs.add(path)

    def writer(self, *, max_size: int | None = None) -> ObjectWriter:
        return _LocalWriter(self, max_size)

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        try:
            fh = open(self.path_of(key), "rb")  # noqa: SIM115 - returned to the caller
        except (IsADirectoryError, NotADirectoryError):
            raise _no_object(key) from None
        if start:
            fh.seek(start)
        if length is None:
            return fh
        return _RangeFile(fh, length)  # type: ignore[return-value]

    def size(self, key: str) -> int:
        try:
            st = self.path_of(key).stat()
        except NotADirectoryError:
            raise _no_object(key) from None
        if not stat.S_ISREG(st.st_mode):  # a directory is a key prefix, not an object
            raise _no_object(key)
        return st.st_size

    def delete(self, key: str) -> bool:
        try:
            os.unlink(self.path_of(key))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False
        except OSError as exc:
            raise StorageError(f"delete failed: {exc.strerror}") from exc
        return True

    def keys(self, prefix: str = "") -> Iterator[str]:
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            if rel_dir == ".tmp" or rel_dir.startswith(".tmp" + os.sep):
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames if not (rel_dir == "." and d == ".tmp")]
            for filename in filenames:
                key = filename if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{filename}"
                if key.startswith(prefix):
                    yield key

    def public_url(self, key: str) -> str | None:
        if self.public_base_url is None:
            return None
        return f"{self.public_base_url}/{check_key(key)}"

    def internal_path(self, key: str) -> str | None:
        return check_key(key)

    def health(self) -> str | None:
        if not os.path.isdir(self.root_str):
            return f"{self.root_str} is not a directory"
        if not os.access(self.tmp_dir_str, os.W_OK | os.X_OK):
            return f"{self.tmp_dir_str} is not writable"
        return None

    def sweep(self, older_than: float = 3600.0) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for entry in os.scandir(self.tmp_dir):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed


def _no_object(key: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "no such object", key)


def _fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
