"""``POST /api/v1/upload`` (images.md section 5), in the spec's processing order.

The ``file`` part is spooled to an unnamed temporary file (never memory)
while its SHA-256 is computed; the image is identified by magic bytes, its
header checked against the pixel limit, every frame decoded, moderation
consulted, the cleaned bytes written durably, and the row committed with
its webhook event in one transaction. A mixin of the service.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import sqlite3
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

from PIL import Image

from hepcore.clock import ALNUM, iso_ms, random_string
from hepcore.errors import BodyTooLarge, ClientDisconnected, MalformedBody, StorageError
from hepcore.http import Request, Response
from hepcore.inspection import UploadCandidate
from hepcore.multipart import FormReader, boundary_of, header_text
from hepcore.pending import PendingRecordFailed
from hepcore.storage import HEAD_BYTES
from hepcore.tokens import Actor

from .avif import check_avif
from .cleaning import CorruptImage, can_strip, clean
from .errors import (
    EXPECTED_MULTIPART,
    MALFORMED_MULTIPART,
    ImagesBadRequest,
    ImagesDbFailed,
    ImagesEmptyFile,
    ImagesMissingFile,
    ImagesProcessingFailed,
    ImagesRejected,
    ImagesStorageFailed,
    ImagesTooLarge,
    ImagesUnsupportedType,
)
from .formats import (
    Format,
    TooLarge,
    Unprocessable,
    check_gif,
    decode_all,
    identify,
    open_header,
    webp_canvas,
)
from .store import Upload
from .structure import check_structure

if TYPE_CHECKING:
    from hepcore.runtime import Runtime
    from hepcore.storage import Storage

    from .formats import PixelBudget
    from .store import UploadStore
    from .webhooks import Webhooks

log = logging.getLogger("hepcore.images")

NAME_LENGTH = 12
SPOOL_CHUNK = 1024 * 1024


def _spool_failed() -> ImagesStorageFailed:
    """Logs the spool's I/O failure being handled (a full or missing spool
    directory): the upload is ``storage_failed``, like any storage failure."""
    log.exception("cannot spool an upload")
    return ImagesStorageFailed()


class Spool:
    """The received bytes in an unnamed temporary file, counted and hashed.

    Passing ``max_size`` raises :class:`BodyTooLarge`; failing to create, write
    or read back the file raises ``ImagesStorageFailed``. The file has no name
    (``O_TMPFILE`` where available), so nothing survives a crash.
    """

    def __init__(self, directory: Path, max_size: int) -> None:
        try:
            self.file: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        except OSError:
            raise _spool_failed() from None
        self.max_size = max_size
        self.size = 0
        self.head = b""
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_size:
            raise BodyTooLarge(self.max_size)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self._hash.update(data)
        try:
            self.file.write(data)
        except OSError:
            raise _spool_failed() from None

    def rewind(self) -> None:
        """Back to the first byte, for reading (what is buffered is written first)."""
        try:
            self.file.seek(0)
        except OSError:
            raise _spool_failed() from None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        # The file has no name: a failure to flush what was left in its buffer
        # (a full disk) loses nothing, and must not hide the request's outcome.
        with contextlib.suppress(OSError):
            self.file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Outcome:
    """A stored upload and its one-time delete token, or the dedupe hit it matched."""

    upload: Upload
    delete_token: str | None
    duplicate: bool = False


class UploadPipeline:
    if TYPE_CHECKING:
        # Provided by ImagesService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        name: str
        runtime: Runtime
        storage: Storage
        uploads: UploadStore
        webhooks: Webhooks
        max_bytes: int
        overhead: int
        pixel_budget: PixelBudget
        spool_dir: Path
        filename_prefix: str
        too_large_message: str

        def authenticate_upload(self, request: Request) -> Actor: ...
        def public_base(self, request: Request) -> str: ...
        def image_url(self, base: str, filename: str) -> str: ...

    def api_upload(self, request: Request) -> Response:
        """Section 5; a database failure at any step is ``db_failed`` (nothing is
        kept: each step undoes its own writes before the error leaves it)."""
        try:
            return self._upload(request)
        except sqlite3.Error:
            log.exception("database failure during an upload")
            raise ImagesDbFailed() from None

    def _upload(self, request: Request) -> Response:
        actor = self.authenticate_upload(request)  # steps 1-2
        if request.media_type != "multipart/form-data":  # step 3
            raise ImagesBadRequest(EXPECTED_MULTIPART)
        boundary = boundary_of(request.content_type)
        if boundary is None:
            raise ImagesBadRequest(MALFORMED_MULTIPART)
        too_large = ImagesTooLarge(self.too_large_message)
        if (request.content_length is not None
                and request.content_length > self.max_bytes + self.overhead):  # step 4
            raise too_large
        with Spool(self.spool_dir, self.max_bytes) as spool:
            try:
                filename = self._receive(request, boundary, spool)  # steps 5-6
            except BodyTooLarge:
                raise too_large from None
            except (MalformedBody, ClientDisconnected):
                raise ImagesBadRequest(MALFORMED_MULTIPART) from None
            if spool.size == 0:  # step 7
                raise ImagesEmptyFile()
            outcome = self.ingest(actor, spool, filename, self.public_base(request))
        return self.upload_reply(request, outcome)

    def ingest(self, actor: Actor, spool: Spool, filename: str | None,
               base: str) -> Outcome:
        """Steps 8-14 for received bytes (the API and ``hepcore images upload``)."""
        existing = self.uploads.by_hash(actor.account.id, spool.sha256)  # step 8
        if existing is not None:
            return Outcome(existing, None, duplicate=True)
        fmt = identify(spool.head)  # step 9
        if fmt is None:
            raise ImagesUnsupportedType()
        spool.rewind()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's own warnings; errors still raise
            img = self._open_checked(fmt, spool.file)  # step 10
            size = img.size
            # Full-size pixels are needed only to rotate or re-encode; moderation
            # plugins get a JPEG at reduced scale (the full size is in ``extra``).
            # Only a JPEG's EXIF is read before decoding (from APP1, loading no
            # pixels): for other formats getexif() loads the image, and a failed
            # load would leave nothing for decode_all to check.
            reduced = fmt.name == "jpeg" and can_strip(fmt, img)
            try:
                frames = decode_all(img, self.pixel_budget, reduced=reduced)  # step 11
                if frames > 1 and not can_strip(fmt, img):
                    self.pixel_budget.check_reencode(frames, img.size)
            except TooLarge as exc:
                raise ImagesTooLarge(str(exc)) from None
            except Exception:  # noqa: BLE001 - any decoder failure means a corrupt image
                raise ImagesProcessingFailed() from None
            self._moderate(actor, fmt, img, spool, filename, size, frames)  # step 12
            return self._store(actor, fmt, img, spool, base, size)  # steps 13-14

    def _receive(self, request: Request, boundary: str,
                 spool: Spool) -> str | None:
        """Stream the ``file`` part into ``spool``; its filename as text
        (:func:`hepcore.multipart.header_text`). Other parts are skipped."""
        # Latin-1 reads every byte, so a part header that is not UTF-8 (a filename
        # in any part) leaves the body well-formed: filenames play no part (5.2 step 9).
        form = FormReader(request.body, boundary, chunk_size=request.read_chunk_size,
                          body_limit=self.max_bytes + self.overhead, header_charset="latin-1")
        for part in form:
            if part.name == "file":
                for chunk in part.chunks():
                    spool.write(chunk)
                form.finish()  # the parts after it: only a whole request is processed
                return None if part.filename is None else header_text(part.filename)
        raise ImagesMissingFile()

    def _open_checked(self, fmt: Format, fh: IO[bytes]) -> Any:
        """The header only; 413 above the pixel budget, before any pixel is decoded
        (for a GIF, every frame's canvas and the frame count: :func:`check_gif`;
        for an AVIF, the frames its AV1 data codes too: :func:`check_avif`);
        415 for a container far beyond real images' structure (:mod:`.structure`)."""
        try:
            if fmt.name == "gif":
                check_gif(fh, self.pixel_budget)
            else:
                check_structure(fmt, fh)
            if fmt.name == "webp" and (canvas := webp_canvas(fh)) is not None:
                self.pixel_budget.check_frame(canvas)
            elif fmt.name == "avif":
                check_avif(fh, self.pixel_budget)
            img = open_header(fmt, fh)
            self.pixel_budget.check_frame(img.size)
        except TooLarge as exc:
            raise ImagesTooLarge(str(exc)) from None
        except Unprocessable as exc:
            raise ImagesProcessingFailed(str(exc)) from None
        except Exception:  # noqa: BLE001 - any header failure means a corrupt image
            raise ImagesProcessingFailed() from None
        return img

    def _moderate(self, actor: Actor, fmt: Format, img: Image.Image,
                  spool: Spool, filename: str | None, size: tuple[int, int],
                  frames: int) -> None:
        """Step 12 (section 11): the first rejection wins; a plugin that raises fails closed.

        ``frames`` is the count :func:`decode_all` decoded: Pillow's ``n_frames``
        can raise on a GIF with bytes after its trailer that decodes cleanly.
        """
        candidate = UploadCandidate(
            service=self.name, account_id=actor.account.id, content_type=fmt.mime,
            size=spool.size, digest=lambda: spool.sha256, filename=filename, head=spool.head,
            image=img, extra={"account": actor.account, "width": size[0],
                              "height": size[1], "format": fmt.name,
                              "frames": frames})
        try:
            rejection = self.runtime.inspect(candidate)
        except Exception:
            log.exception("a moderation plugin failed; refusing the upload")
            raise ImagesProcessingFailed() from None
        if rejection is not None:
            raise ImagesRejected(rejection.message, code=rejection.code,
                                 status=rejection.status)

    def _store(self, actor: Actor, fmt: Format, img: Image.Image,
               spool: Spool, base: str, size: tuple[int, int]) -> Outcome:
        """Steps 13-14: clean into a storage writer, commit the bytes, then the row."""
        name = self.filename_prefix + random_string(NAME_LENGTH, ALNUM) + fmt.ext
        key = f"images/{name}"
        try:
            writer = self.storage.writer()
        except (StorageError, OSError):
            log.exception("cannot open a storage writer")
            raise ImagesStorageFailed() from None
        with writer:
            try:
                width, height = clean(fmt, img, spool.file, writer.write, size)
            except (StorageError, OSError) as exc:
                if isinstance(exc, StorageError) or writer.aborted:
                    log.exception("storage write failed")
                    raise ImagesStorageFailed() from None
                raise ImagesProcessingFailed() from None
            except CorruptImage:
                raise ImagesProcessingFailed() from None
            except Exception:
                log.exception("cleaning failed")
                raise ImagesProcessingFailed() from None
            try:
                stored = self.runtime.pending.commit(writer, key)
            except PendingRecordFailed:
                log.exception("cannot record the upload's bytes as pending")
                raise ImagesDbFailed() from None
            except (StorageError, OSError):
                log.exception("storage commit failed")
                raise ImagesStorageFailed() from None
        token = secrets.token_hex(32)
        try:
            upload = self._insert(actor, name=name, key=key, fmt=fmt, width=width,
                                  height=height, size=stored.size,
                                  stored_sha256=writer.sha256, hash_sha256=spool.sha256,
                                  token=token, base=base)
        except sqlite3.IntegrityError:
            self._remove(key)
            existing = self.uploads.by_hash(actor.account.id, spool.sha256)
            if existing is not None:  # the same bytes, committed meanwhile (F1)
                return Outcome(existing, None, duplicate=True)
            log.exception("database insert failed")
            raise ImagesDbFailed() from None
        except BaseException as exc:
            self._remove(key)
            if isinstance(exc, Exception):
                log.exception("database insert failed")
                raise ImagesDbFailed() from None
            raise
        self.runtime.emit("upload.created", self.name, actor.account.id,
                          self.event_upload(upload, base))
        return Outcome(upload, token)

    def _remove(self, key: str) -> None:
        self.runtime.pending.discard(key)

    def _insert(self, actor: Actor, *, name: str, key: str, fmt: Format,
                width: int, height: int, size: int, stored_sha256: str, hash_sha256: str,
                token: str, base: str) -> Upload:
        """The row and its webhook event, in one transaction (step 14)."""
        with self.runtime.db.write() as conn:
            self.runtime.pending.settle(key)
            upload = self.uploads.insert(
                conn, filename=name, account_id=actor.account.id,
                key_id=actor.key.id if actor.key else None, mime=fmt.mime, size=size,
                width=width, height=height, hash_sha256=hash_sha256,
                stored_sha256=stored_sha256, storage_key=key,
                delete_token_hash=hashlib.sha256(token.encode()).hexdigest())
            self.webhooks.enqueue(conn, actor.account.id, "upload.created",
                                  self.webhook_data(upload, base))
        return upload

    def event_upload(self, upload: Upload, base: str) -> dict[str, Any]:
        """The ``upload`` object of events: the fields of the upload response."""
        return {
            "filename": upload.filename, "url": self.image_url(base, upload.filename),
            "size": upload.size, "mime": upload.mime, "width": upload.width,
            "height": upload.height, "hash_sha256": upload.hash_sha256,
        }

    def webhook_data(self, upload: Upload, base: str) -> dict[str, Any]:
        """What :meth:`Webhooks.enqueue` gets: the upload's fields and ``timestamp`` (10.1)."""
        return {**self.event_upload(upload, base), "timestamp": iso_ms(upload.created_at)}

    def upload_reply(self, request: Request, outcome: Outcome) -> Response:
        return Response.json(self.upload_json(outcome, self.public_base(request)))

    def upload_json(self, outcome: Outcome, base: str) -> dict[str, Any]:
        """5.3, or 5.4 for a dedupe hit (``duplicate``, ``delete_url`` null)."""
        upload, token = outcome.upload, outcome.delete_token
        body: dict[str, Any] = {"ok": True}
        if outcome.duplicate:
            body["duplicate"] = True
        body.update({
            "filename": upload.filename, "url": self.image_url(base, upload.filename),
            "delete_url": f"{base}/api/delete/{token}" if token else None,
            "size": upload.size, "mime": upload.mime, "width": upload.width,
            "height": upload.height, "hash_sha256": upload.hash_sha256,
        })
        return body
