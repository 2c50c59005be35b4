"""The five accepted formats: recognised by magic bytes only, opened header-first.

:func:`identify` looks at the leading bytes; :func:`open_header` parses the
header with the format's own Pillow plugin and decodes nothing, and without
Pillow's global decompression-bomb check, so the service applies its own
pixel limit before any pixel is decoded (F4).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import IO, Any

from PIL import GifImagePlugin, JpegImagePlugin, PngImagePlugin, WebPImagePlugin


@dataclass(frozen=True)
class Format:
    name: str
    mime: str
    ext: str


FORMATS = {
    "png": Format("png", "image/png", ".png"),
    "jpeg": Format("jpeg", "image/jpeg", ".jpg"),
    "gif": Format("gif", "image/gif", ".gif"),
    "webp": Format("webp", "image/webp", ".webp"),
    "avif": Format("avif", "image/avif", ".avif"),
}
AVIF_BRANDS = (b"avif", b"avis")


def identify(head: bytes) -> Format | None:
    """The format the magic bytes prove, or ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FORMATS["png"]
    if head.startswith(b"\xff\xd8\xff"):
        return FORMATS["jpeg"]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return FORMATS["gif"]
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FORMATS["webp"]
    if len(head) >= 16 and head[4:8] == b"ftyp":
        (box_size,) = struct.unpack(">I", head[:4])
        end = min(box_size, len(head))
        brands = [head[8:12]] + [head[i:i + 4] for i in range(16, end - 3, 4)]
        if any(b in AVIF_BRANDS for b in brands):
            return FORMATS["avif"]
    return None


def open_header(fmt: Format, fh: IO[bytes]) -> Any:
    """A Pillow image of ``fh`` with only its header parsed (size, mode, info).

    Raises whatever the plugin raises for a header it cannot parse.
    """
    if fmt.name == "png":
        return PngImagePlugin.PngImageFile(fh)
    if fmt.name == "jpeg":
        return JpegImagePlugin.JpegImageFile(fh)
    if fmt.name == "gif":
        return GifImagePlugin.GifImageFile(fh)
    if fmt.name == "webp":
        return WebPImagePlugin.WebPImageFile(fh)
    from PIL import AvifImagePlugin

    return AvifImagePlugin.AvifImageFile(fh)


def webp_canvas(fh: IO[bytes]) -> tuple[int, int] | None:
    """The canvas size a WebP file declares (``VP8X``, ``VP8L`` or ``VP8 ``),
    read without Pillow, which refuses a header above about 179 megapixels
    as a decompression bomb before the pixel budget can name its size;
    ``None`` when the header is not one of those."""
    fh.seek(0)
    head = fh.read(30)
    fh.seek(0)
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk, data = head[12:16], head[20:30]
    if chunk == b"VP8X":  # flags and reserved (4 bytes), then width-1 and height-1 (24 bits)
        return (int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1)
    if chunk == b"VP8L" and data[0] == 0x2F:  # signature, then width-1 and height-1 (14 bits)
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[3:6] == b"\x9d\x01\x2a":  # frame tag, start code, 14-bit sizes
        return (int.from_bytes(data[6:8], "little") & 0x3FFF,
                int.from_bytes(data[8:10], "little") & 0x3FFF)
    return None


class TooLarge(Exception):
    """The image, one of its frames or the whole animation is above the pixel
    budget; the message is the one the client gets (413 ``too_large``)."""


@dataclass(frozen=True)
class PixelBudget:
    """F4's limits: ``megapixels`` per frame (its canvas, as decoded), and
    for all frames of an animation that is re-encoded; ``total_megapixels``
    for all frames together (frames x canvas pixels) of one that is decoded
    frame by frame and copied; and ``max_frames``."""

    megapixels: float
    total_megapixels: float
    max_frames: int

    def check_frame(self, size: tuple[int, int]) -> None:
        """Refuse a canvas above the per-frame limit."""
        width, height = size
        pixels = width * height
        if pixels > self.megapixels * 1_000_000:
            raise TooLarge(f"Image is {width}x{height} ({_above(pixels, self.megapixels)}"
                           f" megapixels); the limit is {self.megapixels:g} megapixels.")

    def check_animation(self, frames: int, size: tuple[int, int], total_pixels: int, *,
                        more: bool = False) -> None:
        """Refuse ``frames`` frames (``more``: at least that many) of which the
        last has canvas ``size``, ``total_pixels`` decoded in all."""
        width, height = size
        count = f"more than {frames - 1}" if more else str(frames)
        if frames > self.max_frames:
            raise TooLarge(f"Animation is too large: {count} frames of {width}x{height};"
                           f" the limit is {self.max_frames} frames.")
        if frames > 1 and total_pixels > self.total_megapixels * 1_000_000:
            raise TooLarge(f"Animation is too large: {count} frames of {width}x{height};"
                           f" the limit is {self.total_megapixels:g} megapixels in all.")

    def check_reencode(self, frames: int, size: tuple[int, int]) -> None:
        """Refuse to re-encode (rotate, or write as AVIF) an animation above the
        per-frame limit in all: the encoders need every frame in memory at once,
        so a re-encode holds no more pixels than the largest still image."""
        width, height = size
        if frames > 1 and frames * width * height > self.megapixels * 1_000_000:
            raise TooLarge(f"Animation is too large to re-encode: {frames} frames of"
                           f" {width}x{height}; the limit is {self.megapixels:g}"
                           " megapixels in all.")


