"""The documentation is complete and its examples run.

Every ``hepcore_*`` hook has a section in docs/plugins.md; every code block
included from docs/examples/ equals its file; every example is run here and
shown to take effect; every CLI command, option and configuration key is in
docs/self-hosting.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import falcon.testing
import pluggy
import pytest

import hepcore
from hepcore import (
    BytesBody,
    Config,
    Request,
    Runtime,
    ServiceConfig,
    build_runtime,
    hookimpl,
    hookspecs,
)
from hepcore.cli import build_parser, main
from hepcore.config import DEFAULT_CONFIG_TOML, SERVE_MODES, load_config
from hepcore.errors import (
    BadSignature,
    ConfigError,
    TokenExpired,
    UnknownCredential,
)
from hepcore.plugins import make_plugin_manager
from hepcore.testing import FakeClock
from hepcore.web import create_app, prepare_serving

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
# The examples import each other by module name, as a plugin's own modules would.
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

import cli_command
import embed_app
import embed_config
import event_log
import inspect_upload
import limit_store
import misspelt_hook
import service_options
import session_actor
import status_service
import storage_backend
import token_verifier
import turnstile_captcha

# The contract suites of docs/plugins.md, collected and run here.
from backend_contracts import (
    TestMemoryQuotaStore,
    TestMemoryRateLimiter,
    TestMemoryStorage,
    TestSignedUploadTokens,
)

__all__ = ["TestMemoryQuotaStore", "TestMemoryRateLimiter", "TestMemoryStorage",
           "TestSignedUploadTokens"]

INCLUDE_RE = re.compile(
    r"<!-- include: (?P<path>\S+) -->\n```[a-z]*\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)
PNG_1PX = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def hook_names() -> list[str]:
    return sorted(n for n in vars(hookspecs) if n.startswith("hepcore_")
                  and callable(getattr(hookspecs, n)))


def sections(text: str) -> dict[str, str]:
    """``## heading`` -> the text up to the next ``## `` heading."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def multipart(filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = "hepcoreDocsBoundary7MA4YWxk"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(client: falcon.testing.TestClient, credential: str, data: bytes,
           filename: str = "note.txt", content_type: str = "text/plain",
           path: str = "/upload") -> falcon.testing.Result:
    body, ctype = multipart(filename, data, content_type)
    return client.simulate_post(path, body=body,
                                headers={"Authorization": credential, "Content-Type": ctype})


def plain_request(headers: dict[str, str] | None = None) -> Request:
    return Request(method="GET", path="/", headers=headers or {}, body=BytesBody(b""),
                   client_ip="127.0.0.1")


