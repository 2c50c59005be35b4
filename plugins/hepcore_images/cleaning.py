"""Metadata stripping (F3): EXIF, XMP, IPTC, PNG text and JPEG/GIF comments go;
the ICC profile, animation and the pixels stay.

When the image needs no rotation, the container is rewritten segment by
segment (JPEG markers, PNG chunks, GIF blocks, WebP chunks) and the
compressed pixel data is copied untouched: no quality loss, and no pixel
re-encode. Otherwise (an EXIF orientation other than 1, and every AVIF) the
decoded frames are rotated and re-encoded in the same format with the ICC
profile and the animation timing, and nothing else.

Every stripper streams from a seekable source to ``write`` and raises
:class:`CorruptImage` when the container is malformed.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from typing import IO, Any

from PIL import Image, JpegImagePlugin

from .formats import Format

Write = Callable[[bytes], None]
CHUNK = 256 * 1024
# libavif's encoder speed for re-encodes (0 slowest .. 10). Pillow's default, 6,
# spends about 4x the CPU of 8 (a 12 MP photo: 7.0 s against 1.7 s) for files
# 0-22 % smaller at the same quality; every AVIF upload is re-encoded, so the
# default would let one key at its upload rate keep several cores busy.
AVIF_SPEED = 8
ORIENTATION_TAG = 0x0112
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class CorruptImage(Exception):
    """The container does not parse."""


class _Reader:
    """Buffered reads from a stream, with exact-size reads and copies.

    ``buf[pos:]`` is what is read ahead; a read moves ``pos`` and copies only
    the bytes it returns, so a file of many tiny segments costs time linear
    in its size.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.buf = b""
        self.pos = 0

    @property
    def available(self) -> int:
        return len(self.buf) - self.pos

    def _fill(self) -> bool:
        data = self.fh.read(CHUNK)
        if not data:
            return False
        self.buf = self.buf[self.pos:] + data if self.pos < len(self.buf) else data
        self.pos = 0
        return True

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            if not self._fill():
                raise CorruptImage("unexpected end of file")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def copy(self, n: int, write: Write | None) -> None:
        """Pass ``n`` bytes to ``write`` (or skip them when ``write`` is ``None``)."""
        while n > 0:
            if self.pos >= len(self.buf) and not self._fill():
                raise CorruptImage("unexpected end of file")
            take = min(n, len(self.buf) - self.pos)
            if write is not None:
                write(self.buf[self.pos:self.pos + take])
            self.pos += take
            n -= take


# --- JPEG -------------------------------------------------------------------

_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _keep_jpeg_segment(marker: int, payload: bytes) -> bytes | None:
    """The segment payload to keep, or ``None`` to drop it."""
    if marker == 0xE0:  # APP0: JFIF only, without its thumbnail
        if payload.startswith(b"JFIF\x00") and len(payload) >= 14:
            return payload[:12] + b"\x00\x00"
        return None
    if marker == 0xE2:  # APP2: the ICC profile, not FlashPix or MPF
        return payload if payload.startswith(b"ICC_PROFILE\x00") else None
    if marker == 0xEE:  # APP14 Adobe: colour transform, needed to decode
        return payload if payload.startswith(b"Adobe") else None
    if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # other APPn (EXIF, XMP, IPTC...), COM
        return None
    return payload


def strip_jpeg(src: IO[bytes], write: Write) -> None:
    """Copy a JPEG without APP1 (EXIF, XMP), APP13 (IPTC), other APPn, COM
    and anything after EOI; JFIF, ICC (APP2) and Adobe (APP14) are kept."""
    r = _Reader(src)
    if r.read(2) != b"\xff\xd8":
        raise CorruptImage("no SOI")
    write(b"\xff\xd8")
    while True:
        if r.read(1) != b"\xff":
            raise CorruptImage("marker expected")
        marker = r.read(1)[0]
        while marker == 0xFF:  # fill bytes
            marker = r.read(1)[0]
        if marker == 0xD9:
            write(b"\xff\xd9")
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            write(bytes((0xFF, marker)))
            continue
        (length,) = struct.unpack(">H", r.read(2))
        if length < 2:
            raise CorruptImage("bad segment length")
        payload = r.read(length - 2)
        kept = _keep_jpeg_segment(marker, payload)
        if kept is not None:
            write(bytes((0xFF, marker)) + struct.pack(">H", len(kept) + 2) + kept)
        if marker == 0xDA:
            _copy_entropy(r, write)


