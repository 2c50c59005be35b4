"""``hepcore images webhooks ...`` in real subprocesses: the API's operations, the
failure record and ``deliver``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hepcore import build_runtime, load_config

CONFIG = """\
[plugins]
blocked = ["uploader", "paste", "cdn", "login", "phash_blocklist"]

[services.images]
prefix = "/"
webhook_limit = 2
"""


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "images",
                           "webhooks", *args], check=False, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text(CONFIG)
    runtime = build_runtime(load_config(data))
    runtime.accounts.create("alice")
    runtime.close()
    return data


def test_webhooks_from_the_cli(data: Path) -> None:
    added = cli(data, "add", "--account", "alice", "http://10.9.9.9/hook", "--json")
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    hook_id, secret = made["webhook"]["id"], made["signing_secret"]
    assert re.fullmatch(r"[0-9a-f]{64}", secret) and made["webhook"]["enabled"] is True

    # An upload from the admin CLI sends the event too; the private target is
    # refused at delivery, and the failure shows in the list.
    image = data / "a.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(image)
    uploaded = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), "images",
                               "upload", "--account", "alice", str(image)], check=False,
                              capture_output=True, text=True, timeout=60)
    assert uploaded.returncode == 0, uploaded.stderr
    delivered = cli(data, "deliver")
    assert delivered.returncode == 0, delivered.stderr
    assert delivered.stdout.startswith("undelivered events remain; next attempt at ")
    listed = cli(data, "list", "--account", "alice")
    lines = listed.stdout.splitlines()
    assert lines[0] == f"signing secret: {secret}"
    assert lines[1].startswith(f"{hook_id}\tenabled\thttp://10.9.9.9/hook\tfailures=1\t"
                               "last_status=None\tlast_error=destination not allowed\t")
    assert lines[1].endswith("\tpending=1")
    as_json = json.loads(cli(data, "list", "--account", "alice", "--json").stdout)
    assert as_json["webhooks"][0]["failure_count"] == 1
    assert as_json["webhooks"][0]["pending"] == 1

    disabled = cli(data, "set", "--account", "alice", hook_id, "--disable", "--json")
    assert json.loads(disabled.stdout)["enabled"] is False
    assert "pending" not in cli(data, "list", "--account", "alice").stdout  # cancelled
    moved = cli(data, "set", "--account", "alice", hook_id, "--url", "https://example.org/h")
    assert moved.stdout.startswith(f"{hook_id}\tdisabled\thttps://example.org/h\t")

    rotated = cli(data, "rotate-secret", "--account", "alice")
    new_secret = rotated.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", new_secret) and new_secret != secret

    assert cli(data, "add", "--account", "alice", "https://example.org/2").returncode == 0
    full = cli(data, "add", "--account", "alice", "https://example.org/3")
    assert (full.returncode, full.stderr) == (1, "hepcore: error: Webhook limit reached (2).\n")
    bad = cli(data, "add", "--account", "alice", "ftp://example.org/")
    assert bad.stderr == "hepcore: error: url must be an absolute http(s) URL.\n"
    # A byte that is not UTF-8 on the command line (\xe9, as Latin-1 shells send it).
    latin = cli(data, "add", "--account", "alice", "https://example.org/caf\udce9")
    assert latin.returncode == 2
    assert latin.stderr.endswith("error: argument url: not valid UTF-8 text\n")

    removed = cli(data, "remove", "--account", "alice", hook_id)
    assert removed.stdout == f"deleted {hook_id}\n"
    again = cli(data, "remove", "--account", "alice", hook_id)
    assert (again.returncode, again.stderr) == (1, "hepcore: error: Webhook not found.\n")
    nobody = cli(data, "list", "--account", "nobody")
    assert nobody.returncode == 1 and "Traceback" not in nobody.stderr
