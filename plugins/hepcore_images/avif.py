"""The frame sizes an AVIF's AV1 data decodes to, read from the bitstream itself.

The size Pillow reports for an AVIF is the container's ``ispe`` property (or a
track's header), but the decoder allocates what the AV1 data codes, and
libavif scales the result down to the declared size afterwards: a 16x16
``ispe`` over an 81-megapixel frame decodes all 81 megapixels. So the pixel
budget is applied to the coded sizes too (:func:`check_avif`).

The walk is pure parsing, with no decoder: the file's boxes (``meta``:
``iloc``, ``iinf``, ``idat``, the ``av1C`` properties; ``moov``: each
``av01`` track's sample tables), then the OBUs of every ``av01`` item (colour,
alpha, grid tiles, thumbnails alike) and of a track's first samples. Each
sequence header gives ``max_frame_width``/``height`` (AV1 5.5); with a
reduced still-picture header every frame has that size. Otherwise a frame
header may set its own size, and dav1d (the decoder Pillow's libavif uses)
decodes one larger than the sequence header's maximum, so frame headers are
read up to their size (AV1 5.9.2-5.9.7).

Anything malformed, truncated or beyond the walk's limits raises
:class:`AvifError`: the upload is refused as corrupt. A conforming file never
comes near the limits; an item or track whose first frame comes before any
sequence header cannot be decoded (libavif gives dav1d no ``av1C``), and a
file with no AV1 data is no AVIF Pillow can decode.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .formats import PixelBudget, TooLarge, Unprocessable

MAX_BOXES = 4096
MAX_ITEMS = MAX_EXTENTS = 4096
MAX_TABLE_ENTRIES = 65536
MAX_OBUS = 65536
HEADER_BYTES = 1024
"""Of an OBU's payload, what the headers are parsed from: a sequence header is at
most about 400 bytes, a frame header up to its frame size about 200."""

SEQUENCE_HEADER, FRAME_HEADER, FRAME, REDUNDANT_FRAME_HEADER = 1, 3, 6, 7
KEY_FRAME, INTRA_ONLY_FRAME, SWITCH_FRAME = 0, 2, 3
SELECT = 2
SAME_AS_REF = (0, 0)


class AvifError(ValueError):
    """The file is malformed or truncated, or its structure is beyond the walk's limits."""


