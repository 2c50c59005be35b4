"""``hepcore cdn`` admin commands: named keys, quota tiers, import (for
``/rescue``), list, delete and recount."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import falcon.testing
import pytest
from cdnkit import path_of

from hepcore import load_config
from hepcore.cli import main
from hepcore.runtime import build_runtime
from hepcore.web import create_app


def run(data: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--data", str(data), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "host"
    assert run(root, "init")[0] == 0
    assert run(root, "accounts", "create", "dana", "--email", "dana@example.org")[0] == 0
    return root


def test_key_needs_a_name(data: Path) -> None:
    code, _, err = run(data, "cdn", "key", "--account", "dana", "--name", "  ")
    assert (code, err.strip()) == (1, "hepcore: error: Name can't be blank")
    code, _, err = run(data, "cdn", "key", "--account", "dana", "--name", "x" * 256)
    assert err.strip() == "hepcore: error: Name is too long (maximum is 255 characters)"
    code, _, err = run(data, "cdn", "key", "--account", "dana")
    assert code == 2 and "--name" in err


def test_core_keys_create_checks_cdn_names_the_same_way(data: Path) -> None:
    code, out, err = run(data, "keys", "create", "--service", "cdn", "--account", "dana",
                         "--label", "x" * 256)
    assert (code, out) == (1, "")
    assert err.strip() == "hepcore: error: Name is too long (maximum is 255 characters)"
    code, _, err = run(data, "keys", "create", "--service", "cdn", "--account", "dana")
    assert code == 2 and "cdn keys need a name" in err
    runtime = build_runtime(load_config(data))
    try:
        assert runtime.keys.list(service="cdn") == []
    finally:
        runtime.close()
    code, out, _ = run(data, "keys", "create", "--service", "cdn", "--account", "dana",
                       "--label", "x" * 255)
    assert code == 0 and out.strip().startswith("sk_cdn_")


def test_key_in_a_real_subprocess(data: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "cdn", "key",
                           "--account", "dana", "--name", "deploy"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.strip()
    assert key.startswith("sk_cdn_") and len(key) == 71
    assert f"({key[:13]}....{key[-6:]})" in proc.stderr
    runtime = build_runtime(load_config(data))
    try:
        client = falcon.testing.TestClient(create_app(runtime))
        r = client.simulate_get("/cdn/api/v4/me", headers={"Authorization": f"Bearer {key}"})
        assert r.json["email"] == "dana@example.org"
        r = client.simulate_post("/cdn/api/v4/revoke", headers={"Authorization": f"Bearer {key}"})
        assert r.json["key_name"] == "deploy"
    finally:
        runtime.close()


def test_quota(data: Path) -> None:
    code, out, _ = run(data, "cdn", "quota", "--account", "dana")
    assert out.strip() == ("dana\ttier unverified\tper file 10 MB\ttotal 50 MB"
                           "\tused 0 Bytes (0.0%)")
    code, out, _ = run(data, "cdn", "quota", "--account", "dana", "--tier", "verified",
                       "--storage-limit", "200GiB", "--json")
    assert json.loads(out) == {"account": "dana", "quota_tier": "verified",
                               "per_file_limit": 104857600, "storage_limit": 200 * 1024**3,
                               "storage_used": 0, "percentage_used": 0.0}
    code, out, _ = run(data, "cdn", "quota", "--account", "dana", "--tier-limits", "--json")
    assert json.loads(out)["storage_limit"] == 50 * 1024**3
    code, _, err = run(data, "cdn", "quota", "--account", "dana", "--tier", "gold")
    assert (code, err.strip()) == (
        2, "hepcore: error: --tier must be one of: unverified, verified, functionally_unlimited")
    code, out, err = run(data, "cdn", "quota", "--account", "dana", "--tier-limits",
                         "--max-file-size", "5MiB")
    assert (code, out) == (2, "")
    assert "--tier-limits drops the per-account limits" in err
    code, out, _ = run(data, "cdn", "quota", "--account", "dana", "--json")
    assert json.loads(out)["per_file_limit"] == 104857600  # the tier's, not 5 MiB


def test_import_list_rescue_delete_and_recount(data: Path, tmp_path: Path) -> None:
    source = tmp_path / "old logo.png"
    source.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    code, out, err = run(data, "cdn", "import", "--account", "dana", "--original-url",
                         "https://cloud-x.hackclub.com/logo.png", str(source))
    assert code == 0, err
    item = json.loads(out)
    assert (item["filename"], item["content_type"], item["size"]) == \
        ("old logo.png", "image/png", 108)
    code, out, _ = run(data, "cdn", "list", "--account", "dana")
    assert out.startswith(item["id"]) and "https://cloud-x.hackclub.com/logo.png" in out
    code, out, err = run(data, "cdn", "list", "--account", "dana", "--limit", "-1")
    assert (code, out) == (2, "") and "'-1' must be at least 1" in err  # not every row
    runtime = build_runtime(load_config(data))
    try:
        client = falcon.testing.TestClient(create_app(runtime))
        r = client.simulate_get("/cdn/rescue",
                                query_string="url=https://cloud-x.hackclub.com/logo.png")
        assert r.status_code == 302
        assert client.simulate_get(path_of(r.headers["Location"])).content == \
            source.read_bytes()
        with runtime.db.write() as conn:
            conn.execute("UPDATE quota_usage SET bytes = 999, count = 9")
    finally:
        runtime.close()
    code, out, _ = run(data, "cdn", "recount")
    assert out.strip() == "dana: 999 -> 108 bytes, 9 -> 1 uploads"
    assert run(data, "cdn", "recount")[1] == ""
    code, out, _ = run(data, "cdn", "delete", "--account", "dana", item["id"])
    assert out.strip() == f"deleted {item['id']}"
    code, out, _ = run(data, "cdn", "list", "--account", "dana", "--json")
    assert json.loads(out) == []
    code, _, err = run(data, "cdn", "delete", "--account", "dana", item["id"])
    assert code == 1 and "has no upload" in err


def test_import_refuses_what_does_not_fit(data: Path, tmp_path: Path) -> None:
    run(data, "cdn", "quota", "--account", "dana", "--max-file-size", "10")
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 11)
    code, _, err = run(data, "cdn", "import", "--account", "dana", "--original-url", "u",
                       str(source))
    assert code == 1 and "larger than the per-file limit (10 Bytes)" in err
    run(data, "cdn", "quota", "--account", "dana", "--max-file-size", "100",
        "--storage-limit", "5")
    code, _, err = run(data, "cdn", "import", "--account", "dana", "--original-url", "u",
                       str(source))
    assert code == 1 and "quota would be exceeded" in err
    assert not list((data / "files").rglob("big.bin"))


def test_list_shows_what_users_chose_without_terminal_controls(data: Path) -> None:
    """A filename may hold ESC, BEL or CR (cdn.md 4.2 strips neither): the text
    listing escapes them, so they can neither drive the operator's terminal
    nor overwrite a line. JSON escapes them anyway."""
    runtime = build_runtime(load_config(data))
    try:
        account = runtime.accounts.by_name("dana")
        key, _ = runtime.keys.create("cdn", account.id, label="cli")
        client = falcon.testing.TestClient(create_app(runtime))
        name = "\x1b]0;PWNED\x07\x1b[2K\rinvoice\u202e.pdf"
        boundary = "b0undary"
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
                f"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--{boundary}--\r\n").encode()
        made = client.simulate_post("/cdn/api/v4/upload", body=body, headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert made.status_code == 201, made.text
        assert made.json["filename"] == "\x1b]0-PWNED\x07\x1b[2K-invoice-.pdf"  # 4.2's strip set
    finally:
        runtime.close()
    code, out, _ = run(data, "cdn", "list", "--account", "dana")
    assert code == 0
    line = out.strip()
    assert "\x1b" not in line and "\x07" not in line and "\r" not in line
    assert line.count("\n") == 0 and line.endswith("\t\\x1b]0-PWNED\\x07\\x1b[2K-invoice-.pdf")
    source = data / "x.txt"
    source.write_bytes(b"x")
    code, _, err = run(data, "cdn", "import", "--account", "dana", "--original-url",
                       "https://old.example/a\n01deadbeef\tfake row", str(source))
    assert code == 0, err
    code, out, _ = run(data, "cdn", "list", "--account", "dana")
    assert len(out.splitlines()) == 2
    assert "https://old.example/a\\x0a01deadbeef\\x09fake row" in out
