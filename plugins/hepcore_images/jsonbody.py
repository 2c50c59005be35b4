"""The JSON object bodies of the key-authenticated routes (upload tokens, webhooks)."""

from __future__ import annotations

import json
from typing import Any

from hepcore.errors import BodyTooLarge, ClientDisconnected
from hepcore.http import Request

from .errors import INVALID_JSON, ImagesBadRequest

JSON_LIMIT = 64 * 1024


def read_json_object(request: Request, *, empty_is_object: bool = False) -> dict[str, Any]:
    """The body as a JSON object, at most 64 KiB; with ``empty_is_object`` an
    empty (or blank) body is ``{}``. Anything else (not UTF-8 JSON, nested too
    deeply to parse, not an object, too long, cut short) is 400
    ``Invalid JSON body.``"""
    try:
        raw = request.read_body(JSON_LIMIT)
    except (BodyTooLarge, ClientDisconnected):
        raise ImagesBadRequest(INVALID_JSON) from None
    if empty_is_object and not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting recurses
        raise ImagesBadRequest(INVALID_JSON) from None
    if not isinstance(data, dict):
        raise ImagesBadRequest(INVALID_JSON)
    return data
