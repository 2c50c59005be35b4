"""Request parameters as upstream's framework gathers them (spec section 3):
the query string, then a JSON, form or multipart body, the body winning.
Keys ending in ``[]`` collect lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from hepcore.errors import BadRequest, BodyTooLarge, ClientDisconnected, MalformedBody
from hepcore.http import Request
from hepcore.http import parse_json as parse_json_text
from hepcore.multipart import FormReader, boundary_of

from .names import clean_text

BODY_LIMIT = 1024 * 1024
FIELD_LIMIT = 64 * 1024
INVALID_JSON = "Invalid JSON body"


def _merge_pairs(into: dict[str, Any], pairs: Iterable[tuple[str, str]]) -> None:
    for key, value in pairs:
        if key.endswith("[]"):
            name = key[:-2]
            current = into.get(name)
            if isinstance(current, list):
                current.append(value)
            else:
                into[name] = [value]
        else:
            into[key] = value


def is_json(media_type: str) -> bool:
    """Whether a body of this (parameter-free, lower-cased) media type is read as JSON."""
    return media_type == "application/json" or media_type.endswith("+json")


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body; 400 ``Invalid JSON body`` when it is not UTF-8
    JSON (nested too deeply included)."""
    try:
        return parse_json_text(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError is one
        raise BadRequest(INVALID_JSON) from None


def refuse_malformed_json(request: Request) -> None:
    """Section 3 on a route that takes no JSON parameters (the multipart upload
    routes): a JSON body that does not parse is 400 ``Invalid JSON body``.
    Any other body, a well-formed or empty JSON one, and one too large to check
    (over ``BODY_LIMIT``) or cut short, pass: the caller answers them."""
    if not is_json(request.media_type):
        return
    try:
        raw = request.read_body(BODY_LIMIT)
    except (BodyTooLarge, ClientDisconnected):
        return
    if raw.strip():
        parse_json(raw)


def read_params(request: Request) -> dict[str, Any]:
    """The merged parameters. Malformed JSON (nested too deeply included) is a
    400 ``Invalid JSON body``; a body too large or unreadable is a 400 too.
    JSON strings may hold lone surrogates (``"\\ud800"``): callers clean them
    (:func:`list_param` does) before storing or echoing them."""
    params: dict[str, Any] = {}
    _merge_pairs(params, parse_qsl(request.query_string, keep_blank_values=True))
    media = request.media_type
    try:
        if is_json(media):
            raw = request.read_body(BODY_LIMIT)
            if raw.strip():
                data = parse_json(raw)
                if isinstance(data, dict):
                    params.update(data)
        elif media == "application/x-www-form-urlencoded":
            raw = request.read_body(BODY_LIMIT)
            text = raw.decode("utf-8", "replace")
            _merge_pairs(params, parse_qsl(text, keep_blank_values=True))
        elif media == "multipart/form-data":
            boundary = boundary_of(request.content_type)
            if boundary is None:
                raise BadRequest("Malformed multipart body")
            pairs: list[tuple[str, str]] = []
            form = FormReader(request.body, boundary, chunk_size=64 * 1024,
                              body_limit=BODY_LIMIT)
            for part in form:
                if part.is_file:
                    part.drain()
                else:
                    pairs.append((part.name, part.read(FIELD_LIMIT).decode("utf-8", "replace")))
            _merge_pairs(params, pairs)
    except BodyTooLarge:
        raise BadRequest("Request body too large") from None
    except (MalformedBody, ClientDisconnected):
        if media == "application/json":
            raise BadRequest(INVALID_JSON) from None
        raise BadRequest("Malformed request body") from None
    return params


def string_param(params: dict[str, Any], name: str) -> str | None:
    """``params[name]`` as a string, ``None`` when absent or null; any other
    type is a 400 ``<name> must be a string``."""
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def list_param(params: dict[str, Any], name: str) -> list[str]:
    """``params[name]`` as a list of strings (a single string is a list of one);
    blank entries dropped, each lone surrogate replaced by ``\ufffd`` so that
    the values can be queried and echoed."""
    value = params.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise BadRequest(f"{name} must be an array of strings")
    return [clean_text(v) for v in values if v.strip()]
