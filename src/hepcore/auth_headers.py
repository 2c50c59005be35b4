"""How each service reads its credential from the ``Authorization`` header.

Each parser returns the credential, or raises :class:`MissingCredential`
(no usable header) or :class:`MalformedCredential` (a header in the wrong
form). Services turn those into their own messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .errors import CredentialError


class MissingCredential(CredentialError):
    """No ``Authorization`` header, or one with no credential in it."""


class MalformedCredential(CredentialError):
    """An ``Authorization`` header that is not in the service's accepted form."""


_UPLOADER_SCHEME = re.compile(r"(?:bearer|token)(?:[ \t]+|$)", re.IGNORECASE)


def uploader_header(value: str | None) -> str:
    """Hep.gg uploader (U1): the raw token, optionally after ``Bearer``/``Token``
    (case-insensitive); any other scheme word is part of a token that will not match."""
    if value is None:
        raise MissingCredential("no Authorization header")
    token = value.strip()
    scheme = _UPLOADER_SCHEME.match(token)
    if scheme is not None:
        token = token[scheme.end():]
    if not token:
        raise MissingCredential("empty Authorization header")
    return token


_BEARER_CI = re.compile(r"^\s*bearer[ \t]+(\S+)\s*$", re.IGNORECASE)


def bearer_header(value: str | None) -> str:
    """Paste and images: ``Bearer <credential>``, the scheme case-insensitive."""
    if value is None or not value.strip():
        raise MissingCredential("no Authorization header")
    m = _BEARER_CI.match(value)
    if m is None:
        raise MalformedCredential("expected Bearer <credential>")
    return m.group(1)


_CDN = re.compile(r'^(?:Bearer|Token)[ \t]+(?:token="([^"]*)"|(\S+))\s*$')


def cdn_header(value: str | None) -> str:
    """Hack Club CDN (C4): ``Bearer <key>``, ``Token <key>`` or ``Token token="<key>"``,
    the scheme word case-sensitive; a bare key is refused."""
    if value is None or not value.strip():
        raise MissingCredential("no Authorization header")
    m = _CDN.match(value.strip())
    if m is None:
        raise MalformedCredential("expected Bearer <key> or Token <key>")
    key = m.group(1) if m.group(1) is not None else m.group(2)
    if not key or (m.group(1) is not None and not value.strip().startswith("Token")):
        raise MalformedCredential("token= form is only for the Token scheme")
    return key


HEADER_PARSERS: dict[str, Callable[[str | None], str]] = {
    "uploader": uploader_header,
    "paste": bearer_header,
    "cdn": cdn_header,
    "images": bearer_header,
}
