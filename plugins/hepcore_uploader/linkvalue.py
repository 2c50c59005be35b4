"""A ``link`` value as it streams in: kept in memory while it could still be a
shortlink, spilled to a storage writer once it can only be text (U4, U6)."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable

from hepcore.errors import BodyError, MalformedBody, ServiceError
from hepcore.storage import ObjectWriter

PEEK = 8 * 1024
"""Bytes kept in memory: well above the 2048-character shortlink limit."""


class LinkValue:
    """Collect one value; ``open_writer`` is called once, when it outgrows :data:`PEEK`.

    The bytes must be UTF-8 (:class:`MalformedBody` otherwise). After
    :meth:`finish`, either :attr:`text` holds a small value or
    :attr:`writer` holds a large one (the caller commits or aborts it).

    With ``defer_errors`` (a multipart ``link`` field, which a later file part
    may override, U5), a failure to keep the value (not UTF-8, too large, text
    not allowed) is remembered instead of raised: the rest of the value is
    discarded, and :meth:`check` raises the failure only if the value is used.
    """

    def __init__(self, open_writer: Callable[[], ObjectWriter], *,
                 defer_errors: bool = False) -> None:
        self._open_writer = open_writer
        self._defer = defer_errors
        self._buf = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.writer: ObjectWriter | None = None
        self.size = 0
        self.error: Exception | None = None

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.error is not None:
            return
        try:
            self._feed(data)
        except (ServiceError, BodyError) as exc:
            self._failed(exc)

    def _feed(self, data: bytes) -> None:
        try:
            self._decoder.decode(data)
        except UnicodeDecodeError:
            raise MalformedBody("link is not UTF-8") from None
        if self.writer is not None:
            self.writer.write(data)
            return
        self._buf += data
        if len(self._buf) > PEEK:
            self.writer = self._open_writer()
            self.writer.write(bytes(self._buf))
            self._buf = bytearray()

    def _failed(self, exc: Exception) -> None:
        """Raise ``exc`` now, or (``defer_errors``) keep it and drop what was kept."""
        self.abort()
        self.writer = None
        self._buf = bytearray()
        if not self._defer:
            raise exc
        self.error = exc

    def feed_all(self, chunks: Iterable[bytes]) -> LinkValue:
        for chunk in chunks:
            self.feed(chunk)
        return self.finish()

    def finish(self) -> LinkValue:
        if self.error is None:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._failed(MalformedBody("link is not UTF-8"))
        return self

    def check(self) -> LinkValue:
        """Raise the failure :meth:`feed` deferred, if any."""
        if self.error is not None:
            raise self.error
        return self

    @property
    def text(self) -> str | None:
        """The whole value when it stayed in memory, else ``None``."""
        return None if self.writer is not None else self._buf.decode("utf-8")

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
