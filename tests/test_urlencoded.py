"""``hepcore.urlencoded.iter_field``: the first value of one field of an
``application/x-www-form-urlencoded`` body, however the body is chunked."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hepcore.errors import MalformedBody
from hepcore.urlencoded import MAX_KEY, iter_field

# Text with the characters that matter to the format, plus anything else.
SPECIAL = st.sampled_from(list("&=+%; #?") + ["%41", "%2", "\u00e9", "\u2603", "\U0001f600"])
TEXT = st.lists(st.one_of(SPECIAL, st.text(max_size=3)), max_size=8).map("".join)
KEYS = st.one_of(st.sampled_from(["link", "Link", "link ", "lin", "", "a&b", "k=v", "+"]), TEXT)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (any order, duplicates give empty chunks)."""
    points = sorted(min(c, len(data)) for c in cuts)
    out, start = [], 0
    for p in points:
        out.append(data[start:p])
        start = p
    out.append(data[start:])
    return out


def first_value(pairs: list[tuple[str, str]], name: str) -> bytes:
    for key, value in pairs:
        if key == name:
            return value.encode("utf-8")
    return b""


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(KEYS, TEXT), max_size=6),
       name=KEYS,
       use_a_key=st.booleans(),
       cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_any_chunking_yields_the_first_value(pairs, name, use_a_key, cuts):
    if use_a_key and pairs:
        name = pairs[len(pairs) // 2][0]
    body = urlencode(pairs).encode("ascii")
    chunks = chunked(body, cuts)
    assert b"".join(chunks) == body
    got = b"".join(iter_field(iter(chunks), name))
    assert got == first_value(pairs, name)


@settings(max_examples=100, deadline=None)
@given(value=TEXT, cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=20))
def test_byte_at_a_time_and_any_cut(value, cuts):
    body = urlencode([("before", "x&y=z"), ("link", value), ("link", "second")]).encode()
    for chunks in (chunked(body, cuts), [body[i:i + 1] for i in range(len(body))]):
        assert b"".join(iter_field(chunks, "link")).decode("utf-8") == value


def collect(chunks: list[bytes], name: str = "link") -> bytes:
    return b"".join(iter_field(chunks, name))


@pytest.mark.parametrize(("body", "expected"), [
    (b"", b""),
    (b"other=1&more=2", b""),  # absent
    (b"link=", b""),
    (b"link=a&link=b", b"a"),
    (b"linkx=1&xlink=2&link=3", b"3"),
    (b"lin%6B=escaped+key", b"escaped key"),  # the key is decoded too
    (b"link", b""),  # a key without "=": an empty first value
    (b"link&link=later", b""),
    (b"flag&link=value", b"value"),
    (b"a=1&&link=v&", b"v"),
    (b"link=a=b=c", b"a=b=c"),
    (b"link=%F0%9F%98%80+%2B%25", "\U0001f600 +%".encode()),
    (b"link=100%", b"100%"),  # a stray "%" is kept
    (b"link=%zz%4", b"%zz%4"),
    (b"x=%26link%3Dfake&link=real", b"real"),
])
def test_edge_cases(body, expected):
    assert collect([body]) == expected
    # the same byte by byte
    assert collect([body[i:i + 1] for i in range(len(body))]) == expected


@pytest.mark.parametrize("cut", range(1, 12))
def test_percent_escape_split_across_chunks(cut):
    body = b"link=%C3%A9%26%3D+x"
    assert collect([body[:cut], body[cut:]]) == "\u00e9&= x".encode()


def test_escape_cut_at_the_last_chunk_boundary():
    assert collect([b"link=ab%", b"4", b"1"]) == b"abA"
    assert collect([b"link=ab%4", b"1", b""]) == b"abA"
    assert collect([b"link=ab%4"]) == b"ab%4"


def test_value_streams_before_the_body_ends():
    """The first bytes of the value come out before later chunks are read."""
    seen: list[str] = []

    def chunks():
        seen.append("first")
        yield b"link=" + b"a" * 100
        seen.append("second")
        yield b"b" * 100

    out = iter_field(chunks(), "link")
    assert next(out) == b"a" * 100
    assert seen == ["first"]
    assert b"".join(out) == b"b" * 100


def test_stops_reading_after_the_value():
    def chunks():
        yield b"link=v&rest="
        raise AssertionError("read past the value")

    assert collect(chunks()) == b"v"


def test_overlong_key_is_malformed():
    with pytest.raises(MalformedBody):
        collect([b"k" * (MAX_KEY + 1) + b"=1&link=x"])
    with pytest.raises(MalformedBody):
        collect([b"k" * 600, b"k" * 600, b"=1"])
    assert collect([b"k" * MAX_KEY + b"=1&link=x"]) == b"x"
