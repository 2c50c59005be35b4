"""What moderation plugins see and how they refuse (``hepcore_inspect_upload``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UploadCandidate:
    """An upload whose bytes are written but not yet committed.

    ``head`` is the first bytes of the content; ``image`` the decoded
    :class:`PIL.Image.Image` where the service decodes images, else ``None``.
    """

    service: str
    account_id: str | None
    content_type: str
    size: int
    sha256: str
    filename: str | None
    head: bytes = b""
    image: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """A refusal: the service's error ``code`` and ``message``, with HTTP ``status``."""

    code: str
    message: str
    status: int = 415
