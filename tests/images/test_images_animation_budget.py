"""F4 for animations: every frame's canvas is held to the pixel limit (a GIF's
canvas grows when a frame reaches beyond the logical screen), and all frames
together to ``max_total_megapixels`` and ``max_frames``, before their pixels
are decoded; the re-encode path runs only within that budget."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from conftest import Upload
from PIL import GifImagePlugin, Image

from hepcore import Runtime
from hepcore_images.formats import PixelBudget, TooLarge, decode_all

FRAME_LIMIT = {"max_megapixels": 1, "max_total_megapixels": 2, "max_frames": 5}


def too_large(message: str) -> tuple[int, dict[str, Any]]:
    return 413, {"ok": False, "code": "too_large", "error": message}


def err(result: Any) -> tuple[int, dict[str, Any]]:
    assert result.headers["Content-Type"] == "application/json"
    return result.status_code, result.json


def gif_frame(size: tuple[int, int], shade: int, at: tuple[int, int] = (0, 0)) -> bytes:
    """One GIF image block (descriptor and LZW data) of a ``size`` frame in grey
    ``shade``, placed at ``at``: made by Pillow, moved into another file."""
    buf = io.BytesIO()
    Image.new("L", size, shade).save(buf, "GIF")
    data = buf.getvalue()
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    while data[pos] == 0x21:  # extensions: label, then sub-blocks
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    assert data[pos] == 0x2C and data.endswith(b";")
    return b"," + struct.pack("<HH", *at) + data[pos + 5:-1]


def gif(screen: tuple[int, int], *frames: bytes) -> bytes:
    """A GIF89a with a grey global palette, ``screen`` as its logical screen, and
    ``frames`` each behind a graphic control block (100 ms)."""
    palette = bytes(v for i in range(256) for v in (i, i, i))
    out = b"GIF89a" + struct.pack("<HHBBB", *screen, 0xF7, 0, 0) + palette
    for frame in frames:
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + frame
    return out + b";"


def canvas_growth_gif() -> bytes:
    """A 10x10 screen whose second frame is 3000x3000: 9 megapixels to decode."""
    return gif((10, 10), gif_frame((10, 10), 50), gif_frame((3000, 3000), 200))


def tiny_frames_gif(count: int, size: tuple[int, int] = (4, 4)) -> bytes:
    return gif(size, *(gif_frame(size, 10 + 7 * i) for i in range(count)))


def animated(fmt: str, count: int, size: tuple[int, int], **save: Any) -> bytes:
    frames = [Image.new("RGB", size, (20 * i, 0, 200 - 20 * i)) for i in range(count)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, **save)
    return buf.getvalue()


def test_the_crafted_gif_is_what_it_claims() -> None:
    """The files below really do decode to those canvases (Pillow grows the canvas)."""
    with Image.open(io.BytesIO(canvas_growth_gif())) as img:
        assert img.size == (10, 10) and img.n_frames == 2
        img.seek(1)
        assert img.size == (3000, 3000)
    with Image.open(io.BytesIO(tiny_frames_gif(7))) as img:
        assert img.n_frames == 7


class TestBudget:
    @pytest.fixture
    def images_options(self) -> dict[str, Any]:
        return FRAME_LIMIT

    def test_gif_canvas_growth_refused(self, runtime: Runtime, upload: Upload) -> None:
        assert err(upload(canvas_growth_gif())) == too_large(
            "Image is 3000x3000 (9.0 megapixels); the limit is 1 megapixels.")
        assert runtime.db.one("SELECT count(*) FROM images_uploads")[0] == 0

    def test_gif_frame_count_refused(self, upload: Upload) -> None:
        assert upload(tiny_frames_gif(5)).status_code == 200
        assert err(upload(tiny_frames_gif(6))) == too_large(
            "Animation is too large: more than 5 frames of 4x4; the limit is 5 frames.")
        assert err(upload(tiny_frames_gif(5000))) == too_large(
            "Animation is too large: more than 5 frames of 4x4; the limit is 5 frames.")

    def test_gif_total_pixels_refused(self, upload: Upload) -> None:
        size = (1000, 1000)
        assert upload(gif(size, *(gif_frame(size, s) for s in (1, 2)))).status_code == 200
        assert err(upload(gif(size, *(gif_frame(size, s) for s in (1, 2, 3))))) == too_large(
            "Animation is too large: 3 frames of 1000x1000; the limit is 2 megapixels in all.")

    @pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
    def test_frame_count_from_the_header(self, upload: Upload, fmt: str) -> None:
        assert upload(animated(fmt, 5, (8, 8))).status_code == 200
        assert err(upload(animated(fmt, 7, (8, 8)))) == too_large(
            "Animation is too large: 7 frames of 8x8; the limit is 5 frames.")

    @pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF"])
    def test_total_pixels_from_the_header(self, upload: Upload, fmt: str) -> None:
        assert err(upload(animated(fmt, 3, (1000, 1000)))) == too_large(
            "Animation is too large: 3 frames of 1000x1000; the limit is 2 megapixels in all.")

    def test_reencode_only_within_the_budget(self, client: Any, upload: Upload) -> None:
        """An animated WebP with an EXIF orientation is rotated and re-encoded with
        every frame in memory: only when the animation is within the budget."""
        exif = Image.Exif()
        exif[0x0112] = 6
        over = animated("WEBP", 3, (1000, 800), exif=exif.tobytes())
        assert err(upload(over)) == too_large(
            "Animation is too large: 3 frames of 1000x800; the limit is 2 megapixels in all.")
        within = animated("WEBP", 3, (600, 500), exif=exif.tobytes())
        r = upload(within)
        assert r.status_code == 200, r.text
        assert (r.json["width"], r.json["height"]) == (500, 600)  # rotated
        got = client.simulate_get(f"/images/{r.json['filename']}")
        with Image.open(io.BytesIO(got.content)) as img:
            assert img.n_frames == 3 and img.size == (500, 600)

    @pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
    def test_reencode_holds_one_frame_limit_in_all(self, runtime: Runtime, upload: Upload,
                                                   fmt: str) -> None:
        """Re-encoding holds every frame at once, so a rotated animation may have
        the per-frame limit in all (1 MP here), not the 2 MP a copied one may:
        ten 7000x7000 frames of a 158 KB APNG took a worker to 4 GB."""
        exif = Image.Exif()
        exif[0x0112] = 6
        rotated = animated(fmt, 3, (700, 700), exif=exif.tobytes())
        assert err(upload(rotated)) == too_large(
            "Animation is too large to re-encode: 3 frames of 700x700; the limit is 1"
            " megapixels in all.")
        assert runtime.db.one("SELECT count(*) FROM images_uploads")[0] == 0
        copied = upload(animated(fmt, 3, (700, 700)))  # no rotation: copied, not re-encoded
        assert copied.status_code == 200, copied.text
        assert (copied.json["width"], copied.json["height"]) == (700, 700)

    def test_avif_animations_are_always_reencoded(self, upload: Upload) -> None:
        assert err(upload(animated("AVIF", 3, (700, 700)))) == too_large(
            "Animation is too large to re-encode: 3 frames of 700x700; the limit is 1"
            " megapixels in all.")
        ok = upload(animated("AVIF", 3, (500, 500)))
        assert ok.status_code == 200, ok.text


def test_defaults_allow_ordinary_animations(upload: Upload) -> None:
    """Under the defaults (50 MP a frame, 500 MP and 1000 frames in all)."""
    assert upload(canvas_growth_gif()).status_code == 200
    assert upload(tiny_frames_gif(300)).status_code == 200


def test_defaults_refuse_too_many_frames(upload: Upload) -> None:
    assert err(upload(tiny_frames_gif(1001))) == too_large(
        "Animation is too large: more than 1000 frames of 4x4; the limit is 1000 frames.")


def open_gif(data: bytes) -> Any:
    return GifImagePlugin.GifImageFile(io.BytesIO(data))


BUDGET = PixelBudget(megapixels=1, total_megapixels=2, max_frames=5)


def test_decode_all_checks_each_frame_before_loading_it() -> None:
    """decode_all's own checks (the upload path walks a GIF's blocks first)."""
    img = open_gif(canvas_growth_gif())
    with pytest.raises(TooLarge, match=r"^Image is 3000x3000 \(9\.0 megapixels\); the limit"):
        decode_all(img, BUDGET)
    assert img.tell() == 1 and img.tile  # frame 1 was refused before it was decoded
    with pytest.raises(TooLarge, match="^Animation is too large: more than 5 frames of 4x4"):
        decode_all(open_gif(tiny_frames_gif(9)), BUDGET)
    assert decode_all(open_gif(tiny_frames_gif(5)), BUDGET) == 5
