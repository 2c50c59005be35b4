"""The JSON object bodies of the key-authenticated routes (upload tokens, webhooks)."""

from __future__ import annotations

from typing import Any

from hepcore.errors import BodyTooLarge, ClientDisconnected
from hepcore.http import Request, is_text, parse_json

from .errors import INVALID_JSON, ImagesBadRequest

JSON_LIMIT = 64 * 1024


class NotText:
    """The value :func:`read_json_object` puts in place of a JSON string that is
    not text: one holding a lone UTF-16 surrogate (``"\\ud800"``), which cannot
    be encoded as UTF-8 to be stored or sent. It is neither a string nor any
    other JSON type, so a field's type check refuses it with that field's own
    message, as it would a number where a string belongs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not text>"


NOT_TEXT = NotText()


def _replace_non_text(data: dict[str, Any]) -> None:
    """Put :data:`NOT_TEXT` in place of every string value, at any depth, that is
    not text. Member names are kept: one that is not text names no field."""
    todo: list[Any] = [data]
    while todo:
        node = todo.pop()
        slots = node.items() if isinstance(node, dict) else enumerate(node)
        for slot, value in list(slots):
            if isinstance(value, str):
                if not is_text(value):
                    node[slot] = NOT_TEXT
            elif isinstance(value, (dict, list)):
                todo.append(value)


def read_json_object(request: Request, *, empty_is_object: bool = False) -> dict[str, Any]:
    """The body as a JSON object, at most 64 KiB; with ``empty_is_object`` an
    empty (or blank) body is ``{}``. Anything else (not UTF-8 JSON, nested too
    deeply to parse, not an object, too long, cut short) is 400
    ``Invalid JSON body.`` Integers too long to convert saturate
    (:func:`hepcore.http.saturating_int`); strings that are not text are :data:`NOT_TEXT`, so
    callers only ever see strings that can be stored and sent."""
    try:
        raw = request.read_body(JSON_LIMIT)
    except (BodyTooLarge, ClientDisconnected):
        raise ImagesBadRequest(INVALID_JSON) from None
    if empty_is_object and not raw.strip():
        return {}
    try:
        data = parse_json(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is one
        raise ImagesBadRequest(INVALID_JSON) from None
    if not isinstance(data, dict):
        raise ImagesBadRequest(INVALID_JSON)
    _replace_non_text(data)
    return data
