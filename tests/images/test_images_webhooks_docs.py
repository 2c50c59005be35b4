"""The receiver example of docs/images.md ("Webhooks") runs and verifies real deliveries."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from hepcore import Config, Runtime, ServiceConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "images.md"
EVENT = {"filename": "FIXITFY-aB3xZ7nQrL9p.png",
         "url": "https://upload.fixitfy.com.tr/images/FIXITFY-aB3xZ7nQrL9p.png",
         "size": 184237, "mime": "image/png", "width": 1920, "height": 1080,
         "hash_sha256": "9b" * 32, "timestamp": "2026-06-01T12:00:00.000Z"}


def receiver_source() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Webhooks\n", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    (source,) = [b for b in blocks if "def app(" in b]
    return source


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(data_dir=tmp_path / "data", secrets=["s"], outbound_allow=["127.0.0.1"],
                  services={"images": ServiceConfig("images", prefix="/")},
                  blocked_plugins=["uploader", "paste", "cdn", "login", "phash_blocklist"])


@pytest.fixture
def hooks(runtime: Runtime) -> Any:
    return runtime.services["images"].webhooks  # type: ignore[attr-defined]


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch, runtime: Runtime, hooks: Any
            ) -> Iterator[tuple[str, str, str]]:
    """The doc's receiver, serving on 127.0.0.1 with the account's secret;
    (account id, endpoint id, signing secret)."""
    account = runtime.accounts.create("alice")
    _, secret = hooks.create(account.id, "http://127.0.0.1:1/")
    monkeypatch.setenv("FIXITFY_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {"__name__": "docs_receiver"}
    exec(compile(receiver_source(), "docs/images.md", "exec"), namespace)  # noqa: S102
    server: WSGIServer = make_server("127.0.0.1", 0, namespace["app"],
                                     handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    endpoint = hooks.store.list(account.id)[0]
    hooks.update(endpoint, {"url": f"http://127.0.0.1:{server.server_port}/webhooks/fixitfy"})
    yield account.id, endpoint.id, secret
    server.shutdown()
    server.server_close()


def send(runtime: Runtime, hooks: Any, account_id: str) -> None:
    with runtime.db.write() as conn:
        hooks.enqueue(conn, account_id, "upload.created", EVENT)
    assert hooks.deliver_due() == 1


def test_the_documented_receiver_accepts_genuine_events(
        runtime: Runtime, hooks: Any, example: tuple[str, str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    account_id, endpoint_id, _ = example
    send(runtime, hooks, account_id)
    assert hooks.store.by_id(endpoint_id).failure_count == 0  # it answered 204
    assert capsys.readouterr().out == f"new image: {EVENT['url']}\n"


def test_the_documented_receiver_refuses_a_wrong_signature(
        runtime: Runtime, hooks: Any, example: tuple[str, str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    account_id, endpoint_id, _ = example
    hooks.rotate_secret(account_id)  # the receiver still holds the old secret
    send(runtime, hooks, account_id)
    endpoint = hooks.store.by_id(endpoint_id)
    assert (endpoint.failure_count, endpoint.last_status, endpoint.last_error) == (
        1, 401, "HTTP 401")
    assert capsys.readouterr().out == ""
