"""The uploader's type rules: declared type first, allowed-type patterns,
canonical extensions (U7, U8)."""

from __future__ import annotations

import re

from hepcore.serving import single_media_type
from hepcore.sniff import looks_like_text, sniff_bytes, type_from_name

OCTET = "application/octet-stream"
CANONICAL_EXT = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "image/avif": ".avif", "image/svg+xml": ".svg", "image/bmp": ".bmp", "image/x-icon": ".ico",
    "video/mp4": ".mp4", "video/webm": ".webm", "video/quicktime": ".mov", "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg", "audio/wav": ".wav", "audio/flac": ".flac", "video/x-matroska": ".mkv",
    "application/pdf": ".pdf", "application/zip": ".zip", "application/json": ".json",
    "text/plain": ".txt", "text/html": ".html", "text/css": ".css", "text/javascript": ".js",
    "text/markdown": ".md",
}
_EXT_RE = re.compile(r"^[a-z0-9]{1,10}$")


def media_type(content_type: str) -> str:
    """The type without parameters, lower-cased."""
    return content_type.split(";", 1)[0].strip().lower()


def declared_type(part_type: str | None) -> str | None:
    """The part's declared type when it is one well-formed, specific media type
    (U8), else ``None``: a list such as ``text/plain,text/html`` is not a type,
    and a range such as ``image/*`` or ``*/*`` is not specific (it would pass
    ``allowed_types`` for any bytes)."""
    if not part_type:
        return None
    media = single_media_type(part_type)
    if media is None or media == OCTET or "*" in media:
        return None
    return part_type.strip()


def guess_type(head: bytes, filename: str | None) -> str:
    """Type from the leading bytes, then the filename, then octet-stream (U8)."""
    sniffed = sniff_bytes(head)
    if sniffed:
        return sniffed
    by_name = type_from_name(filename)
    if by_name:
        return by_name
    if looks_like_text(head):
        return "text/plain"
    return OCTET


def type_allowed(content_type: str, patterns: list[str]) -> bool:
    """Match against ``allowed_types``: exact, ``type/*`` or ``*/*``, case-insensitive."""
    media = media_type(content_type)
    top = media.split("/", 1)[0]
    for pattern in patterns:
        p = pattern.strip().lower()
        if p in ("*/*", "*") or p == media or (p.endswith("/*") and p[:-2] == top):
            return True
    return False


def extension_for(content_type: str, filename: str | None) -> str:
    """The canonical extension of the type, else the filename's own, else ``""`` (U7)."""
    ext = CANONICAL_EXT.get(media_type(content_type))
    if ext:
        return ext
    if filename and "." in filename:
        own = filename.rsplit(".", 1)[1].lower()
        if _EXT_RE.fullmatch(own):  # "$" would let a trailing newline through
            return "." + own
    return ""
