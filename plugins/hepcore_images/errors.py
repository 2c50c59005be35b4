"""The Fixitfy error codes (images.md section 3) as :class:`ServiceError` classes.

Each class carries its HTTP status, its ``code`` and, where the spec fixes
one, its message; :class:`~hepcore.envelope.CodeEnvelope` renders them as
``{"ok": false, "code": ..., "error": ...}``. Raise them with a message to
override the default, e.g. ``ImagesNotFound("Webhook not found.")``.
"""

from __future__ import annotations

from typing import Any

from hepcore.errors import ServiceError

MISSING_FILE = 'No file uploaded. Send the image in a multipart field named "file".'
EMPTY_FILE = "The uploaded file is empty."
EXPECTED_MULTIPART = "Expected multipart/form-data."
MALFORMED_MULTIPART = "Malformed multipart body."
INVALID_JSON = "Invalid JSON body."
MISSING_AUTH = "Missing Authorization header."
MALFORMED_AUTH = "Malformed Authorization header. Use: Bearer <key>."
INVALID_KEY = "Invalid or revoked API key."
INVALID_TOKEN = "Invalid upload token."
TOKEN_EXPIRED = "Upload token expired."
TOKEN_UPLOAD_ONLY = "Upload tokens can only be used to upload."
BANNED = "Your account is banned."
UPLOAD_NOT_FOUND = "Upload not found."
IMAGE_NOT_FOUND = "Image not found."
DELETE_LINK_INVALID = "Delete link is invalid or was already used."
RANGE_NOT_SATISFIABLE = "Requested range not satisfiable."
WEBHOOK_NOT_FOUND = "Webhook not found."
UNSUPPORTED_TYPE = "Unsupported file type. Allowed: PNG, JPG, GIF, WebP, AVIF."
NSFW_REJECTED = "Explicit content detected. This image cannot be hosted."
PROCESSING_FAILED = "The image could not be processed. It may be corrupt."
STORAGE_FAILED = "Could not store the image. Retry with exponential backoff."
DB_FAILED = "Could not save the upload. Retry with exponential backoff."
NOT_ROUTE = "No such endpoint."
METHOD_NOT_ALLOWED = "Method not allowed."


class ImagesError(ServiceError):
    """Base class: ``default_code`` is used when no ``code`` is given."""

    default_code = "error"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, code=code or self.default_code, **kwargs)


class ImagesBadRequest(ImagesError):
    """400 ``bad_request``: the message names the cause."""

    status, default_code, default_message = 400, "bad_request", "Bad request."


class ImagesMissingFile(ImagesError):
    """400 ``missing_file``: no multipart part named ``file``."""

    status, default_code, default_message = 400, "missing_file", MISSING_FILE


class ImagesEmptyFile(ImagesError):
    """400 ``empty_file``: the ``file`` part has no bytes."""

    status, default_code, default_message = 400, "empty_file", EMPTY_FILE


class ImagesUnauthorized(ImagesError):
    """401 ``unauthorized``: section 2 gives the message."""

    status, default_code, default_message = 401, "unauthorized", INVALID_KEY


class ImagesBanned(ImagesError):
    """403 ``banned``: the owner of the key or token is banned."""

    status, default_code, default_message = 403, "banned", BANNED


class ImagesNotFound(ImagesError):
    """404 ``not_found``: ``Upload not found.``, ``Image not found.``, ``Webhook not found.``..."""

    status, default_code, default_message = 404, "not_found", UPLOAD_NOT_FOUND


class ImagesMethodNotAllowed(ImagesError):
    """405 ``method_not_allowed``: the path exists, the method does not."""

    status, default_code, default_message = 405, "method_not_allowed", METHOD_NOT_ALLOWED


class ImagesTooLarge(ImagesError):
    """413 ``too_large``: the byte limit, or the pixel limit naming the dimensions."""

    status, default_code, default_message = 413, "too_large", "File exceeds the 20 MB limit."


class ImagesUnsupportedType(ImagesError):
    """415 ``unsupported_type``: not PNG, JPEG, GIF, WebP or AVIF by its magic bytes."""

    status, default_code, default_message = 415, "unsupported_type", UNSUPPORTED_TYPE


class ImagesProcessingFailed(ImagesError):
    """415 ``processing_failed``: the image does not decode (corrupt, truncated)."""

    status, default_code, default_message = 415, "processing_failed", PROCESSING_FAILED


class ImagesRejected(ImagesError):
    """415 ``nsfw_rejected`` by default: a moderation plugin refused the image."""

    status, default_code, default_message = 415, "nsfw_rejected", NSFW_REJECTED


class ImagesRangeNotSatisfiable(ImagesError):
    """416 ``range_not_satisfiable``: a ``Range`` on ``/images/<filename>`` that
    starts past the image's last byte (or asks for its last 0 bytes)."""

    status, default_code, default_message = (416, "range_not_satisfiable",
                                             RANGE_NOT_SATISFIABLE)


class ImagesRateLimited(ImagesError):
    """429 ``rate_limit`` (or ``rate_limit_day``) with ``Retry-After``."""

    status, default_code = 429, "rate_limit"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, code=code, headers={"Retry-After": str(self.retry_after)})


class ImagesStorageFailed(ImagesError):
    """500 ``storage_failed``: the bytes could not be stored; nothing was kept."""

    status, default_code, default_message = 500, "storage_failed", STORAGE_FAILED


class ImagesDbFailed(ImagesError):
    """500 ``db_failed``: the row could not be committed; the stored bytes were removed."""

    status, default_code, default_message = 500, "db_failed", DB_FAILED
