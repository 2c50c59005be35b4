"""The uploader's admin commands (``hepcore uploads …``, ``hepcore sharex``),
run as real subprocesses on a real data directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from hepcore import Runtime, build_runtime, load_config
from hepcore.errors import CredentialError
from hepcore.web import create_app

pytestmark = pytest.mark.integration

ID_RE = r"[A-Za-z0-9_-]{9}"
TOKEN_RE = r"hyd-up-[A-Za-z0-9_-]{32}"


def hepcore(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEPCORE_DATA", "HEPCORE_SECRETS", "HEPCORE_FACTORY")}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), *args],
                          capture_output=True, text=True, encoding="utf-8", env=env, timeout=60,
                          check=False)


def ok(data: Path, *args: str) -> str:
    proc = hepcore(data, *args)
    assert proc.returncode == 0, f"hepcore {' '.join(args)}: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def fails(data: Path, *args: str, message: str, code: int = 1) -> None:
    proc = hepcore(data, *args)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uploader-cli") / "data"
    ok(path, "init")
    ok(path, "accounts", "create", "alice")
    ok(path, "accounts", "create", "bob")
    return path


@pytest.fixture
def runtime(data: Path) -> Iterator[Runtime]:
    rt = build_runtime(load_config(data))
    yield rt
    rt.close()


def client_for(runtime: Runtime) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(runtime))


def listed(data: Path, *args: str) -> dict:
    return json.loads(ok(data, "uploads", "list", "--account", "alice", "--json", *args))


def test_uploads_shorten_list_set_delete_counter(data: Path, runtime: Runtime) -> None:
    counter = int(ok(data, "uploads", "counter"))
    url = ok(data, "uploads", "shorten", "--account", "alice", "https://example.com/a").strip()
    m = re.fullmatch(r"http://localhost/(" + ID_RE + ")", url)
    assert m, url
    plain_id = m.group(1)
    assert ok(data, "uploads", "shorten", "--account", "alice", "https://example.com/b",
              "--alias", "launch").strip() == "http://localhost/launch"
    fails(data, "uploads", "shorten", "--account", "alice", "https://example.com/c",
          "--alias", "launch", message="hepcore: error: Alias is already taken")
    fails(data, "uploads", "shorten", "--account", "alice", "mailto:x@example.com",
          message="hepcore: error: Invalid URL")
    fails(data, "uploads", "shorten", "--account", "alice", "https://example.com/",
          "--alias", "api", message="hepcore: error: Alias is reserved")
    assert int(ok(data, "uploads", "counter")) == counter + 2

    # they redirect over HTTP
    client = client_for(runtime)
    r = client.simulate_get("/launch")
    assert (r.status_code, r.headers["Location"]) == (302, "https://example.com/b")

    page = listed(data)
    assert [i["ID"] for i in page["uploads"]] == ["launch", plain_id]
    assert page["nextBefore"] is None
    assert set(page["uploads"][0]) == {"ID", "url", "kind", "alias", "favourite", "link", "name",
                                       "type", "size", "views", "createdAt"}
    assert page["uploads"][0]["views"] == 1
    first = listed(data, "--limit", "1", "--type", "links")
    assert [i["ID"] for i in first["uploads"]] == ["launch"]
    assert first["nextBefore"] == first["uploads"][0]["createdAt"]
    rest = listed(data, "--before", first["nextBefore"])
    assert [i["ID"] for i in rest["uploads"]] == [plain_id]
    assert listed(data, "--type", "files")["uploads"] == []
    fails(data, "uploads", "list", "--account", "alice", "--before", "soon",
          message="hepcore: error: Invalid before")
    for bad in ("0", "-1"):  # not an empty page
        fails(data, "uploads", "list", "--account", "alice", "--limit", bad, code=2,
              message=f"'{bad}' must be at least 1")

    # IDs may start with "-": they go after "--", as for any argparse positional.
    item = json.loads(ok(data, "uploads", "set", "--account", "alice", "--favourite",
                         "--alias", "nick", "--link", "https://example.org/new", "--", plain_id))
    assert (item["ID"], item["alias"], item["favourite"], item["link"]) == (
        plain_id, "nick", True, "https://example.org/new")
    assert client.simulate_get("/nick").headers["Location"] == "https://example.org/new"
    item = json.loads(ok(data, "uploads", "set", "--account", "alice", "nick", "--no-favourite",
                         "--alias", ""))
    assert (item["alias"], item["favourite"]) == (None, False)
    fails(data, "uploads", "set", "--account", "alice", "--link", "ftp://x.example/", "--",
          plain_id, message="hepcore: error: Invalid URL")
    fails(data, "uploads", "set", "--account", "bob", "--favourite", "--", plain_id,
          message="hepcore: error: Not found")

    text = ok(data, "uploads", "list", "--account", "alice")
    lines = text.strip().splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "launch" and plain_id in lines[1]
    assert "https://example.org/new" in lines[1]

    assert ok(data, "uploads", "delete", "--account", "alice", "launch").strip() == (
        "deleted launch")
    assert client.simulate_get("/launch").status_code == 404
    fails(data, "uploads", "delete", "--account", "alice", "launch",
          message="hepcore: error: Not found")
    fails(data, "uploads", "shorten", "--account", "alice", "https://example.com/",
          "--alias", "launch", message="hepcore: error: Alias is already taken")
    assert [i["ID"] for i in listed(data)["uploads"]] == [plain_id]
    assert int(ok(data, "uploads", "counter")) == counter + 2  # never decreases
    fails(data, "uploads", "list", "--account", "nobody",
          message="hepcore: error: no account named 'nobody'")


def check_sxcu(config: dict, api_base: str) -> str:
    token = config["Headers"]["Authorization"]
    assert re.fullmatch(TOKEN_RE, token)
    assert config["RequestURL"] == f"{api_base}/upload"
    assert config["RequestMethod"] == "POST"
    assert config["FileFormName"] == "file"
    assert config["URL"] == "$json:url$"
    assert "DeletionURL" not in config
    for key, value in config.items():
        if "URL" in key.upper():
            assert token not in str(value), key
    assert token not in json.dumps({k: v for k, v in config.items() if k != "Headers"})
    return str(token)


def test_sharex_issues_a_working_token(data: Path, runtime: Runtime, tmp_path: Path) -> None:
    old, _ = runtime.keys.create("uploader", runtime.accounts.by_name("bob").id)
    out_file = tmp_path / "bob.sxcu"
    proc = hepcore(data, "sharex", "--account", "bob", "--api-base", "https://hep.example/",
                   "-o", str(out_file))
    assert proc.returncode == 0, proc.stderr
    assert "issued a new uploader token" in proc.stderr
    config = json.loads(out_file.read_text("utf-8"))
    token = check_sxcu(config, "https://hep.example")
    assert runtime.verify("uploader", token).account.name == "bob"
    with pytest.raises(CredentialError):
        runtime.verify("uploader", old)
    # the config's header really uploads
    client = client_for(runtime)
    r = client.simulate_post("/upload", body="link=https://example.com/from-sxcu", headers={
        **config["Headers"], "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    # and GET /api/v1/sharex returns the same shape for the calling token
    over_http = json.loads(client.simulate_get(
        "/api/v1/sharex", headers={"Authorization": f"Bearer {token}"}).content)
    assert set(over_http) == set(config)
    assert over_http["Headers"] == config["Headers"]
    assert over_http["RequestURL"] == "http://falconframework.org/upload"


def test_sharex_with_an_existing_token(data: Path, runtime: Runtime) -> None:
    token, _ = runtime.keys.create("uploader", runtime.accounts.by_name("alice").id)
    config = json.loads(ok(data, "sharex", "--token", token, "--api-base", "https://hep.example"))
    assert check_sxcu(config, "https://hep.example") == token
    config = json.loads(ok(data, "sharex", "--token", token, "--account", "alice",
                           "--api-base", "https://hep.example"))
    assert config["Headers"]["Authorization"] == token
    assert runtime.verify("uploader", token).account.name == "alice"  # still the active one
    fails(data, "sharex", "--token", token, "--account", "bob", "--api-base", "https://h.example",
          message="--token belongs to another account")


def test_sharex_script(data: Path) -> None:
    script = ok(data, "sharex", "--script", "--api-base", "https://hep.example")
    assert script.startswith("#!/bin/sh\n")
    assert "https://hep.example/upload" in script
    assert "$HEPCORE_TOKEN" in script
    assert "hyd-up-" not in script


def test_sharex_errors(data: Path) -> None:
    fails(data, "sharex", "--account", "nobody", "--api-base", "https://hep.example",
          message="hepcore: error: no account named 'nobody'")
    fails(data, "sharex", "--account", "alice",
          message="hepcore: error: no public base URL")
    fails(data, "sharex", "--script", message="hepcore: error: no public base URL")
    fails(data, "sharex", "--token", "hyd-up-" + "x" * 32, "--api-base", "https://hep.example",
          message="hepcore: error: --token is not an active uploader token")
    fails(data, "sharex", "--api-base", "https://hep.example", code=2,
          message="hepcore: error: pass --account")
    keys_before = ok(data, "keys", "list", "--account", "alice")
    for base in ("ftp://hep.example", "hep.example", "https://hep.example/?x=1"):
        fails(data, "sharex", "--account", "alice", "--api-base", base, code=2,
              message="is not an http(s) URL such as https://your.host")
    # refused before a new token was issued: alice's token still works
    assert ok(data, "keys", "list", "--account", "alice") == keys_before


def test_configured_public_base(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(data, "init")
    toml = data / "hepcore.toml"
    text = toml.read_text("utf-8")
    assert '[services.uploader]\nprefix = "/"\n' in text
    toml.write_text(text.replace(
        '[services.uploader]\nprefix = "/"\n',
        '[services.uploader]\nprefix = "/"\npublic_base_url = "https://hep.example"\n'), "utf-8")
    ok(data, "accounts", "create", "carol")
    url = ok(data, "uploads", "shorten", "--account", "carol", "https://example.com/").strip()
    assert re.fullmatch(r"https://hep\.example/" + ID_RE, url)
    fails(data, "uploads", "shorten", "--account", "carol", "https://sub.hep.example/x",
          message="hepcore: error: Cannot shorten links to this site")
    assert "https://hep.example/upload" in ok(data, "sharex", "--script")
