"""``POST /api/v1/upload`` (section 5): the response, each error in processing
order, formats by magic bytes, the pixel limit and dedupe, under both app kinds."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from conftest import PUBLIC_BASE, Upload, auth, image_bytes
from httpkit import multipart
from PIL import Image, ImageFile

from hepcore import Runtime

FILENAME_RE = r"FIXITFY-[A-Za-z0-9]{12}"


def err(result: falcon.testing.Result) -> tuple[int, dict[str, Any]]:
    assert result.headers["Content-Type"] == "application/json"
    return result.status_code, result.json


def error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"ok": False, "code": code, "error": message}


def stored_files(runtime: Runtime) -> list[Path]:
    root = Path(runtime.config.data_dir / "files")
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_success_response(client: falcon.testing.TestClient, runtime: Runtime,
                          upload: Upload) -> None:
    data = image_bytes("PNG", (40, 30))
    r = upload(data, filename="screenshot.png", content_type="image/png")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json
    assert list(body) == ["ok", "filename", "url", "delete_url", "size", "mime", "width",
                          "height", "hash_sha256"]
    assert "duplicate" not in body
    assert re.fullmatch(FILENAME_RE + r"\.png", body["filename"])
    assert body["url"] == f"{PUBLIC_BASE}/images/{body['filename']}"
    assert re.fullmatch(re.escape(PUBLIC_BASE) + r"/api/delete/[0-9a-f]{64}", body["delete_url"])
    assert (body["mime"], body["width"], body["height"]) == ("image/png", 40, 30)
    assert body["hash_sha256"] == hashlib.sha256(data).hexdigest()
    served = client.simulate_get(f"/images/{body['filename']}")
    assert body["size"] == len(served.content)
    assert [p.name for p in stored_files(runtime)] == [body["filename"]]
    token = body["delete_url"].rsplit("/", 1)[1]
    row = runtime.db.one("SELECT delete_token_hash FROM images_uploads")
    assert row[0] == hashlib.sha256(token.encode()).hexdigest()  # stored hashed only


def test_url_from_request_without_public_base(tmp_path: Path, clock: Any, app_kind: str) -> None:
    from hepcore import Config, ServiceConfig, build_runtime
    from hepcore.web import create_app

    runtime = build_runtime(Config(
        data_dir=tmp_path / "d", secrets=["s"], blocked_plugins=["uploader", "paste", "cdn"],
        services={"images": ServiceConfig("images", prefix="/img")}), clock=clock)
    try:
        account = runtime.accounts.create("zed")
        key, _ = runtime.keys.create("images", account.id)
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        body, ctype = multipart([("file", "a.png", "image/png", image_bytes())])
        r = client.simulate_post("/img/api/v1/upload", body=body,
                                 headers={**auth(key), "Content-Type": ctype})
        assert r.json["url"].startswith("http://falconframework.org/img/images/FIXITFY-")
        assert r.json["delete_url"].startswith("http://falconframework.org/img/api/delete/")
        assert client.simulate_get(r.json["url"][len("http://falconframework.org"):]) \
            .status_code == 200
    finally:
        runtime.close()


@pytest.mark.parametrize(("fmt", "mime", "ext", "save"), [
    ("PNG", "image/png", ".png", {}),
    ("JPEG", "image/jpeg", ".jpg", {"quality": 90}),
    ("GIF", "image/gif", ".gif", {}),
    ("WEBP", "image/webp", ".webp", {}),
    ("AVIF", "image/avif", ".avif", {}),
])
def test_formats(client: falcon.testing.TestClient, upload: Upload, fmt: str, mime: str,
                 ext: str, save: dict[str, Any]) -> None:
    data = image_bytes(fmt, (33, 17), **save)
    r = upload(data, filename="x.bin", content_type="application/octet-stream")
    assert r.status_code == 200, r.text
    assert (r.json["mime"], r.json["width"], r.json["height"]) == (mime, 33, 17)
    assert r.json["filename"].endswith(ext)
    served = client.simulate_get(f"/images/{r.json['filename']}")
    assert served.headers["Content-Type"] == mime
    with Image.open(io.BytesIO(served.content)) as img:
        assert img.format == fmt and img.size == (33, 17)


def test_declared_type_and_extension_are_ignored(upload: Upload) -> None:
    r = upload(image_bytes("PNG"), filename="photo.jpg", content_type="image/jpeg")
    assert r.json["mime"] == "image/png" and r.json["filename"].endswith(".png")


def test_other_parts_are_ignored(client: falcon.testing.TestClient, key: str) -> None:
    body, ctype = multipart([("title", None, None, b"hello"),
                             ("other", "a.png", "image/png", b"junk"),
                             ("file", "b.png", "image/png", image_bytes()),
                             ("after", None, None, b"x")])
    r = client.simulate_post("/api/v1/upload", body=body,
                             headers={**auth(key), "Content-Type": ctype})
    assert r.status_code == 200, r.text


LATIN_1 = "caf\xe9.png"  # sent as Latin-1 bytes, which are not UTF-8


@pytest.mark.parametrize(("other", "file"), [("a.txt", LATIN_1), (LATIN_1, "b.png"),
                                             (LATIN_1, LATIN_1)])
def test_filenames_that_are_not_utf8_are_ignored(client: falcon.testing.TestClient, key: str,
                                                 other: str, file: str) -> None:
    body, ctype = multipart([("note", other, "text/plain", b"hello"),
                             ("file", file, "image/png", image_bytes())])
    body = body.replace(LATIN_1.encode(), LATIN_1.encode("latin-1"))
    assert LATIN_1.encode("latin-1") in body
    r = client.simulate_post("/api/v1/upload", body=body,
                             headers={**auth(key), "Content-Type": ctype})
    assert r.status_code == 200, r.text
    assert r.json["mime"] == "image/png" and re.fullmatch(FILENAME_RE + r"\.png",
                                                          r.json["filename"])


# --- errors, in processing order ----------------------------------------------------------


@pytest.mark.parametrize("ctype", [None, "application/json", "image/png", "text/plain",
                                   "application/x-www-form-urlencoded"])
def test_not_multipart(client: falcon.testing.TestClient, key: str, ctype: str | None) -> None:
    headers = {**auth(key), **({"Content-Type": ctype} if ctype else {})}
    r = client.simulate_post("/api/v1/upload", body=image_bytes(), headers=headers)
    assert err(r) == error(400, "bad_request", "Expected multipart/form-data.")


@pytest.mark.parametrize(("body", "ctype"), [
    (b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc", "boundary=x"),
    (b"garbage without boundary", "boundary=x"),
    (b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc", ""),
    (b"--x\r\nno-colon-header\r\n\r\nabc\r\n--x--\r\n", "boundary=x"),
])
def test_malformed_multipart(client: falcon.testing.TestClient, key: str, body: bytes,
                             ctype: str) -> None:
    r = client.simulate_post("/api/v1/upload", body=body, headers={
        **auth(key), "Content-Type": "multipart/form-data; " + ctype})
    assert err(r) == error(400, "bad_request", "Malformed multipart body.")


def test_missing_file(client: falcon.testing.TestClient, key: str, upload: Upload) -> None:
    assert err(upload(image_bytes(), field="image")) == error(
        400, "missing_file", 'No file uploaded. Send the image in a multipart field named "file".')
    body, ctype = multipart([])
    r = client.simulate_post("/api/v1/upload", body=body,
                             headers={**auth(key), "Content-Type": ctype})
    assert err(r)[1]["code"] == "missing_file"


def test_empty_file(upload: Upload) -> None:
    assert err(upload(b"")) == error(400, "empty_file", "The uploaded file is empty.")


@pytest.mark.parametrize(("limit", "text"), [
    (20 * 1024 * 1024, "20"), (5 * 1024 * 1024 // 2, "2.5"), (64 * 1024, "0.06"),
    (1000, "0.000954")])
def test_limits_in_messages_never_read_as_zero(limit: int, text: str) -> None:
    from hepcore_images.service import size_in_mb

    assert size_in_mb(limit) == text


class TestSizeLimit:
    @pytest.fixture
    def images_options(self) -> dict[str, Any]:
        return {"max_file_size": 64 * 1024}

    def test_streamed_file_over_the_limit(self, runtime: Runtime, upload: Upload) -> None:
        data = image_bytes("PNG") + b"\0" * (64 * 1024)
        assert err(upload(data)) == error(413, "too_large", "File exceeds the 0.06 MB limit.")
        assert stored_files(runtime) == []
        assert runtime.db.one("SELECT count(*) FROM images_uploads")[0] == 0

    def test_exactly_the_limit_is_not_too_large(self, upload: Upload) -> None:
        data = image_bytes("PNG")
        data += b"\0" * (64 * 1024 - len(data))  # trailing bytes after IEND are dropped
        r = upload(data)
        assert r.status_code == 200, r.text

    def test_content_length_refused_before_reading(self, client: falcon.testing.TestClient,
                                                   key: str, app_kind: str) -> None:
        declared = 64 * 1024 + 64 * 1024 + 1
        from httpkit import call

        r = call(client.app, "POST", "/api/v1/upload", body=b"tiny", headers=[
            ("Authorization", f"Bearer {key}"), ("Content-Length", str(declared)),
            ("Content-Type", "multipart/form-data; boundary=x")])
        assert r.status == 413
        assert r.body == (b'{"ok":false,"code":"too_large","error":'
                          b'"File exceeds the 0.06 MB limit."}')


def test_default_limit_is_20_mb(client: falcon.testing.TestClient, key: str) -> None:
    from httpkit import call

    r = call(client.app, "POST", "/api/v1/upload", body=b"x", headers=[
        ("Authorization", f"Bearer {key}"), ("Content-Length", str(20 * 2**20 + 65537)),
        ("Content-Type", "multipart/form-data; boundary=x")])
    assert r.status == 413
    assert b'"File exceeds the 20 MB limit."' in r.body


UNSUPPORTED = [
    b"hello world, just text",
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    b"%PDF-1.4\n",
    b"\x00\x00\x01\x00",
    b"II*\x00\x08\x00\x00\x00",
]


@pytest.mark.parametrize("data", UNSUPPORTED)
def test_unsupported_type(upload: Upload, data: bytes) -> None:
    assert err(upload(data, filename="x.png", content_type="image/png")) == error(
        415, "unsupported_type", "Unsupported file type. Allowed: PNG, JPG, GIF, WebP, AVIF.")


def test_bmp_and_tiff_are_unsupported(upload: Upload) -> None:
    for fmt in ("BMP", "TIFF", "ICO"):
        assert err(upload(image_bytes(fmt)))[1]["code"] == "unsupported_type"


PROCESSING_FAILED = error(415, "processing_failed",
                          "The image could not be processed. It may be corrupt.")


def test_truncated_jpeg(upload: Upload) -> None:
    img = Image.effect_noise((256, 256), 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    assert err(upload(data[: len(data) * 2 // 3])) == PROCESSING_FAILED


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "AVIF"])
def test_truncated_images(upload: Upload, fmt: str) -> None:
    img = Image.effect_noise((128, 128), 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, fmt)
    data = buf.getvalue()
    assert err(upload(data[: len(data) // 2])) == PROCESSING_FAILED


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 30,
    b"GIF89a\x00",
    b"RIFF\x10\x00\x00\x00WEBPVP8 \x00\x00",
    b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\0" * 20,
])
def test_corrupt_headers(upload: Upload, data: bytes) -> None:
    assert err(upload(data)) == PROCESSING_FAILED


@pytest.mark.parametrize("tail", [b",", b"," + bytes(9)])
def test_gif_with_bytes_after_its_trailer(client: falcon.testing.TestClient, upload: Upload,
                                          tail: bytes) -> None:
    """Found by fuzzing: Pillow's ``n_frames`` raised (``struct.error``,
    ``IndexError``) on these, after every frame had decoded, and the upload
    answered 500. The image is one good frame; what follows its trailer goes."""
    gif = image_bytes("GIF", (8, 8))
    result = upload(gif + tail)
    assert result.status_code == 200, result.text
    body = result.json
    assert (body["mime"], body["width"], body["height"], body["size"]) == (
        "image/gif", 8, 8, len(gif))
    assert body["hash_sha256"] == hashlib.sha256(gif + tail).hexdigest()
    served = client.simulate_get(f"/images/{body['filename']}")
    assert (served.status_code, served.content) == (200, gif)


def png_bomb(width: int, height: int) -> bytes:
    """A real PNG of ``width`` x ``height`` black pixels (grey, 1 bit): tiny on disk."""
    raw = zlib.compress(b"\0" * (((width + 7) // 8 + 1) * height), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_pixel_limit_refuses_bombs_without_decoding(upload: Upload, runtime: Runtime,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Any] = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self: Any) -> Any:
        loads.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    bomb = png_bomb(20000, 20000)
    assert len(bomb) < 100_000
    assert err(upload(bomb)) == error(
        413, "too_large", "Image is 20000x20000 (400.0 megapixels); the limit is 50 megapixels.")
    assert loads == []
    assert stored_files(runtime) == []
    ok = png_bomb(5000, 2000)  # 10 MP: decoded
    assert upload(ok).status_code == 200
    assert loads and loads[0] == (5000, 2000)


class TestPixelLimitOption:
    @pytest.fixture
    def images_options(self) -> dict[str, Any]:
        return {"max_megapixels": 0.5}

    def test_configured_limit(self, upload: Upload) -> None:
        assert err(upload(png_bomb(1001, 500))) == error(
            413, "too_large", "Image is 1001x500 (0.5005 megapixels); the limit is 0.5 megapixels.")
        # One decimal is kept where it already reads as above the limit.
        assert err(upload(png_bomb(1100, 500))) == error(
            413, "too_large", "Image is 1100x500 (0.6 megapixels); the limit is 0.5 megapixels.")
        assert upload(png_bomb(1000, 500)).status_code == 200


def test_gif_bomb_header(upload: Upload) -> None:
    data = bytearray(image_bytes("GIF", (4, 4)))
    data[6:10] = struct.pack("<HH", 60000, 60000)
    assert err(upload(bytes(data))) == error(
        413, "too_large",
        "Image is 60000x60000 (3600.0 megapixels); the limit is 50 megapixels.")


def webp_declaring(kind: str, width: int, height: int) -> bytes:
    """A real 16x16 WebP of ``kind`` (its first chunk) whose header declares another size."""
    save: dict[str, Any] = {"VP8L": {"lossless": True}, "VP8 ": {"quality": 80},
                            "VP8X": {"save_all": True,
                                     "append_images": [Image.new("RGB", (16, 16), "red")]}}[kind]
    data = bytearray(image_bytes("WEBP", (16, 16), **save))
    assert data[12:16] == kind.encode()
    if kind == "VP8X":
        data[24:27] = (width - 1).to_bytes(3, "little")
        data[27:30] = (height - 1).to_bytes(3, "little")
    elif kind == "VP8L":
        bits = int.from_bytes(data[21:25], "little") & ~((1 << 28) - 1)
        data[21:25] = (bits | (width - 1) | (height - 1) << 14).to_bytes(4, "little")
    else:
        data[26:28] = width.to_bytes(2, "little")
        data[28:30] = height.to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize(("kind", "width", "height"), [
    ("VP8X", 14000, 14000), ("VP8X", 16000, 16000), ("VP8L", 16384, 16384),
    ("VP8 ", 16383, 16383), ("VP8X", 8000, 8000)])
def test_webp_bomb_header(upload: Upload, kind: str, width: int, height: int) -> None:
    # Pillow refuses a WebP header above about 179 MP on its own, which used to
    # come back as processing_failed instead of the size (section 5.2 step 10).
    mp = width * height / 1_000_000
    assert err(upload(webp_declaring(kind, width, height))) == error(
        413, "too_large",
        f"Image is {width}x{height} ({mp:.1f} megapixels); the limit is 50 megapixels.")


# --- dedupe (F1) -----------------------------------------------------------------------


def test_dedupe_hit(client: falcon.testing.TestClient, runtime: Runtime, upload: Upload) -> None:
    data = image_bytes("JPEG", (20, 20))
    first = upload(data).json
    again = upload(data, filename="other-name.jpg")
    assert again.status_code == 200
    assert list(again.json) == ["ok", "duplicate", "filename", "url", "delete_url", "size",
                                "mime", "width", "height", "hash_sha256"]
    expected = {**first, "duplicate": True, "delete_url": None}
    assert again.json == expected
    assert len(stored_files(runtime)) == 1
    # the original delete link still works
    token = first["delete_url"].rsplit("/", 1)[1]
    assert client.simulate_delete(f"/api/delete/{token}").status_code == 200


def test_dedupe_is_per_account_and_skips_deleted(client: falcon.testing.TestClient,
                                                 runtime: Runtime, key: str,
                                                 upload: Upload) -> None:
    data = image_bytes()
    first = upload(data).json
    bob = runtime.accounts.create("bob")
    bob_key, _ = runtime.keys.create("images", bob.id)
    theirs = upload(data, bob_key).json
    assert "duplicate" not in theirs and theirs["filename"] != first["filename"]
    client.simulate_delete(f"/api/v1/uploads/{first['filename']}", headers=auth(key))
    fresh = upload(data).json
    assert "duplicate" not in fresh and fresh["filename"] not in (first["filename"],
                                                                  theirs["filename"])
    assert fresh["delete_url"] is not None


def test_dedupe_uses_received_bytes(upload: Upload) -> None:
    """Two files that clean to the same bytes are different uploads."""
    base = image_bytes("JPEG", (16, 16))
    with_comment = base[:2] + b"\xff\xfe\x00\x05hi!" + base[2:]
    a, b = upload(base).json, upload(with_comment).json
    assert "duplicate" not in b and a["filename"] != b["filename"]
    assert a["size"] == b["size"]
    assert a["hash_sha256"] != b["hash_sha256"]
