"""``upload_from_url``'s download (spec section 7) through the host's safe fetcher.

:class:`hepcore.outbound.Fetcher` does the checking (URL form, resolution,
blocked ranges, pinned connections, redirects, credential dropping, time
limits, the byte cap); this module streams the body into an object writer and
turns every failure into the spec's message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hepcore.errors import BodyTooLarge, StorageError
from hepcore.http import is_text
from hepcore.outbound import (
    CONNECTION_FAILED,
    Fetcher,
    FetchError,
    InvalidURL,
    ResponseTooLarge,
    human_size,
)
from hepcore.storage import ObjectWriter, Storage

from .store import new_writer

log = logging.getLogger("hepcore.cdn")


class DownloadFailed(Exception):
    """The download failed; ``reason`` is the text after ``Upload failed: ``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Downloaded:
    """A fetched body in an uncommitted writer, and the remote ``Content-Type``."""

    writer: ObjectWriter
    remote_type: str | None


def download(fetcher: Fetcher, storage: Storage, url: str, *, cap: int,
             authorization: str | None = None) -> Downloaded:
    """GET ``url`` and stream at most ``cap`` bytes into a new writer.

    ``authorization`` goes to the URL's own origin only, as ``Authorization``.
    Raises :class:`DownloadFailed`; nothing is left behind when it does. A URL
    that cannot be written as UTF-8 (a lone surrogate from JSON) is ``Invalid URL``.
    """
    if not is_text(url):
        raise DownloadFailed(InvalidURL.default_reason)
    origin_headers = {"Authorization": authorization} if authorization else None
    try:
        response = fetcher.open("GET", url, origin_headers=origin_headers)
    except FetchError as exc:
        raise DownloadFailed(exc.reason) from exc
    except Exception as exc:  # a fetcher bug must still not be a 500
        log.exception("fetcher failed on %r", url)
        raise DownloadFailed(CONNECTION_FAILED) from exc
    with response:
        if not 200 <= response.status < 300:
            raise DownloadFailed(f"Failed to download: {response.status}")
        try:
            writer = new_writer(storage, cap)
        except StorageError as exc:
            raise DownloadFailed("storage error") from exc
        try:
            for chunk in response.iter_body(cap):
                writer.write(chunk)
        except (ResponseTooLarge, BodyTooLarge) as exc:
            writer.abort()
            raise DownloadFailed(f"File too large: exceeds limit of {human_size(cap)}") from exc
        except FetchError as exc:
            writer.abort()
            raise DownloadFailed(exc.reason) from exc
        except StorageError as exc:
            writer.abort()
            raise DownloadFailed("storage error") from exc
        except Exception as exc:
            writer.abort()
            log.exception("reading the body of %r failed", url)
            raise DownloadFailed(CONNECTION_FAILED) from exc
        except BaseException:
            writer.abort()
            raise
        return Downloaded(writer, response.headers.get("content-type"))
