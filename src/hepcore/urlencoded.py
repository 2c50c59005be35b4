"""Streaming ``application/x-www-form-urlencoded`` reading.

:func:`iter_field` yields the decoded bytes of one field's first value as
the body streams in, so a large value never has to sit in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import unquote_plus, unquote_to_bytes

from .errors import MalformedBody

MAX_KEY = 1024
_AMPERSANDS = re.compile(rb"&+")


def _decode(segment: bytes) -> bytes:
    return unquote_to_bytes(segment.replace(b"+", b" "))


def _split_escape(segment: bytes) -> tuple[bytes, bytes]:
    """Hold back a ``%`` escape cut by the end of a chunk."""
    cut = segment.rfind(b"%", max(0, len(segment) - 2))
    if cut == -1:
        return segment, b""
    return segment[:cut], segment[cut:]


def iter_field(chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    """The decoded bytes of the first value of ``name``, chunk by chunk.

    Yields nothing when the field is absent (the whole body is read to find
    out). A key longer than :data:`MAX_KEY` raises :class:`MalformedBody`.
    """
    want = name
    key = bytearray()
    in_key = True
    emitting = False
    found = False
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        carry = b""
        pos = 0
        n = len(data)
        while pos < n:
            if in_key:
                if not key and data[pos] == 0x26:  # empty fields ("&&&"): one step for the run
                    pos = _AMPERSANDS.match(data, pos).end()  # type: ignore[union-attr]
                    continue
                amp = data.find(b"&", pos)
                # Only up to the next "&": a search to the end of the chunk for
                # every field made a body of many short fields quadratic.
                eq = data.find(b"=", pos, n if amp == -1 else amp)
                stop = min(i for i in (amp, eq, n) if i != -1)
                key += data[pos:stop]
                if len(key) > MAX_KEY:
                    raise MalformedBody("form field name too long")
                if stop == n:
                    pos = n
                    break
                if data[stop:stop + 1] == b"&":  # a key with no value
                    if not found and unquote_plus(key.decode("latin-1")) == want:
                        found = True
                        return
                    key.clear()
                    pos = stop + 1
                    continue
                emitting = not found and unquote_plus(key.decode("latin-1")) == want
                found = found or emitting
                key.clear()
                in_key = False
                pos = stop + 1
            else:
                amp = data.find(b"&", pos)
                end = n if amp == -1 else amp
                if emitting:
                    segment = data[pos:end]
                    if amp == -1:
                        segment, carry = _split_escape(segment)
                    if segment:
                        yield _decode(segment)
                    if amp != -1:
                        return
                pos = end
                if amp != -1:
                    in_key = True
                    pos = amp + 1
    if emitting and carry:
        yield _decode(carry)
