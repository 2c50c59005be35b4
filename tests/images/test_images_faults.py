"""G3 through ``POST /api/v1/upload``: storage and database failures answer
``storage_failed`` / ``db_failed`` and leave nothing behind; moderation plugins
refuse images (section 11) and fail closed."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from conftest import Upload, auth, image_bytes
from httpkit import multipart
from PIL import Image

from hepcore import Runtime, hookimpl
from hepcore.errors import StorageError
from hepcore.inspection import Rejection, UploadCandidate
from hepcore.storage import LocalStorage, ObjectWriter

STORAGE_FAILED = (500, {"ok": False, "code": "storage_failed",
                        "error": "Could not store the image. Retry with exponential backoff."})
PROCESSING_FAILED = (415, {"ok": False, "code": "processing_failed",
                           "error": "The image could not be processed. It may be corrupt."})
DB_FAILED = (500, {"ok": False, "code": "db_failed",
                   "error": "Could not save the upload. Retry with exponential backoff."})


def err(result: falcon.testing.Result) -> tuple[int, dict[str, Any]]:
    assert result.headers["Content-Type"] == "application/json"
    return result.status_code, result.json


def assert_nothing_left(runtime: Runtime) -> None:
    root = Path(runtime.config.data_dir / "files")
    assert sorted(p for p in root.rglob("*") if p.is_file()) == []
    assert list((root / ".tmp").iterdir()) == []
    assert runtime.db.one("SELECT count(*) FROM images_uploads")[0] == 0
    assert runtime.db.one("SELECT count(*) FROM images_webhook_outbox")[0] == 0


def webhook(runtime: Runtime, account_id: str) -> None:
    """An enabled endpoint, so that a committed upload would write an outbox row."""
    runtime.services["images"].webhooks.create(account_id, "https://example.com/hook")


class BrokenWriter(ObjectWriter):
    def __init__(self, inner: ObjectWriter, fail_on: str) -> None:
        super().__init__(inner.max_size)
        self.inner = inner
        self.fail_on = fail_on

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if self.fail_on == "write" and self.size + len(data) > 16:
            self.inner.write(data[: 16 - self.size])  # some bytes reach the disk first
            raise StorageError("write failed: Input/output error")
        self.inner.write(data)

    def _commit(self, key: str) -> None:
        if self.fail_on == "commit":
            raise StorageError("commit failed: Input/output error")
        self.inner.commit(key)

    def _abort(self) -> None:
        self.inner.abort()


class FailingStorage(LocalStorage):
    def __init__(self, root: Path, fail_on: str) -> None:
        super().__init__(root)
        self.fail_on = fail_on

    def writer(self, *, max_size: int | None = None) -> ObjectWriter:
        if self.fail_on == "open":
            raise StorageError("cannot create temporary file: No space left on device")
        return BrokenWriter(super().writer(max_size=max_size), self.fail_on)


@pytest.mark.parametrize("fail_on", ["open", "write", "commit"])
@pytest.mark.parametrize("fmt", ["JPEG", "AVIF"])
def test_storage_failure(client: falcon.testing.TestClient, runtime: Runtime, account: Any,
                         upload: Upload, monkeypatch: pytest.MonkeyPatch, fail_on: str,
                         fmt: str) -> None:
    webhook(runtime, account.id)
    service = runtime.services["images"]
    failing = FailingStorage(runtime.config.data_dir / "files", fail_on)
    monkeypatch.setattr(service, "storage", failing)
    data = image_bytes(fmt, (300, 200))
    assert err(upload(data)) == STORAGE_FAILED
    assert_nothing_left(runtime)
    failing.fail_on = "never"
    ok = upload(data)
    assert ok.status_code == 200 and "duplicate" not in ok.json  # no quota, no dedupe row
    assert client.simulate_get(f"/images/{ok.json['filename']}").status_code == 200


# A statement that fails as a locked or broken database makes it fail, with
# sqlite3.OperationalError (a trigger's RAISE is an IntegrityError).
UNAVAILABLE = "database_unavailable()"


@pytest.mark.parametrize(("event", "table", "failure"), [
    # the row and its webhook event
    ("INSERT", "images_uploads", "RAISE(ABORT, 'disk I/O error')"),
    ("INSERT", "images_uploads", "RAISE(ROLLBACK, 'database is corrupt')"),
    ("INSERT", "images_webhook_outbox", "RAISE(ABORT, 'disk I/O error')"),
    ("INSERT", "images_uploads", UNAVAILABLE),
    # earlier steps: the key's use, the rate limit, the record made before the bytes land
    ("UPDATE", "api_keys", UNAVAILABLE),
    ("INSERT", "rate_hits", UNAVAILABLE),
    ("INSERT", "pending_objects", UNAVAILABLE),
])
def test_database_failure(client: falcon.testing.TestClient, runtime: Runtime, account: Any,
                          upload: Upload, event: str, table: str, failure: str) -> None:
    """A database that fails at any step answers ``db_failed`` (not a generic 500
    or ``storage_failed``) and keeps nothing: no bytes, no row, no event."""
    webhook(runtime, account.id)
    runtime.db.execute(f"CREATE TRIGGER fail BEFORE {event} ON {table}"
                       f" BEGIN SELECT {failure}; END")
    data = image_bytes("PNG", (50, 50))
    assert err(upload(data)) == DB_FAILED
    assert_nothing_left(runtime)
    runtime.db.execute("DROP TRIGGER fail")
    ok = upload(data)
    assert ok.status_code == 200 and "duplicate" not in ok.json
    assert runtime.db.one("SELECT count(*) FROM images_webhook_outbox")[0] == 1


# --- moderation (section 11) --------------------------------------------------------------


class Moderator:
    def __init__(self, answer: Rejection | None = None, boom: bool = False) -> None:
        self.answer = answer
        self.boom = boom
        self.seen: list[UploadCandidate] = []

    @hookimpl
    def hepcore_inspect_upload(self, candidate: UploadCandidate) -> Rejection | None:
        self.seen.append(candidate)
        if self.boom:
            raise RuntimeError("classifier crashed")
        return self.answer


@pytest.fixture
def moderate(runtime: Runtime) -> Any:
    added: list[Moderator] = []

    def register(moderator: Moderator) -> Moderator:
        runtime.pm.register(moderator)
        added.append(moderator)
        return moderator

    yield register
    for moderator in added:
        runtime.pm.unregister(moderator)


def test_moderation_sees_the_decoded_image(runtime: Runtime, account: Any, upload: Upload,
                                           moderate: Any) -> None:
    seen = moderate(Moderator())
    data = image_bytes("JPEG", (48, 32), color=(0, 0, 250))
    assert upload(data, filename="cat.jpg").status_code == 200
    (candidate,) = seen.seen
    assert (candidate.service, candidate.account_id, candidate.content_type) == (
        "images", account.id, "image/jpeg")
    assert candidate.filename == "cat.jpg" and candidate.size == len(data)
    assert isinstance(candidate.image, Image.Image) and candidate.image.size == (48, 32)
    assert candidate.image.getpixel((10, 10))[2] > 200  # decoded pixels, full size
    assert candidate.extra["account"].id == account.id and candidate.extra["frames"] == 1


@pytest.mark.parametrize(("sent", "seen"), [("caf\xe9.png".encode(), "caf\xe9.png"),
                                            (b"caf\xe9.png", "caf\ufffd.png")])
def test_moderation_sees_the_filename_as_utf8(client: falcon.testing.TestClient, key: str,
                                              moderate: Any, sent: bytes, seen: str) -> None:
    moderator = moderate(Moderator())
    body, ctype = multipart([("file", "NAME", "image/png", image_bytes())])
    r = client.simulate_post("/api/v1/upload", body=body.replace(b"NAME", sent),
                             headers={**auth(key), "Content-Type": ctype})
    assert r.status_code == 200, r.text
    assert [c.filename for c in moderator.seen] == [seen]


def test_nsfw_rejection(runtime: Runtime, upload: Upload, moderate: Any) -> None:
    moderate(Moderator(Rejection("nsfw_rejected",
                                 "Explicit content detected. This image cannot be hosted.")))
    r = upload(image_bytes())
    assert err(r) == (415, {"ok": False, "code": "nsfw_rejected",
                            "error": "Explicit content detected. This image cannot be hosted."})
    assert_nothing_left(runtime)


def test_other_rejection_code_and_status(runtime: Runtime, upload: Upload,
                                         moderate: Any) -> None:
    moderate(Moderator(Rejection("copyright", "This image is on the takedown list.", 451)))
    assert err(upload(image_bytes())) == (
        451, {"ok": False, "code": "copyright", "error": "This image is on the takedown list."})


def test_moderation_fails_closed(runtime: Runtime, upload: Upload, moderate: Any) -> None:
    moderate(Moderator(boom=True))
    assert err(upload(image_bytes())) == (
        415, {"ok": False, "code": "processing_failed",
              "error": "The image could not be processed. It may be corrupt."})
    assert_nothing_left(runtime)


class Sloppy:
    """A moderation plugin answering something that is not a Rejection."""

    @hookimpl
    def hepcore_inspect_upload(self, candidate: UploadCandidate) -> Any:
        return {"code": "nsfw_rejected"}


def test_a_moderation_answer_that_is_no_rejection_fails_closed(
        runtime: Runtime, upload: Upload, moderate: Any) -> None:
    moderate(Sloppy())
    assert err(upload(image_bytes())) == PROCESSING_FAILED
    assert_nothing_left(runtime)


@pytest.mark.parametrize("size", [(40, 30), (1200, 900)])  # buffered, and written at once
def test_a_full_spool_disk_is_storage_failed(runtime: Runtime, upload: Upload,
                                             monkeypatch: pytest.MonkeyPatch,
                                             size: tuple[int, int]) -> None:
    # /dev/full: every write fails with ENOSPC, as on a full disk (at the
    # first write past the buffer, or when the buffer is flushed to read back).
    monkeypatch.setattr("hepcore_images.pipeline.tempfile.TemporaryFile",
                        lambda dir: open("/dev/full", "w+b"))  # noqa: SIM115
    assert err(upload(image_bytes("PNG", size))) == STORAGE_FAILED
    assert_nothing_left(runtime)


def test_a_spool_directory_that_is_gone_is_storage_failed(runtime: Runtime, upload: Upload) -> None:
    spool = runtime.config.data_dir / "images-spool"
    spool.rmdir()
    spool.write_bytes(b"not a directory")
    assert err(upload(image_bytes())) == STORAGE_FAILED
    assert_nothing_left(runtime)
    spool.unlink()
    spool.mkdir()
    assert upload(image_bytes()).status_code == 200


def test_dedupe_hits_skip_moderation(upload: Upload, moderate: Any) -> None:
    seen = moderate(Moderator())
    data = image_bytes()
    upload(data)
    assert upload(data).json["duplicate"] is True
    assert len(seen.seen) == 1


def large_jpeg(size: tuple[int, int] = (2048, 1536)) -> bytes:
    """A photo-like JPEG without EXIF (orientation 1): stripped, not re-encoded."""
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 30)
    buf = io.BytesIO()
    Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.ROTATE_180))
                ).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_moderation_sees_a_reduced_scale_jpeg(upload: Upload, moderate: Any) -> None:
    """A JPEG that needs no rotation is decoded with DCT scaling: the plugin gets a
    smaller image (its shorter side at least 256 pixels) and the full size in
    ``extra``; the stored image is the full-size original."""
    seen = moderate(Moderator())
    r = upload(large_jpeg())
    assert r.status_code == 200, r.text
    assert (r.json["width"], r.json["height"]) == (2048, 1536)
    (candidate,) = seen.seen
    width, height = candidate.image.size
    assert 256 <= min(width, height) and width < 2048 and height < 1536
    assert abs(width / height - 2048 / 1536) < 0.01
    assert (candidate.extra["width"], candidate.extra["height"]) == (2048, 1536)
    assert candidate.image.getpixel((width // 2, height - 1))[0] > 200  # decoded pixels


def test_truncated_jpeg_with_reduced_decode(upload: Upload, moderate: Any) -> None:
    """The reduced-scale decode still reads every byte of the scan: a truncated
    large JPEG is refused before moderation."""
    seen = moderate(Moderator())
    data = large_jpeg()
    assert err(upload(data[: len(data) * 2 // 3])) == PROCESSING_FAILED
    assert seen.seen == []
    assert upload(data).status_code == 200 and len(seen.seen) == 1


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def corrupt_idat_png() -> bytes:
    """A PNG whose IDAT holds a broken zlib stream behind a correct CRC, so only
    decoding the pixels finds the fault."""
    good = image_bytes("PNG", (64, 48))
    start = good.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", good[start:start + 4])
    broken = b"\x78\x9c" + b"\xff" * (length - 2)  # deflate block type 3 is invalid
    return good[:start] + png_chunk(b"IDAT", broken) + good[start + 12 + length:]


def test_corrupt_png_pixels_refused(runtime: Runtime, upload: Upload) -> None:
    data = corrupt_idat_png()
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (64, 48)  # the header is fine
    assert err(upload(data)) == PROCESSING_FAILED
    assert_nothing_left(runtime)


def open_spool_files(runtime: Runtime) -> list[str]:
    """This process's open files in the spool directory (unnamed files show as
    ``<dir>/#<inode> (deleted)``)."""
    spool = str(runtime.config.data_dir / "images-spool")
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(spool + os.sep):
            out.append(target)
    return out


def test_failed_uploads_close_their_spool_files(runtime: Runtime, upload: Upload,
                                                 moderate: Any) -> None:
    """Every upload closes its spool file, even when something still holds the
    decoded image (here a moderation plugin that keeps its candidates, whose
    images read from the spool file)."""
    keeper = moderate(Moderator(Rejection("nsfw_rejected", "No.")))
    assert upload(image_bytes("GIF")).status_code == 415  # refused by the plugin
    for data in (b"", b"text", image_bytes()[:40], corrupt_idat_png(),
                 image_bytes("PNG", (40, 30)), image_bytes("JPEG"), image_bytes("WEBP")):
        assert upload(data).status_code >= 400
    assert len(keeper.seen) == 4
    assert open_spool_files(runtime) == []
