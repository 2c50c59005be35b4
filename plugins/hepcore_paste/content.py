"""Taking in a paste's content: size cap, UTF-8 check, hash, and where it lands.

A :class:`ContentSink` keeps up to ``inline_max`` bytes in memory (they go
into the database row) and spills anything larger to a storage writer as it
arrives, so a large paste is never held twice in memory. It also keeps the
first bytes for language detection.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterable

from hepcore.pending import PendingObjects
from hepcore.storage import ObjectWriter, Storage

from .store import NewContent

DETECT_BYTES = 64 * 1024
STR_CHUNK = 256 * 1024


class ContentTooLarge(Exception):
    """The content passed the plan's size cap."""


class InvalidUtf8(Exception):
    """The bytes are not UTF-8 (or a string held a lone surrogate)."""


class ContentSink:
    """Collects one paste's content. ``feed`` bytes (or ``feed_text``), then
    ``finish``; ``commit(key)`` or ``abort()``. Raises :class:`ContentTooLarge`
    past ``cap`` bytes and :class:`InvalidUtf8` on bad UTF-8."""

    def __init__(self, storage: Storage, pending: PendingObjects, *, cap: int,
                 inline_max: int) -> None:
        self.storage = storage
        self.pending = pending
        self.cap = cap
        self.inline_max = inline_max
        self.size = 0
        self.has_text = False  # a non-whitespace character was seen
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._head = bytearray()
        self._writer: ObjectWriter | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.cap:
            self.abort()
            raise ContentTooLarge(self.cap)
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError:
            self.abort()
            raise InvalidUtf8() from None
        self._note_text(text)
        self._take(data)

    def feed_text(self, text: str) -> None:
        """Feed a string (already decoded, e.g. from JSON) in bounded UTF-8 slices."""
        for start in range(0, len(text), STR_CHUNK):
            piece = text[start:start + STR_CHUNK]
            try:
                data = piece.encode("utf-8")
            except UnicodeEncodeError:
                self.abort()
                raise InvalidUtf8() from None
            self.size += len(data)
            if self.size > self.cap:
                self.abort()
                raise ContentTooLarge(self.cap)
            self._note_text(piece)
            self._take(data)

    def scan(self, data: bytes) -> None:
        """Check ``data`` as :meth:`feed` does (UTF-8, whether it holds text)
        without keeping or counting it: for the rest of a body already past the
        cap, whose answer still depends on it (an empty paste is refused
        before a large one)."""
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError:
            raise InvalidUtf8() from None
        self._note_text(text)

    def feed_all(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.feed(chunk)

    def finish(self) -> ContentSink:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            self.abort()
            raise InvalidUtf8() from None
        return self

    def _note_text(self, text: str) -> None:
        if not self.has_text and text and not text.isspace():
            self.has_text = True

    def _take(self, data: bytes) -> None:
        self._hash.update(data)
        if len(self._head) < DETECT_BYTES:
            self._head += data[: DETECT_BYTES - len(self._head)]
        if self._writer is None and len(self._buf) + len(data) <= self.inline_max:
            self._buf += data
            return
        if self._writer is None:
            self._writer = self.storage.writer(max_size=self.cap)
            self._writer.write(bytes(self._buf))
            self._buf = bytearray()
        self._writer.write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def head_text(self) -> str:
        """The first bytes as text (a character cut at the end is dropped)."""
        return bytes(self._head).decode("utf-8", "ignore")

    @property
    def spilled(self) -> bool:
        return self._writer is not None

    def commit(self, key: str) -> NewContent:
        """Make the content durable: the storage object under ``key`` when it
        spilled (recorded as pending: settle it with the row), else the bytes
        for the row."""
        if self._writer is None:
            return NewContent(self.size, self.sha256, bytes(self._buf), None)
        stored = self.pending.commit(self._writer, key)
        return NewContent(self.size, self.sha256, None, stored.key)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
        self._buf = bytearray()
