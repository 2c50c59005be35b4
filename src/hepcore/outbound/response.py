"""The response of a fetch: headers at once, the body streamed under a byte cap."""

from __future__ import annotations

import http.client
import zlib
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Self

from .connection import PinnedConnection
from .errors import ConnectionFailed, FetchError, ResponseTooLarge, network_error


class ResponseHeaders(Mapping[str, str]):
    """Response headers; lookups ignore case, repeated fields are joined with ``, ``."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = list(items)
        self._joined: dict[str, str] = {}
        for name, value in self._items:
            key = name.lower()
            self._joined[key] = f"{self._joined[key]}, {value}" if key in self._joined else value

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (for ``Set-Cookie``)."""
        return [v for n, v in self._items if n.lower() == name.lower()]

    def __repr__(self) -> str:
        return f"ResponseHeaders({self._items!r})"


class FetchResponse:
    """A response whose body has not been read yet. Use it as a context manager.

    ``url`` is the final URL after redirects, ``address`` the peer IP it came from.
    """

    def __init__(self, conn: PinnedConnection, response: http.client.HTTPResponse,
                 url: str) -> None:
        self._conn = conn
        self._response = response
        self.status: int = response.status
        self.reason: str = response.reason
        self.url = url
        self.address = str(conn.address)
        self.headers = ResponseHeaders(response.getheaders())
        self._started = False

    def iter_body(self, limit: int, chunk_size: int = 65536) -> Iterator[bytes]:
        """Yield the (decoded) body in chunks of at most ``chunk_size`` bytes.

        Raises :class:`ResponseTooLarge` as soon as more than ``limit`` bytes arrive,
        or at once when ``Content-Length`` announces more; :class:`FetchTimeout` on
        a stall or at the deadline; :class:`ConnectionFailed` when the body is cut
        short. ``gzip`` and ``deflate`` content encodings are decoded and the limit
        counts decoded bytes; the bytes on the wire (framing and compression
        included) may be at most :func:`wire_allowance` of ``limit``. The body
        can be read once.
        """
        if self._started:
            raise RuntimeError("the body has already been read")
        self._started = True
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if self._conn.wire is not None:
            allowance = wire_allowance(limit)
            self._conn.wire.limit_reads(allowance, ResponseTooLarge(
                limit, detail=f"more than {allowance} bytes on the wire"))
        try:
            if encoding in ("", "identity"):
                announced = self._response.length
                if announced is not None and announced > limit:
                    raise ResponseTooLarge(limit, detail=f"Content-Length {announced}")
                yield from _capped(self._raw_chunks(chunk_size), limit)
            else:
                decoded = _decode(encoding, self._raw_chunks(chunk_size), chunk_size)
                yield from _capped(decoded, limit)
        finally:
            self.close()

    def read(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes (else :class:`ResponseTooLarge`)."""
        return b"".join(self.iter_body(limit))

    def _raw_chunks(self, chunk_size: int) -> Iterator[bytes]:
        response = self._response
        while True:
            try:
                data = response.read1(chunk_size)
            except FetchError:
                raise
            except Exception as exc:
                raise network_error(exc) from exc
            if not data:
                if response.length:
                    raise ConnectionFailed(detail=f"body cut short, {response.length} missing")
                return
            yield data

    def close(self) -> None:
        """Release the connection; safe to call more than once."""
        try:
            self._response.close()
        finally:
            self._conn.close()
            if self._conn.raw_sock is not None:
                self._conn.raw_sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FetchResponse {self.status} {self.url} from {self.address}>"


def wire_allowance(limit: int) -> int:
    """The most bytes a body of at most ``limit`` decoded bytes may take on the
    wire: twice the limit and 64 KiB, room for any sane chunking or
    compression, while an endless trailer, empty deflate blocks or bytes after
    the compressed body cannot keep a fetch reading."""
    return 2 * limit + 65536


def _capped(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise ResponseTooLarge(limit, detail=f"more than {limit} bytes received")
        yield chunk


def _decode(encoding: str, chunks: Iterator[bytes], chunk_size: int) -> Iterator[bytes]:
    """``chunks`` decoded, in steps of at most ``chunk_size`` bytes out, so that a
    small bomb never expands at once in memory. gzip may have several members
    (RFC 1952); bytes after the end of the compressed body are ignored, as
    browsers do, and never reach the decoder."""
    if encoding in ("gzip", "x-gzip"):
        gzip, decoder = True, zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        gzip, decoder = False, zlib.decompressobj(zlib.MAX_WBITS)
    else:
        raise FetchError("Failed to download: unsupported content encoding",
                         detail=f"Content-Encoding {encoding!r}")
    first, trailing = True, False
    try:
        for chunk in chunks:
            if trailing:
                continue
            if first and not gzip and chunk and (chunk[0] & 0x0F) != 8:
                decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
            first = False
            data = chunk
            while True:
                if decoder.eof:
                    if not data:
                        break
                    if not (gzip and b"\x1f\x8b".startswith(data[:2])):
                        trailing = True
                        break
                    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the next member
                out = decoder.decompress(data, chunk_size)
                if out:
                    yield out
                data = decoder.unused_data if decoder.eof else decoder.unconsumed_tail
                if not data and not decoder.eof and len(out) < chunk_size:
                    break
        tail = decoder.flush()
        if tail:
            yield tail
        if not decoder.eof:
            raise zlib.error("compressed stream ends early")
    except zlib.error as exc:
        raise FetchError("Failed to download: bad content encoding", detail=str(exc)) from exc
