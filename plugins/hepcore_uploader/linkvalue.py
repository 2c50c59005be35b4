"""A ``link`` value as it streams in: kept in memory while it could still be a
shortlink, spilled to a storage writer once it can only be text (U4, U6)."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable

from hepcore.errors import MalformedBody
from hepcore.storage import ObjectWriter

PEEK = 8 * 1024
"""Bytes kept in memory: well above the 2048-character shortlink limit."""


class LinkValue:
    """Collect one value; ``open_writer`` is called once, when it outgrows :data:`PEEK`.

    The bytes must be UTF-8 (:class:`MalformedBody` otherwise). After
    :meth:`finish`, either :attr:`text` holds a small value or
    :attr:`writer` holds a large one (the caller commits or aborts it).
    """

    def __init__(self, open_writer: Callable[[], ObjectWriter]) -> None:
        self._open_writer = open_writer
        self._buf = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.writer: ObjectWriter | None = None
        self.size = 0

    def feed(self, data: bytes) -> None:
        try:
            self._decoder.decode(data)
        except UnicodeDecodeError:
            raise MalformedBody("link is not UTF-8") from None
        self.size += len(data)
        if self.writer is not None:
            self.writer.write(data)
            return
        self._buf += data
        if len(self._buf) > PEEK:
            self.writer = self._open_writer()
            self.writer.write(bytes(self._buf))
            self._buf = bytearray()

    def feed_all(self, chunks: Iterable[bytes]) -> LinkValue:
        for chunk in chunks:
            self.feed(chunk)
        return self.finish()

    def finish(self) -> LinkValue:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise MalformedBody("link is not UTF-8") from None
        return self

    @property
    def text(self) -> str | None:
        """The whole value when it stayed in memory, else ``None``."""
        return None if self.writer is not None else self._buf.decode("utf-8")

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
