"""The pixel budget holds for what an AVIF's AV1 data codes, not only for what its
container declares: a file whose ``ispe`` (or track header, or grid tiles, or
sequence header) understates its frames is refused before a pixel is decoded,
while every AVIF Pillow writes still uploads. Real Pillow AVIFs, patched to lie."""

from __future__ import annotations

import functools
import io
import struct
from typing import Any

import pytest
from conftest import Upload
from PIL import AvifImagePlugin, Image, ImageCms

from hepcore_images.avif import AvifError, Coded, check_avif, coded_frames
from hepcore_images.formats import PixelBudget, TooLarge

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
FRAME_LIMIT = {"max_megapixels": 1, "max_total_megapixels": 2, "max_frames": 5}
PROCESSING_FAILED = (415, {"ok": False, "code": "processing_failed",
                           "error": "The image could not be processed. It may be corrupt."})


def too_large(message: str) -> tuple[int, dict[str, Any]]:
    return 413, {"ok": False, "code": "too_large", "error": message}


def err(result: Any) -> tuple[int, dict[str, Any]]:
    assert result.headers["Content-Type"] == "application/json"
    return result.status_code, result.json


def avif(size: tuple[int, int], mode: str = "RGB", frames: int = 1, **save: Any) -> bytes:
    """A real AVIF of flat ``size`` frames (fast to encode at any size)."""
    images = [Image.new(mode, size, (40 * i,) * len(mode)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "AVIF", save_all=frames > 1, append_images=images[1:], speed=10,
                   **save)
    return buf.getvalue()


def box(kind: bytes, payload: bytes, version: int | None = None, flags: int = 0) -> bytes:
    """An ISOBMFF box; a FullBox when ``version`` is given."""
    if version is not None:
        payload = bytes([version]) + flags.to_bytes(3, "big") + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def declare(data: bytes, size: tuple[int, int] = (16, 16)) -> bytes:
    """The file with every ``ispe`` and track header declaring ``size``."""
    out, at = bytearray(data), 0
    while (at := out.find(b"ispe", at + 1)) > 0:
        out[at + 8:at + 16] = struct.pack(">II", *size)
    while (at := out.find(b"tkhd", at + 1)) > 0:
        width = at + 4 + (88 if out[at + 4] == 1 else 76)  # after the matrix
        out[width:width + 8] = struct.pack(">II", size[0] << 16, size[1] << 16)
    return bytes(out)


def item_data(data: bytes) -> tuple[int, int]:
    """(offset, length) of the only item of a Pillow RGB still (``iloc`` version 0,
    4-byte offsets and lengths), which is all of its ``mdat``."""
    at = data.index(b"iloc")
    assert data[at + 4] == 0 and struct.unpack(">H", data[at + 10:at + 12]) == (1,)
    offset, length = struct.unpack(">II", data[at + 18:at + 26])
    assert offset + length == len(data)
    return offset, length


def with_item_data(data: bytes, new: bytes) -> bytes:
    """A Pillow RGB still with its item's AV1 data replaced by ``new``."""
    offset, _ = item_data(data)
    out = bytearray(data[:offset] + new)
    at = out.index(b"iloc")
    out[at + 22:at + 26] = struct.pack(">I", len(new))
    out[offset - 8:offset - 4] = struct.pack(">I", 8 + len(new))  # the mdat's size
    return bytes(out)


def obus(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each OBU, all with size fields and no extension."""
    out, pos = [], 0
    while pos < len(data):
        kind, size, shift = data[pos] >> 3 & 15, 0, 0
        pos += 1
        while True:  # leb128
            size |= (data[pos] & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
            if not data[pos - 1] & 0x80:
                break
        out.append((kind, data[pos:pos + size]))
        pos += size
    return out


def obu(kind: int, payload: bytes) -> bytes:
    size, leb = len(payload), b""
    while True:
        leb += bytes([size & 0x7F | (0x80 if size >> 7 else 0)])
        size >>= 7
        if not size:
            return bytes([kind << 3 | 2]) + leb + payload


def bits(payload: bytes) -> str:
    return "".join(f"{byte:08b}" for byte in payload)


def packed(text: str) -> bytes:
    """``text`` bits as bytes: a trailing one bit, then zeros to the byte (AV1 5.3.4)."""
    text += "1"
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big")


def field(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def oversized(data: bytes, declared: tuple[int, int] = (16, 16)) -> bytes:
    """A Pillow RGB still whose sequence header (and ``ispe``) declare ``declared``
    while its frame header sets the real size: the reduced still-picture header
    becomes a full one (AV1 5.5), and the key frame's header gains
    ``frame_size_override_flag`` and the frame size (5.9.2, 5.9.5). Everything
    after is the encoder's, shifted by whole bytes."""
    offset, length = item_data(data)
    (_, seq), (_, frame) = [(k, p) for k, p in obus(data[offset:offset + length]) if k != 2]
    old = bits(seq)
    assert old[4] == "1"  # reduced_still_picture_header
    width_bits, height_bits = int(old[10:14], 2) + 1, int(old[14:18], 2) + 1
    at = 18 + width_bits + height_bits
    real = int(old[18:18 + width_bits], 2) + 1, int(old[18 + width_bits:at], 2) + 1
    assert old[at + 3] == "0"  # enable_superres
    # The old header's end: its trailing one bit, and the zeros after it.
    rest = old[at + 3:].rstrip("0")[:-1]
    frame_bits = bits(frame)
    screen = frame_bits[1] == "1"
    head, tail = frame_bits[:3 if screen else 2], frame_bits[3 if screen else 2:]
    render = 1 + (32 if tail[0] == "1" else 0) + (1 if screen else 0)  # and allow_intrabc
    end_update = "1" if head[0] == "0" else ""  # disable_frame_end_update_cdf
    # The frame header grows by whole bytes: 5 bits, the size, disable_frame_end_update_cdf.
    width_bits = next(n for n in range(width_bits, 17)
                      if (5 + n + height_bits + len(end_update)) % 8 == 0)
    tier = "0" if int(old[5:10], 2) > 7 else ""
    # Not reduced, no timing info nor display delays, one operating point (idc 0).
    new_seq = (old[:4] + "0" + "0" + "0" + "00000" + "0" * 12 + old[5:10] + tier
               + field(width_bits - 1, 4) + field(height_bits - 1, 4)
               + field(declared[0] - 1, width_bits) + field(declared[1] - 1, height_bits)
               # No frame ids; no inter tools nor order hints; screen content
               # tools and integer motion vectors chosen per frame, as when reduced.
               + "0" + old[at:at + 3] + "00000" + "11" + rest)
    new_frame = ("0" + "00" + "1" + head + "1" + field(real[0] - 1, width_bits)
                 + field(real[1] - 1, height_bits) + tail[:render] + end_update + tail[render:])
    item = obu(1, packed(new_seq)) + obu(6, int(new_frame, 2).to_bytes(len(new_frame) // 8, "big"))
    return declare(with_item_data(data, item), declared)


def grid(tile: bytes, columns: int, rows: int, output: tuple[int, int],
         tile_size: tuple[int, int]) -> bytes:
    """A grid image (HEIF 6.6.2.3) of ``columns`` x ``rows`` items that all share the
    AV1 data of ``tile`` (a Pillow RGB still), each declaring ``tile_size``."""
    offset, length = item_data(tile)
    av1c_at = tile.index(b"av1C") - 4
    av1c = tile[av1c_at:av1c_at + struct.unpack(">I", tile[av1c_at:av1c_at + 4])[0]]
    tiles = range(2, 2 + columns * rows)
    infe = box(b"infe", struct.pack(">HH", 1, 0) + b"grid\0", 2) + b"".join(
        box(b"infe", struct.pack(">HH", i, 0) + b"av01\0", 2, flags=1) for i in tiles)
    ipco = box(b"ipco", box(b"ispe", struct.pack(">II", *output), 0)
               + box(b"pixi", bytes([3, 8, 8, 8]), 0)
               + box(b"ispe", struct.pack(">II", *tile_size), 0) + av1c)
    ipma = box(b"ipma", struct.pack(">IHBBB", len(tiles) + 1, 1, 2, 1, 2) + b"".join(
        struct.pack(">HBBBB", i, 3, 3, 2, 0x84) for i in tiles), 0)
    grid_data = struct.pack(">BBBBHH", 0, 0, rows - 1, columns - 1, *output)

    def meta(mdat: int) -> bytes:
        iloc = struct.pack(">HH", 0x4400, len(tiles) + 1) + struct.pack(
            ">HHHII", 1, 0, 1, mdat, len(grid_data)) + b"".join(
            struct.pack(">HHHII", i, 0, 1, mdat + len(grid_data), length) for i in tiles)
        return box(b"meta", box(b"hdlr", bytes(4) + b"pict" + bytes(13), 0)
                   + box(b"pitm", struct.pack(">H", 1), 0) + box(b"iloc", iloc, 0)
                   + box(b"iinf", struct.pack(">H", len(tiles) + 1) + infe, 0)
                   + box(b"iref", box(b"dimg", struct.pack(">HH", 1, len(tiles)) + b"".join(
                       struct.pack(">H", i) for i in tiles)), 0)
                   + box(b"iprp", ipco + ipma), 0)

    ftyp = box(b"ftyp", b"avif" + bytes(4) + b"avifmif1miaf")
    start = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(start) + box(b"mdat", grid_data + tile[offset:offset + length])


def in_meta(data: bytes, extra: bytes) -> bytes:
    """A Pillow still with ``extra`` boxes at the end of its ``meta`` (offsets moved)."""
    out = bytearray(data)
    meta = out.index(b"meta") - 4
    end = meta + struct.unpack(">I", out[meta:meta + 4])[0]
    out[meta:meta + 4] = struct.pack(">I", end - meta + len(extra))
    at = out.index(b"iloc")
    count, pos = struct.unpack(">H", out[at + 10:at + 12])[0], at + 12
    for _ in range(count):  # version 0: ID, reference, one extent of 4-byte offset and length
        (offset,) = struct.unpack(">I", out[pos + 6:pos + 10])
        out[pos + 6:pos + 10] = struct.pack(">I", offset + len(extra))
        pos += 14
    return bytes(out[:end] + extra + out[end:])


@functools.cache
def real_50_megapixels() -> bytes:
    """7072x7072 grey pixels (50.01 megapixels) coded, 16x16 declared."""
    return declare(avif((7072, 7072), "L", quality=0))


def header_size(data: bytes) -> tuple[int, int]:
    with AvifImagePlugin.AvifImageFile(io.BytesIO(data)) as img:
        return img.size


def test_an_ispe_that_understates_a_real_frame(upload: Upload) -> None:
    """The audit's file: a 16x16 ``ispe`` over more than 50 megapixels of AV1 data."""
    lie = real_50_megapixels()
    assert header_size(lie) == (16, 16)
    assert err(upload(lie)) == too_large(
        "Image is 7072x7072 (50.01 megapixels); the limit is 50 megapixels.")


class TestLyingFiles:
    @pytest.fixture
    def images_options(self) -> dict[str, Any]:
        return FRAME_LIMIT

    def test_ispe(self, upload: Upload) -> None:
        lie = declare(avif((1100, 1000)))
        assert header_size(lie) == (16, 16)
        assert err(upload(lie)) == too_large(
            "Image is 1100x1000 (1.1 megapixels); the limit is 1 megapixels.")

    def test_frame_header_over_its_sequence_header(self, upload: Upload) -> None:
        """dav1d decodes a frame header's size even above the sequence header's
        maximum: the frame headers are read too."""
        lie = oversized(avif((1100, 1000)))
        assert header_size(lie) == (16, 16)
        assert err(upload(lie)) == too_large(
            "Image is 1100x1000 (1.1 megapixels); the limit is 1 megapixels.")

    def test_track_header(self, upload: Upload) -> None:
        lie = declare(avif((900, 900), frames=3))
        assert header_size(lie) == (16, 16)
        assert err(upload(lie)) == too_large(
            "Animation is too large: 3 frames of 900x900; the limit is 2 megapixels in all.")

    def test_grid_tiles(self, upload: Upload) -> None:
        """Each tile is within the per-frame limit, all four together are not."""
        lie = grid(avif((900, 900)), 2, 2, (128, 128), (64, 64))
        assert header_size(lie) == (128, 128)
        assert err(upload(lie)) == too_large(
            "Image is too large: its AV1 data codes frames of up to 900x900,"
            " 3.2 megapixels in all; the limit is 2 megapixels in all.")

    def test_honest_files_within_the_limit(self, upload: Upload) -> None:
        for data, size in [(avif((1000, 1000)), (1000, 1000)),
                           (avif((500, 400), frames=5), (500, 400)),
                           (grid(avif((500, 500)), 2, 2, (1000, 1000), (500, 500)), (1000, 1000))]:
            r = upload(data)
            assert r.status_code == 200, r.text
            assert (r.json["width"], r.json["height"]) == size


@pytest.mark.parametrize(("data", "size"), [
    (avif((33, 17)), (33, 17)),
    (avif((64, 48), "RGBA"), (64, 48)),
    (avif((301, 199), "L"), (301, 199)),
    (avif((40, 30), "RGBA", frames=3), (40, 30)),
    (avif((640, 480), icc_profile=ICC, subsampling="4:4:4"), (640, 480)),
    (grid(avif((64, 64)), 3, 2, (190, 128), (64, 64)), (190, 128)),
], ids=["still", "alpha", "grey", "animated", "icc-444", "grid"])
def test_honest_avifs_upload(upload: Upload, data: bytes, size: tuple[int, int]) -> None:
    r = upload(data)
    assert r.status_code == 200, r.text
    assert (r.json["mime"], r.json["width"], r.json["height"]) == ("image/avif", *size)


def without_sequence_header(data: bytes) -> bytes:
    offset, length = item_data(data)
    return with_item_data(data, b"".join(
        obu(k, p) for k, p in obus(data[offset:offset + length]) if k != 1))


def past_the_end(data: bytes) -> bytes:
    at = data.index(b"iloc") + 22
    return data[:at] + struct.pack(">I", 1 << 20) + data[at + 4:]


@pytest.mark.parametrize("corrupt", [
    lambda d: d[:d.index(b"iprp")],  # truncated inside meta
    lambda d: d[:-10],  # truncated AV1 data
    past_the_end,  # an item beyond the end of the file
    without_sequence_header,
    lambda d: d.replace(b"meta", b"mota"),  # no meta box
], ids=["meta", "data", "extent", "sequence", "no-meta"])
def test_malformed_containers(upload: Upload, corrupt: Any) -> None:
    assert err(upload(corrupt(avif((64, 48))))) == PROCESSING_FAILED


def limit_refused(what: str) -> tuple[int, dict[str, object]]:
    return (415, {"ok": False, "code": "processing_failed",
                  "error": f"The image could not be processed. It has more than {what}."})


def test_hostile_structures_are_answered(upload: Upload) -> None:
    """The walk stops at its limits (a few thousand boxes, OBUs, extents)."""
    still = avif((64, 48))
    many = in_meta(still, box(b"free", b"") * 100_000)
    assert err(upload(many)) == limit_refused("4,096 AVIF boxes")
    flood = with_item_data(still, obu(15, b"") * 100_000 + still[item_data(still)[0]:])
    assert err(upload(flood)) == limit_refused("65,536 AV1 OBUs")
    nested = b""
    for _ in range(10_000):  # inside a box the walk does not open
        nested = box(b"meta", nested, 0)
    r = upload(in_meta(still, box(b"free", nested)))
    assert r.status_code == 200, r.text


# The parser on its own.

def test_coded_frames_of_pillow_files() -> None:
    assert coded_frames(avif((33, 17)), max_samples=10) == [Coded(False, (33, 17), 1, 561)]
    assert coded_frames(avif((64, 48), "RGBA"), max_samples=10) == [
        Coded(False, (64, 48), 2, 2 * 3072)]
    items, colour, alpha = coded_frames(avif((40, 30), "RGBA", frames=3), max_samples=10)
    assert (items.largest, items.frames) == ((40, 30), 2)
    for track in (colour, alpha):
        assert track.track and (track.largest, track.frames) == ((40, 30), 3)
        assert track.pixels >= 3 * 1200  # and the encoder's hidden frames
    tiles = coded_frames(grid(avif((64, 64)), 3, 2, (190, 128), (64, 64)), max_samples=10)
    assert tiles == [Coded(False, (64, 64), 6, 6 * 4096)]


def test_coded_frames_see_through_the_lies() -> None:
    assert coded_frames(declare(avif((300, 200))), max_samples=10)[0].largest == (300, 200)
    lie = oversized(avif((300, 200)), (1, 1))
    assert coded_frames(lie, max_samples=10) == [Coded(False, (300, 200), 1, 60_000)]
    with Image.open(io.BytesIO(lie)) as img:  # a valid file: the frame really decodes
        assert img.size == (1, 1)
        img.load()


def test_only_the_first_samples_are_walked() -> None:
    data = avif((16, 16), frames=6)
    _, first_two = coded_frames(data, max_samples=2)
    _, all_six = coded_frames(data, max_samples=6)
    assert first_two.frames == all_six.frames == 6
    assert first_two.pixels < all_six.pixels


def with_hidden_frames(data: bytes, copies: int) -> bytes:
    """A Pillow RGB animation whose first sample carries ``copies`` more frames
    (the track's ``stco`` and the items are before it and stay)."""
    out = bytearray(data)
    stsz = out.index(b"stsz") + 16
    (first,) = struct.unpack(">I", out[stsz:stsz + 4])
    (offset,) = struct.unpack(">I", out[out.index(b"stco") + 12:][:4])
    frame = obu(6, dict(obus(bytes(out[offset:offset + first])))[6])
    out[stsz:stsz + 4] = struct.pack(">I", first + copies * len(frame))
    mdat = out.index(b"mdat") - 4
    (size,) = struct.unpack(">I", out[mdat:mdat + 4])
    out[mdat:mdat + 4] = struct.pack(">I", size + copies * len(frame))
    return bytes(out[:offset + first] + frame * copies + out[offset + first:])


@pytest.mark.parametrize(("data", "message"), [
    (b"", "no meta box"),
    (avif((8, 8))[:40], "truncated box"),
    (in_meta(avif((8, 8)), box(b"free", b"") * 5000), "more than 4,096 AVIF boxes"),
    (without_sequence_header(avif((8, 8))), "a frame before any sequence header"),
    (with_item_data(avif((8, 8)), obu(15, b"") * 70_000), "more than 65,536 AV1 OBUs"),
    (with_item_data(avif((8, 8)), b"\x32\x10"), "OBU runs past its data"),
    (with_item_data(avif((8, 8)), obu(1, b"\x00")), "an AV1 header runs past its OBU"),
    (with_item_data(avif((8, 8)), b"\x12\x00"), "no AV1 data"),
])
def test_walk_refuses(data: bytes, message: str) -> None:
    with pytest.raises(AvifError, match=message):
        coded_frames(data, max_samples=10)


def test_check_avif() -> None:
    """Within the budget, over it (leaving the position where it was), too many
    samples, and too many hidden frames in a sample."""
    budget = PixelBudget(megapixels=1, total_megapixels=2, max_frames=5)
    fh = io.BytesIO(avif((64, 48)))
    fh.seek(7)
    check_avif(fh, budget)
    assert fh.tell() == 7
    fh = io.BytesIO(declare(avif((1100, 1000))))
    with pytest.raises(TooLarge, match="Image is 1100x1000"):
        check_avif(fh, budget)
    assert fh.tell() == 0
    with pytest.raises(TooLarge, match="6 frames of 16x16; the limit is 5 frames"):
        check_avif(io.BytesIO(avif((16, 16), frames=6)), budget)
    two = avif((900, 900), frames=2)
    check_avif(io.BytesIO(with_hidden_frames(two, 2)), budget)
    with pytest.raises(TooLarge, match="up to 900x900, 5.7 megapixels in all; the limit is 4"):
        check_avif(io.BytesIO(with_hidden_frames(two, 5)), budget)
