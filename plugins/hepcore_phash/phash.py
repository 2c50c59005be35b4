"""A 64-bit perceptual hash (pHash) with Pillow and plain Python.

The image is flattened to grey, shrunk to 32x32, and transformed with a 2-D
DCT-II; the 8x8 lowest frequencies (without the DC term, which is only the
mean brightness) are compared with their median, one bit each. Re-encoding,
resizing, mild colour and compression changes move few bits, so the Hamming
distance between two hashes measures how alike two pictures look.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from PIL import Image, ImageOps, ImageSequence

SIZE = 32
LOW = 8
_COS = [[math.cos(math.pi * (2 * x + 1) * u / (2 * SIZE)) for x in range(SIZE)]
        for u in range(LOW)]


def phash(image: Image.Image) -> int:
    """The 64-bit pHash of one frame; the EXIF orientation is applied first, so a
    rotated-by-metadata copy hashes like the upright original."""
    upright = ImageOps.exif_transpose(image) if image.getexif() else image
    grey = _flatten(upright).convert("L").resize((SIZE, SIZE), Image.Resampling.BOX)
    pixels = list(grey.tobytes())
    rows = [pixels[y * SIZE:(y + 1) * SIZE] for y in range(SIZE)]
    # Separable DCT: the first LOW coefficients of every row, then of every column.
    by_row = [[sum(c * p for c, p in zip(_COS[u], row, strict=True)) for u in range(LOW)]
              for row in rows]
    coeffs = [sum(_COS[v][y] * by_row[y][u] for y in range(SIZE))
              for v in range(LOW) for u in range(LOW)]
    ac = coeffs[1:]  # 63 terms; the DC term is replaced by a fixed 0 bit
    median = sorted(ac)[len(ac) // 2]
    bits = 0
    for value in ac:
        bits = (bits << 1) | (value > median)
    return bits << 1


def frame_hashes(image: Image.Image) -> Iterator[int]:
    """The hash of each frame of a still or animated image: every frame, so that
    a blocked picture cannot hide late in an animation (about 1 ms a frame; the
    image service bounds the frames an upload may have).

    Leaves ``image`` on the frame it was on.
    """
    if getattr(image, "n_frames", 1) <= 1:
        yield phash(image)
        return
    current = image.tell()
    try:
        for frame in ImageSequence.Iterator(image):
            yield phash(frame)
    finally:
        image.seek(current)


def distance(a: int, b: int) -> int:
    """Hamming distance: the number of differing bits."""
    return (a ^ b).bit_count()


def to_hex(value: int) -> str:
    return f"{value:016x}"


def from_hex(text: str) -> int:
    return int(text, 16)


def _flatten(image: Image.Image) -> Image.Image:
    """Composite transparency onto white, so hidden pixels do not count."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba)
    return image
