"""The error hierarchy shared by the core and every service.

Service code raises :class:`ServiceError` subclasses; the owning service's
envelope renders them. Nothing here knows about Falcon.
"""

from __future__ import annotations

from typing import Any


class HepcoreError(Exception):
    """Base class of every hepcore exception."""


class ServiceError(HepcoreError):
    """An error that becomes an HTTP response in the owning service's envelope.

    ``status`` is the HTTP status, ``message`` the human-readable text (the
    ``error`` member of most envelopes), ``code`` the machine-readable code
    where the service's spec lists one, ``headers`` extra response headers
    and ``extra`` members merged into the error body (for example the CDN's
    ``quota`` object).
    """

    status: int = 500
    default_message: str = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)
        if status is not None:
            self.status = status
        self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(ServiceError):
    """400: the request is malformed or a field is invalid."""

    status = 400
    default_message = "Bad request"


class Unauthorized(ServiceError):
    """401: missing or unusable credentials."""

    status = 401
    default_message = "Unauthorized"


class PaymentRequired(ServiceError):
    """402: a storage quota would be exceeded."""

    status = 402
    default_message = "Storage quota exceeded"


class Forbidden(ServiceError):
    """403: the caller may not do this."""

    status = 403
    default_message = "Forbidden"


class NotFound(ServiceError):
    """404: nothing lives here."""

    status = 404
    default_message = "Not found"


class MethodNotAllowed(ServiceError):
    """405: the route exists but not for this method."""

    status = 405
    default_message = "Method not allowed"


class Conflict(ServiceError):
    """409: the name or state is already taken."""

    status = 409
    default_message = "Conflict"


class PayloadTooLarge(ServiceError):
    """413: the body or file is above a size limit."""

    status = 413
    default_message = "Payload too large"


class UnsupportedMediaType(ServiceError):
    """415: the content type or format is not accepted."""

    status = 415
    default_message = "Unsupported media type"


class Unprocessable(ServiceError):
    """422: the request was understood but could not be carried out."""

    status = 422
    default_message = "Unprocessable entity"


class RateLimited(ServiceError):
    """429: too many requests; ``retry_after`` seconds until the next is accepted."""

    status = 429
    default_message = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.headers.setdefault("Retry-After", str(self.retry_after))


class NotImplementedFormat(ServiceError):
    """501: a requested format or feature is not available."""

    status = 501
    default_message = "Not implemented"


class InternalError(ServiceError):
    """500: an unexpected failure; the details go to the log, not the client."""

    status = 500
    default_message = "Internal server error"


# --- core failures that services translate into their own messages ---------


class CredentialError(HepcoreError):
    """A credential was presented but is not usable."""


class UnknownCredential(CredentialError):
    """No key or token matches the credential."""


class CredentialDisabled(CredentialError):
    """The key exists but is disabled."""


class CredentialRevoked(CredentialError):
    """The key exists but was revoked or rotated away."""


class TokenExpired(CredentialError):
    """A signed token is genuine but past its ``max_age``."""


class BadSignature(CredentialError):
    """A signed token was tampered with, or signed for another purpose."""


class BodyError(HepcoreError):
    """The request body could not be read as the declared format."""


class MalformedBody(BodyError):
    """The body does not parse (bad multipart framing, bad JSON, bad encoding)."""


class BodyTooLarge(BodyError):
    """The body, or one file in it, passed its size limit while streaming."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body exceeds {limit} bytes")
        self.limit = limit


class ClientDisconnected(BodyError):
    """The client went away before the body was complete."""


class StorageError(HepcoreError, OSError):
    """A storage backend failed to write, read or delete."""


class QuotaExceeded(HepcoreError):
    """Charging a quota would pass its byte or count limit."""

    def __init__(self, used_bytes: int, used_count: int, limit_bytes: int | None,
                 limit_count: int | None) -> None:
        super().__init__("quota exceeded")
        self.used_bytes = used_bytes
        self.used_count = used_count
        self.limit_bytes = limit_bytes
        self.limit_count = limit_count


class ConfigError(HepcoreError):
    """The configuration is invalid; the message says which setting and why."""


class NotFoundError(HepcoreError, LookupError):
    """An admin operation named an account, key or item that does not exist."""