class Unprocessable(Exception):
    """The container holds far more structure (segments, chunks, blocks,
    scans) than any real image does; the message is the one the client gets
    (415 ``processing_failed``). See :mod:`.structure`."""

    @classmethod
    def over(cls, limit: int, what: str) -> Unprocessable:
        """The refusal of more than ``limit`` of ``what`` ("JPEG scans")."""
        return cls(f"The image could not be processed. It has more than {limit:,} {what}.")


MAX_GIF_BLOCKS = 250_000
"""Sub-blocks of a GIF, all kinds together: image data comes in sub-blocks
of at most 255 bytes, so 20 MB of it takes about 82,000."""


def _above(pixels: int, limit: float) -> str:
    """``pixels`` in megapixels with one decimal, or with as many more as it
    takes to read as more than ``limit`` (``50.01``, not ``50.0``, for 7071x7072)."""
    megapixels = pixels / 1_000_000
    for digits in range(1, 7):
        text = f"{megapixels:.{digits}f}"
        if float(text) > limit:
            return text
    return f"{megapixels:.6f}"


def check_gif(fh: IO[bytes], budget: PixelBudget) -> None:
    """Walk a GIF's blocks (no pixel is decoded) and apply ``budget`` to every
    frame's canvas as Pillow will decode it: Pillow grows the canvas when a
    frame's descriptor reaches beyond it. The walk stops at the first frame
    over the budget, so a file of many tiny frames costs at most
    ``max_frames + 1`` descriptors, and raises :class:`Unprocessable` past
    :data:`MAX_GIF_BLOCKS` sub-blocks. A malformed file ends the walk quietly
    (decoding reports it). ``fh`` is left where it was.
    """
    start = fh.tell()
    try:
        header = fh.read(13)
        if len(header) < 13:
            return
        width, height, flags = header[6] | header[7] << 8, header[8] | header[9] << 8, header[10]
        if flags & 0x80:
            fh.seek(3 * (2 << (flags & 0x07)), io.SEEK_CUR)
        frames = total = blocks = 0
        while True:
            introducer = fh.read(1)
            if introducer == b"\x2c":
                d = fh.read(9)
                if len(d) < 9:
                    return
                x0, y0 = d[0] | d[1] << 8, d[2] | d[3] << 8
                width = max(width, x0 + (d[4] | d[5] << 8))
                height = max(height, y0 + (d[6] | d[7] << 8))
                budget.check_frame((width, height))
                frames += 1
                total += width * height
                budget.check_animation(frames, (width, height), total,
                                       more=frames > budget.max_frames)
                if d[8] & 0x80:
                    fh.seek(3 * (2 << (d[8] & 0x07)), io.SEEK_CUR)
                fh.seek(1, io.SEEK_CUR)  # LZW minimum code size
            elif introducer == b"\x21":
                fh.seek(1, io.SEEK_CUR)  # label
            else:
                return
            while (size := fh.read(1)) not in (b"", b"\x00"):
                blocks += 1
                if blocks > MAX_GIF_BLOCKS:
                    raise Unprocessable.over(MAX_GIF_BLOCKS, "GIF sub-blocks")
                fh.seek(size[0], io.SEEK_CUR)
            if not size:
                return
    finally:
        fh.seek(start)


REDUCED_MIN_SIDE = 256
"""The shorter side of a JPEG decoded at reduced scale is at least this long
(or the image's own size), so moderation plugins see enough of it."""


def decode_all(img: Any, budget: PixelBudget, *, reduced: bool = False) -> int:
    """Decode every frame within ``budget`` (raises on corrupt or truncated data);
    the frame count.

    Raises :class:`TooLarge` when the frame count from the header (all formats
    but GIF, whose count needs a walk of the file: see :func:`check_gif`) or
    the frames seen so far are over the budget, or when a frame's canvas is
    over the per-frame limit; each check comes before that frame's pixels are
    decoded.

    With ``reduced``, a JPEG is decoded with DCT scaling (down to 1/8 of each
    side, keeping at least :data:`REDUCED_MIN_SIDE` pixels on the shorter one
    for moderation plugins): every byte of its entropy-coded data is still
    decoded, so corruption and truncation are found just the same, at a
    fraction of the cost; ``img.size`` is then the reduced size. The image is
    left on its first frame.
    """
    if img.format != "GIF":
        frames = int(getattr(img, "n_frames", 1) or 1)
        width, height = img.size
        budget.check_animation(frames, img.size, frames * width * height)
    if reduced and img.format == "JPEG":
        width, height = img.size
        scale = max(1, min(8, min(width, height) // REDUCED_MIN_SIDE))
        img.draft(img.mode, ((width + scale - 1) // scale, (height + scale - 1) // scale))
    count = total = 0
    while True:
        if count:
            try:
                img.seek(count)
            except EOFError:
                break
        budget.check_frame(img.size)
        width, height = img.size
        count += 1
        total += width * height
        budget.check_animation(count, img.size, total,
                               more=img.format == "GIF" and count > budget.max_frames)
        img.load()
    if count > 1:
        img.seek(0)
    return count
