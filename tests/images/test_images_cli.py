"""The admin CLI for the image service, run as real subprocesses: keys (10 at
most), the audit log, role and ban, tags, upload, delete and purge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from PIL import Image

from hepcore import build_runtime, load_config
from hepcore.web import create_app

CONFIG = """
[services.images]
prefix = "/"
public_base_url = "https://img.example.org"
[plugins]
blocked = ["uploader", "paste", "cdn"]
"""


def hepcore(data: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), *args],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "HEPCORE_SECRETS": "cli-secret"})
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "hepcore.toml").write_text(CONFIG)
    hepcore(root, "accounts", "create", "carol", "--email", "carol@example.org")
    return root


def new_key(data: Path, label: str | None = None) -> str:
    extra = ["--label", label] if label else []
    out = hepcore(data, "keys", "create", "--service", "images", "--account", "carol", *extra)
    return out.stdout.strip().splitlines()[-1]


def me(data: Path, key: str) -> falcon.testing.Result:
    runtime = build_runtime(load_config(data))
    try:
        client = falcon.testing.TestClient(create_app(runtime))
        return client.simulate_get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    finally:
        runtime.close()


def test_keys_audit_role_and_ban(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEPCORE_SECRETS", "cli-secret")
    keys = [new_key(data, "ci" if i == 0 else None) for i in range(10)]
    refused = hepcore(data, "keys", "create", "--service", "images", "--account", "carol",
                      ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("hepcore: error: Key limit reached: an account can have at"
                                      " most 10 active keys. Revoke one first.")
    listed = json.loads(hepcore(data, "keys", "list", "--service", "images", "--json").stdout)
    assert [k["display"] for k in listed] == [k[:8] for k in keys]
    hepcore(data, "keys", "revoke", listed[-1]["id"])
    assert me(data, keys[-1]).status_code == 401

    audit = json.loads(hepcore(data, "images", "audit", "--json").stdout)
    assert [e["action"] for e in audit] == ["api_key.created"] * 10 + ["api_key.revoked"]
    assert audit[-1]["prefix"] == keys[-1][:8] and audit[-1]["account"] == "carol"
    assert all(e["time"].endswith("Z") for e in audit)
    text = hepcore(data, "images", "audit", "--account", "carol").stdout.splitlines()
    assert len(text) == 11 and "api_key.revoked" in text[-1] and keys[-1][:8] in text[-1]

    assert me(data, keys[0]).json["account"]["role"] == "user"
    hepcore(data, "images", "role", "carol", "admin")
    assert me(data, keys[0]).json["account"]["role"] == "admin"
    hepcore(data, "images", "ban", "carol")
    assert me(data, keys[0]).json == {"ok": False, "code": "banned",
                                      "error": "Your account is banned."}
    hepcore(data, "images", "unban", "carol")
    assert me(data, keys[0]).status_code == 200
    hepcore(data, "images", "unban", "carol")  # not banned: nothing to do


def status_of(data: Path, name: str) -> str:
    shown = json.loads(hepcore(data, "accounts", "show", name, "--json").stdout)
    return str(shown["status"])


def test_unban_gives_back_the_status_before_the_ban(data: Path) -> None:
    """A ban is the core status (host-wide); lifting it must not lift a
    suspension or skip the paste service's approval."""
    hepcore(data, "accounts", "create", "erin")
    for before in ("suspended", "unapproved", "active"):
        hepcore(data, "accounts", "set", "erin", "--status", before)
        hepcore(data, "images", "ban", "erin")
        hepcore(data, "images", "ban", "erin")  # twice: still the status before the first
        assert status_of(data, "erin") == "banned"
        hepcore(data, "images", "unban", "erin")
        assert status_of(data, "erin") == before
    hepcore(data, "accounts", "set", "erin", "--status", "suspended")
    refused = hepcore(data, "images", "unban", "erin", ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "hepcore: error: erin is not banned but suspended; change that with:"
        " hepcore accounts set erin --status STATUS")
    assert status_of(data, "erin") == "suspended"