def make_config(tmp_path: Path, **kwargs: object) -> Config:
    services = kwargs.pop("services", {"uploader": ServiceConfig("uploader", prefix="/")})
    return Config(data_dir=tmp_path / "data", secrets=["docs-secret"],
                  services=services, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def rt_factory(tmp_path: Path) -> Iterator:
    made: list[Runtime] = []

    def build(plugins: list[object] = (), clock: FakeClock | None = None,  # type: ignore[assignment]
              **config: object) -> Runtime:
        runtime = build_runtime(make_config(tmp_path, **config), plugins=plugins,
                                clock=clock or FakeClock())
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        runtime.close()


def key_for(runtime: Runtime, name: str = "alice") -> str:
    token, _ = runtime.keys.create("uploader", runtime.accounts.create(name).id)
    return token


def client_for(runtime: Runtime, app_kind: str = "wsgi") -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install entry points in the ``hepcore`` group, as ``pip install`` of a
    package with ``[project.entry-points.hepcore]`` does (a dist-info on sys.path)."""

    def install(**entry_points: str) -> None:
        site = tmp_path / "site"
        dist = site / "hepcore_docs_examples-0.1.dist-info"
        dist.mkdir(parents=True, exist_ok=True)
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: hepcore-docs-examples\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(
            "[hepcore]\n" + "".join(f"{name} = {module}\n" for name, module in
                                    entry_points.items()))
        monkeypatch.syspath_prepend(str(site))

    return install


# --- the docs are complete and match their files ---------------------------------


def test_every_hook_has_a_section_with_a_runnable_example() -> None:
    found = sections(doc("plugins.md"))
    hooks = hook_names()
    assert len(hooks) >= 9
    missing = [h for h in hooks if h not in found]
    assert not missing, f"docs/plugins.md has no '## <hook>' section for {missing}"
    stale = [h for h in found if h.startswith("hepcore_") and h not in hooks]
    assert not stale, f"docs/plugins.md documents hooks that do not exist: {stale}"
    for hook in hooks:
        assert "<!-- include: examples/" in found[hook], f"{hook} has no included example"


def test_included_code_blocks_equal_their_files() -> None:
    included: set[str] = set()
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        markers = text.count("<!-- include: ")
        matches = list(INCLUDE_RE.finditer(text))
        assert len(matches) == markers, f"{page.name}: an include marker without a code block"
        for match in matches:
            path = DOCS / match["path"]
            assert path.is_file(), f"{page.name} includes missing {match['path']}"
            assert match["body"] == path.read_text(encoding="utf-8"), (
                f"{page.name}: the block of {match['path']} differs from the file")
            included.add(path.name)
    orphans = {p.name for p in EXAMPLES.glob("*.py")} - included
    assert not orphans, f"examples not shown in any page: {sorted(orphans)}"


def test_entry_point_snippet_is_how_the_uploader_is_registered() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", doc("plugins.md"), re.DOTALL)
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())
    in_tree = ours["project"]["entry-points"]["hepcore"]
    assert in_tree["uploader"] == "hepcore_uploader"
    documented = [tomllib.loads(b)["project"]["entry-points"]["hepcore"] for b in blocks
                  if "entry-points" in b]
    assert {"uploader": "hepcore_uploader"} in documented


def _cli_commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """(``accounts set``, parser) for every command of the built-in CLI."""
    out: list[tuple[str, argparse.ArgumentParser]] = []

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    full = f"{prefix} {name}".strip()
                    out.append((full, sub))
                    walk(full, sub)

    walk("", build_parser(plugin_commands=False))
    return out


def test_self_hosting_covers_every_cli_command_and_option() -> None:
    text = doc("self-hosting.md")
    commands = _cli_commands()
    assert {"init", "demo", "serve", "accounts", "keys", "keys rotate"} <= {c for c, _ in commands}
    for command, parser in commands:
        assert f"hepcore {command}" in text or f"hepcore --data DIR {command}" in text, command
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in text, f"hepcore {command} {option} is not documented"


def test_self_hosting_covers_every_config_key() -> None:
    text = doc("self-hosting.md")
    for table, values in tomllib.loads(DEFAULT_CONFIG_TOML).items():
        assert f"[{table}" in text, table
        for key in values:
            assert key in text, f"[{table}] {key} is not documented"
    for name in ("hosts", "public_base_url", "enabled", "HEPCORE_DATA", "HEPCORE_SECRETS",
                 *SERVE_MODES):
        assert name in text, name


def test_embedding_names_exist() -> None:
    text = doc("embedding.md")
    for name in ("create_app", "add_service", "build_runtime", "load_config", "app.hepcore"):
        assert name in text
    assert callable(hepcore.create_app) and callable(hepcore.add_service)


# --- how plugins are found --------------------------------------------------------


def test_entry_point_plugins_are_loaded_and_blocked_by_name(install_plugin) -> None:
    install_plugin(moderation="inspect_upload")
    assert make_plugin_manager().get_plugin("moderation") is inspect_upload
    pm = make_plugin_manager(blocked=["moderation"])
    assert pm.get_plugin("moderation") is None
    assert pm.get_plugin("uploader") is not None


def test_blocking_in_config(rt_factory) -> None:
    runtime = rt_factory(blocked_plugins=["uploader"])
    assert "uploader" not in runtime.services
    with pytest.raises(ConfigError, match="backend 'local' is not installed"):
        rt_factory(blocked_plugins=["hepcore.defaults"])


def test_misspelt_hook_is_refused(rt_factory) -> None:
    with pytest.raises(pluggy.PluginValidationError, match="hepcore_inspect_uplaod"):
        make_plugin_manager(extra_plugins=[misspelt_hook])
    with pytest.raises(pluggy.PluginValidationError):
        rt_factory(plugins=[misspelt_hook])


def test_misspelt_hook_in_an_installed_plugin_fails_the_cli_cleanly(
        install_plugin, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install_plugin(misspelt="misspelt_hook")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "hepcore.toml").write_text("")
    assert main(["--data", str(tmp_path / "d"), "accounts", "list"]) == 1
    err = capsys.readouterr().err
    assert "hepcore: error: unknown hook 'hepcore_inspect_uplaod'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_misspelt_hook_in_an_installed_plugin_stops_serve_before_any_worker(
        install_plugin, tmp_path: Path, kind: str) -> None:
    # Workers that fail to boot end gunicorn with a traceback per worker, and
    # uvicorn restarts them for ever; the host must not get that far.
    data = tmp_path / "d"
    assert main(["--data", str(data), "init"]) == 0
    install_plugin(misspelt="misspelt_hook")
    command = [sys.executable, "-m", "hepcore", "--data", str(data), "serve", "--port", "0",
               *(["--asgi"] if kind == "asgi" else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "site"), str(EXAMPLES), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "hepcore: error: unknown hook 'hepcore_inspect_uplaod'" in done.stderr
    assert "Traceback" not in done.stderr


# --- one test per hook: the example takes effect ------------------------------------


def test_register_services_mounts_the_status_service(rt_factory, app_kind: str) -> None:
    runtime = rt_factory(plugins=[status_service])
    with runtime.db.write() as conn:
        conn.execute("INSERT INTO status_notices (id, text) VALUES (1, 'Maintenance at 6')")
    client = client_for(runtime, app_kind)
    health = client.simulate_get("/status/health")
    assert health.status_code == 200
    assert health.json["ok"] is True
    assert {"status", "uploader"} <= set(health.json["data"]["services"])
    assert health.json["data"]["services"] == sorted(runtime.services)
    assert client.simulate_get("/status/notices/1").json == {
        "ok": True, "data": {"text": "Maintenance at 6"}}
    missing = client.simulate_get("/status/notices/2")
    assert (missing.status_code, missing.json) == (404, {"ok": False, "error": "No such notice"})
    wrong = client.simulate_post("/status/health")
    assert wrong.status_code == 405 and wrong.json["ok"] is False


def test_register_services_respects_enabled(rt_factory) -> None:
    runtime = rt_factory(plugins=[status_service], services={
        "uploader": ServiceConfig("uploader", prefix="/"),
        "status": ServiceConfig("status", prefix="/status", enabled=False)})
    assert "status" in runtime.services  # registered and migrated, but not mounted
    assert client_for(runtime).simulate_get("/status/health").status_code == 404


def test_service_options_are_read_and_checked_at_start_up(
        install_plugin, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install_plugin(greeter="service_options")
    data = tmp_path / "greeter-data"
    data.mkdir()
    toml = data / "hepcore.toml"
    toml.write_text('[services.greeter]\ngreeting = "Hi"\nshout = true\n')
    assert main(["--data", str(data), "accounts", "list"]) == 0
    runtime = build_runtime(load_config(data))
    try:
        answer = client_for(runtime).simulate_get("/greeter/ada")
        assert answer.json == {"ok": True, "data": {"text": "HI, ADA!"}}
    finally:
        runtime.close()
    capsys.readouterr()
    for table, message in [
            ("max_name = 0", "services.greeter.max_name must be an integer >= 1"),
            ('shout = "yes"', "services.greeter.shout must be true or false"),
            ('greting = "Hi"', "unknown settings in [services.greeter]: greting")]:
        toml.write_text(f"[services.greeter]\n{table}\n")
        assert main(["--data", str(data), "accounts", "list"]) == 1
        assert capsys.readouterr().err == f"hepcore: error: {message}\n"


def test_a_service_without_strict_options_accepts_unknown_options(rt_factory) -> None:
    class Lenient(service_options.GreeterService):
        strict_options = False  # the default of hepcore.Service

        def start(self) -> None:
            super().start()
            self.colour = self.config.options.get("colour", "blue")  # read directly

    class Plugin:
        @hookimpl
        def hepcore_register_services(self, runtime: Runtime) -> list[hepcore.Service]:
            return [Lenient(runtime, runtime.config.service("greeter"))]

    config = ServiceConfig("greeter", prefix="/greeter",
                           options={"greeting": "Hey", "colour": "red", "greting": 1})
    runtime = rt_factory(plugins=[Plugin()], services={"greeter": config})
    service = runtime.services["greeter"]
    assert (service.greeting, service.colour) == ("Hey", "red")  # type: ignore[attr-defined]
    assert config.unread() == ["colour", "greting"]
    assert client_for(runtime).simulate_get("/greeter/bo").json["data"] == {"text": "Hey, bo!"}
    # The typed readers check its values all the same.
    with pytest.raises(ConfigError, match=r"^services\.greeter\.max_name must be an integer >= 1$"):
        rt_factory(plugins=[Plugin()], services={
            "greeter": ServiceConfig("greeter", options={"max_name": 0, "greting": 1})})


SERVICE_PAGES = {"uploader": "uploader.md", "paste": "paste.md", "cdn": "cdn.md",
                 "images": "images.md"}


def documented_options(page: str) -> set[str]:
    """The first column of the page's ``| Option | Default | Meaning |`` tables."""
    rows = re.findall(r"^\| Option \|.*\n\|[-|]+\n((?:\|.*\n)+)", doc(page), re.MULTILINE)
    return {name for table in rows for name in re.findall(r"^\| `([a-z_]+)` \|", table,
                                                           re.MULTILINE)}


def test_every_option_a_service_reads_is_documented_on_its_page(rt_factory) -> None:
    runtime = rt_factory(services={})
    for name, page in SERVICE_PAGES.items():
        read = runtime.services[name].config.read_names
        assert read == documented_options(page), (name, read ^ documented_options(page))


def test_storage_backend_selected_by_config(rt_factory, tmp_path: Path) -> None:
    runtime = rt_factory(plugins=[storage_backend], storage_backend="memory",
                         storage_options={"max_objects": 5})
    assert isinstance(runtime.storage, storage_backend.MemoryStorage)
    assert runtime.storage.max_objects == 5
    client = client_for(runtime)
    done = upload(client, key_for(runtime), b"kept in memory")
    assert done.status_code == 200, done.text
    assert list(runtime.storage.objects.values()) == [b"kept in memory"]
    served = client.simulate_get("/" + done.json["ID"], headers={"Range": "bytes=8-"})
    assert (served.status_code, served.content) == (206, b"memory")
    assert not (tmp_path / "data" / "files" / "uploader").exists()

    # The same from a hepcore.toml, as a host would configure it.
    data = tmp_path / "from-file"
    data.mkdir()
    (data / "hepcore.toml").write_text('[storage]\nbackend = "memory"\nmax_objects = 2\n')
    from_file = build_runtime(load_config(data), plugins=[storage_backend])
    try:
        assert from_file.storage.max_objects == 2
    finally:
        from_file.close()
    with pytest.raises(ConfigError, match="available: local, memory"):
        rt_factory(plugins=[storage_backend], storage_backend="s3")


def test_limit_store_selected_by_config(rt_factory) -> None:
    runtime = rt_factory(plugins=[limit_store], limits_backend="memory", services={
        "uploader": ServiceConfig("uploader", prefix="/", options={"upload_rate_per_minute": 2})})
    assert isinstance(runtime.limiter, limit_store.MemoryRateLimiter)
    assert isinstance(runtime.quotas, limit_store.MemoryQuotaStore)
    assert runtime.limiter.clock is runtime.clock  # the factory asked for the host's clock
    client, key = client_for(runtime), key_for(runtime)
    assert [upload(client, key, b"x").status_code for _ in range(2)] == [200, 200]
    refused = upload(client, key, b"x")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json["code"] == "RATE_LIMITED"


def test_token_verifier_accepts_its_own_credential(rt_factory, app_kind: str) -> None:
    clock = FakeClock()
    runtime = rt_factory(plugins=[token_verifier], clock=clock)
    alice = runtime.accounts.create("alice")
    token = token_verifier.issue_upload_token(runtime, alice.id)
    actor = runtime.verify("uploader", token)
    assert (actor.account.id, actor.via, actor.claims) == (alice.id, "token",
                                                           {"account": alice.id})
    client = client_for(runtime, app_kind)
    done = upload(client, token, b"from a browser")
    assert done.status_code == 200, done.text
    assert client.simulate_get("/" + done.json["ID"]).content == b"from a browser"

    # Credentials it does not own go on to the next verifier (the API keys).
    api_key, _ = runtime.keys.create("uploader", alice.id)
    assert runtime.verify("uploader", api_key).via == "key"
    with pytest.raises(UnknownCredential):
        runtime.verify("paste", token)
    # Bad ones it owns raise, and the uploader answers 401.
    with pytest.raises(BadSignature):
        runtime.verify("uploader", token[:-4] + "AAAA")
    clock.advance(token_verifier.MAX_AGE + 60)
    with pytest.raises(TokenExpired):
        runtime.verify("uploader", token)
    expired = upload(client, token, b"too late")
    assert (expired.status_code, expired.json) == (401, {"ok": False, "error": "Token revoked"})


def test_inspect_upload_rejects_before_anything_is_stored(rt_factory, app_kind: str) -> None:
    runtime = rt_factory(plugins=[inspect_upload])
    client, key = client_for(runtime, app_kind), key_for(runtime)
    refused = upload(client, key, b"MZ\x90\x00\x03" + bytes(200), "setup.exe",
                     "application/octet-stream")
    assert refused.status_code == 415
    assert refused.json == {"ok": False, "error": "Executables are not accepted",
                            "code": "BLOCKED_CONTENT"}
    assert list(runtime.storage.keys()) == []
    assert list(runtime.storage.tmp_dir.iterdir()) == []  # type: ignore[attr-defined]
    assert runtime.db.one("SELECT count(*) FROM uploader_items")[0] == 0
    accepted = upload(client, key, PNG_1PX, "dot.png", "image/png")
    assert accepted.status_code == 200, accepted.text
    assert len(list(runtime.storage.keys())) == 1


def test_event_observer_receives_upload_created(rt_factory, tmp_path: Path) -> None:
    class Broken:
        @hookimpl
        def hepcore_event(self, event: hepcore.Event) -> None:
            raise RuntimeError("an observer that fails")

    log_path = tmp_path / "events.jsonl"
    runtime = rt_factory(plugins=[event_log.EventLog(log_path), Broken()])
    alice_key = key_for(runtime)
    done = upload(client_for(runtime), alice_key, b"observed")
    assert done.status_code == 200  # the broken observer is logged, not fatal
    (line,) = log_path.read_text().splitlines()
    event = json.loads(line)
    alice = runtime.accounts.by_name("alice")
    assert event == {"name": "upload.created", "service": "uploader", "account_id": alice.id,
                     "at": runtime.clock(), "data": {"ID": done.json["ID"],
                                                     "url": done.json["url"], "kind": "file"}}


def test_session_actor_reads_the_signed_cookie(rt_factory) -> None:
    clock = FakeClock()
    runtime = rt_factory(plugins=[session_actor], clock=clock)
    alice = runtime.accounts.create("alice")
    set_cookie = session_actor.session_cookie(runtime, alice.id)
    assert "HttpOnly" in set_cookie
    pair = set_cookie.split(";", 1)[0]
    actor = runtime.session_actor(plain_request({"cookie": f"theme=dark; {pair}"}))
    assert actor is not None and (actor.account.id, actor.via) == (alice.id, "session")

    assert runtime.session_actor(plain_request()) is None
    assert runtime.session_actor(plain_request({"cookie": pair[:-3] + "xyz"})) is None
    runtime.accounts.update(alice.id, status="suspended")
    assert runtime.session_actor(plain_request({"cookie": pair})) is None
    runtime.accounts.update(alice.id, status="active")
    clock.advance(session_actor.MAX_AGE + 60)
    assert runtime.session_actor(plain_request({"cookie": pair})) is None
    assert rt_factory().session_actor(plain_request({"cookie": pair})) is None


class _SiteVerify(BaseHTTPRequestHandler):
    """A stand-in for the provider's siteverify endpoint, on 127.0.0.1."""

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        ok = form.get("secret") == "turnstile-secret" and form.get("response") == "solved"
        body = json.dumps({"success": ok, "remoteip": form.get("remoteip")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_captcha_verifier(rt_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SiteVerify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/siteverify"
    try:
        runtime = rt_factory(plugins=[
            turnstile_captcha.Turnstile("turnstile-secret", verify_url=url, timeout=5)])
        assert runtime.verify_captcha("solved", plain_request()) is True
        assert runtime.verify_captcha("guessed", plain_request()) is False
        assert runtime.verify_captcha("", plain_request()) is False
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert runtime.verify_captcha("solved", plain_request()) is False  # unreachable: closed
    assert rt_factory().verify_captcha("solved", plain_request()) is None  # none installed


def test_cli_command_from_an_installed_plugin(install_plugin, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cli-data"
    install_plugin(**{"usage-report": "cli_command"})
    assert make_plugin_manager().get_plugin("usage-report") is cli_command
    runtime = build_runtime(load_config(data))
    try:
        key = key_for(runtime)
        runtime.keys.touch(runtime.keys.lookup("uploader", key).id)  # type: ignore[union-attr]
        runtime.accounts.create("bob")
    finally:
        runtime.close()

    assert main(["--data", str(data), "usage", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"account": "alice", "active_keys": 1, "requests": 1},
        {"account": "bob", "active_keys": 0, "requests": 0},
    ]
    assert main(["--data", str(data), "usage"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "alice\t1 active keys\t1 requests"

    (data / "hepcore.toml").write_text('[plugins]\nblocked = ["usage-report"]\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(data), "usage"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'usage'" in capsys.readouterr().err


# --- embedding.md --------------------------------------------------------------------


def test_embedding_example(rt_factory, app_kind: str) -> None:
    runtime = rt_factory()
    client = falcon.testing.TestClient(embed_app.create_app(runtime, asgi=app_kind == "asgi"))
    assert client.simulate_get("/").json == {"uploads": 0}
    done = upload(client, key_for(runtime), b"embedded", path="/files/upload")
    assert done.status_code == 200, done.text
    assert done.json["url"].endswith("/files/" + done.json["ID"])
    assert client.simulate_get("/files/" + done.json["ID"]).content == b"embedded"
    assert client.simulate_get("/").json == {"uploads": 1}
    inside = client.simulate_get("/files/no/such/thing")
    assert (inside.status_code, inside.json) == (404, {"ok": False, "error": "Not found"})
    assert client.simulate_get("/elsewhere").status_code == 404
    described = client.simulate_get("/files/openapi.json")
    assert described.status_code == 200
    assert described.json["servers"] == [{"url": "/files"}]
    assert "/upload" in described.json["paths"]


def test_embedding_get_app_reads_hepcore_data(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEPCORE_DATA", str(tmp_path / "env-data"))
    built: list[Runtime] = []

    def build(config: Config) -> Runtime:
        built.append(build_runtime(config))
        return built[-1]

    monkeypatch.setattr(hepcore, "build_runtime", build)
    access = logging.getLogger("hepcore.access")
    # prepare_serving sets the access log up as in a served worker; undone after.
    monkeypatch.setattr(access, "handlers", [])
    monkeypatch.setattr(access, "level", access.level)
    monkeypatch.setattr(access, "propagate", access.propagate)
    app = embed_app.get_app()
    try:
        assert falcon.testing.TestClient(app).simulate_get("/").json == {"uploads": 0}
        assert (tmp_path / "env-data" / "hepcore.db").exists()
        assert built[0].jobs._started  # prepare_serving ran: jobs started in this process
    finally:
        built[0].close()


def test_prepare_serving_needs_the_runtime_of_a_plain_falcon_app(runtime: Runtime) -> None:
    with pytest.raises(TypeError, match=r"prepare_serving\(app, runtime\)"):
        prepare_serving(falcon.App())



def test_embedding_config_in_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  app_kind: str) -> None:
    monkeypatch.setenv("HEPCORE_SECRETS", "old-secret,new-secret")
    config = embed_config.make_config(tmp_path / "embedded")
    assert config.secrets == ["old-secret", "new-secret"]
    runtime = build_runtime(config, clock=FakeClock())
    try:
        client = falcon.testing.TestClient(embed_app.create_app(runtime, asgi=app_kind == "asgi"))
        key = key_for(runtime)
        done = upload(client, key, PNG_1PX, "dot.png", "image/png", path="/files/upload")
        assert done.status_code == 200, done.text
        assert done.json["url"] == "https://example.org/files/" + done.json["ID"]
        refused = upload(client, key, b"%PDF-1.4\n", "a.pdf", "application/pdf",
                         path="/files/upload")
        assert refused.status_code == 400
        too_big = upload(client, key, bytes(25 * 1024 * 1024 + 1), "big.txt",
                         path="/files/upload")
        assert too_big.status_code == 413
    finally:
        runtime.close()


def test_relative_storage_root_is_under_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hepcore.toml").write_text('[storage]\nroot = "blobs"\n')
    runtime = build_runtime(load_config(data))
    try:
        assert runtime.storage.root == data / "blobs"  # type: ignore[attr-defined]
    finally:
        runtime.close()
