"""Multipart part headers read byte for byte (``header_charset="latin-1"``) and
decoded as the UTF-8 text a client sent."""

from __future__ import annotations

from hepcore.multipart import header_text


def test_header_text_decodes_what_latin_1_read() -> None:
    assert header_text("caf\u00c3\u00a9.png") == "caf\u00e9.png"  # UTF-8 bytes of "é"
    assert header_text("caf\u00e9.png") == "caf\ufffd.png"  # a Latin-1 byte is no UTF-8
    assert header_text("\u6f22.png") == "\u6f22.png"  # decoded already (RFC 2231): kept
    assert header_text("plain.txt") == "plain.txt"
