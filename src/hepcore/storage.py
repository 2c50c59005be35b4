"""Object storage: streaming, size-capped, hashed, durable writes and ranged reads.

Objects are addressed by *keys* such as ``uploader/hdlOo67BI.png``: relative
``/``-separated names of safe characters. No local path ever leaves a
backend, so an S3-compatible store can implement the same interface.
Backends raise the :class:`OSError` family (``FileNotFoundError`` for a
missing key, :class:`~hepcore.errors.StorageError` for failures).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from .errors import BodyTooLarge, StorageError

KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
HEAD_BYTES = 4096
"""How many leading bytes a writer keeps for type sniffing."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid object key, else raise :class:`ValueError`."""
    if len(key) > 1024 or not KEY_RE.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


@dataclass(frozen=True)
class StoredObject:
    """What a committed write produced."""

    key: str
    size: int
    sha256: str


class ObjectWriter(ABC):
    """One object being written.

    ``write`` streams bytes in, counting them and hashing them as they
    come; passing ``max_size`` raises :class:`~hepcore.errors.BodyTooLarge`
    at once. ``commit(key)`` makes the object durable and visible under
    ``key`` atomically (never a partial object); ``abort()`` discards it.
    Used as a context manager, a writer that was not committed is aborted.
    """

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self.size = 0
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self.committed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        if not n:
            return
        if self.max_size is not None and self.size + n > self.max_size:
            raise BodyTooLarge(self.max_size)
        self._write(data)
        self._hash.update(data)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self.size += n

    def write_all(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    @property
    def sha256(self) -> str:
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
        return StoredObject(key=key, size=self.size, sha256=self.sha256)

    def abort(self) -> None:
        if self.committed or self.aborted:
            return
        self.aborted = True
        self._abort()

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
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

    def sweep(self, older_than: float = 3600.0) -> int:
        """Remove abandoned partial writes older than ``older_than`` seconds; return how many."""
        return 0


class _LocalWriter(ObjectWriter):
    def __init__(self, storage: LocalStorage, max_size: int | None) -> None:
        super().__init__(max_size)
        self._storage = storage
        tmp_dir = storage.tmp_dir
        self._tmp_path = tmp_dir / f"{int(time.time())}-{secrets.token_hex(8)}.part"
        try:
            self._fh: IO[bytes] = open(self._tmp_path, "xb", buffering=0)
        except OSError as exc:
            raise StorageError(f"cannot create temporary file: {exc.strerror}") from exc

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            view = memoryview(data)
            while view:
                written = self._fh.write(view)
                view = view[written:]
        except OSError as exc:
            self.abort()
            raise StorageError(f"write failed: {exc.strerror}") from exc

    def _commit(self, key: str) -> None:
        final = self._storage.path_of(key)
        try:
            os.fsync(self._fh.fileno())
            self._fh.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                raise StorageError(f"object {key!r} already exists")
            os.replace(self._tmp_path, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            self._cleanup()
            self.aborted = True
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"commit failed: {exc.strerror}") from exc

    def _abort(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
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

    def __enter__(self) -> _RangeFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalStorage(Storage):
    """Objects as files under ``root``; partial writes in ``root/.tmp`` on the same disk.

    Writes go to a temporary file that is fsynced, atomically renamed into
    place, and its directory fsynced (G3).
    """

    name = "local"

    def __init__(self, root: str | os.PathLike[str], *, public_base_url: str | None = None) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / ".tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    def writer(self, *, max_size: int | None = None) -> ObjectWriter:
        return _LocalWriter(self, max_size)

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        fh = open(self.path_of(key), "rb")
        if start:
            fh.seek(start)
        if length is None:
            return fh
        return _RangeFile(fh, length)  # type: ignore[return-value]

    def size(self, key: str) -> int:
        return self.path_of(key).stat().st_size

    def delete(self, key: str) -> bool:
        try:
            os.unlink(self.path_of(key))
        except FileNotFoundError:
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

    def sweep(self, older_than: float = 3600.0) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for entry in os.scandir(self.tmp_dir):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
