"""Backups, restores and consistency checks, through the admin CLI."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
from pathlib import Path

import pytest
import requests
from httpkit import multipart

from hepcore import build_runtime, load_config
from hepcore.cli import main
from hepcore.testing.servers import run_server


def cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "host"
    assert cli("--data", str(root), "init")[0] == 0
    assert cli("--data", str(root), "accounts", "create", "erin")[0] == 0
    code, out = cli("--data", str(root), "keys", "create", "--service", "uploader",
                    "--account", "erin")
    assert code == 0
    return root, out.strip().splitlines()[-1]


def upload(data_dir: Path, token: str, payload: bytes) -> str:
    """An upload through the app itself (no server), returning the item ID."""
    import falcon.testing

    from hepcore.web import create_app

    runtime = build_runtime(load_config(data_dir))
    try:
        body, ctype = multipart([("file", "f.bin", "application/octet-stream", payload)])
        r = falcon.testing.TestClient(create_app(runtime)).simulate_post(
            "/upload", body=body, headers={"Authorization": token, "Content-Type": ctype})
        assert r.status_code == 200, r.text
        return str(r.json["ID"])
    finally:
        runtime.close()


def stored_key(data_dir: Path, item_id: str) -> str:
    runtime = build_runtime(load_config(data_dir))
    try:
        row = runtime.db.one("SELECT storage_key FROM uploader_items WHERE id = ?", (item_id,))
        assert row is not None
        return str(row[0])
    finally:
        runtime.close()


def test_check_reports_a_clean_host(data: tuple[Path, str]) -> None:
    root, token = data
    upload(root, token, b"one")
    code, out = cli("--data", str(root), "check")
    assert code == 0
    assert "1 stored objects, 1 referenced by rows" in out
    assert "ok: every row has its bytes and every object its row" in out


def test_objects_outside_every_service_are_reported_but_not_wrong(
        data: tuple[Path, str]) -> None:
    root, token = data
    upload(root, token, b"one")
    # The bytes of a service that is not installed any more, say.
    (root / "files" / "gone").mkdir()
    (root / "files" / "gone" / "old.bin").write_bytes(b"of a removed service")
    code, out = cli("--data", str(root), "check")
    assert code == 0
    assert "object outside every service: gone/old.bin" in out
    assert "every object its row" not in out  # that one has no row, and says so
    assert out.splitlines()[-1] == (
        "ok: every row has its bytes and every object of a service its row;"
        " 1 objects outside every service left alone")


def test_check_finds_orphans_and_missing_bytes_and_repair_fixes_them(
        data: tuple[Path, str]) -> None:
    root, token = data
    kept = upload(root, token, b"kept")
    lost = upload(root, token, b"lost")
    lost_key = stored_key(root, lost)
    (root / "files" / lost_key).unlink()
    (root / "files" / "uploader" / "stray.bin").write_bytes(b"no row")
    (root / "files" / "elsewhere.bin").write_bytes(b"not a service's")

    code, out = cli("--data", str(root), "check")
    assert code == 2
    assert f"missing bytes: uploader: {lost_key}" in out
    assert "orphan object: uploader/stray.bin" in out
    assert "object outside every service: elsewhere.bin" in out

    code, out = cli("--data", str(root), "check", "--repair", "--grace", "0")
    assert code == 0
    assert "removed 1 orphan objects, dropped 1 rows without bytes" in out
    assert not (root / "files" / "uploader" / "stray.bin").exists()
    assert (root / "files" / "elsewhere.bin").exists()

    code, out = cli("--data", str(root), "check")
    assert "missing bytes" not in out and "orphan object" not in out
    runtime = build_runtime(load_config(root))
    try:
        import falcon.testing

        from hepcore.web import create_app

        client = falcon.testing.TestClient(create_app(runtime))
        assert client.simulate_get("/" + lost).status_code == 404
        assert client.simulate_get("/" + kept).content == b"kept"
    finally:
        runtime.close()


def test_a_delete_during_check_is_not_missing_bytes(data: tuple[Path, str]) -> None:
    # check reads the rows, then lists the objects: a delete (row, then bytes)
    # in between must not show as a row whose bytes are gone.
    from hepcore.maintenance import check

    root, token = data
    item_id = upload(root, token, b"short-lived")
    kept = upload(root, token, b"kept")
    runtime = build_runtime(load_config(root))
    try:
        service = runtime.services["uploader"]
        listing = runtime.storage.keys

        def keys_after_a_delete():  # type: ignore[no-untyped-def]
            service.delete_item(service.items.get(item_id))
            return listing()

        runtime.storage.keys = keys_after_a_delete  # type: ignore[method-assign]
        report = check(runtime)
        assert report.missing == {name: [] for name in report.missing}
        assert report.clean
        # A row whose bytes really are gone is still found.
        runtime.storage.keys = listing  # type: ignore[method-assign]
        runtime.storage.delete(stored_key(root, kept))
        assert check(runtime).missing["uploader"] == [stored_key(root, kept)]
    finally:
        runtime.close()


def test_backup_and_restore_round_trip(data: tuple[Path, str], tmp_path: Path) -> None:
    root, token = data
    items = {upload(root, token, os.urandom(1000 + n)): n for n in range(3)}
    code, out = cli("--data", str(root), "backup", str(tmp_path / "bk"))
    assert code == 0, out
    assert "database and 3 files" in out

    target = tmp_path / "restored"
    code, out = cli("--data", str(target), "restore", str(tmp_path / "bk"))
    assert code == 0, out
    assert (target / "secret").read_text() == (root / "secret").read_text()
    for item in items:
        key = stored_key(target, item)
        assert (target / "files" / key).read_bytes() == (root / "files" / key).read_bytes()
    assert cli("--data", str(target), "check")[0] == 0
    # The restored host accepts the same key: keys live in the database.
    upload(target, token, b"after restore")


def test_backup_and_restore_refuse_to_overwrite(data: tuple[Path, str], tmp_path: Path) -> None:
    root, token = data
    upload(root, token, b"before the backup")
    (tmp_path / "bk").mkdir()
    code, out = cli("--data", str(root), "backup", str(tmp_path / "bk"))
    assert code == 1 and "already exists" in out
    code, out = cli("--data", str(root), "restore", str(tmp_path / "bk"))
    assert code == 1 and "is not a hepcore backup" in out
    assert cli("--data", str(root), "backup", str(tmp_path / "good"))[0] == 0
    code, out = cli("--data", str(root), "restore", str(tmp_path / "good"))
    assert code == 1 and "already has a database" in out
    item = upload(root, token, b"after the backup")
    code, out = cli("--data", str(root), "restore", str(tmp_path / "good"), "--force")
    assert code == 0, out
    # The host is back at the backup: the later upload's row is gone, the earlier ones stay.
    runtime = build_runtime(load_config(root))
    try:
        assert runtime.db.one("SELECT 1 FROM uploader_items WHERE id = ?", (item,)) is None
        assert runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 1
    finally:
        runtime.close()


def test_an_interrupted_restore_leaves_no_database(data: tuple[Path, str],
                                                   tmp_path: Path) -> None:
    root, token = data
    upload(root, token, b"one")
    assert cli("--data", str(root), "backup", str(tmp_path / "bk"))[0] == 0
    bad = tmp_path / "bk" / "files" / "not a key!.bin"
    bad.write_bytes(b"x")
    target = tmp_path / "restored"
    code, out = cli("--data", str(target), "restore", str(tmp_path / "bk"))
    assert code == 1, out
    assert not (target / "hepcore.db").exists()
    bad.unlink()
    code, out = cli("--data", str(target), "restore", str(tmp_path / "bk"))
    assert code == 0, out


def test_restore_refuses_a_storage_root_outside_the_target(data: tuple[Path, str],
                                                           tmp_path: Path) -> None:
    root, _ = data
    conf = root / "hepcore.toml"
    live_files = tmp_path / "live-files"
    conf.write_text(conf.read_text().replace(
        '[storage]\nbackend = "local"', f'[storage]\nbackend = "local"\nroot = "{live_files}"'))
    assert f'root = "{live_files}"' in conf.read_text()
    assert cli("--data", str(root), "backup", str(tmp_path / "bk"))[0] == 0
    code, out = cli("--data", str(tmp_path / "scratch"), "restore", str(tmp_path / "bk"))
    assert code == 1 and "is outside" in out


@pytest.mark.integration
def test_backup_during_concurrent_uploads_keeps_every_acknowledged_upload(
        data: tuple[Path, str], tmp_path: Path) -> None:
    root, token = data
    conf = root / "hepcore.toml"
    conf.write_text(conf.read_text().replace(
        '[services.uploader]\nprefix = "/"',
        '[services.uploader]\nprefix = "/"\nupload_rate_per_minute = 1000000'))
    assert "upload_rate_per_minute = 1000000" in conf.read_text()
    acknowledged: list[tuple[float, str, str]] = []  # (ack time, item, sha256)
    stop = threading.Event()
    errors: list[str] = []

    with run_server(root, "wsgi", workers=2, threads=4) as server:
        def uploader(n: int) -> None:
            session = requests.Session()
            i = 0
            while not stop.is_set():
                payload = os.urandom(20_000 + 97 * i) + bytes([n])
                i += 1
                r = session.post(server.url + "/upload", headers={"Authorization": token},
                                 files={"file": (f"u{n}-{i}.bin", payload)}, timeout=30)
                if r.status_code != 200:
                    errors.append(r.text)
                    continue
                acknowledged.append((time.monotonic(), r.json()["ID"],
                                     hashlib.sha256(payload).hexdigest()))

        threads = [threading.Thread(target=uploader, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        while len(acknowledged) < 30:
            time.sleep(0.05)
        started = time.monotonic()
        code, out = cli("--data", str(root), "backup", str(tmp_path / "bk"))
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
    assert code == 0, out
    assert not errors
    before = [(item, digest) for ack, item, digest in acknowledged if ack < started]
    assert len(before) >= 30

    target = tmp_path / "restored"
    assert cli("--data", str(target), "restore", str(tmp_path / "bk"))[0] == 0
    for item, digest in before:
        key = stored_key(target, item)
        assert hashlib.sha256((target / "files" / key).read_bytes()).hexdigest() == digest
    code, out = cli("--data", str(target), "check")
    assert "missing bytes" not in out, out


def test_check_covers_the_cdn_and_image_services(data: tuple[Path, str]) -> None:
    import falcon.testing
    from httpkit import jpeg_bytes

    from hepcore.web import create_app

    root, _ = data
    runtime = build_runtime(load_config(root))
    try:
        account = runtime.accounts.by_name("erin")
        cdn_key, _ = runtime.keys.create("cdn", account.id, label="ci")
        img_key, _ = runtime.keys.create("images", account.id)
        client = falcon.testing.TestClient(create_app(runtime))
        body, ctype = multipart([("file", "a.txt", "text/plain", b"cdn bytes")])
        r = client.simulate_post("/cdn/api/v4/upload", body=body, headers={
            "Authorization": f"Bearer {cdn_key}", "Content-Type": ctype})
        assert r.status_code == 201, r.text
        body, ctype = multipart([("file", "p.jpg", "image/jpeg", jpeg_bytes(16, 16))])
        r = client.simulate_post("/img/api/v1/upload", body=body, headers={
            "Authorization": f"Bearer {img_key}", "Content-Type": ctype})
        assert r.status_code == 200, r.text
        image = r.json["filename"]
        cdn_key_path = runtime.db.one("SELECT storage_key FROM cdn_uploads")[0]
        img_key_path = runtime.db.one("SELECT storage_key FROM images_uploads")[0]
        used = client.simulate_get("/cdn/api/v4/me", headers={
            "Authorization": f"Bearer {cdn_key}"}).json
    finally:
        runtime.close()
    assert cli("--data", str(root), "check")[0] == 0
    (root / "files" / cdn_key_path).unlink()
    (root / "files" / img_key_path).unlink()
    code, out = cli("--data", str(root), "check")
    assert code == 2
    assert f"missing bytes: cdn: {cdn_key_path}" in out
    assert f"missing bytes: images: {img_key_path}" in out
    code, out = cli("--data", str(root), "check", "--repair", "--grace", "0")
    assert "dropped 2 rows without bytes" in out
    assert cli("--data", str(root), "check")[0] == 0
    runtime = build_runtime(load_config(root))
    try:
        client = falcon.testing.TestClient(create_app(runtime))
        me = client.simulate_get("/cdn/api/v4/me", headers={
            "Authorization": f"Bearer {cdn_key}"}).json
        assert client.simulate_get(f"/img/images/{image}").status_code == 404
    finally:
        runtime.close()
    assert me != used
    assert me["storage_used"] == 0, me
