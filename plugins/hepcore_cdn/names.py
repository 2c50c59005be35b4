"""Filenames: upstream's sanitising (C8), extensions, URL segments and storage keys."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_REPLACED = re.compile('[\u202e%$|:;/<>?*"\t\r\n\\\\]')
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
URL_SEGMENT_SAFE = "!&'()*+,=@"
"""Characters a path segment keeps unencoded in file URLs (as upstream's router)."""
MAX_KEY_NAME = 120


def from_header(name: str) -> str:
    """A multipart header value read as Latin-1 (each byte one character), decoded
    as UTF-8 with invalid sequences as ``\ufffd`` (4.2 step 1)."""
    try:
        raw = name.encode("latin-1")
    except UnicodeEncodeError:  # not a Latin-1 reading of bytes: already text
        return clean_text(name)
    return raw.decode("utf-8", "replace")


def clean_text(name: str) -> str:
    """A string safe to put into JSON: each lone surrogate becomes one ``\ufffd``."""
    return name.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def sanitize(name: str) -> str:
    """4.2 steps 2 and 3: strip surrounding whitespace, then replace each of
    U+202E ``% $ | : ; / < > ? * "`` TAB CR LF ``\\`` with ``-``."""
    return _REPLACED.sub("-", clean_text(name).strip())


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
        return new + extension(old)
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
