"""CDN test fixtures: the CDN mounted at ``/`` on its own (the other services
blocked), 127.0.0.1 allowed for the outbound fetcher, a key for ``alice``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cdnkit import OTHER_PLUGINS, CdnHost, Origin

from hepcore import Account, Config, Runtime, ServiceConfig
from hepcore.testing import FakeClock


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        secrets=["test-secret"],
        # Many URL uploads per test; the default 10/min is tested on a host of its own.
        services={"cdn": ServiceConfig("cdn", prefix="/",
                                       options={"url_upload_rate_per_minute": 1000})},
        blocked_plugins=list(OTHER_PLUGINS),
        outbound_allow=["127.0.0.1"],
    )


@pytest.fixture
def account(runtime: Runtime) -> Account:
    return runtime.accounts.create("alice", email="alice@example.org")


@pytest.fixture
def key(runtime: Runtime, account: Account) -> str:
    from hepcore_cdn.keys import create_key

    token, _ = create_key(runtime, account.id, "ci")
    return token


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def other_auth(runtime: Runtime) -> dict[str, str]:
    """A key of a second account, ``bob``."""
    from hepcore_cdn.keys import create_key

    bob = runtime.accounts.create("bob", email="bob@example.org")
    token, _ = create_key(runtime, bob.id, "bob's")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def cdn_host(tmp_path: Path, clock: FakeClock, app_kind: str) -> Iterator[Callable[..., CdnHost]]:
    """Build a separate host for one test: ``cdn_host(options=..., settings=...,
    outbound_allow=..., storage_backend=..., plugins=..., prefix=...)``."""
    made: list[CdnHost] = []

    def make(**kwargs: Any) -> CdnHost:
        host = CdnHost.build(tmp_path / f"host{len(made)}", clock, asgi=app_kind == "asgi",
                             **kwargs)
        made.append(host)
        return host

    yield make
    for host in made:
        host.runtime.close()


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server
