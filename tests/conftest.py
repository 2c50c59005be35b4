"""Shared fixtures: real SQLite and files under tmp_path, both app kinds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from hepcore import Account, Config, Runtime, ServiceConfig, build_runtime
from hepcore.testing import FakeClock
from hepcore.web import create_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        secrets=["test-secret-old", "test-secret-new"],
        services={"uploader": ServiceConfig("uploader", prefix="/")},
    )


@pytest.fixture
def runtime(config: Config, clock: FakeClock) -> Iterator[Runtime]:
    rt = build_runtime(config, clock=clock)
    yield rt
    rt.close()


@pytest.fixture(params=["wsgi", "asgi"])
def app_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(runtime: Runtime, app_kind: str) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))


@pytest.fixture
def account(runtime: Runtime) -> Account:
    return runtime.accounts.create("alice", email="alice@example.org")


@pytest.fixture
def uploader_token(runtime: Runtime, account: Account) -> str:
    token, _ = runtime.keys.create("uploader", account.id, label="test")
    return token


@pytest.fixture
def host(tmp_path: Path, clock: FakeClock, app_kind: str) -> Iterator[Callable[..., Any]]:
    """Build a separate host with service options / account settings for one test:
    ``host(options={...}, settings={...})`` (see ``httpkit.make_host``)."""
    from httpkit import make_host

    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        h = make_host(tmp_path / f"host{len(made)}", clock, asgi=app_kind == "asgi", **kwargs)
        made.append(h)
        return h

    yield make
    for h in made:
        h.runtime.close()
