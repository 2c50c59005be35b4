"""The image service end to end on real servers: gunicorn (WSGI) and uvicorn
(ASGI) started by ``hepcore serve`` on 127.0.0.1, driven with ``requests``."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import progressive_jpeg
from PIL import Image, ImageCms

from hepcore.cli import main
from hepcore.testing.servers import RunningServer, run_server

pytestmark = pytest.mark.integration

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``hepcore init`` (images at ``/img``), an account and an ``fxf_`` key."""
    data = tmp_path_factory.mktemp("images-host")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(data), "init"]) == 0
        assert main(["--data", str(data), "accounts", "create", "erin"]) == 0
        assert main(["--data", str(data), "keys", "create", "--service", "images",
                     "--account", "erin", "--label", "ci"]) == 0
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("fxf_") and len(key) == 68
    return data, key


@pytest.fixture(scope="module", params=["wsgi", "asgi"])
def server(request: pytest.FixtureRequest, host_dir: tuple[Path, str]) -> Iterator[RunningServer]:
    with run_server(host_dir[0], request.param, workers=1, threads=4) as srv:
        yield srv


def photo(seed: int) -> bytes:
    img = Image.effect_noise((640, 480), 30 + seed).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "SecretCamera"
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 29.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, exif=exif.tobytes(), icc_profile=ICC,
             xmp=b"<x:xmpmeta>SecretCity</x:xmpmeta>")
    return buf.getvalue()


def test_upload_serve_list_delete(server: RunningServer, host_dir: tuple[Path, str]) -> None:
    key = host_dir[1]
    api = server.url + "/img"
    headers = {"Authorization": f"Bearer {key}"}
    data = photo(1 if "wsgi" in server.log_path.name else 2)
    token = requests.post(f"{api}/api/v1/upload-token", json={"ttl_seconds": 120},
                          headers=headers, timeout=30).json()["token"]
    r = requests.post(f"{api}/api/v1/upload", headers={"Authorization": f"Bearer {token}"},
                      files={"file": ("photo.jpg", data, "image/jpeg")}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["url"] == f"{api}/images/{body['filename']}"
    assert body["hash_sha256"] == hashlib.sha256(data).hexdigest()

    got = requests.get(body["url"], timeout=30)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "image/jpeg"
    assert got.headers["Cache-Control"] == "public, max-age=86400"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert len(got.content) == body["size"]
    assert b"SecretCamera" not in got.content and b"SecretCity" not in got.content
    with Image.open(io.BytesIO(got.content)) as img:
        assert img.info["icc_profile"] == ICC and img.size == (640, 480)

    dup = requests.post(f"{api}/api/v1/upload", headers=headers,
                        files={"file": ("again.jpg", data)}, timeout=30).json()
    assert dup["duplicate"] is True and dup["delete_url"] is None

    listed = requests.get(f"{api}/api/v1/uploads", headers=headers, timeout=30).json()
    assert body["filename"] in [u["filename"] for u in listed["uploads"]]

    gone = requests.delete(body["delete_url"], timeout=30)
    assert gone.json() == {"ok": True, "deleted": body["filename"]}
    missing = requests.get(body["url"], timeout=30)
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
    assert missing.json() == {"ok": False, "code": "not_found", "error": "Image not found."}
    assert requests.post(body["delete_url"], timeout=30).status_code == 404

    bad = requests.post(f"{api}/api/v1/upload", headers=headers,
                        files={"file": ("x.jpg", data[: len(data) // 2])}, timeout=30)
    assert bad.status_code == 415 and bad.json()["code"] == "processing_failed"


def test_hostile_files_are_refused_on_real_servers(server: RunningServer,
                                                    host_dir: tuple[Path, str]) -> None:
    """A progressive JPEG of 101 scans, a JPEG of 10,001 segments: 415 before
    Pillow parses them, and nothing is stored."""
    api = server.url + "/img"
    headers = {"Authorization": f"Bearer {host_dir[1]}"}
    before = requests.get(f"{api}/api/v1/uploads", headers=headers, timeout=30).json()
    plain = photo(7)
    segments = plain[:2] + b"\xff\xe3\x00\x02" * 10_001 + plain[2:]
    for data, limit in ((progressive_jpeg(101), "100 JPEG scans"),
                        (segments, "10,000 JPEG marker segments")):
        r = requests.post(f"{api}/api/v1/upload", headers=headers,
                          files={"file": ("x.jpg", data, "image/jpeg")}, timeout=30)
        assert (r.status_code, r.json()) == (415, {
            "ok": False, "code": "processing_failed",
            "error": f"The image could not be processed. It has more than {limit}."})
    after = requests.get(f"{api}/api/v1/uploads", headers=headers, timeout=30).json()
    assert after == before