def _copy_entropy(r: _Reader, write: Write) -> None:
    """Copy entropy-coded data up to (not including) the next real marker."""
    while True:
        if r.available == 0 and not r._fill():
            raise CorruptImage("unexpected end of scan")
        m = _MARKER.search(r.buf, r.pos)
        if m is not None:
            write(r.buf[r.pos:m.start()])
            r.pos = m.start()
            return
        # Keep a trailing 0xFF: its partner byte is in the next read.
        cut = len(r.buf) - 1 if r.buf.endswith(b"\xff") else len(r.buf)
        write(r.buf[r.pos:cut])
        r.pos = cut
        if not r._fill():
            raise CorruptImage("unexpected end of scan")


# --- PNG --------------------------------------------------------------------

PNG_KEEP = frozenset({
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
    b"bKGD", b"pHYs", b"hIST", b"sPLT", b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCv", b"cLLi",
})


def strip_png(src: IO[bytes], write: Write) -> None:
    """Copy a PNG (or APNG) keeping only image and colour chunks: tEXt, zTXt,
    iTXt, eXIf, tIME, unknown ancillary chunks and data after IEND go."""
    r = _Reader(src)
    sig = r.read(8)
    if sig != b"\x89PNG\r\n\x1a\n":
        raise CorruptImage("no PNG signature")
    write(sig)
    while True:
        header = r.read(8)
        (length,) = struct.unpack(">I", header[:4])
        kind = header[4:8]
        keep = kind in PNG_KEEP or (kind[:1].isupper() and kind.isalpha())
        if keep:
            write(header)
        r.copy(length + 4, write if keep else None)  # data and CRC
        if kind == b"IEND":
            return


# --- GIF --------------------------------------------------------------------

GIF_APPS_KEPT = (b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012")


def _copy_subblocks(r: _Reader, write: Write | None) -> None:
    while True:
        size = r.read(1)
        if write is not None:
            write(size)
        if size == b"\x00":
            return
        r.copy(size[0], write)


def strip_gif(src: IO[bytes], write: Write) -> None:
    """Copy a GIF without comment extensions, application extensions other than
    looping and ICC (XMP lives in one), and anything after the trailer."""
    r = _Reader(src)
    header = r.read(13)
    if header[:6] not in (b"GIF87a", b"GIF89a"):
        raise CorruptImage("no GIF signature")
    write(header)
    flags = header[10]
    if flags & 0x80:
        r.copy(3 * (2 << (flags & 0x07)), write)
    while True:
        introducer = r.read(1)
        if introducer == b"\x3b":
            write(introducer)
            return
        if introducer == b"\x2c":
            descriptor = r.read(9)
            write(introducer + descriptor)
            if descriptor[8] & 0x80:
                r.copy(3 * (2 << (descriptor[8] & 0x07)), write)
            write(r.read(1))  # LZW minimum code size
            _copy_subblocks(r, write)
        elif introducer == b"\x21":
            label = r.read(1)
            if label == b"\xfe":
                _copy_subblocks(r, None)
            elif label == b"\xff":
                size = r.read(1)
                ident = r.read(size[0]) if size != b"\x00" else b""
                if ident[:11] in GIF_APPS_KEPT:
                    write(introducer + label + size + ident)
                    _copy_subblocks(r, write)
                elif size != b"\x00":
                    _copy_subblocks(r, None)
            else:
                write(introducer + label)
                _copy_subblocks(r, write)
        else:
            raise CorruptImage("unknown GIF block")


# --- WebP -------------------------------------------------------------------

WEBP_KEEP = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})
VP8X_EXIF, VP8X_XMP = 0x08, 0x04


def strip_webp(src: IO[bytes], write: Write) -> None:
    """Copy a WebP without EXIF, XMP and unknown chunks, clearing their VP8X flags."""
    start = src.tell()
    chunks: list[tuple[bytes, int, int]] = []  # kind, size, offset of data
    riff = src.read(12)
    if len(riff) != 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WEBP":
        raise CorruptImage("no WebP header")
    (riff_size,) = struct.unpack("<I", riff[4:8])
    end = start + 8 + riff_size
    pos = start + 12
    while pos + 8 <= end:
        src.seek(pos)
        header = src.read(8)
        if len(header) != 8:
            raise CorruptImage("unexpected end of file")
        kind, (size,) = header[:4], struct.unpack("<I", header[4:])
        chunks.append((kind, size, pos + 8))
        pos += 8 + size + (size & 1)
    kept = [c for c in chunks if c[0] in WEBP_KEEP]
    total = 4 + sum(8 + size + (size & 1) for _, size, _ in kept)
    write(b"RIFF" + struct.pack("<I", total) + b"WEBP")
    for kind, size, offset in kept:
        src.seek(offset)
        r = _Reader(src)
        padded = size + (size & 1)
        if kind == b"VP8X":
            data = bytearray(r.read(padded))
            data[0] &= ~(VP8X_EXIF | VP8X_XMP) & 0xFF
            write(kind + struct.pack("<I", size) + bytes(data))
        else:
            write(kind + struct.pack("<I", size))
            r.copy(padded, write)


