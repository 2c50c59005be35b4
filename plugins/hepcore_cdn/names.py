"""Filenames: multipart part filenames as sent, upstream's sanitising (C8),
extensions, URL segments and storage keys."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import multipart as _mp

from hepcore.multipart import header_text

if TYPE_CHECKING:
    from hepcore.multipart import Part

_REPLACED = re.compile('[\u202e%$|:;/<>?*"\t\r\n\\\\]')
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
URL_SEGMENT_SAFE = "!&'()*+,=@"
"""Characters a path segment keeps unencoded in file URLs (as upstream's router)."""
MAX_KEY_NAME = 120
MAX_FILENAME = 255
"""Characters a display filename keeps (Decision: longer names are cut)."""
MAX_KEPT_EXTENSION = 32


def _unquote_keeping_paths(value: str, filename: bool = False) -> str:
    """The parser's ``content_disposition_unquote`` with its ``filename``
    workaround always off (the signature ``parse_options_header`` calls)."""
    unquoted: str = _mp.content_disposition_unquote(value, False)
    return unquoted


def sent_filename(disposition: str | None) -> str | None:
    """The ``filename`` parameter of a part's ``Content-Disposition`` header as
    the client sent it, or ``None`` when there is none.

    Decoded exactly as the multipart parser decodes ``Part.filename``, but
    without its workaround for old Internet Explorer, which cuts a value that
    looks like a Windows path (``C:\\x\\y.txt``, ``\\\\server\\f.txt``) to its
    last part: 4.2 turns each ``\\`` and ``:`` into ``-`` instead
    (``C--x-y.txt``). The parser's fast path and fallback are both mirrored."""
    if disposition is None:
        return None
    split = disposition.split('"', 4)
    if split[0] == "form-data; name=" and split[-1] == "":
        if len(split) == 3:
            return None
        if len(split) == 5 and split[2] == "; filename=":
            name = split[3]
            if "%" in name or "\\" in name:
                name = _unquote_keeping_paths(name)
            return name
    _, options = _mp.parse_options_header(disposition, unquote=_unquote_keeping_paths)
    value = options.get("filename")
    return value if isinstance(value, str) else None


def part_filename(part: Part) -> str:
    """A file part's filename as sent (:func:`sent_filename`), decoded as
    UTF-8 with invalid sequences as ``\ufffd`` (4.2 step 1); ``""`` when it has
    none. The part must come from a reader with ``header_charset="latin-1"``."""
    return clean_text(header_text(sent_filename(part.headers.get("Content-Disposition")) or ""))


def clean_text(name: str) -> str:
    """A string safe to put into JSON: each lone surrogate becomes one ``\ufffd``."""
    return name.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def sanitize(name: str) -> str:
    """4.2 steps 2 and 3: strip surrounding whitespace, then replace each of
    U+202E ``% $ | : ; / < > ? * "`` TAB CR LF ``\\`` with ``-``; then cut
    to :data:`MAX_FILENAME` characters, keeping an extension of at most
    :data:`MAX_KEPT_EXTENSION` (a longer name would give a file URL and a
    ``Content-Disposition`` header that servers, proxies and browsers refuse)."""
    return cut(_REPLACED.sub("-", clean_text(name).strip()))


def cut(name: str) -> str:
    """``name`` (stripped) cut to :data:`MAX_FILENAME` characters, keeping its
    extension when that has at most :data:`MAX_KEPT_EXTENSION` characters (its
    dot included); what is cut ends in no whitespace."""
    if len(name) <= MAX_FILENAME:
        return name
    ext = extension(name)
    if len(ext) > MAX_KEPT_EXTENSION:
        ext = ""
    return name[:MAX_FILENAME - len(ext)].rstrip() + ext


def extension(name: str) -> str:
    """The extension with its dot (``.png``), or ``""``: a dot that is not the
    first character, followed by at least one character."""
    dot = name.rfind(".")
    if dot <= 0 or dot == len(name) - 1:
        return ""
    return name[dot:]


def renamed(old: str, new: str) -> str:
    """6.5 step 4: keep the old extension when the new name has none."""
    if not extension(new) and extension(old):
        return cut(new + extension(old))
    return new


def url_segment(name: str) -> str:
    """The filename percent-encoded as one path segment. ``.`` and ``..`` have
    their dots encoded (``%2E``), or clients would resolve them as dot segments."""
    if name in (".", ".."):
        return "%2E" * len(name)
    return quote(name, safe=URL_SEGMENT_SAFE)


def storage_key(upload_id: str, name: str) -> str:
    """``cdn/<id>/<name>`` with the name reduced to storage-key characters."""
    safe = _KEY_UNSAFE.sub("_", name)[:MAX_KEY_NAME].lstrip(".") or "file"
    return f"cdn/{upload_id}/{safe}"


def filename_from_url(url: str) -> str:
    """6.3 step 6: the last path segment of ``url`` (query ignored, not
    percent-decoded); ``download`` for an empty path, ``/`` for ``/``; then
    sanitised (``/`` becomes ``-``)."""
    path = urlsplit(url).path
    if path == "":
        name = "download"
    else:  # a basename: trailing slashes ignored; a path of only slashes is "/"
        stripped = path.rstrip("/")
        name = stripped.rsplit("/", 1)[-1] if stripped else "/"
    return sanitize(name) or "download"
