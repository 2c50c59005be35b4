"""Content types (C3): bytes and extension together, the declared type only as
a fallback, and ``; charset=utf-8`` on text types."""

from __future__ import annotations

import re

from hepcore.sniff import sniff_bytes, type_from_name

OCTET = "application/octet-stream"
_MEDIA_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_CHARSET_RE = re.compile(r"""charset\s*=\s*"?([A-Za-z0-9._:+-]{1,40})"?""", re.IGNORECASE)
_ZIP_FAMILY_PREFIXES = ("application/vnd.openxmlformats", "application/vnd.oasis",
                        "application/vnd.android", "application/java-archive",
                        "application/epub+zip", "application/vnd.ms-", "application/x-xpinstall")
_XML_FAMILY = ("application/xml", "text/xml")


def media_of(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _refines(by_bytes: str, by_name: str) -> bool:
    """Whether the extension's type is a more specific kind of what the bytes
    prove (a ZIP named ``.docx``, XML named ``.svg``, an MP4 named ``.m4a``)."""
    if by_bytes == by_name:
        return False
    if by_bytes == "application/zip":
        return by_name.startswith(_ZIP_FAMILY_PREFIXES) or by_name.endswith("+zip")
    if by_bytes in _XML_FAMILY:
        return by_name.endswith("+xml") or by_name in _XML_FAMILY or by_name.startswith("text/")
    if by_bytes == "video/mp4":
        return by_name.startswith(("audio/mp4", "video/", "audio/x-m4a", "image/heic",
                                   "image/avif"))
    if by_bytes == "audio/ogg":
        return by_name.startswith(("audio/", "video/ogg"))
    if by_bytes == "video/webm":
        return by_name in ("audio/webm", "video/x-matroska")
    if by_bytes == "image/tiff":
        return by_name.startswith("image/")
    if by_bytes == "application/gzip":
        return by_name in ("application/x-gtar", "application/x-tar", "application/x-compressed-tar")
    return False


def normalise_declared(value: str | None) -> str | None:
    """A client-declared or remote type reduced to ``type/subtype`` plus its
    charset; ``None`` when it is not a well-formed media type."""
    if not value:
        return None
    media = media_of(value)
    if not _MEDIA_RE.match(media):
        return None
    m = _CHARSET_RE.search(value.split(";", 1)[1]) if ";" in value else None
    return f"{media}; charset={m.group(1).lower()}" if m else media


def with_charset(content_type: str) -> str:
    """Any ``text/*`` type without a charset gets ``; charset=utf-8``."""
    if media_of(content_type).startswith("text/") and "charset=" not in content_type.lower():
        return f"{content_type}; charset=utf-8"
    return content_type


def detect_type(head: bytes, filename: str | None, fallback: str | None) -> str:
    """4.3: magic numbers, refined by the extension when its type is a more
    specific kind of the same thing; the extension alone when the bytes prove
    nothing; then ``fallback`` (declared or remote type); then octet-stream."""
    by_bytes = sniff_bytes(head)
    by_name = type_from_name(filename)
    if by_bytes and by_name and _refines(by_bytes, by_name):
        found: str | None = by_name
    else:
        found = by_bytes or by_name
    if found is None:
        found = normalise_declared(fallback) or OCTET
    return with_charset(found)
