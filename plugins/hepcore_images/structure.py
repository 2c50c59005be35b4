"""Limits on the container structure of an upload, checked before Pillow parses it.

The cost of reading a file grows with its segments, chunks and scans, not
only with its size: Pillow's JPEG and PNG header parsers handle each APPn
segment or chunk in Python (and keep every JPEG APPn segment), the
stripper in :mod:`.cleaning` copies them one by one, and libjpeg passes
over the whole coefficient buffer once per progressive scan (a 300 KB
7000x7000 JPEG with 10,000 empty scans takes 40 s to decode). Real images
have tens of segments and at most a few tens of scans, so the walk here
refuses files far beyond that, in time linear in the file's size and
without decoding anything.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from .errors import PROCESSING_FAILED
from .formats import Format, Unprocessable

MAX_JPEG_SCANS = 100
"""Progressive encoders write about 10 scans (libjpeg's default progression)
and mozjpeg's optimised progressions a few more."""
MAX_JPEG_SEGMENTS = 10_000
"""Marker segments of a JPEG: a camera file has about 20, and an extended
XMP packet or an ICC profile split across the most segments allowed takes
a few hundred."""
MAX_JPEG_FILL = 65_536
"""Fill bytes (0xFF before a marker) in all; encoders seldom write any."""
MAX_CHUNKS = 100_000
"""PNG or WebP chunks: 20 MB of image data in chunks of 200 bytes (encoders
write 8 KiB or more; one chunk per frame and its control chunk for
animations)."""

_SEGMENT = re.compile(rb"\xff++([^\x00\xff])")
_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_CHUNK_HEADER = struct.Struct(">I4s")


def check_structure(fmt: Format, fh: IO[bytes]) -> None:
    """Raise :class:`Unprocessable` when ``fh`` (a JPEG, PNG or WebP; GIFs are
    walked by :func:`.formats.check_gif`) has more scans, segments or chunks
    than the limits above, or a JPEG with bytes between its segments. A file
    malformed otherwise ends the walk quietly: parsing and decoding report
    it. ``fh`` is left where it was."""
    walk = _WALKS.get(fmt.name)
    if walk is None:
        return
    start = fh.tell()
    try:
        with _view(fh) as data:
            walk(data)
    finally:
        fh.seek(start)


@contextmanager
def _view(fh: IO[bytes]) -> Iterator[bytes | mmap.mmap]:
    """The whole file without reading it into memory where it is a real file
    (the upload's spool), else its bytes."""
    fh.seek(0)
    try:
        fileno = fh.fileno()
    except (AttributeError, OSError):
        yield fh.read()
        return
    fh.flush()
    try:
        mapped = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
    except ValueError:  # an empty file cannot be mapped
        yield b""
        return
    with mapped:
        yield mapped


def _walk_jpeg(data: bytes | mmap.mmap) -> None:
    pos, end = 2, len(data)
    segments = scans = fill = 0
    while pos < end:
        match = _SEGMENT.match(data, pos)
        if match is None:
            # Pillow would skip the bytes up to the next marker one by one in
            # Python, and the stripper refuses them.
            raise Unprocessable(PROCESSING_FAILED)
        fill += match.end() - pos - 2
        if fill > MAX_JPEG_FILL:  # read one by one, like junk
            raise Unprocessable(PROCESSING_FAILED)
        marker, pos = match.group(1)[0], match.end()
        if marker == 0xD9:  # EOI
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise Unprocessable.over(MAX_JPEG_SEGMENTS, "JPEG marker segments")
        if pos + 2 > end:
            return
        pos += data[pos] << 8 | data[pos + 1]
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next marker
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise Unprocessable.over(MAX_JPEG_SCANS, "JPEG scans")
            found = _ENTROPY_END.search(data, pos)
            if found is None:
                return
            pos = found.start()


def _walk_chunks(data: bytes | mmap.mmap, pos: int, end: int, *, little: bool,
                 what: str) -> None:
    """Count chunks of 4-byte length and 4-byte type from ``pos`` to ``end``:
    PNG's (big-endian length first, a CRC after the data) or RIFF's (type
    first, little-endian length, data padded to even)."""
    end, chunks = min(end, len(data)), 0
    while pos + 8 <= end:
        chunks += 1
        if chunks > MAX_CHUNKS:
            raise Unprocessable.over(MAX_CHUNKS, f"{what} chunks")
        if little:
            (length,) = struct.unpack_from("<I", data, pos + 4)
            pos += 8 + length + (length & 1)
        else:
            length, kind = _CHUNK_HEADER.unpack_from(data, pos)
            if kind == b"IEND":
                return
            pos += 12 + length


def _walk_png(data: bytes | mmap.mmap) -> None:
    _walk_chunks(data, 8, len(data), little=False, what="PNG")


def _walk_webp(data: bytes | mmap.mmap) -> None:
    if len(data) >= 12:  # the chunks the RIFF header's size covers
        (riff_size,) = struct.unpack_from("<I", data, 4)
        _walk_chunks(data, 12, 8 + riff_size, little=True, what="WebP")


_WALKS = {"jpeg": _walk_jpeg, "png": _walk_png, "webp": _walk_webp}
