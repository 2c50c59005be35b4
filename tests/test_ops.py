"""Health check, Prometheus metrics and the access log."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
from pathlib import Path

import falcon.asgi
import falcon.testing
import pytest
import requests
from httpkit import multipart

from hepcore import Config, ServiceConfig, build_runtime, observe
from hepcore.cli import main
from hepcore.observe import redacted_path, request_id
from hepcore.testing import FakeClock
from hepcore.testing.servers import run_server
from hepcore.web import add_service, create_app

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def ops_client(tmp_path: Path, app_kind: str) -> falcon.testing.TestClient:
    config = Config(data_dir=tmp_path / "data", secrets=["s"], metrics_token=TOKEN,
                    services={"uploader": ServiceConfig(
                        "uploader", prefix="/", options={"upload_rate_per_minute": 2})})
    runtime = build_runtime(config, clock=FakeClock())
    client = falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))
    client.runtime = runtime  # type: ignore[attr-defined]
    return client


def upload(client: falcon.testing.TestClient, token: str, **headers: str) -> falcon.testing.Result:
    body, ctype = multipart([("file", "a.txt", "text/plain", b"hello")])
    return client.simulate_post("/upload", body=body,
                                headers={"Authorization": token, "Content-Type": ctype, **headers})


def new_key(client: falcon.testing.TestClient) -> str:
    runtime = client.runtime  # type: ignore[attr-defined]
    account = runtime.accounts.create(f"ops{len(runtime.accounts.list())}")
    return str(runtime.keys.create("uploader", account.id)[0])


def test_healthz_answers_ok_when_database_and_storage_answer(ops_client) -> None:
    r = ops_client.simulate_get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "database": "ok", "storage": "ok"}
    assert r.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_when_storage_is_gone(ops_client) -> None:
    root = ops_client.runtime.storage.root  # type: ignore[attr-defined]
    shutil.rmtree(root)
    root.write_text("not a directory")
    r = ops_client.simulate_get("/healthz")
    assert r.status_code == 503
    assert r.json == {"status": "unavailable", "database": "ok", "storage": "unavailable"}


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_need_the_token(ops_client) -> None:
    assert ops_client.simulate_get("/metrics").status_code == 401
    r = ops_client.simulate_get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_metrics_count_requests_bytes_and_refusals(ops_client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = ops_client.simulate_get("/metrics", headers=auth).text
    key = new_key(ops_client)
    assert [upload(ops_client, key).status_code for _ in range(3)] == [200, 200, 429]
    r = ops_client.simulate_get("/metrics", headers=auth)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    after = r.text

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("hepcore_requests_total", service="uploader", route="/upload",
                 method="POST", status="200") == 2
    assert delta("hepcore_requests_total", route="/upload", status="429") == 1
    assert delta("hepcore_refusals_total", service="uploader", kind="rate_limit") == 1
    assert delta("hepcore_request_duration_seconds_count", route="/upload") == 3
    body, _ = multipart([("file", "a.txt", "text/plain", b"hello")])
    # Two uploads read their whole body; the refused one read none of it.
    assert delta("hepcore_uploaded_bytes_total", service="uploader") == 2 * len(body)


def test_uploaded_bytes_are_the_bytes_read_not_the_announced_length(ops_client) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = ops_client.simulate_get("/metrics", headers=auth).text
    r = ops_client.simulate_post("/upload", body=b"", headers={
        "Authorization": "hyd-up-not-a-key", "Content-Length": "999999999999"})
    assert r.status_code == 401
    after = ops_client.simulate_get("/metrics", headers=auth).text
    assert metric(after, "hepcore_uploaded_bytes_total") == metric(
        before, "hepcore_uploaded_bytes_total")


def test_metrics_are_off_without_a_token(tmp_path: Path, app_kind: str) -> None:
    config = Config(data_dir=tmp_path / "d", secrets=["s"],
                    services={"uploader": ServiceConfig("uploader", prefix="/")})
    client = falcon.testing.TestClient(create_app(config, asgi=app_kind == "asgi"))
    r = client.simulate_get("/metrics", headers={"Authorization": "Bearer "})
    assert r.status_code == 404  # the uploader's own answer: no item named "metrics"
    assert "hepcore_requests_total" not in r.text


def test_access_log_line_has_the_request_id_and_no_credentials(
        ops_client, caplog: pytest.LogCaptureFixture) -> None:
    key = new_key(ops_client)
    with caplog.at_level(logging.INFO, logger="hepcore.access"):
        r = upload(ops_client, key, **{"X-Request-Id": "trace-42"})
        plain = ops_client.simulate_get("/nope", query_string=f"key={key}")
    assert r.headers["X-Request-Id"] == "trace-42"
    lines = [json.loads(rec.getMessage()) for rec in caplog.records
             if rec.name == "hepcore.access"]
    first = next(line for line in lines if line["request_id"] == "trace-42")
    assert first["method"] == "POST" and first["path"] == "/upload"
    assert first["route"] == "/upload" and first["status"] == 200
    assert first["service"] == "uploader"
    assert re.fullmatch(r"[0-9a-f]{16}", plain.headers["X-Request-Id"])
    assert key not in caplog.text


def test_request_ids_and_redaction() -> None:
    assert request_id("abc-123") == "abc-123"
    assert request_id("a b") != "a b" and len(request_id("a b")) == 16
    assert request_id("x" * 65) != "x" * 65
    assert redacted_path("/api/delete/s3cr3t", {"delete_token": "s3cr3t"}) == \
        "/api/delete/[redacted]"
    assert redacted_path("/abc", {"item_id": "abc"}) == "/abc"


@pytest.fixture
def access_logger():  # type: ignore[no-untyped-def]
    """The access logger as a served worker sets it up, writing to a buffer;
    call ``take_over()`` first thing in the test."""
    logger = logging.getLogger("hepcore.access")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers.clear()
    observe.prepare_worker()
    handler = logger.handlers[0]
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]

    def take_over() -> tuple[logging.Logger, logging.Handler, io.StringIO]:
        # pytest attaches its capture handlers to non-propagating loggers once the test runs.
        logger.handlers[:] = [handler]
        return logger, handler, stream

    yield take_over
    logger.handlers[:], logger.level, logger.propagate = saved


AWKWARD = {"service": "uploader", "route": "/{item_id}", "method": "GET", "status": 404,
           "rid": "trace-1", "path": '/a"b\\c\n\u00e9\u2028\U0001f600', "client_ip": "2001:db8::1"}


def _record(**extra: object) -> None:
    fields = {**AWKWARD, **extra}
    observe.record(seconds=0.00123, uploaded=0, served=None, **fields)  # type: ignore[arg-type]


def test_access_log_lines_are_compact_json_of_any_path(access_logger) -> None:
    _, _, stream = access_logger()
    _record()
    _record(path="/plain")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    expected = {"request_id": "trace-1", "method": "GET", "path": AWKWARD["path"],
                "route": "/{item_id}", "service": "uploader", "status": 404, "ms": 1.23,
                "client": "2001:db8::1"}
    assert {k: v for k, v in first.items() if k != "ts"} == expected
    # Byte for byte what json.dumps writes (ASCII only, compact).
    assert lines[0] == json.dumps({"ts": first["ts"], **expected}, separators=(",", ":"))
    assert json.loads(lines[1])["path"] == "/plain"


def test_access_log_honours_an_operators_logging_set_up(
        access_logger, caplog: pytest.LogCaptureFixture) -> None:
    logger, handler, stream = access_logger()
    handler.setFormatter(logging.Formatter("access %(levelname)s %(message)s"))
    _record()
    handler.addFilter(lambda rec: "/skip" not in rec.getMessage())
    _record(path="/skip")
    extra = io.StringIO()
    logger.addHandler(logging.StreamHandler(extra))
    _record(path="/two")
    logger.setLevel(logging.WARNING)
    _record(path="/quiet")
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    handler.setFormatter(handler.plain)  # type: ignore[attr-defined]
    handler.filters.clear()
    logger.propagate = True
    with caplog.at_level(logging.INFO, logger="hepcore.access"):
        _record(path="/propagated")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line.split(" ", 2)[2])["path"] for line in lines[:2]] == [
        AWKWARD["path"], "/two"]
    assert all(line.startswith("access INFO {") for line in lines[:2])
    assert [json.loads(line)["path"] for line in extra.getvalue().splitlines()] == ["/two"]
    assert json.loads(lines[2])["path"] == "/propagated" and len(lines) == 3
    assert "/propagated" in caplog.text


@pytest.mark.integration
def test_metrics_add_up_over_every_gunicorn_worker(tmp_path: Path) -> None:
    data = tmp_path / "host"
    assert main(["--data", str(data), "init"]) == 0
    config_file = data / "hepcore.toml"
    config_file.write_text(config_file.read_text().replace(
        '# metrics_token = "..."', f'metrics_token = "{TOKEN}"'))
    with run_server(data, "wsgi", workers=2, threads=2) as server:
        for _ in range(40):
            assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
            requests.get(server.url + "/not-there", timeout=10)
        text = requests.get(server.url + "/metrics", timeout=10,
                            headers={"Authorization": f"Bearer {TOKEN}"}).text
        log = server.log_path.read_text()
    pids = set(re.findall(r"Booting worker with pid: (\d+)", log))
    assert len(pids) == 2
    access = [json.loads(line) for line in log.splitlines() if line.startswith('{"ts"')]
    assert len([a for a in access if a["path"] == "/not-there"]) == 40
    # Every worker's 404s (ours and the start-up probes of "/"), whichever answered the scrape.
    not_found = len([a for a in access if a["status"] == 404])
    assert metric(text, "hepcore_requests_total", service="uploader", status="404") == not_found


@pytest.mark.integration
def test_serve_leaves_no_control_socket_in_the_users_home(tmp_path: Path) -> None:
    # Two hosts of one user would share gunicorn's $HOME/.gunicorn/gunicorn.ctl.
    data, home = tmp_path / "host", tmp_path / "home"
    home.mkdir()
    assert main(["--data", str(data), "init"]) == 0
    with run_server(data, "wsgi", extra_env={"HOME": str(home)}) as server:
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
    assert list(home.iterdir()) == []


FORWARDED = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https",
             "X-Forwarded-Ssl": "on", "X-Forwarded-Host": "evil.example",
             "SCRIPT_NAME": "/evil"}


def _shorten_through(data: Path, kind: str) -> tuple[str, dict]:
    """A shortlink made through a real server with every forwarding header set;
    the URL the uploader answered with and the request's access-log line."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(data), "accounts", "create", "fwd"]) == 0
        assert main(["--data", str(data), "keys", "create", "--service", "uploader",
                     "--account", "fwd"]) == 0
    token = out.getvalue().strip().splitlines()[-1]
    with run_server(data, kind, workers=1, threads=2) as server:
        r = requests.post(server.url + "/upload", timeout=10, data={"link": "https://example.com/"},
                          headers={"Authorization": token, **FORWARDED})
        assert r.status_code == 200, r.text
        log = server.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"ts"')]
    mine = [line for line in lines if line["path"] == "/upload"]
    assert len(mine) == 1
    return r.json()["url"], mine[0]


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_forwarded_headers_count_only_with_trust_proxy(tmp_path: Path, kind: str) -> None:
    # Neither server may act on them on its own (gunicorn trusts loopback peers
    # by default): [server] trust_proxy alone decides.
    data = tmp_path / "host"
    assert main(["--data", str(data), "init"]) == 0  # trust_proxy = false
    url, line = _shorten_through(data, kind)
    assert url.startswith("http://127.0.0.1:") and "evil" not in url
    assert line["client"] == "127.0.0.1"


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_forwarded_headers_are_honoured_with_trust_proxy(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "host"
    assert main(["--data", str(data), "init"]) == 0
    config = data / "hepcore.toml"
    config.write_text(config.read_text().replace("trust_proxy = false", "trust_proxy = true", 1))
    url, line = _shorten_through(data, kind)
    assert url.startswith("https://evil.example/")
    assert line["client"] == "198.51.100.7"


@pytest.mark.parametrize("embedded", [False, True], ids=["host", "add_service"])
def test_a_credential_sent_to_a_near_miss_of_its_route_stays_out_of_the_log(
        tmp_path: Path, app_kind: str, embedded: bool, caplog: pytest.LogCaptureFixture) -> None:
    """A delete link or sign-in link with a trailing slash or an odd case
    matches no route; its path is logged only up to where the credential starts."""
    config = Config(data_dir=tmp_path / "data", secrets=["s"], services={
        "images": ServiceConfig("images", prefix="/img"),
        "login": ServiceConfig("login", prefix="/login")})
    asgi = app_kind == "asgi"
    if embedded:
        runtime = build_runtime(config)
        app: falcon.App = falcon.asgi.App() if asgi else falcon.App()  # type: ignore[type-arg]
        add_service(app, runtime, "images")
        add_service(app, runtime, "login")
    else:
        app = create_app(config, asgi=asgi)
    client = falcon.testing.TestClient(app)
    secret = "f" * 64
    with caplog.at_level(logging.INFO, logger="hepcore.access"):
        assert client.simulate_delete(f"/img/api/delete/{secret}/").status_code == 404
        assert client.simulate_post(f"/img/API/Delete/{secret}").status_code == 404
        assert client.simulate_get(f"/login/{secret}/x").status_code == 404
        assert client.simulate_get("/img/api/nothing/here").status_code == 404
    paths = [json.loads(rec.getMessage())["path"] for rec in caplog.records
             if rec.name == "hepcore.access"]
    assert paths == ["/img/api/delete/[redacted]", "/img/API/Delete/[redacted]",
                     "/login/[redacted]", "/img/api/nothing/here"]
    assert secret not in caplog.text
