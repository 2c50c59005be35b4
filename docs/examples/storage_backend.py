"""A storage backend: objects kept in memory (tests, demos), selected with
``[storage] backend = "memory"``."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from hepcore import Config, ObjectWriter, Storage, hookimpl
from hepcore.errors import StorageError
from hepcore.storage import check_key


class _MemoryWriter(ObjectWriter):
    def __init__(self, storage: MemoryStorage, max_size: int | None) -> None:
        super().__init__(max_size)  # the base class counts, hashes and enforces max_size
        self._storage = storage
        self._buffer = bytearray()

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def _commit(self, key: str) -> None:
        with self._storage.lock:
            if key in self._storage.objects:
                raise StorageError(f"object {key!r} already exists")
            self._storage.objects[key] = bytes(self._buffer)

    def _abort(self) -> None:
        self._buffer = bytearray()


class MemoryStorage(Storage):
    name = "memory"

    def __init__(self, max_objects: int | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.max_objects = max_objects

    def writer(self, *, max_size: int | None = None) -> ObjectWriter:
        if self.max_objects is not None and len(self.objects) >= self.max_objects:
            raise StorageError("the memory store is full")
        return _MemoryWriter(self, max_size)

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        data = self._get(key)
        end = len(data) if length is None else start + length
        return io.BytesIO(data[start:end])

    def size(self, key: str) -> int:
        return len(self._get(key))

    def delete(self, key: str) -> bool:
        with self.lock:
            return self.objects.pop(check_key(key), None) is not None

    def keys(self, prefix: str = "") -> Iterator[str]:
        with self.lock:
            found = sorted(k for k in self.objects if k.startswith(prefix))
        return iter(found)

    def _get(self, key: str) -> bytes:
        try:
            return self.objects[check_key(key)]
        except KeyError:
            raise FileNotFoundError(key) from None


def _memory_storage(config: Config) -> MemoryStorage:
    # The rest of the [storage] table arrives as config.storage_options.
    return MemoryStorage(max_objects=config.storage_options.get("max_objects"))


@hookimpl
def hepcore_storage_backends(config: Config) -> dict[str, Any]:
    return {"memory": _memory_storage}
