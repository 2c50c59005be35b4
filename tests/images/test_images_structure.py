"""Containers with far more structure than real images: thousands of scans,
segments, chunks or sub-blocks cost time (and, for JPEG segments, memory) in
proportion to their count, not to the file's size. They are refused with
415 ``processing_failed`` and a message naming the limit, before Pillow parses
them; real files, progressive JPEGs included, pass."""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import Any

import pytest
from conftest import Upload, image_bytes, progressive_jpeg

from hepcore import Runtime
from hepcore_images.formats import FORMATS, MAX_GIF_BLOCKS, Unprocessable
from hepcore_images.structure import (
    MAX_CHUNKS,
    MAX_JPEG_SCANS,
    MAX_JPEG_SEGMENTS,
    check_structure,
)

_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def refused(message: str) -> tuple[int, dict[str, Any]]:
    return 415, {"ok": False, "code": "processing_failed", "error": message}


def err(result: Any) -> tuple[int, dict[str, Any]]:
    return result.status_code, result.json


def jpeg_with_segments(count: int) -> bytes:
    """A real JPEG with ``count`` segments in all: empty APP3 segments added."""
    data = image_bytes("JPEG", (16, 16))
    own = _count_segments(data)
    return data[:2] + b"\xff\xe3\x00\x02" * (count - own) + data[2:]


def _count_segments(data: bytes) -> int:
    pos, count = 2, 0
    while data[pos + 1] != 0xD9:
        count += 1
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if data[pos + 1] == 0xDA:
            end = _ENTROPY_END.search(data, end).start()  # type: ignore[union-attr]
        pos = end
    return count


def png_with_chunks(count: int) -> bytes:
    """A real PNG with ``count`` chunks in all: empty unknown ancillary chunks added."""
    data = image_bytes("PNG", (16, 16))
    own = data.count(b"IHDR") + data.count(b"IDAT") + data.count(b"IEND")
    empty = struct.pack(">I", 0) + b"abCd" + struct.pack(">I", zlib.crc32(b"abCd"))
    return data[:33] + empty * (count - own) + data[33:]


def gif_with_comment_blocks(count: int) -> bytes:
    """A real GIF with a comment of ``count`` one-byte sub-blocks before its image."""
    data = image_bytes("GIF", (16, 16))
    at = data.index(b"\x2c", 13)
    return data[:at] + b"\x21\xfe" + b"\x01x" * count + b"\x00" + data[at:]


def webp_with_chunks(count: int) -> bytes:
    """A real WebP with ``count`` chunks in all: empty unknown chunks added
    inside the RIFF container."""
    data = image_bytes("WEBP", (16, 16))
    extra = b"abcd\x00\x00\x00\x00" * (count - 1)
    return b"RIFF" + struct.pack("<I", len(data) - 8 + len(extra)) + data[8:] + extra


def stored(runtime: Runtime) -> int:
    return int(runtime.db.one("SELECT count(*) FROM images_uploads")[0])


def test_progressive_jpeg_scans(runtime: Runtime, upload: Upload) -> None:
    ok = upload(progressive_jpeg(MAX_JPEG_SCANS))
    assert ok.status_code == 200, ok.text
    assert (ok.json["width"], ok.json["height"]) == (200, 200)
    assert err(upload(progressive_jpeg(MAX_JPEG_SCANS + 1))) == refused(
        "The image could not be processed. It has more than 100 JPEG scans.")
    assert err(upload(progressive_jpeg(5000))) == refused(
        "The image could not be processed. It has more than 100 JPEG scans.")
    assert stored(runtime) == 1


def test_jpeg_segments(runtime: Runtime, upload: Upload) -> None:
    ok = upload(jpeg_with_segments(MAX_JPEG_SEGMENTS))
    assert ok.status_code == 200, ok.text
    assert ok.json["size"] < 1000  # the empty APP3 segments were stripped
    assert err(upload(jpeg_with_segments(MAX_JPEG_SEGMENTS + 1))) == refused(
        "The image could not be processed. It has more than 10,000 JPEG marker segments.")
    assert stored(runtime) == 1


def test_jpeg_bytes_between_segments(runtime: Runtime, upload: Upload) -> None:
    """Pillow skips junk before a marker one byte at a time (2 s for 19 MiB), and a
    long run of fill bytes the same way; the stripper refuses both."""
    data = image_bytes("JPEG", (16, 16))
    corrupt = "The image could not be processed. It may be corrupt."
    assert err(upload(data[:20] + b"\x00" * 100_000 + data[20:])) == refused(corrupt)
    assert err(upload(data[:20] + b"\xff" * 100_000 + data[20:])) == refused(corrupt)
    assert upload(data[:20] + b"\xff" * 10 + data[20:]).status_code == 200
    assert stored(runtime) == 1


@pytest.mark.parametrize(("make", "limit", "message"), [
    (png_with_chunks, MAX_CHUNKS, "100,000 PNG chunks"),
    (gif_with_comment_blocks, MAX_GIF_BLOCKS, "250,000 GIF sub-blocks"),
    (webp_with_chunks, MAX_CHUNKS, "100,000 WebP chunks"),
], ids=["png", "gif", "webp"])
def test_chunks_and_sub_blocks(runtime: Runtime, upload: Upload, make: Any, limit: int,
                               message: str) -> None:
    assert err(upload(make(limit + 1))) == refused(
        f"The image could not be processed. It has more than {message}.")
    ok = upload(make(1000))
    assert ok.status_code == 200, ok.text
    assert ok.json["size"] < 1000  # the unknown chunks or the comment were stripped
    assert stored(runtime) == 1


@pytest.mark.parametrize(("fmt", "data"), [
    ("jpeg", progressive_jpeg(MAX_JPEG_SCANS + 1)),
    ("jpeg", jpeg_with_segments(MAX_JPEG_SEGMENTS + 1)),
    ("png", png_with_chunks(MAX_CHUNKS + 1)),
    ("webp", webp_with_chunks(MAX_CHUNKS + 1)),
])
def test_check_structure_on_a_real_file(tmp_path: Any, fmt: str, data: bytes) -> None:
    """The walk maps the spooled file rather than reading it, and leaves its position."""
    with open(tmp_path / "spool", "w+b") as fh:
        fh.write(data)
        fh.seek(5)
        with pytest.raises(Unprocessable):
            check_structure(FORMATS[fmt], fh)
        assert fh.tell() == 5


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_check_structure_passes_real_images(fmt: str) -> None:
    for size in ((1, 1), (640, 480)):
        data = io.BytesIO(image_bytes(fmt, size))
        check_structure(FORMATS[fmt.lower()], data)
        truncated = io.BytesIO(data.getvalue()[:40])
        check_structure(FORMATS[fmt.lower()], truncated)  # left to the decoder