STRIPPERS: dict[str, Callable[[IO[bytes], Write], None]] = {
    "jpeg": strip_jpeg, "png": strip_png, "gif": strip_gif, "webp": strip_webp,
}


# --- re-encoding ----------------------------------------------------------------


def orientation_of(img: Any) -> int:
    """The EXIF (or XMP) orientation, 1 when absent or out of range."""
    try:
        value = img.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: nothing to apply
        return 1
    return value if isinstance(value, int) and value in TRANSPOSE else 1


def _save_options(fmt: Format, img: Any) -> dict[str, Any]:
    icc = img.info.get("icc_profile")
    options: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt.name in ("jpeg", "gif"):
        # Their encoders fall back to ``img.info["comment"]`` (the source's COM
        # segment or comment extension); an empty one writes none.
        options["comment"] = b""
    if fmt.name == "jpeg":
        options["qtables"] = getattr(img, "quantization", None) or None
        sampling = JpegImagePlugin.get_sampling(img)
        if sampling != -1:
            options["subsampling"] = sampling
        if img.info.get("progressive"):
            options["progressive"] = True
        options = {k: v for k, v in options.items() if v is not None}
    elif fmt.name == "webp":
        options["quality"] = 90
    elif fmt.name == "avif":
        options["quality"] = 90
        options["speed"] = AVIF_SPEED
    return options


def webp_is_lossless(src: IO[bytes]) -> bool:
    """True when the WebP's (first) image is VP8L-coded."""
    src.seek(12)
    while True:
        header = src.read(8)
        if len(header) != 8:
            return False
        kind, (size,) = header[:4], struct.unpack("<I", header[4:])
        if kind in (b"VP8L", b"VP8 "):
            return kind == b"VP8L"
        if kind == b"ANMF":
            inner = src.read(24)
            return inner[16:20] == b"VP8L"
        src.seek(size + (size & 1), io.SEEK_CUR)


def reencode(fmt: Format, img: Any, orientation: int, write: Write, *,
             lossless: bool = False) -> tuple[int, int]:
    """Rotate per ``orientation`` and re-encode every frame in ``fmt`` with the ICC
    profile, frame durations and loop count only; the stored width and height.

    The frames of an animation are held in memory together (the encoders need
    them all), as RGB, or RGBA when the image has alpha: at most 4 bytes per
    pixel of the animation, which the caller holds to the per-frame limit
    (:meth:`.formats.PixelBudget.check_reencode`).
    """
    method = TRANSPOSE.get(orientation)
    frames_total = int(getattr(img, "n_frames", 1) or 1)
    options = _save_options(fmt, img)
    if fmt.name == "webp" and lossless:
        options["lossless"] = True
    out = _WriteAdapter(write)
    if frames_total == 1:
        frame = img.transpose(method) if method is not None else img.copy()
        frame.save(out, format=fmt.name.upper(), **options)
        return frame.width, frame.height
    mode = "RGBA" if "A" in img.mode or "transparency" in img.info else "RGB"
    frames, durations = [], []
    for index in range(frames_total):
        img.seek(index)
        frame = img.convert(mode)
        frames.append(frame.transpose(method) if method is not None else frame)
        durations.append(int(img.info.get("duration", 0) or 0))
    img.seek(0)
    first = frames[0]
    first.save(out, format=fmt.name.upper(), save_all=True, append_images=frames[1:],
               duration=durations, loop=int(img.info.get("loop", 0) or 0), **options)
    return first.width, first.height


class _WriteAdapter(io.RawIOBase):
    """A write-only binary stream over ``write`` for Pillow's encoders."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._write(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        pass


def can_strip(fmt: Format, img: Any) -> bool:
    """True when cleaning is a container rewrite (no rotation to apply, not AVIF)."""
    return fmt.name in STRIPPERS and (fmt.name == "gif" or orientation_of(img) == 1)


def clean(fmt: Format, img: Any, src: IO[bytes], write: Write,
          size: tuple[int, int]) -> tuple[int, int]:
    """Write the cleaned image (F3) and return its width and height.

    ``img`` is the image decoded from ``src`` (a JPEG reduced in size when
    :func:`can_strip`; ``size`` is the size its header gave).
    """
    if can_strip(fmt, img):
        src.seek(0)
        STRIPPERS[fmt.name](src, write)
        return size
    orientation = orientation_of(img) if fmt.name != "gif" else 1
    lossless = fmt.name == "webp" and webp_is_lossless(src)
    return reencode(fmt, img, orientation, write, lossless=lossless)
