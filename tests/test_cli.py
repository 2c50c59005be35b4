"""The ``hepcore`` admin command, run as a real subprocess on a real data directory."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import shlex
import sqlite3
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from hepcore import Runtime, build_runtime, load_config
from hepcore.clock import parse_iso
from hepcore.errors import CredentialDisabled, CredentialRevoked
from hepcore.web import create_app

pytestmark = pytest.mark.integration

TOKEN_FORMATS = {
    "uploader": r"hyd-up-[A-Za-z0-9_-]{32}",
    "paste": r"hepgg_pst_[A-Za-z0-9]{32}",
    "cdn": r"sk_cdn_[0-9a-f]{64}",
    "images": r"fxf_[0-9a-f]{64}",
}
KEY_ID_RE = re.compile(r"\bkey_[A-Za-z0-9]+\b")


def hepcore(data: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HEPCORE_DATA", "HEPCORE_SECRETS", "HEPCORE_FACTORY")}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable, "-m", "hepcore", "--data", str(data), *args],
                          capture_output=True, text=True, encoding="utf-8", env=env, cwd=cwd,
                          timeout=60, check=False)


def ok(data: Path, *args: str, cwd: Path | None = None) -> str:
    proc = hepcore(data, *args, cwd=cwd)
    assert proc.returncode == 0, f"hepcore {' '.join(args)}: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def fails(data: Path, *args: str, code: int, message: str) -> None:
    """The command exits with ``code`` and says ``message`` on stderr, without a traceback."""
    proc = hepcore(data, *args)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def multipart(filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "hepcoreCliBoundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    return body + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}")


def post_upload(runtime: Runtime, token: str, path: str = "/upload",
                data: bytes = b"hello") -> falcon.testing.Result:
    body, content_type = multipart("hello.txt", data)
    client = falcon.testing.TestClient(create_app(runtime))
    return client.simulate_post(path, body=body, headers={
        "Authorization": token, "Content-Type": content_type})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised host with the account ``alice`` (prime), shared by this module."""
    path = tmp_path_factory.mktemp("cli") / "data"
    ok(path, "init")
    out = ok(path, "accounts", "create", "alice", "--plan", "prime",
             "--email", "alice@example.org")
    assert re.fullmatch(r"created account alice \(acc_[A-Za-z0-9]+\)\n", out)
    return path


@pytest.fixture
def runtime(data: Path) -> Iterator[Runtime]:
    """The same host, in-process: to check what the commands did."""
    rt = build_runtime(load_config(data))
    yield rt
    rt.close()


