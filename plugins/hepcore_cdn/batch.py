"""``POST /api/v4/uploads`` (spec 6.4): up to 40 files, every quota decision
made for the whole batch before anything is stored. A mixin of the service."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hepcore.accounts import Account
from hepcore.errors import (
    BadRequest,
    BodyTooLarge,
    ClientDisconnected,
    MalformedBody,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceError,
    StorageError,
)
from hepcore.http import Request, Response
from hepcore.multipart import Part
from hepcore.outbound import human_size
from hepcore.storage import ObjectWriter

from .names import clean_text, part_filename, sanitize
from .quota import MAX_BATCH, plan_batch
from .store import Upload, new_writer
from .types import detect_type

if TYPE_CHECKING:
    from hepcore.limits import Limit
    from hepcore.multipart import FormReader
    from hepcore.storage import Storage
    from hepcore.tokens import Actor

    from .quota import Quota

log = logging.getLogger("hepcore.cdn")

BATCH_INTERNAL_ERROR = "Upload failed due to an internal error"
REMOVED_CONCURRENT = "Removed: concurrent uploads exceeded quota"
MAX_BATCH_PARTS = 1000
"""Parts read at most; past it the batch is ``Too many files`` without counting further."""
PART_LIMIT_REACHED = "Maximum segment count exceeded"
"""How :class:`hepcore.multipart.FormReader` words a body with more than ``max_parts`` parts."""


@dataclass
class Incoming:
    """One file of a batch as received: its original (unsanitised) name, its
    byte count, its declared part type, and the writer holding it (``None``
    when it was discarded for being above the per-file limit, or when storage
    failed while it was written: ``storage_failed``)."""

    filename: str
    size: int
    declared: str | None
    writer: ObjectWriter | None
    storage_failed: bool = False

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()


@dataclass
class BatchResult:
    uploads: list[Upload] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


class BatchRoutes:
    if TYPE_CHECKING:
        # Provided by CdnService, which mixes this class in; mypy checks
        # that its definitions agree with these.
        storage: Storage
        overhead: int

        def admit(self, request: Request, limit: Limit | None = None) -> Actor: ...
        def quota(self, account: Account) -> Quota: ...
        def base_for(self, request: Request | None) -> str: ...
        def upload_json(self, upload: Upload, base: str) -> dict[str, Any]: ...
        def store(self, writer: ObjectWriter, account: Account, *, filename: str,
                  content_type: str, total: int, original_url: str | None = None) -> Upload: ...
        def _form(self, request: Request, missing: str, body_limit: int,
                  max_parts: int = 128) -> FormReader: ...

    def api_batch(self, request: Request) -> Response:
        actor = self.admit(request)
        account = actor.account
        quota = self.quota(account)
        body_limit = MAX_BATCH * quota.per_file + self.overhead
        if request.content_length is not None and request.content_length > body_limit:
            raise PayloadTooLarge("Request too large")
        form = self._form(request, "Missing files[] parameter", body_limit, MAX_BATCH_PARTS)
        incoming: list[Incoming] = []
        count = parts = 0
        try:
            for part in form:
                parts += 1
                if part.name != "files[]" or not part.is_file \
                        or not sanitize(part_filename(part)):
                    continue  # not a file, or one without a usable name: as upstream, absent
                count += 1
                if count > MAX_BATCH:
                    part.drain()
                    continue
                incoming.append(self._receive(part, quota.per_file))
        except BaseException as exc:
            for item in incoming:
                item.discard()
            if isinstance(exc, BodyTooLarge):
                raise PayloadTooLarge("Request too large") from None
            if isinstance(exc, MalformedBody) and parts == MAX_BATCH_PARTS \
                    and PART_LIMIT_REACHED in str(exc):
                raise _too_many(f"more than {MAX_BATCH_PARTS}") from None
            if isinstance(exc, (MalformedBody, ClientDisconnected)):
                raise BadRequest("Malformed multipart body") from None
            raise
        if count == 0:
            raise BadRequest("Missing files[] parameter")
        if count > MAX_BATCH:
            for item in incoming:
                item.discard()
            raise _too_many(str(count))
        result = self.store_batch(account, incoming)
        base = self.base_for(request)
        body = {"uploads": [self.upload_json(u, base) for u in result.uploads],
                "failed": result.failed}
        return Response.json(body, 201 if result.uploads else 422)

    def _receive(self, part: Part, per_file: int) -> Incoming:
        """Stream one batch part into a writer; past ``per_file`` the writer is
        dropped and the rest only counted."""
        item = Incoming(part_filename(part), 0, part.content_type, None)
        try:
            item.writer = new_writer(self.storage, per_file)
        except StorageError:
            log.exception("batch: cannot start a write")
            item.storage_failed = True
        try:
            for chunk in part.chunks():
                item.size += len(chunk)
                if item.writer is not None:
                    try:
                        item.writer.write(chunk)
                    except BodyTooLarge:
                        item.writer = None  # the writer aborted itself
                    except StorageError:
                        log.exception("batch: a write failed")
                        item.discard()
                        item.writer, item.storage_failed = None, True
        except BaseException:
            item.discard()
            raise
        return item

    def store_batch(self, account: Account, incoming: Sequence[Incoming]) -> BatchResult:
        """6.4 steps 6-8: decide every file against the quota before storing any,
        then store the accepted ones in order. Consumes every writer.

        Step 8 keeps the longest run of stored files, from the first, that fits
        beside what concurrent uploads took: each file is charged as it is
        stored, and once one no longer fits, it and every later accepted file
        are reported removed, newest first, after the other failures. That is
        the outcome of storing them all and deleting newest first, without
        usage ever passing the total."""
        quota = self.quota(account)
        # A file whose bytes could not be written takes no room in the plan.
        decisions = plan_batch([0 if i.storage_failed else i.size for i in incoming], quota)
        result = BatchResult()
        removed: list[str] = []
        try:
            for item, decision in zip(incoming, decisions, strict=True):
                original = clean_text(item.filename)
                if decision.accepted and item.storage_failed:
                    result.failed.append({"filename": original, "reason": BATCH_INTERNAL_ERROR})
                    continue
                if not decision.accepted or item.writer is None:
                    item.discard()
                    result.failed.append({"filename": original, "reason": decision.reason or
                                          _oversize_reason(item.size, quota.per_file)})
                    continue
                name = sanitize(item.filename)
                if removed:
                    item.discard()
                    removed.append(name)
                    continue
                writer = item.writer
                content_type = detect_type(writer.head, name, item.declared)
                try:
                    result.uploads.append(self.store(writer, account, filename=name,
                                                     content_type=content_type,
                                                     total=quota.total))
                except QuotaExceeded:
                    removed.append(name)
                except StorageError:
                    log.exception("batch upload of one file failed")
                    result.failed.append({"filename": original, "reason": BATCH_INTERNAL_ERROR})
                except ServiceError as err:
                    result.failed.append({"filename": original, "reason": err.message})
                except Exception:
                    # A plugin consulted by store() (moderation) failed: this file
                    # fails like a storage failure, and the files stored before it
                    # stay reported, not hidden behind a 500.
                    log.exception("batch upload of one file failed")
                    result.failed.append({"filename": original, "reason": BATCH_INTERNAL_ERROR})
        finally:
            for item in incoming:
                item.discard()
        result.failed.extend({"filename": name, "reason": REMOVED_CONCURRENT}
                             for name in reversed(removed))
        return result


def _oversize_reason(size: int, per_file: int) -> str:
    return f"File size ({human_size(size)}) exceeds limit of {human_size(per_file)}"


def _too_many(got: str) -> BadRequest:
    return BadRequest("Too many files",
                      extra={"detail": f"Maximum {MAX_BATCH} files per batch, got {got}"})
