"""What moderation plugins see and how they refuse (``hepcore_inspect_upload``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UploadCandidate:
    """An upload whose bytes are written but not yet committed.

    ``sha256`` is the hex digest of the content, computed when first read
    (``digest`` computes it: a service that does not hash while receiving
    reads the bytes back then). ``head`` is the first bytes of the content;
    ``image`` the decoded :class:`PIL.Image.Image` where the service decodes
    images, else ``None``.
    """

    service: str
    account_id: str | None
    content_type: str
    size: int
    digest: Callable[[], str] = field(repr=False, compare=False)
    filename: str | None
    head: bytes = b""
    image: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return self.digest()


@dataclass(frozen=True)
class Rejection:
    """A refusal: the service's error ``code`` and ``message``, with HTTP ``status``."""

    code: str
    message: str
    status: int = 415