def test_enabling_a_key_is_held_to_the_active_key_limit(data: Path) -> None:
    """F14: the limit cannot be passed by disabling a key, issuing another in
    its place and enabling the first again."""
    hepcore(data, "accounts", "create", "dave")

    def dave_key() -> str:
        out = hepcore(data, "keys", "create", "--service", "images", "--account", "dave")
        return out.stdout.strip().splitlines()[-1]

    keys = [dave_key() for _ in range(10)]

    def dave_keys() -> list[dict[str, Any]]:
        listed = json.loads(hepcore(data, "keys", "list", "--service", "images",
                                    "--json").stdout)
        dave = next(k["account_id"] for k in listed if k["display"] == keys[0][:8])
        return [k for k in listed if k["account_id"] == dave]

    listed = dave_keys()
    assert [k["display"] for k in listed] == [k[:8] for k in keys]
    hepcore(data, "keys", "disable", listed[0]["id"])
    replacement = dave_key()
    refused = hepcore(data, "keys", "enable", listed[0]["id"], ok=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("hepcore: error: Key limit reached: an account can have at"
                                      " most 10 active keys. Revoke one first.")
    assert me(data, keys[0]).status_code == 401
    assert me(data, replacement).status_code == 200
    hepcore(data, "keys", "revoke", listed[1]["id"])
    hepcore(data, "keys", "enable", listed[0]["id"])
    assert me(data, keys[0]).status_code == 200
    assert [k["status"] for k in dave_keys()].count("active") == 10


def test_upload_tag_list_delete_purge(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x010F] = "SecretCamera"
    Image.new("RGB", (20, 10), (1, 2, 3)).save(path, "JPEG", exif=exif.tobytes())
    reply = json.loads(hepcore(data, "images", "upload", "--account", "carol", str(path)).stdout)
    name = reply["filename"]
    assert reply["url"] == f"https://img.example.org/images/{name}"
    assert reply["delete_url"].startswith("https://img.example.org/api/delete/")
    stored = data / "files" / "images" / name
    assert b"SecretCamera" not in stored.read_bytes()
    again = json.loads(hepcore(data, "images", "upload", "--account", "carol", str(path)).stdout)
    assert again["duplicate"] is True

    hepcore(data, "images", "tag", name, "redm", "logo")
    listed = json.loads(hepcore(data, "images", "list", "--account", "carol", "--json").stdout)
    assert listed["uploads"][0]["tags"] == ["redm", "logo"]
    assert hepcore(data, "images", "tag", name, " png ").stdout.strip() == \
        f'{name}: ["redm", "logo", "png"]'
    # --clear replaces the tags, whichever side of it the new ones are given on.
    assert hepcore(data, "images", "tag", name, "--clear", "brand").stdout.strip() == \
        f'{name}: ["brand"]'
    assert hepcore(data, "images", "tag", name, "a", "--clear", "b").stdout.strip() == \
        f'{name}: ["a", "b"]'
    assert hepcore(data, "images", "tag", name, "--clear").stdout.strip() == f"{name}: []"
    for bad, message in (("  ", "a tag must not be blank"),
                         ("t" * 65, "a tag has at most 64 characters")):
        refused = hepcore(data, "images", "tag", name, bad, ok=False)
        assert refused.returncode == 2 and message in refused.stderr

    assert hepcore(data, "images", "delete", name).stdout.strip() == f"deleted {name}"
    assert stored.exists()
    assert "1 deleted" in hepcore(data, "images", "purge").stdout
    assert not stored.exists()
    missing = hepcore(data, "images", "delete", name, ok=False)
    assert missing.returncode == 1 and "no live upload" in missing.stderr


def test_unsupported_file_from_cli(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"just text")
    out = hepcore(data, "images", "upload", "--account", "carol", str(path), ok=False)
    assert out.returncode != 0
    assert "Unsupported file type" in out.stderr




def test_list_before_is_exact(data: Path, tmp_path: Path) -> None:
    """``--before`` lists what was created strictly earlier, to the last digit:
    an upload of ``…:50.877Z`` is listed by ``--before …:50.8771Z``."""
    path = tmp_path / "before.png"
    Image.new("RGB", (7, 5), (4, 5, 6)).save(path, "PNG")
    name = json.loads(hepcore(data, "images", "upload", "--account", "carol",
                              str(path)).stdout)["filename"]

    def listed(before: str) -> list[str]:
        out = hepcore(data, "images", "list", "--account", "carol", "--limit", "100",
                      "--before", before, "--json").stdout
        return [u["filename"] for u in json.loads(out)["uploads"]]

    created = next(u["created_at"] for u in json.loads(hepcore(
        data, "images", "list", "--account", "carol", "--limit", "100", "--json").stdout)[
            "uploads"] if u["filename"] == name)
    assert name in listed(created.replace("Z", "1Z"))
    assert name not in listed(created)


@pytest.mark.parametrize(("args", "message"), [
    (["--before", "yesterday"], "argument --before: not an ISO-8601 timestamp: 'yesterday'"),
    (["--before", "2026-13-01T00:00:00Z"], "argument --before: not an ISO-8601"),
    (["--limit", "0"], "argument --limit: must be at least 1"),
    (["--limit", "ten"], "argument --limit: not an integer: 'ten'"),
])
def test_list_refuses_a_bad_bound_with_a_usage_error(
        data: Path, args: list[str], message: str) -> None:
    out = hepcore(data, "images", "list", "--account", "carol", *args, ok=False)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_upload_without_a_public_base_url_says_which_urls_it_gives(tmp_path: Path) -> None:
    # A webhook receiver would get these URLs: the operator must learn they are placeholders.
    data = tmp_path / "data"
    hepcore(data, "init")
    hepcore(data, "accounts", "create", "erin")
    path = tmp_path / "dot.png"
    Image.new("RGB", (4, 4), (9, 8, 7)).save(path)
    done = hepcore(data, "images", "upload", "--account", "erin", str(path))
    reply = json.loads(done.stdout)
    assert reply["url"] == f"http://localhost/img/images/{reply['filename']}"
    assert done.stderr == ("note: [services.images] has no public_base_url, so the reply and"
                           " the upload.created event name http://localhost/img\n")
