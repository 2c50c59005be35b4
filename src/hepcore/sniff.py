"""Content-type detection from leading bytes and file names.

:func:`sniff_bytes` recognises the formats users upload most from their
magic numbers; :func:`type_from_name` maps an extension. Services combine
them in their own order (the uploader trusts a declared type first, the
CDN prefers the more specific of bytes and extension).
"""

from __future__ import annotations

import mimetypes

_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"\x00\x00\x01\x00", "image/x-icon"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"wOFF", "font/woff"),
    (0, b"wOF2", "font/woff2"),
)
_FTYP_BRANDS = {
    b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic", b"heix": "image/heic",
    b"mif1": "image/heif", b"qt  ": "video/quicktime", b"M4A ": "audio/mp4",
}
_ZIP_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "jar": "application/java-archive", "apk": "application/vnd.android.package-archive",
    "epub": "application/epub+zip", "odt": "application/vnd.oasis.opendocument.text",
}
_EXTRA_EXT = {
    "md": "text/markdown", "webp": "image/webp", "avif": "image/avif", "mkv": "video/x-matroska",
    "flac": "audio/flac", "js": "text/javascript", "mjs": "text/javascript", "ts": "text/plain",
    "py": "text/x-python", "rs": "text/plain", "go": "text/plain", "toml": "text/plain",
    "yaml": "text/yaml", "yml": "text/yaml", "log": "text/plain", "ico": "image/x-icon",
    "wav": "audio/wav", "mov": "video/quicktime", "opus": "audio/ogg", "heic": "image/heic",
}


def sniff_bytes(head: bytes) -> str | None:
    """The type the leading bytes prove, or ``None``."""
    for offset, magic, mime in _MAGIC:
        if head.startswith(magic, offset):
            if mime == "video/webm" and b"matroska" in head[:64]:
                return "video/x-matroska"
            return mime
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return "image/webp"
        if kind == b"WAVE":
            return "audio/wav"
        if kind == b"AVI ":
            return "video/x-msvideo"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return _FTYP_BRANDS.get(brand, "video/mp4")
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"
    stripped = head.lstrip()[:256].lower()
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "image/svg+xml"
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if stripped.startswith(b"<?xml"):
        return "application/xml"
    return None


def type_from_name(filename: str | None) -> str | None:
    """The type an extension names, or ``None``."""
    if not filename or "." not in filename:
        return None
    ext = filename.rsplit(".", 1)[1].lower()
    if ext in _ZIP_TYPES:
        return _ZIP_TYPES[ext]
    if ext in _EXTRA_EXT:
        return _EXTRA_EXT[ext]
    guessed, _ = mimetypes.guess_type("x." + ext, strict=False)
    return guessed


def looks_like_text(head: bytes) -> bool:
    """True when the bytes decode as UTF-8 (allowing a cut multi-byte tail) with no NULs."""
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
