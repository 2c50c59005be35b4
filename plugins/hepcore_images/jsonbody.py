"""The JSON object bodies of the key-authenticated routes (upload tokens, webhooks)."""

from __future__ import annotations

import json
import sys
from typing import Any

from hepcore.errors import BodyTooLarge, ClientDisconnected
from hepcore.http import Request

from .errors import INVALID_JSON, ImagesBadRequest

JSON_LIMIT = 64 * 1024


def parse_int(literal: str) -> int:
    """A JSON integer literal as ``int``, saturating: one with more digits than
    Python converts (``sys.get_int_max_str_digits()``, 4300 by default, where
    ``int()`` raises ``ValueError``) becomes the largest integer it does convert
    (4300 nines), with its sign. That is outside every range a field allows, so
    a 5000-digit ``ttl_seconds`` gets the ttl range message rather than
    ``Invalid JSON body.``, and the value can still be turned back into text."""
    try:
        return int(literal)
    except ValueError:
        largest: int = 10 ** sys.get_int_max_str_digits() - 1
        return -largest if literal.startswith("-") else largest


def read_json_object(request: Request, *, empty_is_object: bool = False) -> dict[str, Any]:
    """The body as a JSON object, at most 64 KiB; with ``empty_is_object`` an
    empty (or blank) body is ``{}``. Anything else (not UTF-8 JSON, nested too
    deeply to parse, not an object, too long, cut short) is 400
    ``Invalid JSON body.`` Integers too long to convert are read by
    :func:`parse_int`."""
    try:
        raw = request.read_body(JSON_LIMIT)
    except (BodyTooLarge, ClientDisconnected):
        raise ImagesBadRequest(INVALID_JSON) from None
    if empty_is_object and not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting recurses
        raise ImagesBadRequest(INVALID_JSON) from None
    if not isinstance(data, dict):
        raise ImagesBadRequest(INVALID_JSON)
    return data
