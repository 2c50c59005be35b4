"""Serving stored objects: ETag, conditional GET, single byte ranges, HEAD, and
hand-off to a front proxy (X-Accel-Redirect / X-Sendfile).

:func:`serve_object` is shared by every service; each adds its own headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from .http import Request, Response, StreamBody
from .storage import Storage

ACTIVE_TYPES = (
    "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
    "text/xsl", "application/xslt+xml",
    # Every JavaScript MIME type of the WHATWG MIME Sniffing standard.
    "application/ecmascript", "application/javascript", "application/x-ecmascript",
    "application/x-javascript", "text/ecmascript", "text/javascript", "text/javascript1.0",
    "text/javascript1.1", "text/javascript1.2", "text/javascript1.3", "text/javascript1.4",
    "text/javascript1.5", "text/jscript", "text/livescript", "text/x-ecmascript",
    "text/x-javascript",
    # Its parts replace each other in place, and some browsers render HTML parts.
    "multipart/x-mixed-replace",
)
SANDBOX_CSP = "default-src 'none'; sandbox"
# Possessive quantifiers: spaces around empty digit runs could otherwise be
# split in many ways, and a 2 KB header took seconds of backtracking.
_RANGE_RE = re.compile(r"^\s*+bytes\s*+=\s*+(\d*+)\s*+-\s*+(\d*+)\s*+$", re.IGNORECASE)
_UNSAFE_ASCII = re.compile(r'[^\x20-\x7e]|["\\]')
_NOT_A_HEADER_VALUE = re.compile(r"[^\t\x20-\x7e]")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# RFC 9110 quoted-string, without obs-text: a declared type may be sent back as
# a header, so nothing but tab and visible ASCII may be in it (no CR, LF, NUL).
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e]|\\[\t\x20-\x7e])*"'
# RFC 9110 media-type: type "/" subtype *( OWS ";" OWS [ parameter ] ).
# Possessive, so that "a/b ; ; ; ..." cannot backtrack exponentially (the
# language is the same: tokens hold no blanks, ";", "=" or quotes).
_MEDIA_TYPE = re.compile(
    rf'[ \t]*+({_TOKEN}/{_TOKEN})'
    rf'(?:[ \t]*+;[ \t]*+(?:{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))?+)*+[ \t]*+')


def single_media_type(value: str) -> str | None:
    """The lower-cased ``type/subtype`` of ``value`` when it is exactly one
    well-formed media type (parameters allowed), else ``None``: a list such as
    ``text/plain,text/html`` or anything malformed."""
    match = _MEDIA_TYPE.fullmatch(value)
    return match.group(1).lower() if match else None


def is_active_type(content_type: str, extra: Iterable[str] = ()) -> bool:
    """True for types a browser would run: HTML, XHTML, SVG, any XML, JavaScript
    and ``extra`` (G6). Fails closed: a value that is not one well-formed media
    type counts as active, since a browser may act on any part of it, and so
    does a range such as ``*/*``, which names no type."""
    media = single_media_type(content_type)
    if media is None or "*" in media:
        return True
    return media in ACTIVE_TYPES or media.endswith("+xml") or media in extra


def content_disposition(disposition: str, filename: str) -> str:
    """``inline; filename="<ascii>"`` with ``filename*=UTF-8''`` when the name is not plain ASCII (G6)."""
    ascii_name = _UNSAFE_ASCII.sub("_", filename)
    value = f'{disposition}; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range of a ``Range`` header, ``None`` for a full response.

    Multiple ranges and headers that are not byte ranges give ``None``
    (the full body); a syntactically valid but unsatisfiable range raises
    :class:`RangeNotSatisfiable`.
    """
    if not header or "," in header:
        return None
    m = _RANGE_RE.match(header)
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = _position(last)
        if suffix == 0:
            raise RangeNotSatisfiable()
        if size == 0:  # the last N bytes of nothing: the whole (empty) body
            return None
        start = max(0, size - suffix)
        return ByteRange(start, size - start)
    start = _position(first)
    end = _position(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable()
    end = min(end, size - 1)
    return ByteRange(start, end - start + 1)


def _position(digits: str) -> int:
    """A byte position; one too long for ``int()`` (over 4300 digits) is past any size."""
    return int(digits) if len(digits) <= 18 else 10**18


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = [t.strip() for t in header.split(",")]
    bare = etag.removeprefix("W/")
    return any(t.removeprefix("W/") == bare for t in tags)


def _if_range_holds(header: str | None, etag: str) -> bool:
    """RFC 9110 13.1.5: a ``Range`` counts only without ``If-Range`` or when
    ``If-Range`` is the object's strong ETag exactly (no ``Last-Modified`` is
    sent, so a date never matches, and a weak tag never does)."""
    return header is None or (header.strip() == etag and not etag.startswith("W/"))


@dataclass
class Served:
    """A serving decision: the response, and whether it sends bytes from offset 0
    (what view counters count)."""

    response: Response
    from_start: bool


def serve_object(
    request: Request,
    storage: Storage,
    key: str,
    *,
    size: int,
    etag: str,
    content_type: str,
    headers: list[tuple[str, str]],
    serve_mode: str = "direct",
    accel_prefix: str = "/_hepcore_files/",
) -> Served:
    """Answer GET or HEAD for one stored object.

    ``headers`` (cache, disposition, security) go on every answer. Handles
    ``If-None-Match`` (304), one ``Range`` (206, or 416 with
    ``Content-Range: bytes */size``) unless ``If-Range`` names other bytes,
    HEAD (headers only), and in
    ``x-accel-redirect``/``x-sendfile`` mode leaves the bytes to the proxy.
    Raises :class:`FileNotFoundError` when the object is missing. A
    ``content_type`` that cannot be a header value (stored before declared
    types were checked) is sent as ``application/octet-stream``.
    """
    if _NOT_A_HEADER_VALUE.search(content_type):
        content_type = "application/octet-stream"
    base = [("Content-Type", content_type), ("ETag", etag), ("Accept-Ranges", "bytes"), *headers]
    if etag_matches(request.header("if-none-match"), etag):
        return Served(Response(304, [h for h in base if h[0] != "Content-Type"], None), False)
    range_header = request.header("range")
    if range_header is not None and not _if_range_holds(request.header("if-range"), etag):
        range_header = None  # the client's earlier part is of other bytes: send them all
    try:
        byte_range = parse_range(range_header, size)
    except RangeNotSatisfiable:
        hdrs = [h for h in base if h[0] != "ETag"]
        hdrs.append(("Content-Range", f"bytes */{size}"))
        return Served(Response(416, hdrs + [("Content-Length", "0")], None), False)
    status, start, length = 200, 0, size
    if byte_range is not None:
        status, start, length = 206, byte_range.start, byte_range.length
        base.append(("Content-Range", f"bytes {start}-{start + length - 1}/{size}"))
    base.append(("Content-Length", str(length)))
    if request.method == "HEAD":
        return Served(Response(status, base, None), False)
    if serve_mode != "direct":
        internal = storage.internal_path(key)
        if internal is not None and byte_range is None:
            header = "X-Accel-Redirect" if serve_mode == "x-accel-redirect" else "X-Sendfile"
            target = accel_prefix.rstrip("/") + "/" + internal if header == "X-Accel-Redirect" else internal
            hdrs = [h for h in base if h[0] != "Content-Length"]
            hdrs.append((header, target))
            return Served(Response(status, hdrs, b""), True)
    stream = storage.open(key, start, length)
    return Served(Response(status, base, StreamBody(stream, length)), start == 0)