class AvifLimit(AvifError, Unprocessable):
    """The structure is beyond one of the walk's limits; the message, the
    client's (:meth:`Unprocessable.over`), names it."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(str(Unprocessable.over(limit, what)))


@dataclass
class Coded:
    """What one part of the file decodes to at most: its items together, or one track.

    ``largest`` is the largest frame any of its AV1 data can decode to;
    ``frames`` the number of frame headers (items) or of samples (a track);
    ``pixels`` the pixels of all the frames walked, hidden ones included.
    """

    track: bool
    largest: tuple[int, int] = (0, 0)
    frames: int = 0
    pixels: int = 0

    def size(self, size: tuple[int, int]) -> None:
        if size[0] * size[1] > self.largest[0] * self.largest[1]:
            self.largest = size

    def frame(self, size: tuple[int, int]) -> None:
        # A frame sized like one of its references is no larger than the largest so far.
        size = self.largest if size == SAME_AS_REF else size
        self.size(size)
        self.pixels += size[0] * size[1]
        if not self.track:
            self.frames += 1


def check_avif(fh: IO[bytes], budget: PixelBudget) -> None:
    """Apply ``budget`` to the frames the AV1 data of the AVIF in ``fh`` codes,
    before any is decoded: each part's largest frame to the per-frame limit; a
    track, as an animation of frames that size, to the animation limits; and
    all the frames of a part (hidden ones included) to what an honest file
    needs: an image, its alpha plane and their grid tiles within
    ``total_megapixels`` or two full frames, a track within twice its budget.
    Raises :class:`TooLarge`, or :class:`AvifError` for a file the walk
    refuses; ``fh`` is left where it was.
    """
    start = fh.tell()
    try:
        fh.seek(0)
        parts = coded_frames(fh.read(), max_samples=budget.max_frames)
    finally:
        fh.seek(start)
    for part in parts:
        budget.check_frame(part.largest)
        width, height = part.largest
        if part.track:
            budget.check_animation(part.frames, part.largest, part.frames * width * height)
            limit = 2 * max(budget.total_megapixels, budget.megapixels)
        else:
            limit = max(budget.total_megapixels, 2 * budget.megapixels)
        if part.pixels > limit * 1_000_000:
            raise TooLarge(f"Image is too large: its AV1 data codes frames of up to"
                           f" {width}x{height}, {part.pixels / 1_000_000:.1f} megapixels"
                           f" in all; the limit is {limit:g} megapixels in all.")


def coded_frames(data: bytes, *, max_samples: int) -> list[Coded]:
    """The parts of the AVIF file ``data``: its ``av01`` items together (if they
    code a frame), then each ``av01`` track, of which the first ``max_samples``
    samples are walked (no more are decoded: the frame count is checked first).
    Raises :class:`AvifError`."""
    return _Walk(data, max_samples).parts()


class _Walk:
    def __init__(self, data: bytes, max_samples: int) -> None:
        self.data = memoryview(data)
        self.max_samples = max_samples
        self.boxes = self.extents = self.copied = self.obus_walked = 0

    def parts(self) -> list[Coded]:
        meta = moov = None
        for kind, start, end in self.boxes_in(0, len(self.data), top=True):
            if kind == b"meta" and meta is None:
                meta = (start + 4, end)  # after the FullBox version and flags
            elif kind == b"moov" and moov is None:
                moov = (start, end)
        if meta is None:
            raise AvifError("no meta box")
        parts = [part for part in (self.items(*meta),) if part.frames]
        if moov is not None:
            parts += self.tracks(*moov)
        if not parts:
            raise AvifError("no AV1 data")
        return parts

    def boxes_in(self, start: int, end: int, *, top: bool = False,
                 ) -> Iterator[tuple[bytes, int, int]]:
        """(type, payload start, end) of each box in ``[start, end)``. At the top
        level a box that does not fit ends the walk, as it ends libavif's."""
        while start < end:
            self.boxes += 1
            if self.boxes > MAX_BOXES:
                raise AvifLimit(MAX_BOXES, "AVIF boxes")
            header = 8
            size, kind = (0, b"") if end - start < 8 else struct.unpack_from(
                ">I4s", self.data, start)
            if size == 1 and end - start >= 16:
                header, (size,) = 16, struct.unpack_from(">Q", self.data, start + 8)
            elif size == 0 and kind:
                size = end - start
            if not header <= size <= end - start:
                if top and kind not in (b"meta", b"moov"):
                    return
                raise AvifError("truncated box")
            yield kind, start + header, start + size
            start += size

    def path(self, start: int, end: int, *kinds: bytes) -> tuple[int, int] | None:
        """The payload of the first box of each type in turn, nested, or ``None``."""
        for kind in kinds:
            found = [(s, e) for box, s, e in self.boxes_in(start, end) if box == kind]
            if not found:
                return None
            start, end = found[0]
        return start, end

    def uint(self, pos: int, size: int, end: int) -> int:
        if pos + size > end:
            raise AvifError("truncated box")
        return int.from_bytes(self.data[pos:pos + size], "big")

    def items(self, start: int, end: int) -> Coded:
        """Every ``av01`` item's data, walked on its own (each is a decoder's input)."""
        part = Coded(track=False)
        types: dict[int, bytes] = {}
        iloc = idat = None
        for kind, box_start, box_end in self.boxes_in(start, end):
            if kind == b"iinf":
                count_size = 2 if self.uint(box_start, 1, box_end) == 0 else 4
                entries = box_start + 4 + count_size
                for infe, infe_start, infe_end in self.boxes_in(entries, box_end):
                    version = self.uint(infe_start, 1, infe_end) if infe == b"infe" else 0
                    if version >= 2:  # versions 0 and 1 have no item type
                        id_size = 2 if version == 2 else 4
                        item_id = self.uint(infe_start + 4, id_size, infe_end)
                        at = infe_start + 6 + id_size  # after the protection index
                        types[item_id] = bytes(self.data[at:at + 4])
            elif kind == b"iloc":
                iloc = (box_start, box_end)
            elif kind == b"idat":
                idat = (box_start, box_end)
            elif kind == b"iprp" and (ipco := self.path(box_start, box_end, b"ipco")):
                for prop, prop_start, prop_end in self.boxes_in(*ipco):
                    if prop == b"av1C":
                        self.config_obus(prop_start, prop_end, part)
        locations = self.locations(iloc, idat) if iloc else {}
        for item_id, item_type in types.items():
            if item_type == b"av01":
                if item_id not in locations:
                    raise AvifError(f"no data for item {item_id}")
                self.obus(locations[item_id], part, None)
        return part

    def locations(self, iloc: tuple[int, int], idat: tuple[int, int] | None,
                  ) -> dict[int, memoryview]:
        """Each item's data from ``iloc`` (construction methods 0, the file, and
        1, ``idat``); extents past the end of their source raise."""
        start, end = iloc
        version = self.uint(start, 1, end)
        sizes = self.uint(start + 4, 2, end)
        offset_size, length_size, base_size = sizes >> 12, sizes >> 8 & 15, sizes >> 4 & 15
        index_size = sizes & 15 if version in (1, 2) else 0
        if version > 2 or {offset_size, length_size, base_size, index_size} - {0, 4, 8}:
            raise AvifError("unsupported iloc")
        id_size = 4 if version == 2 else 2
        count, pos = self.uint(start + 6, id_size, end), start + 6 + id_size
        if count > MAX_ITEMS:
            raise AvifLimit(MAX_ITEMS, "AVIF items")
        found: dict[int, memoryview] = {}
        for _ in range(count):
            item_id, pos = self.uint(pos, id_size, end), pos + id_size
            method = 0
            if version in (1, 2):
                method, pos = self.uint(pos, 2, end) & 15, pos + 2
            reference, pos = self.uint(pos, 2, end), pos + 2
            base, pos = self.uint(pos, base_size, end), pos + base_size
            extent_count, pos = self.uint(pos, 2, end), pos + 2
            source = (0, len(self.data)) if method == 0 else idat
            if reference or source is None or method > 1:
                source = None  # data elsewhere, which libavif cannot read either
            chunks = []
            for _ in range(extent_count):
                self.extents += 1
                if self.extents > MAX_EXTENTS:
                    raise AvifLimit(MAX_EXTENTS, "AVIF item extents")
                pos += index_size
                offset, pos = self.uint(pos, offset_size, end), pos + offset_size
                length, pos = self.uint(pos, length_size, end), pos + length_size
                if source is not None:
                    first = source[0] + base + offset
                    last = source[1] if length == 0 else first + length
                    if not first <= last <= source[1]:
                        raise AvifError(f"item {item_id} runs past its data")
                    chunks.append(self.data[first:last])
            if source is not None and chunks:
                found[item_id] = chunks[0] if len(chunks) == 1 else self.joined(chunks)
        return found

    def joined(self, chunks: list[memoryview]) -> memoryview:
        # Extents may repeat one range: copies are bounded by the file's size.
        self.copied += sum(len(chunk) for chunk in chunks)
        if self.copied > len(self.data):
            raise AvifError("item extents add up to more than the file")
        return memoryview(b"".join(chunks))

    def config_obus(self, start: int, end: int, part: Coded) -> None:
        """The sequence header among an ``av1C``'s configOBUs (after 4 bytes of fields)."""
        if end - start > 4:
            self.obus(self.data[start + 4:end], part, None, headers_only=True)

    def tracks(self, start: int, end: int) -> list[Coded]:
        parts = []
        for kind, trak_start, trak_end in self.boxes_in(start, end):
            if kind != b"trak":
                continue
            stbl = self.path(trak_start, trak_end, b"mdia", b"minf", b"stbl")
            if stbl is not None and (part := self.track(*stbl)) is not None:
                parts.append(part)
        return parts

    def track(self, start: int, end: int) -> Coded | None:
        """A track with an ``av01`` sample entry: its first samples, in decoding
        order, share one decoder; ``None`` for a track of another kind."""
        part = Coded(track=True)
        tables: dict[bytes, tuple[int, int]] = {}
        av1 = False
        for kind, box_start, box_end in self.boxes_in(start, end):
            if kind == b"stsd":
                for entry, entry_start, entry_end in self.boxes_in(box_start + 8, box_end):
                    if entry == b"av01":
                        av1 = True
                        # After the sample entry's 8 and the visual sample entry's 70 bytes.
                        for prop, prop_start, prop_end in self.boxes_in(entry_start + 78,
                                                                        entry_end):
                            if prop == b"av1C":
                                self.config_obus(prop_start, prop_end, part)
            else:
                tables[kind] = (box_start, box_end)
        if not av1:
            return None
        part.frames, samples = self.samples(tables)
        sequence = None
        for offset, size in samples:
            if offset + size > len(self.data):
                raise AvifError("sample past the end of the file")
            sequence = self.obus(self.data[offset:offset + size], part, sequence)
        return part

    def table(self, tables: dict[bytes, tuple[int, int]], kind: bytes, entry_size: int,
              first: int = 4) -> tuple[int, int]:
        """(entry count, first entry) of a FullBox table whose count is ``first`` bytes in."""
        if kind not in tables:
            raise AvifError(f"no {kind.decode()} box")
        start, end = tables[kind]
        count = self.uint(start + first, 4, end)
        if start + first + 4 + count * entry_size > end:
            raise AvifError(f"truncated {kind.decode()} box")
        return count, start + first + 4

    def samples(self, tables: dict[bytes, tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
        """The track's sample count, and (offset, size) of its first ``max_samples``
        samples, from ``stsz``, ``stsc`` and ``stco``/``co64``, as libavif reads them."""
        stsz = tables.get(b"stsz", (0, 0))
        same_size = self.uint(stsz[0] + 4, 4, stsz[1]) if b"stsz" in tables else 0
        sizes, sizes_at = self.table(tables, b"stsz", 0 if same_size else 4, first=8)
        runs, runs_at = self.table(tables, b"stsc", 12)
        width = 8 if b"co64" in tables else 4
        chunks, chunks_at = self.table(tables, b"co64" if width == 8 else b"stco", width)
        if runs > MAX_TABLE_ENTRIES:
            raise AvifLimit(MAX_TABLE_ENTRIES, "AVIF sample-to-chunk entries")
        total, walked = 0, list[tuple[int, int]]()
        for run in range(runs):
            first, per_chunk = struct.unpack_from(">II", self.data, runs_at + 12 * run)
            following = max(first, chunks + 1)  # the first chunk of the next run
            if run + 1 < runs:
                (following,) = struct.unpack_from(">I", self.data, runs_at + 12 * run + 12)
            if not 1 <= first <= following:
                raise AvifError("stsc entries out of order")
            last = min(following, chunks + 1)
            total += max(0, last - first) * per_chunk
            for chunk in range(first, last):
                if len(walked) >= self.max_samples or not per_chunk:
                    break
                at = chunks_at + width * (chunk - 1)
                offset = int.from_bytes(self.data[at:at + width], "big")
                for _ in range(min(per_chunk, self.max_samples - len(walked))):
                    if not same_size and len(walked) >= sizes:
                        raise AvifError("stsz has fewer samples than stsc")
                    at = sizes_at + 4 * len(walked)
                    size = same_size or int.from_bytes(self.data[at:at + 4], "big")
                    walked.append((offset, size))
                    offset += size
        if not same_size and total > sizes:
            raise AvifError("stsz has fewer samples than stsc")
        return total, walked

    def obus(self, data: memoryview, part: Coded, sequence: _Sequence | None, *,
             headers_only: bool = False) -> _Sequence | None:
        """Walk the OBUs of ``data`` (one decoder's input, after ``sequence``):
        the sizes of its sequence headers and, unless ``headers_only``, of its
        frames go into ``part``. The sequence header in force at the end."""
        pos = 0
        while pos < len(data):
            self.obus_walked += 1
            if self.obus_walked > MAX_OBUS:
                raise AvifLimit(MAX_OBUS, "AV1 OBUs")
            header = data[pos]
            kind, extension, has_size = header >> 3 & 15, header >> 2 & 1, header >> 1 & 1
            temporal = spatial = 0
            if extension:
                if pos + 1 >= len(data):
                    raise AvifError("truncated OBU")
                temporal, spatial = data[pos + 1] >> 5, data[pos + 1] >> 3 & 3
            pos += 1 + extension
            size = len(data) - pos
            if has_size:
                size, pos = _leb128(data, pos)
            if pos + size > len(data):
                raise AvifError("OBU runs past its data")
            if kind == SEQUENCE_HEADER:
                sequence = _sequence(_Bits(data[pos:pos + min(size, HEADER_BYTES)]))
                part.size(sequence.size)
            elif kind in (FRAME_HEADER, FRAME, REDUNDANT_FRAME_HEADER) and not headers_only:
                if sequence is None:
                    raise AvifError("a frame before any sequence header")
                bits = _Bits(data[pos:pos + min(size, HEADER_BYTES)])
                if (frame := _frame_size(bits, sequence, temporal, spatial)) is not None:
                    part.frame(frame)
            pos += size
        return sequence


def _leb128(data: memoryview, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        if pos + i >= len(data):
            raise AvifError("truncated OBU size")
        value |= (data[pos + i] & 0x7F) << (7 * i)
        if not data[pos + i] & 0x80:
            return value, pos + i + 1
    raise AvifError("OBU size longer than 8 bytes")


class _Bits:
    """Big-endian bit reader over an OBU payload's first bytes (AV1 4.10.2 ``f(n)``)."""

    def __init__(self, data: memoryview) -> None:
        self.value = int.from_bytes(data, "big")
        self.left = 8 * len(data)

    def read(self, n: int) -> int:
        if n > self.left:
            raise AvifError("an AV1 header runs past its OBU")
        self.left -= n
        return self.value >> self.left & ((1 << n) - 1)


@dataclass(frozen=True)
class _Sequence:
    """What frame headers depend on, up to their frame size, of a sequence header."""

    size: tuple[int, int]
    reduced: bool
    width_bits: int
    height_bits: int
    decoder_model: bool
    presentation_bits: int  # 0 when frame headers carry no presentation time
    removal_bits: int
    model_ops: tuple[int, ...]  # operating_point_idc of each point with a decoder model
    frame_id_bits: int
    delta_frame_id_bits: int
    screen_content: int
    integer_mv: int
    order_hint_bits: int


def _sequence(bits: _Bits) -> _Sequence:
    """A sequence header OBU (AV1 5.5), up to the order hint bits."""
    bits.read(4)  # seq_profile, still_picture
    reduced = bool(bits.read(1))
    decoder_model, presentation_bits, removal_bits, delay_bits = False, 0, 0, 0
    model_ops: list[int] = []
    if reduced:
        bits.read(5)  # seq_level_idx[0]
    else:
        if bits.read(1):  # timing_info_present_flag
            bits.read(64)  # num_units_in_display_tick, time_scale
            equal_interval = bits.read(1)
            if equal_interval:
                _uvlc(bits)  # num_ticks_per_picture_minus_1
            decoder_model = bool(bits.read(1))
            if decoder_model:
                delay_bits = bits.read(5) + 1
                bits.read(32)  # num_units_in_decoding_tick
                removal_bits = bits.read(5) + 1
                length = bits.read(5) + 1  # frame_presentation_time_length_minus_1
                presentation_bits = 0 if equal_interval else length
        display_delay = bits.read(1)
        for _ in range(bits.read(5) + 1):  # operating points
            idc = bits.read(12)
            if bits.read(5) > 7:  # seq_level_idx, then seq_tier
                bits.read(1)
            if decoder_model and bits.read(1):
                bits.read(2 * delay_bits + 1)  # decoder and encoder buffer delays, low delay
                model_ops.append(idc)
            if display_delay and bits.read(1):
                bits.read(4)
    width_bits, height_bits = bits.read(4) + 1, bits.read(4) + 1
    size = bits.read(width_bits) + 1, bits.read(height_bits) + 1
    frame_id_bits = delta_frame_id_bits = 0
    if not reduced and bits.read(1):  # frame_id_numbers_present_flag
        delta_frame_id_bits = bits.read(4) + 2
        frame_id_bits = bits.read(3) + 1 + delta_frame_id_bits
    bits.read(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    screen_content = integer_mv = SELECT
    order_hint_bits = 0
    if not reduced:
        bits.read(4)  # interintra, masked compound, warped motion, dual filter
        order_hint = bits.read(1)
        if order_hint:
            bits.read(2)  # enable_jnt_comp, enable_ref_frame_mvs
        if not bits.read(1):  # seq_choose_screen_content_tools
            screen_content = bits.read(1)
        if screen_content and not bits.read(1):  # seq_choose_integer_mv
            integer_mv = bits.read(1)
        if order_hint:
            order_hint_bits = bits.read(3) + 1
    return _Sequence(size, reduced, width_bits, height_bits, decoder_model, presentation_bits,
                     removal_bits, tuple(model_ops), frame_id_bits, delta_frame_id_bits,
                     screen_content, integer_mv, order_hint_bits)


def _uvlc(bits: _Bits) -> None:
    # dav1d refuses 32 leading zeros (the value 2^32 - 1) in the one uvlc it reads.
    for zeros in range(32):
        if bits.read(1):
            bits.read(zeros)
            return
    raise AvifError("uvlc out of range")


def _frame_size(bits: _Bits, seq: _Sequence, temporal: int, spatial: int,
                ) -> tuple[int, int] | None:
    """The size of the frame a frame header OBU (AV1 5.9.2) decodes: the
    sequence's maximum, its own size, or :data:`SAME_AS_REF`; ``None`` when it
    shows a decoded frame again."""
    if seq.reduced:  # always a key frame of the maximum size
        return seq.size
    if bits.read(1):  # show_existing_frame
        return None
    frame_type, show = bits.read(2), bits.read(1)
    intra = frame_type in (KEY_FRAME, INTRA_ONLY_FRAME)
    if show:
        bits.read(seq.presentation_bits)
    else:
        bits.read(1)  # showable_frame
    refresh_all = frame_type == SWITCH_FRAME or (frame_type == KEY_FRAME and show)
    error_resilient = refresh_all or bits.read(1)
    bits.read(1)  # disable_cdf_update
    screen_content = bits.read(1) if seq.screen_content == SELECT else seq.screen_content
    if screen_content and seq.integer_mv == SELECT:
        bits.read(1)  # force_integer_mv
    bits.read(seq.frame_id_bits)  # current_frame_id
    if not (frame_type == SWITCH_FRAME or bits.read(1)):  # frame_size_override_flag
        return seq.size
    bits.read(seq.order_hint_bits)
    if not (intra or error_resilient):
        bits.read(3)  # primary_ref_frame
    if seq.decoder_model and bits.read(1):  # buffer_removal_time_present_flag
        for idc in seq.model_ops:
            if idc == 0 or (idc >> temporal & 1 and idc >> (spatial + 8) & 1):
                bits.read(seq.removal_bits)
    refresh = 0xFF if refresh_all else bits.read(8)
    if (not intra or refresh != 0xFF) and error_resilient:
        bits.read(8 * seq.order_hint_bits)  # ref_order_hint[8]
    if not intra:
        short_signaling = seq.order_hint_bits and bits.read(1)
        if short_signaling:
            bits.read(6)  # last_frame_idx, gold_frame_idx
        for _ in range(7):
            bits.read((0 if short_signaling else 3) + seq.delta_frame_id_bits)
        if not error_resilient:
            for _ in range(7):  # found_ref
                if bits.read(1):
                    return SAME_AS_REF
    return bits.read(seq.width_bits) + 1, bits.read(seq.height_bits) + 1
