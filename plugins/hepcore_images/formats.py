"""The five accepted formats: recognised by magic bytes only, opened header-first.

:func:`identify` looks at the leading bytes; :func:`open_header` parses the
header with the format's own Pillow plugin and decodes nothing, and without
Pillow's global decompression-bomb check, so the service applies its own
pixel limit before any pixel is decoded (F4).
"""

from __future__ import annotations

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


REDUCED_MIN_SIDE = 256
"""The shorter side of a JPEG decoded at reduced scale is at least this long
(or the image's own size), so moderation plugins see enough of it."""


def decode_all(img: Any, *, reduced: bool = False) -> int:
    """Decode every frame (raises on corrupt or truncated data); the frame count.

    With ``reduced``, a JPEG is decoded with DCT scaling (down to 1/8 of each
    side, keeping at least :data:`REDUCED_MIN_SIDE` pixels on the shorter one
    for moderation plugins): every byte of its entropy-coded data is still
    decoded, so corruption and truncation are found just the same, at a
    fraction of the cost; ``img.size`` is then the reduced size. The image is
    left on its first frame.
    """
    if reduced and img.format == "JPEG":
        width, height = img.size
        scale = max(1, min(8, min(width, height) // REDUCED_MIN_SIDE))
        img.draft(img.mode, ((width + scale - 1) // scale, (height + scale - 1) // scale))
    frames = int(getattr(img, "n_frames", 1) or 1)
    for index in range(frames):
        if frames > 1:
            img.seek(index)
        img.load()
    if frames > 1:
        img.seek(0)
    return frames
