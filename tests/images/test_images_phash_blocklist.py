"""The perceptual-hash moderation plugin (docs/images.md, upload step 12): blocklist managed from
the CLI, refusals through the real upload endpoint, both app kinds."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from httpkit import multipart
from PIL import Image, ImageDraw

from hepcore import Account, Config, Runtime, ServiceConfig, build_runtime
from hepcore.cli import main
from hepcore.testing import FakeClock
from hepcore.web import create_app
from hepcore_phash.phash import distance, phash

REJECTED = {"ok": False, "code": "nsfw_rejected",
            "error": "Explicit content detected. This image cannot be hosted."}


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A photo-like test picture: a background and overlapping coloured shapes."""
    rnd = random.Random(seed)
    image = Image.new("RGB", size, tuple(rnd.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        w, h = rnd.randrange(20, size[0] // 2), rnd.randrange(20, size[1] // 2)
        colour = tuple(rnd.randrange(256) for _ in range(3))
        if rnd.random() < 0.5:
            draw.ellipse([x, y, x + w, y + h], fill=colour)
        else:
            draw.rectangle([x, y, x + w, y + h], fill=colour)
    return image


def encode(image: Image.Image, fmt: str, **save: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **save)
    return buf.getvalue()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data", secrets=["test-secret"],
        services={"images": ServiceConfig("images", prefix="/")},
        blocked_plugins=["uploader", "paste", "cdn", "login"],
    )


@pytest.fixture
def key(runtime: Runtime, account: Account) -> str:
    token, _ = runtime.keys.create("images", account.id)
    return token


def upload(client: falcon.testing.TestClient, key: str, data: bytes) -> falcon.testing.Result:
    body, ctype = multipart([("file", "photo", "application/octet-stream", data)])
    return client.simulate_post("/api/v1/upload", body=body, headers={
        "Authorization": f"Bearer {key}", "Content-Type": ctype})


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``hepcore --data DIR ...`` in a real subprocess."""
    return subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data_dir), *args],
                          check=False, capture_output=True, text=True, timeout=60)


@pytest.fixture
def original(tmp_path: Path) -> Path:
    path = tmp_path / "blocked.png"
    picture(1).save(path, "PNG")
    return path


def test_a_blocked_image_and_its_copies_are_refused(
        client: falcon.testing.TestClient, key: str, runtime: Runtime, original: Path,
        config: Config) -> None:
    image = Image.open(original).convert("RGB")
    jpeg_copy = encode(image, "JPEG", quality=70)
    small_copy = encode(image.resize((160, 120)), "WEBP", quality=60)
    other = encode(picture(2), "PNG")
    assert upload(client, key, jpeg_copy).status_code == 200  # not blocked yet

    added = cli(config.data_dir, "phash", "add", str(original), "--distance", "8")
    assert added.returncode == 0, added.stderr
    entry_id, hex_hash, limit, label = added.stdout.strip().split("\t")
    assert len(hex_hash) == 16 and limit == "distance=8" and label == "blocked.png"

    for data in (encode(image, "PNG"), encode(image, "JPEG", quality=55), small_copy):
        refused = upload(client, key, data)
        assert refused.status_code == 415
        assert refused.json == REJECTED
    assert upload(client, key, other).status_code == 200
    # Nothing of the refused uploads was kept.
    assert runtime.db.one("SELECT count(*) FROM images_uploads")[0] == 2
    assert len(list(runtime.storage.keys())) == 2

    listed = cli(config.data_dir, "phash", "list")
    assert listed.stdout.startswith(f"{entry_id}\t{hex_hash}\tdistance=8\t")
    removed = cli(config.data_dir, "phash", "remove", entry_id)
    assert removed.returncode == 0 and removed.stdout == f"removed {entry_id}\n"
    assert upload(client, key, small_copy).status_code == 200


def test_orientation_and_animation_do_not_hide_a_blocked_image(
        client: falcon.testing.TestClient, key: str, original: Path, config: Config) -> None:
    assert main(["--data", str(config.data_dir), "phash", "add", str(original)]) == 0
    image = Image.open(original).convert("RGB")
    # Stored sideways, shown upright by its EXIF orientation (6: rotate 90 clockwise).
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = encode(image.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())
    assert upload(client, key, sideways).json == REJECTED
    # The blocked picture as the second frame of an animation.
    frames = [picture(7).convert("P"), image.convert("P")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100,
                 loop=0)
    assert upload(client, key, gif).json == REJECTED
    clean = encode(picture(7).convert("P"), "GIF", save_all=True,
                   append_images=[picture(8).convert("P")], duration=100, loop=0)
    assert upload(client, key, clean).status_code == 200


def test_a_blocked_frame_late_in_a_long_animation_is_found(
        client: falcon.testing.TestClient, key: str, original: Path, config: Config) -> None:
    assert main(["--data", str(config.data_dir), "phash", "add", str(original)]) == 0
    blocked = Image.open(original).convert("RGB").resize((80, 60)).convert("P")
    frames = [picture(seed, (80, 60)).convert("P") for seed in range(100)]
    clean = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert upload(client, key, clean).status_code == 200
    frames[90] = blocked
    late = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert upload(client, key, late).json == REJECTED


def test_with_the_plugin_blocked_nothing_is_moderated(tmp_path: Path, clock: FakeClock,
                                                      original: Path, app_kind: str) -> None:
    data = tmp_path / "data"
    assert main(["--data", str(data), "init"]) == 0
    assert main(["--data", str(data), "phash", "add", str(original)]) == 0
    runtime = build_runtime(Config(
        data_dir=data, secrets=["s"], services={"images": ServiceConfig("images", prefix="/")},
        blocked_plugins=["phash_blocklist"]), clock=clock)
    try:
        key, _ = runtime.keys.create("images", runtime.accounts.create("alice").id)
        client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
        assert upload(client, key, original.read_bytes()).status_code == 200
    finally:
        runtime.close()


def test_cli_check_and_errors(tmp_path: Path, original: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cli"
    assert main(["--data", str(data), "init"]) == 0
    capsys.readouterr()
    assert main(["--data", str(data), "phash", "check", str(original)]) == 0
    assert capsys.readouterr().out == "passes; the blocklist is empty\n"
    assert main(["--data", str(data), "phash", "add", str(original), "--label", "case 17"]) == 0
    capsys.readouterr()
    copy = tmp_path / "copy.jpg"
    Image.open(original).convert("RGB").resize((100, 75)).save(copy, "JPEG", quality=60)
    assert main(["--data", str(data), "phash", "check", str(copy)]) == 3
    assert capsys.readouterr().out.startswith("blocked by entry 1 (case 17): ")
    other = tmp_path / "other.png"
    picture(3).save(other)
    assert main(["--data", str(data), "phash", "check", str(other)]) == 0
    assert capsys.readouterr().out.startswith("passes; nearest entry 1 is ")

    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    flat = tmp_path / "flat.png"
    Image.new("RGB", (50, 50), (9, 9, 9)).save(flat)
    for args, message in (
            (["add", str(not_image)], "not a readable image"),
            (["add", str(tmp_path / "missing.png")],
             f"hepcore: error: No such file or directory: {tmp_path / 'missing.png'}\n"),
            (["add", str(flat)], "the image is almost flat"),
            (["remove", "99"], "no blocklist entry 99")):
        assert main(["--data", str(data), "phash", *args]) == 1
        err = capsys.readouterr().err
        assert err.startswith("hepcore: error: ") and message in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(data), "phash", "add", str(original), "--distance", "65"])
    assert exit_info.value.code == 2
    assert "must be between 0 and 32" in capsys.readouterr().err


def test_list_json(tmp_path: Path, original: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cli"
    assert main(["--data", str(data), "init"]) == 0
    assert main(["--data", str(data), "phash", "add", str(original), "--distance", "4"]) == 0
    capsys.readouterr()
    assert main(["--data", str(data), "phash", "list", "--json"]) == 0
    import json

    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["id"] == 1 and entry["distance"] == 4 and entry["label"] == "blocked.png"
    assert int(entry["hash"], 16) == phash(Image.open(original))


@pytest.mark.parametrize("seed", range(6))
def test_the_hash_tells_copies_from_other_pictures(seed: int) -> None:
    image = picture(seed)
    h = phash(image)
    copies = [Image.open(io.BytesIO(encode(image, "JPEG", quality=50))),
              image.resize((image.width // 3, image.height // 3)),
              Image.open(io.BytesIO(encode(image.resize((500, 375)), "WEBP", quality=40)))]
    for copy in copies:
        assert distance(h, phash(copy)) <= 6
    for other in range(100, 106):
        assert distance(h, phash(picture(other))) > 12


@pytest.fixture
def uploader_runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    runtime = build_runtime(Config(data_dir=tmp_path / "u", secrets=["s"], services={
        "uploader": ServiceConfig("uploader", prefix="/")}), clock=clock)
    yield runtime
    runtime.close()


def test_uploads_without_a_decoded_image_pass(uploader_runtime: Runtime, original: Path,
                                              app_kind: str) -> None:
    """The uploader does not decode images: the moderator has nothing to look at."""
    runtime = uploader_runtime
    assert main(["--data", str(runtime.config.data_dir), "phash", "add", str(original)]) == 0
    token, _ = runtime.keys.create("uploader", runtime.accounts.create("bob").id)
    client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
    body, ctype = multipart([("file", "a.png", "image/png", original.read_bytes())])
    done = client.simulate_post("/upload", body=body,
                                headers={"Authorization": token, "Content-Type": ctype})
    assert done.status_code == 200, done.text
