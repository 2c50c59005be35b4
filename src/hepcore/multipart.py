"""Streaming ``multipart/form-data`` reading over a blocking body reader.

Parts arrive one at a time; a part's data is a stream of chunks that is
never gathered in memory unless the caller asks for a small field's value.
Parsing is done by the sans-io ``multipart`` parser, fed with large reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import multipart as _mp

from .errors import BodyTooLarge, MalformedBody
from .http import BodyReader

MAX_PARTS = 128
MAX_HEADER_SIZE = 8192
HEADERS_ONLY_PART = "a part without a body (headers followed by the boundary)"


_BOUNDARY_RE = re.compile(
    r';\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;"]{1,200}))', re.IGNORECASE)


def boundary_of(content_type: str) -> str | None:
    """The ``boundary`` parameter of a ``multipart/form-data`` content type, if any."""
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "multipart/form-data":
        return None
    m = _BOUNDARY_RE.search(";" + params)
    if m is None:
        return None
    return m.group(1) or m.group(2)


def header_text(value: str) -> str:
    """A part header value read with ``header_charset="latin-1"`` (one character
    per byte) as the UTF-8 text it was sent as, each invalid sequence ``\ufffd``;
    a value that is not such a reading (already decoded text) is returned as is."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    return raw.decode("utf-8", "replace")


def _with_params(media: str | None, raw: str | None) -> str | None:
    """The lower-cased media type with the parameters of the raw header kept."""
    if not media or not raw or ";" not in raw:
        return media
    return media + ";" + raw.split(";", 1)[1]


def _reason(exc: Exception) -> str:
    """The parser's message without the repr of the exception it wraps."""
    if any(isinstance(arg, UnicodeDecodeError) for arg in exc.args[1:]):
        return "part header is not UTF-8"
    return str(exc.args[0]) if exc.args else str(exc)


class Part:
    """One part: its field ``name``, ``filename`` (``None`` for a plain field),
    declared ``content_type`` (``None`` when absent; media type lower-cased,
    parameters kept) and its data stream."""

    def __init__(self, form: FormReader, segment: _mp.MultipartSegment) -> None:
        self._form = form
        self._head_checked = False
        self.name: str = segment.name
        self.filename: str | None = segment.filename
        self.headers = dict(segment.headerlist)
        self.content_type: str | None = _with_params(segment.content_type,
                                                     self.headers.get("Content-Type"))
        self.done = False

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    def chunks(self) -> Iterator[bytes]:
        """The part's bytes, chunk by chunk; each chunk is yielded once.

        Raises :class:`MalformedBody`, before yielding anything, when the
        content starts with the dash-boundary: RFC 2046 lets a part end right
        after its headers, and the parser then reads the next delimiter and
        part into this one, so an empty file would hold another part's bytes.
        No real content can start so (body lines may not), so nothing valid is
        refused.
        """
        if not self._head_checked:
            self._head_checked = True
            dash = self._form._dash
            head = b""
            while len(head) < len(dash):
                chunk = self._next_chunk()
                if chunk is None:
                    break
                head += chunk
            if head.startswith(dash):
                raise MalformedBody(HEADERS_ONLY_PART)
            if head:
                yield head
        while (chunk := self._next_chunk()) is not None:
            yield chunk

    def _next_chunk(self) -> bytes | None:
        if self.done:
            return None
        event = self._form._next_event()
        if event is None:
            self.done = True
            return None
        if isinstance(event, _mp.MultipartSegment):  # pragma: no cover - parser contract
            raise MalformedBody("part ended without terminator")
        return bytes(event)

    def read(self, limit: int) -> bytes:
        """The part's whole value, refusing more than ``limit`` bytes."""
        buf = bytearray()
        for chunk in self.chunks():
            buf += chunk
            if len(buf) > limit:
                raise BodyTooLarge(limit)
        return bytes(buf)

    def text(self, limit: int) -> str:
        try:
            return self.read(limit).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBody(f"field {self.name!r} is not UTF-8") from None

    def drain(self) -> None:
        for _ in self.chunks():
            pass


class FormReader:
    """Iterate the parts of a multipart body.

    ``body_limit`` caps the total bytes read (the whole body, fields and
    framing included); passing it raises :class:`BodyTooLarge`. Framing
    errors raise :class:`MalformedBody`. ``header_charset`` decodes part headers
    (``"latin-1"`` keeps every byte of a filename, for a caller that decodes it
    itself, with :func:`header_text`).
    """

    def __init__(self, body: BodyReader, boundary: str, *, chunk_size: int = 1024 * 1024,
                 body_limit: int | None = None, max_parts: int = MAX_PARTS,
                 header_charset: str = "utf8") -> None:
        self._body = body
        self._dash = b"--" + boundary.encode("utf-8")
        self._chunk_size = chunk_size
        self._limit = body_limit
        self._read = 0
        try:
            self._parser = _mp.PushMultipartParser(
                boundary, max_header_size=MAX_HEADER_SIZE, max_segment_count=max_parts,
                header_charset=header_charset)
        except _mp.MultipartError as exc:
            raise MalformedBody(_reason(exc)) from None
        self._events = self._pump()
        self._current: Part | None = None

    def _pump(self) -> Iterator[_mp.MultipartSegment | bytes | None]:
        parser = self._parser
        try:
            while True:
                chunk = self._body.read(self._chunk_size)
                if chunk:
                    self._read += len(chunk)
                    if self._limit is not None and self._read > self._limit:
                        raise BodyTooLarge(self._limit)
                yield from parser.parse(chunk)
                if not chunk:
                    return
        except _mp.ParserLimitReached as exc:
            raise MalformedBody(f"multipart limit reached: {exc}") from None
        except _mp.MultipartError as exc:
            raise MalformedBody(_reason(exc)) from None

    def _next_event(self) -> _mp.MultipartSegment | bytes | None:
        try:
            return next(self._events)
        except StopIteration:
            raise MalformedBody("multipart body ended early") from None

    def finish(self) -> None:
        """Read the rest of the body to its end: what is left of the current
        part, the remaining parts (discarded) and anything after the closing
        delimiter. Call it before acting on a part read early (committing an
        upload), so that only a complete request is acted on: raises
        :class:`MalformedBody` when the body is not one whole multipart body,
        :class:`BodyTooLarge` past ``body_limit``, and what the body reader
        raises for a body that ends short of its length
        (:class:`~hepcore.errors.ClientDisconnected`)."""
        for _ in self:
            pass

    def __iter__(self) -> Iterator[Part]:
        while True:
            if self._current is not None and not self._current.done:
                self._current.drain()
            try:
                event = next(self._events)
            except StopIteration:
                if not self._parser.closed:
                    raise MalformedBody("multipart body ended early") from None
                return
            if not isinstance(event, _mp.MultipartSegment):
                raise MalformedBody("unexpected data between parts")
            self._current = Part(self, event)
            yield self._current