def test_init_creates_config_secret_and_database(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    out = ok(data, "init")
    assert f"wrote {data / 'hepcore.toml'}" in out
    assert f"wrote {data / 'secret'}" in out

    text = (data / "hepcore.toml").read_text()
    config = tomllib.loads(text)
    prefixes = {name: table["prefix"] for name, table in config["services"].items()}
    assert prefixes == {"uploader": "/", "paste": "/paste", "cdn": "/cdn", "images": "/img"}
    assert not any("hosts" in table for table in config["services"].values())
    # The host-based production example is there, commented out.
    assert re.search(r"^# hosts = \[\"[a-z.]+\"", text, re.MULTILINE)
    assert re.search(r"^# public_base_url = \"https://", text, re.MULTILINE)

    secret = data / "secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32
    assert load_config(data).secrets == [secret.read_text().strip()]

    with sqlite3.connect(data / "hepcore.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"accounts", "api_keys", "uploader_items"} <= tables

    # A second init keeps both files as they are.
    edited = text + "\n# my own note\n"
    (data / "hepcore.toml").write_text(edited)
    before = secret.read_text()
    again = ok(data, "init")
    assert "kept existing" in again and "wrote" not in again
    assert (data / "hepcore.toml").read_text() == edited
    assert secret.read_text() == before
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_accounts_create_list_show(data: Path) -> None:
    fails(data, "accounts", "create", "alice", code=1,
          message="hepcore: error: an account named 'alice' already exists")
    for bad in ("bad name!", "trailing\n"):
        fails(data, "accounts", "create", bad, code=1,
              message="hepcore: error: account name must be 1-64 characters")

    lines = ok(data, "accounts", "list").splitlines()
    alice = next(line.split("\t") for line in lines if line.startswith("alice\t"))
    assert alice[2:5] == ["prime", "active", "alice@example.org"]

    listed = json.loads(ok(data, "accounts", "list", "--json"))
    assert isinstance(listed, list)
    (record,) = [a for a in listed if a["name"] == "alice"]
    assert (record["plan"], record["email"], record["status"]) == (
        "prime", "alice@example.org", "active")
    assert record["id"].startswith("acc_")

    assert ok(data, "accounts", "show", "alice").startswith(f"alice\t{record['id']}\tprime")
    shown = json.loads(ok(data, "accounts", "show", "alice", "--json"))
    assert shown["id"] == record["id"] and isinstance(shown["keys"], list)
    fails(data, "accounts", "show", "nobody", code=1,
          message="hepcore: error: no account named 'nobody'")


def test_accounts_set(data: Path, runtime: Runtime) -> None:
    runtime.accounts.create("carol")
    out = ok(data, "accounts", "set", "carol", "--plan", "prime", "--status", "suspended",
             "--max-upload-size", "10MiB", "--allowed-types", "image/*,text/plain",
             "--quota-tier", "verified", "--set", "key=value", "--set", "limit=3",
             "--serve-base-url", "https://i.example.org")
    assert out.startswith("carol\t")
    out = ok(data, "accounts", "set", "carol", "--unset", "key", "--email", "c@example.org")
    shown = json.loads(ok(data, "accounts", "show", "carol", "--json"))
    assert (shown["plan"], shown["status"], shown["email"]) == (
        "prime", "suspended", "c@example.org")
    assert shown["settings"] == {
        "max_file_size": 10 * 1024 * 1024,
        "allowed_types": ["image/*", "text/plain"],
        "quota_tier": "verified",
        "limit": 3,
        "serve_base_url": "https://i.example.org",
    }
    fails(data, "accounts", "set", "carol", "--max-upload-size", "lots", code=2,
          message="not a size: 'lots'")
    fails(data, "accounts", "set", "nobody", "--plan", "free", code=1,
          message="hepcore: error: no account named 'nobody'")
    fails(data, "accounts", "set", "carol", "--set", "novalue", code=2,
          message="--set takes KEY=VALUE")
    # Settings the services read keep their types: a wrong one would fail every
    # request of the account (a 500 on its next upload) rather than this command.
    for setting, message in (('max_file_size="big"', "max_file_size must be a whole number"),
                             ("max_file_size=0", "max_file_size must be a whole number"),
                             ('allowed_types="image/png"', "allowed_types must be a list"),
                             ("serve_base_url=notaurl", "serve_base_url must be an http(s) URL")):
        fails(data, "accounts", "set", "carol", "--set", setting, code=1, message=message)
    fails(data, "accounts", "set", "carol", "--serve-base-url", "notaurl", code=1,
          message="serve_base_url must be an http(s) URL")
    assert json.loads(ok(data, "accounts", "show", "carol", "--json"))["settings"] == \
        shown["settings"]


def test_accounts_set_plan_free_gives_prime_pastes_their_expiry_at_once(
        data: Path, runtime: Runtime) -> None:
    account = runtime.accounts.create("dora", plan="prime")
    token, _ = runtime.keys.create("paste", account.id, label="cli")
    client = falcon.testing.TestClient(create_app(runtime))
    made = client.simulate_post("/paste/api/paste", json={"content": "kept for now"},
                                headers={"Authorization": f"Bearer {token}"})
    assert made.json["data"]["expiresAt"] is None
    pid = made.json["data"]["id"]

    ok(data, "accounts", "set", "dora", "--plan", "free")
    shown = client.simulate_get(f"/paste/api/v1/snippets/{pid}",
                                headers={"Authorization": f"Bearer {token}"}).json["data"]
    expires = parse_iso(shown["expiresAt"])
    assert expires - parse_iso(shown["createdAt"]) == pytest.approx(365 * 86400, abs=0.002)


def test_keys_create_prints_the_key_last_in_each_format(data: Path, runtime: Runtime) -> None:
    tokens: dict[str, str] = {}
    for service, pattern in TOKEN_FORMATS.items():
        proc = hepcore(data, "keys", "create", "--service", service, "--account", "alice",
                       "--label", f"label-{service}")
        assert proc.returncode == 0, proc.stderr
        token = last_line(proc.stdout)
        assert re.fullmatch(pattern, token), (service, token)
        assert "shown only once" in proc.stderr
        tokens[service] = token
        # The printed key is the real one: the host accepts it for that service.
        actor = runtime.verify(service, token)
        assert actor.account.name == "alice" and actor.key is not None
        assert actor.key.label == f"label-{service}"

    text = ok(data, "keys", "list")
    as_json = ok(data, "keys", "list", "--json")
    keys = json.loads(as_json)
    for service, token in tokens.items():
        assert token not in text and token not in as_json
        assert token[len(token) - 20:] not in as_json  # not even the tail
        (record,) = [k for k in keys if k["label"] == f"label-{service}"]
        assert record["service"] == service and record["status"] == "active"
        assert record["id"] in text and record["display"] in text
    only = json.loads(ok(data, "keys", "list", "--service", "cdn", "--account", "alice",
                         "--json"))
    assert [k["label"] for k in only] == ["label-cdn"]


def test_key_lifecycle(data: Path, runtime: Runtime) -> None:
    runtime.accounts.create("dave")
    proc = hepcore(data, "keys", "create", "--service", "uploader", "--account", "dave")
    assert proc.returncode == 0, proc.stderr
    token = last_line(proc.stdout)
    (key_id,) = set(KEY_ID_RE.findall(proc.stderr))
    assert post_upload(runtime, token).status_code == 200

    assert ok(data, "keys", "disable", key_id).startswith(f"disabled {key_id}")
    with pytest.raises(CredentialDisabled):
        runtime.verify("uploader", token)
    assert post_upload(runtime, token).status_code == 401
    assert ok(data, "keys", "enable", key_id).startswith(f"enabled {key_id}")
    assert runtime.verify("uploader", token).account.name == "dave"

    proc = hepcore(data, "keys", "rotate", key_id)
    assert proc.returncode == 0, proc.stderr
    new_token = last_line(proc.stdout)
    assert re.fullmatch(TOKEN_FORMATS["uploader"], new_token) and new_token != token
    with pytest.raises(CredentialRevoked):
        runtime.verify("uploader", token)
    refused = post_upload(runtime, token)
    assert (refused.status_code, refused.json) == (401, {"ok": False, "error": "Token revoked"})
    assert post_upload(runtime, new_token).status_code == 200

    (new_id,) = set(KEY_ID_RE.findall(proc.stderr)) - {key_id}
    assert ok(data, "keys", "revoke", new_id).startswith(f"revoked {new_id}")
    with pytest.raises(CredentialRevoked):
        runtime.verify("uploader", new_token)
    fails(data, "keys", "enable", new_id, code=1,
          message="hepcore: error: a revoked key stays revoked")
    fails(data, "keys", "disable", new_id, code=1,
          message="hepcore: error: a revoked key stays revoked")
    statuses = {k["id"]: k["status"] for k in
                json.loads(ok(data, "keys", "list", "--account", "dave", "--json"))}
    assert statuses == {key_id: "revoked", new_id: "revoked"}


def test_errors_are_messages_not_tracebacks(data: Path) -> None:
    fails(data, "keys", "create", "--service", "paste", "--account", "nobody", code=1,
          message="hepcore: error: no account named 'nobody'")
    fails(data, "keys", "rotate", "key_doesnotexist", code=1,
          message="hepcore: error: no key with id 'key_doesnotexist'")
    fails(data, "keys", "disable", "key_doesnotexist", code=1,
          message="hepcore: error: no key with id 'key_doesnotexist'")
    fails(data, "keys", "create", "--service", "ftp", "--account", "alice", code=2,
          message="invalid choice: 'ftp'")
    fails(data, "keys", "list", "--account", "nobody", code=1,
          message="hepcore: error: no account named 'nobody'")


@pytest.mark.parametrize("table,setting,message", [
    ("server", 'trust_proxy = "false"', "server.trust_proxy must be true or false"),
    ("server", 'read_chunk_size = "big"', "server.read_chunk_size must be an integer"),
    ("server", 'log_level = "loud"', "server.log_level must be one of critical, error,"),
    ("server", "multipart_overhead = -5", "server.multipart_overhead must not be negative"),
    ("server", "body_timeout = 0", "server.body_timeout must be a number of seconds above 0"),
    ("server", 'body_timeout = "1m"', "server.body_timeout must be a number of seconds above 0"),
    ("server", "body_timeout = inf", "server.body_timeout must be a number of seconds above 0"),
    ("ops", 'access_log = "no"', "ops.access_log must be true or false"),
    ("outbound", 'allow = "10.0.0.0/8"', "outbound.allow must be a list of hostnames, IPs or CIDRs"),
    ("plugins", 'blocked = "uploader"', "plugins.blocked must be a list of strings"),
    ("storage", "root = 5", "storage.root must be a string"),
    ("storage", 'public_base_url = "files.example.org"',
     "storage.public_base_url must be an http(s) URL"),
    ("services.paste", 'public_base_url = "paste.example.org"',
     "services.paste.public_base_url must be an http(s) URL"),
    ("services.paste", "prefix = 5", "services.paste.prefix must be a string"),
    ("services.paste", 'hosts = [1]', "services.paste.hosts must be a list of host names"),
    ("services.paste", 'enabled = "no"', "services.paste.enabled must be true or false"),
    ("services.uploader", 'maintenance = "false"',
     "services.uploader.maintenance must be true or false"),
    ("services.paste", 'anonymous = "false"', "services.paste.anonymous must be true or false"),
])
def test_a_setting_of_the_wrong_type_stops_every_command(tmp_path: Path, table: str,
                                                         setting: str, message: str) -> None:
    # A quoted "false" is a string, not false: it must not quietly mean true.
    data = tmp_path / "data"
    ok(data, "init")
    (data / "hepcore.toml").write_text(f"[{table}]\n{setting}\n")
    fails(data, "accounts", "list", code=1, message=f"hepcore: error: {message}")
    fails(data, "serve", "--port", "1", code=1, message=f"hepcore: error: {message}")


@pytest.mark.parametrize("table,settings,message", [
    ("uploader", 'upload_rate_per_minute = "fast"',
     "services.uploader.upload_rate_per_minute must be an integer >= 1"),
    ("uploader", "max_file_size = 1.5", "services.uploader.max_file_size must be an integer >= 1"),
    ("uploader", "shorten_rate_per_minute = true",
     "services.uploader.shorten_rate_per_minute must be an integer >= 1"),
    ("uploader", 'allowed_types = "image/*"',
     "services.uploader.allowed_types must be a list of strings"),
    ("uploader", "upload_rate_per_minute = -5",
     "services.uploader.upload_rate_per_minute must be an integer >= 1"),
    ("uploader", 'serve_base_url = "i.example.org"',
     "services.uploader.serve_base_url must be an http(s) URL"),
    ("uploader", "upload_rate_per_minut = 100",
     "unknown settings in [services.uploader]: upload_rate_per_minut"),
    ("paste", 'max_size_free = "1MB"', "services.paste.max_size_free must be an integer >= 1"),
    ("paste", "site_name = 5", "services.paste.site_name must be a string"),
    ("paste", "purge_interval = 0", "services.paste.purge_interval must be a number > 0"),
    ("paste", "free_total_cap = -1", "services.paste.free_total_cap must be an integer >= 0"),
    ("paste", 'site_nmae = "x"\nanonymus = true\nanonymous = false',
     "unknown settings in [services.paste]: anonymus, site_nmae"),
    ("cdn", 'url_upload_rate_per_minute = "10"',
     "services.cdn.url_upload_rate_per_minute must be an integer >= 1"),
    ("cdn", "url_upload_rate_per_minute = 0",
     "services.cdn.url_upload_rate_per_minute must be an integer >= 1"),
    ("cdn", "tiers = { big = [1.5, 2] }",
     "services.cdn.tiers maps tier names to [per_file, total] byte counts (integers >= 0)"),
    ("cdn", 'storage_public_base = "https://files.example"',
     "unknown settings in [services.cdn]: storage_public_base"),
    ("images", 'max_megapixels = "50"', "services.images.max_megapixels must be a number > 0"),
    ("images", "upload_rate_per_day = 0",
     "services.images.upload_rate_per_day must be an integer >= 1"),
    ("images", 'filename_prefix = "img/"',
     "services.images.filename_prefix must be letters, digits, '.', '_' or '-'"),
    ("images", "webhook_timeout = 5\nwebhook_timout = 5\nmax_frames = 10",
     "unknown settings in [services.images]: webhook_timout"),
    ("login", 'prefix = "/login"\nsession_max_age = 60',
     "unknown settings in [services.login]: session_max_age"),
])
def test_a_bad_service_option_stops_every_command(tmp_path: Path, table: str, settings: str,
                                                  message: str) -> None:
    # A wrong type, a value out of range or a misspelt name: each stops the
    # host with one line naming the option, never a traceback or a silent default.
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text(f"[services.{table}]\n{settings}\n")
    for args in (("accounts", "list"), ("serve", "--port", "1")):
        proc = hepcore(data, *args)
        assert (proc.returncode, proc.stdout, proc.stderr) == (
            1, "", f"hepcore: error: {message}\n"), args


def test_serve_refuses_what_would_fail_in_every_worker(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(data, "init")
    fails(data, "serve", "--port", "99999", code=2, message="'99999' is not a port")
    fails(data, "serve", "--workers", "0", code=2, message="'0' must be at least 1")
    fails(data, "serve", "--threads", "0", code=2, message="'0' must be at least 1")
    fails(data, "serve", "--factory", "no_such_module:app", code=1,
          message="hepcore: error: cannot load the app factory 'no_such_module:app'")
    # Two services on one mount: found by building the host, before any worker starts.
    toml = data / "hepcore.toml"
    assert 'prefix = "/paste"' in toml.read_text()
    toml.write_text(toml.read_text().replace('prefix = "/paste"', 'prefix = "/"'))
    fails(data, "serve", "--port", "1", code=1,
          message="hepcore: error: services 'uploader' and 'paste' share the")
    fails(data, "serve", "--asgi", "--port", "1", code=1,
          message="hepcore: error: services 'uploader' and 'paste' share the")


def test_backup_and_check_refuse_a_directory_without_a_host(tmp_path: Path) -> None:
    # Run from the wrong directory, a backup must not "succeed" with nothing in it.
    typo = tmp_path / "hepcore-dta"
    for args in (("backup", str(tmp_path / "bk")), ("check",)):
        fails(typo, *args, code=1,
              message=f"hepcore: error: {typo} is not a hepcore data directory")
    assert not typo.exists() and not (tmp_path / "bk").exists()


def test_commands_refuse_a_directory_without_a_host_and_leave_none(tmp_path: Path) -> None:
    # Every command that reads or changes a host; none may leave an empty one behind.
    typo = tmp_path / "hepcore-dta"
    for args in (("accounts", "list"), ("accounts", "create", "eve"),
                 ("keys", "create", "--service", "paste", "--account", "eve"),
                 ("jobs", "list"), ("serve", "--port", "1"),
                 ("uploads", "list", "--account", "eve"), ("purge",),
                 ("cdn", "quota", "--account", "eve"), ("images", "purge"),
                 ("phash", "list")):
        fails(typo, *args, code=1,
              message=f"hepcore: error: {typo} is not a hepcore data directory")
        assert not typo.exists(), args
    # Describing the default configuration and the paste client need no host.
    proc = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(typo), "openapi",
                           "paste"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and json.loads(proc.stdout)["openapi"] == "3.1.0"
    fails(typo, "paste", "--server", "http://127.0.0.1:9", "--key", "k", "-", code=1,
          message="hepcore: error: cannot reach http://127.0.0.1:9")
    assert not typo.exists()


def test_arguments_must_be_utf8_except_file_names(data: Path, tmp_path: Path) -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates: they cannot be stored.
    bad = "http://example.org/\udcff"
    fails(data, "uploads", "shorten", "--account", "alice", bad, code=2,
          message="argument url: not valid UTF-8 text")
    fails(data, "cdn", "import", "--account", "alice", "--original-url", bad, "x", code=2,
          message="argument --original-url: not valid UTF-8 text")
    fails(data, "accounts", "set", "alice", "--set", "note=\udcff", code=2,
          message="argument --set: not valid UTF-8 text")
    fails(data, "images", "tag", "FIXITFY-x.png", "a\udcff", code=2,
          message="argument TAG: not valid UTF-8 text")
    # A file name need not be UTF-8; stored names show U+FFFD for such bytes.
    odd = tmp_path / "logo\udcff.txt"
    odd.write_bytes(b"hello")
    item = json.loads(ok(data, "cdn", "import", "--account", "alice", "--original-url",
                         "https://example.org/logo.txt", str(odd)))
    assert item["filename"] == "logo\ufffd.txt"
    fails(tmp_path / "d\udcffta", "init", code=2, message="argument --data: not valid UTF-8")


def test_values_out_of_range_are_usage_errors(data: Path) -> None:
    fails(data, "check", "--grace", "-5", code=2, message="'-5' must be 0 or more seconds")
    fails(data, "accounts", "set", "alice", "--max-upload-size", "9" * 42, code=2,
          message="is too large (at most 8 EiB)")
    fails(data, "paste", "--timeout", "nan", code=2, message="'nan' must be 0 or more seconds")
    fails(data, "keys", "create", "--service", "paste", "--account", "alice",
          "--label", "x" * 256, code=1,
          message="hepcore: error: Label is too long (maximum is 255 characters).")


def test_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "hepcore", "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for command in ("init", "demo", "serve", "accounts", "keys", "--data"):
        assert command in proc.stdout


def test_demo_prints_a_working_curl_line(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    out = ok(data, "demo", "--port", "8123")
    token = last_line(out)
    assert re.fullmatch(TOKEN_FORMATS["uploader"], token)
    (curl,) = [line for line in out.splitlines() if line.strip().startswith("curl ")]
    args = shlex.split(curl)
    assert args[args.index("-H") + 1] == f"Authorization: {token}"
    form = args[args.index("-F") + 1]
    url = args[-1]
    assert url == "http://127.0.0.1:8123/upload"
    assert form.startswith("file=@")

    # Do what the curl line does, against the demo host.
    runtime = build_runtime(load_config(data))
    try:
        done = post_upload(runtime, token, path=url.removeprefix("http://127.0.0.1:8123"),
                           data=b"# README\n")
        assert done.status_code == 200, done.text
        assert done.json["ID"] and done.json["url"].endswith(done.json["ID"])
        assert runtime.accounts.by_name("demo").id == runtime.verify("uploader", token).account.id
    finally:
        runtime.close()


def test_file_system_errors_are_messages_not_tracebacks(data: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    fails(data, "images", "upload", "--account", "alice", str(missing), code=1,
          message=f"hepcore: error: No such file or directory: {missing}")
    fails(data, "paste", str(tmp_path / "nonexistent.py"), "--server", "http://127.0.0.1:1",
          "--key", "x", code=1,
          message=f"hepcore: error: No such file or directory: {tmp_path / 'nonexistent.py'}")
    plain = tmp_path / "plain-file"
    plain.write_text("not a directory")
    fails(data, "backup", str(plain / "backup"), code=1,
          message=f"hepcore: error: Not a directory: {plain / 'backup'}")


def test_jobs_list_json_has_the_fields_of_the_lines(data: Path) -> None:
    names = ok(data, "jobs", "list").splitlines()
    assert "paste.purge" in names
    assert json.loads(ok(data, "jobs", "list", "--json")) == [{"name": n} for n in names]


def test_serve_gives_requests_in_progress_120_s_after_sigterm(tmp_path: Path) -> None:
    import argparse

    import gunicorn.config
    import uvicorn

    from hepcore.cli import gunicorn_settings, uvicorn_options

    config = load_config(tmp_path)
    args = argparse.Namespace(host="127.0.0.1", port=8000, workers=2, threads=8)
    cfg = gunicorn.config.Config()
    for name, value in gunicorn_settings(args, config).items():
        cfg.set(name, value)  # unknown names and bad values raise here
    assert (cfg.graceful_timeout, cfg.timeout, cfg.worker_class_str) == (120, 120, "gthread")
    options = uvicorn_options(args, config)
    assert uvicorn.Config("hepcore.web.entry:asgi_app", **options).timeout_graceful_shutdown == 120


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``self.server.answer``; keeps what it was sent."""

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.command, self.path,  # type: ignore[attr-defined]
                                 self.headers.get("Authorization"), self.rfile.read(length)))
        status, headers, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _any

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def recorder(status: int, headers: dict[str, str], body: bytes) -> Iterator[Any]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.answer, server.seen = (status, headers, body), []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_paste_client_sends_its_key_to_the_server_named_and_nowhere_else(tmp_path: Path) -> None:
    key = "hepgg_pst_" + "a" * 32
    with recorder(200, {}, b'{"ok":true,"data":{"url":"http://x/1"}}') as elsewhere, \
            recorder(302, {"Location": f"http://127.0.0.1:{elsewhere.server_port}/api/paste"},
                     b"") as moved:
        fails(tmp_path / "none", "paste", "--server", f"http://127.0.0.1:{moved.server_port}",
              "--key", key, "-", code=1,
              message=f"the server answered 302, a redirect to http://127.0.0.1:"
                      f"{elsewhere.server_port}/api/paste; not followed")
        assert [(m, p, a) for m, p, a, _ in moved.seen] == [("POST", "/api/paste", f"Bearer {key}")]
        assert elsewhere.seen == []
    for answer in (b"<html>not json</html>", b"[1, 2]", b'{"ok":true,"data":{"url":7}}'):
        with recorder(200, {}, answer) as odd:
            fails(tmp_path / "none", "paste", "--server", f"http://127.0.0.1:{odd.server_port}",
                  "--key", key, "-", code=1,
                  message="did not answer as a paste service does: no URL in the reply")
    with recorder(503, {}, b"[]") as down:
        fails(tmp_path / "none", "paste", "--server", f"http://127.0.0.1:{down.server_port}",
              "--key", key, "-", code=1, message="the server refused the paste (503)")
    fails(tmp_path / "none", "paste", "--server", "file:///etc", "--key", key, "-", code=2,
          message="'file:///etc' is not an http(s) URL")
    proc = subprocess.run([sys.executable, "-m", "hepcore", "--data", str(tmp_path / "none"),
                           "paste", "--key", key, "-"], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ,
                                                        "HEPCORE_PASTE_URL": "ftp://x"})
    assert proc.returncode == 1 and "'ftp://x' is not an http(s) URL" in proc.stderr


def test_private_files_are_closed_to_other_users(tmp_path: Path) -> None:
    """The data directory, the database (and its WAL), a backup and a ShareX
    config with its token are the owner's alone, whatever the umask."""
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    old = os.umask(0o022)
    try:
        data = tmp_path / "fresh"
        ok(data, "init")
        ok(data, "accounts", "create", "olga")
        ok(data, "sharex", "--account", "olga", "--api-base", "https://up.example",
           "--output", str(tmp_path / "olga.sxcu"))
        ok(data, "backup", str(tmp_path / "nightly"))
    finally:
        os.umask(old)
    assert mode(data) == 0o700
    assert mode(data / "hepcore.db") == 0o600
    with contextlib.closing(sqlite3.connect(data / "hepcore.db")) as db:
        db.execute("UPDATE accounts SET name = name")  # the WAL and its index exist meanwhile
        db.commit()
        assert mode(data / "hepcore.db-wal") == mode(data / "hepcore.db-shm") == 0o600
    assert mode(tmp_path / "olga.sxcu") == 0o600
    assert mode(tmp_path / "nightly") == 0o700
    assert mode(tmp_path / "nightly" / "hepcore.db") == 0o600
    assert mode(tmp_path / "nightly" / "hepcore.toml") == 0o600
