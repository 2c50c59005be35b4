"""Request fields of the create and patch bodies (spec 4.1, 4.2 step 5) and plan rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hepcore.errors import BadRequest, BodyTooLarge, ClientDisconnected, PayloadTooLarge
from hepcore.http import Request, is_text, parse_json

MIB = 1024 * 1024
BODY_OVERHEAD = 64 * 1024
VISIBILITIES = ("public", "unlisted", "private")
TITLE_MAX = 200
LANGUAGE_MAX = 32
UNSET: Any = object()
PRIVATE_NEEDS_SIGN_IN = "Sign in to create private pastes"


def size_in_mb(limit: int) -> str:
    """``1``, ``8``, ``2.5``: a byte limit in MB (MiB) without trailing zeros."""
    return f"{limit / MIB:.2f}".rstrip("0").rstrip(".")


def too_large(cap: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Paste too large. Max {size_in_mb(cap)} MB.")


def read_json_object(request: Request, cap: int) -> dict[str, Any]:
    """Steps 3 and 4: the body, at most ``2 * cap + 64 KiB`` (413 with the plan
    message), as one JSON object (400 ``Invalid JSON body``)."""
    limit = 2 * cap + BODY_OVERHEAD
    if request.content_length is not None and request.content_length > limit:
        raise too_large(cap)
    try:
        raw = request.read_body(limit)
    except BodyTooLarge:
        raise too_large(cap) from None
    except ClientDisconnected:
        raise BadRequest("Invalid JSON body") from None
    try:
        text = raw.decode("utf-8")
        del raw  # the bytes are not needed once decoded
        data = parse_json(text)
    except ValueError:  # UnicodeDecodeError is one
        raise BadRequest("Invalid JSON body") from None
    if not isinstance(data, dict):
        raise BadRequest("Invalid JSON body")
    return data


def field(data: dict[str, Any], name: str, kind: type, label: str, *,
          nullable: bool = False) -> Any:
    """``data[name]``: :data:`UNSET` when absent, else checked against ``kind``
    (400 ``<name> must be a <label>``, or ``<name> must be valid UTF-8`` for a
    string holding a lone surrogate); ``None`` only when ``nullable``."""
    if name not in data:
        return UNSET
    value = data[name]
    if value is None:
        if nullable:
            return None
        raise BadRequest(f"{name} must be a {label}")
    ok = isinstance(value, bool) if kind is bool else isinstance(value, kind)
    if not ok:
        raise BadRequest(f"{name} must be a {label}")
    if kind is str and name != "content" and not is_text(value):
        # A lone surrogate, which JSON can spell (\ud800): a string, but not text.
        # Content gets its own message later (step 8).
        raise BadRequest(f"{name} must be valid UTF-8")
    return value


@dataclass
class PasteFields:
    """The create/patch fields after step 5 (type checks); :data:`UNSET` when absent."""

    content: Any
    title: Any
    language: Any
    visibility: Any
    is_permanent: Any
    turnstile_token: Any

    @classmethod
    def parse(cls, data: dict[str, Any], *, patch: bool = False) -> PasteFields:
        """Step 5, in the spec's field order, so the first wrong field is named.
        ``content`` is a string, never null (4.1): a null one is a wrong type,
        not missing content."""
        return cls(
            content=field(data, "content", str, "string"),
            title=field(data, "title", str, "string", nullable=True),
            language=field(data, "language", str, "string", nullable=True),
            visibility=field(data, "visibility", str, "string"),
            is_permanent=field(data, "isPermanent", bool, "boolean"),
            turnstile_token=UNSET if patch else field(data, "turnstileToken", str, "string"),
        )


def normal_title(value: Any) -> str | None:
    """Trimmed, cut to 200 characters; empty means ``None``."""
    if value is UNSET or value is None:
        return None
    return value.strip()[:TITLE_MAX] or None


def normal_language(value: Any) -> str | None:
    """Trimmed, lower-cased, cut to 32 characters; ``None`` means auto-detect."""
    if value is UNSET or value is None:
        return None
    return value.strip().lower()[:LANGUAGE_MAX] or None


def check_visibility(value: Any, default: str) -> str:
    if value is UNSET:
        return default
    if value not in VISIBILITIES:
        raise BadRequest("Invalid visibility")
    return str(value)


def has_text(content: Any) -> bool:
    return isinstance(content, str) and bool(content) and not content.isspace()
