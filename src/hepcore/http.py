"""The core's view of HTTP: plain request and response values, no Falcon.

The web shells (``hepcore.web``) build a :class:`Request` from Falcon's
request and write a :class:`Response` back; service code sees only these.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs

from .errors import BodyTooLarge, ClientDisconnected, MalformedBody


class BodyReader(Protocol):
    """A blocking reader of the request body.

    ``read(n)`` returns up to ``n`` bytes (fewer only at the end) and ``b""``
    at the end of the body; it raises
    :class:`~hepcore.errors.ClientDisconnected` when the client goes away.
    """

    def read(self, n: int) -> bytes: ...


class BytesBody:
    """A :class:`BodyReader` over bytes already in memory (tests, small bodies)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int) -> bytes:
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return bytes(chunk)


class LengthLimitedBody:
    """Wraps a reader: stops after ``content_length`` bytes and reports a short body.

    With ``content_length`` ``None`` (chunked transfer) it reads to the end.
    """

    def __init__(self, raw: BodyReader, content_length: int | None) -> None:
        self._raw = raw
        self.remaining = content_length
        self.consumed = 0  # bytes handed out so far (for metrics)

    def read(self, n: int) -> bytes:
        if self.remaining is None:
            data = self._raw.read(n)
            self.consumed += len(data)
            return data
        if self.remaining <= 0:
            return b""
        data = self._raw.read(min(n, self.remaining))
        if not data:
            raise ClientDisconnected("body ended before Content-Length")
        self.remaining -= len(data)
        self.consumed += len(data)
        return data


@dataclass
class Request:
    """One request as a service sees it.

    ``path`` is relative to the service's mount; ``prefix`` is the mount
    prefix (``""`` at the root); ``params`` are the route's path parameters;
    header names are lower-case.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: BodyReader
    query_string: str = ""
    params: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None
    scheme: str = "http"
    host: str = "localhost"
    prefix: str = ""
    client_ip: str = ""
    read_chunk_size: int = 1024 * 1024
    context: dict[str, Any] = field(default_factory=dict)
    _query: dict[str, list[str]] | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def media_type(self) -> str:
        """The content type without parameters, lower-cased."""
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def base_url(self) -> str:
        """``scheme://host`` plus the mount prefix, without a trailing slash."""
        return f"{self.scheme}://{self.host}{self.prefix}"

    def iter_body(self, chunk_size: int | None = None) -> Iterator[bytes]:
        size = chunk_size or self.read_chunk_size
        while True:
            chunk = self.body.read(size)
            if not chunk:
                return
            yield chunk

    def read_body(self, limit: int) -> bytes:
        """The whole body, refusing more than ``limit`` bytes with :class:`BodyTooLarge`."""
        if self.content_length is not None and self.content_length > limit:
            raise BodyTooLarge(limit)
        buf = bytearray()
        for chunk in self.iter_body(min(self.read_chunk_size, limit + 1)):
            buf += chunk
            if len(buf) > limit:
                raise BodyTooLarge(limit)
        return bytes(buf)

    def read_json(self, limit: int) -> Any:
        """Parse the body as JSON; :class:`MalformedBody` when it is not UTF-8 JSON."""
        raw = self.read_body(limit)
        try:
            return parse_json(raw.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is one
            raise MalformedBody("invalid JSON") from None


def is_text(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8, to be stored or sent: a JSON
    escape (``"\\ud800"``) or a command-line byte that is not UTF-8 gives a
    Python string holding a lone surrogate, which cannot."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json(text: str, **options: Any) -> Any:
    """``text`` as JSON (RFC 8259), else ``ValueError``: unlike ``json.loads``,
    ``NaN``, ``Infinity`` and ``-Infinity`` are refused, nesting too deep to
    parse is a ``ValueError`` too, and integers too long for ``int()`` are read
    by :func:`saturating_int` (valid JSON, so not an error). ``options`` are
    passed to ``json.loads``."""
    options.setdefault("parse_int", saturating_int)
    try:
        return json.loads(text, parse_constant=_not_json, **options)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def saturating_int(literal: str) -> int:
    """A JSON integer literal as ``int``, saturating: one with more digits than
    Python converts (``sys.get_int_max_str_digits()``, 4300 by default, where
    ``int()`` raises ``ValueError``) becomes the largest integer it does convert
    (4300 nines), with its sign. That is outside every range a field allows, so
    such a value gets the field's own message (or is ignored in a member
    nobody reads) rather than an invalid-JSON error."""
    try:
        return int(literal)
    except ValueError:
        largest: int = 10 ** sys.get_int_max_str_digits() - 1
        return -largest if literal.startswith("-") else largest


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


@dataclass
class StreamBody:
    """A response body read from a stream: exactly ``length`` bytes of ``stream``.

    The shell closes ``stream`` when done; a stream with ``fileno()`` may be
    sent with ``sendfile``.
    """

    stream: BinaryIO
    length: int


NOSNIFF = ("X-Content-Type-Options", "nosniff")
"""The header that stops browsers from sniffing a type other than the one sent (G6)."""


@dataclass
class Response:
    """A finished response: status, ordered headers, and a body.

    ``body`` is bytes, a :class:`StreamBody`, or ``None`` (no body; a HEAD or
    an internal redirect sets ``Content-Length`` itself in ``headers``).
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | StreamBody | None = b""

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
        """``obj`` as compact JSON, with ``nosniff``: answers carry names,
        titles and text that users chose (G6)."""
        data = dumps(obj)
        return cls(status, [("Content-Type", "application/json"), NOSNIFF, *(headers or [])],
                   data)

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        lower = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lower]
        self.headers.append((name, value))

    def never_stored(self) -> Response:
        """This response with ``Cache-Control: no-store``, for one that carries a
        credential (a new token, a signing secret): no cache may keep it."""
        self.set_header("Cache-Control", "no-store")
        return self


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as every service sends it.

    A string holding a lone surrogate (JSON input may carry ``"\\ud800"``,
    and a service may echo it back) cannot be UTF-8: the whole document is
    then sent with ASCII escapes, which is the same JSON.
    """
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("ascii")
