"""Paste fixtures: the paste service at ``/`` of a fresh host, keys for a Free
and a Prime account, a signed-in session from the login plugin, and a host
factory for other options (anonymous creation with a captcha verifier)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from hepcore import Account, Config, Runtime, ServiceConfig, build_runtime, hookimpl
from hepcore.testing import FakeClock
from hepcore.web import create_app

CORPUS = Path(__file__).resolve().parent / "corpus"


def paste_config(data_dir: Path, **options: Any) -> Config:
    return Config(data_dir=data_dir, secrets=["paste-secret-old", "paste-secret"],
                  services={"paste": ServiceConfig("paste", prefix="/", options=options)})


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return paste_config(tmp_path / "data")


@pytest.fixture
def key(runtime: Runtime, account: Account) -> str:
    token, _ = runtime.keys.create("paste", account.id, label="test")
    return token


@pytest.fixture
def prime(runtime: Runtime) -> Account:
    return runtime.accounts.create("pat", plan="prime")


@pytest.fixture
def prime_key(runtime: Runtime, prime: Account) -> str:
    token, _ = runtime.keys.create("paste", prime.id, label="prime")
    return token


def session_cookie(client: falcon.testing.TestClient, runtime: Runtime, account: Account) -> str:
    """Sign in through the login plugin's one-time link; the ``Cookie`` header value."""
    from hepcore_login.service import issue_link_token

    token = issue_link_token(runtime, account.id)
    done = client.simulate_post(f"/login/{token}")
    assert done.status_code == 303, done.text
    set_cookie = done.headers["set-cookie"]
    return set_cookie.split(";", 1)[0]


@pytest.fixture
def signed_in(client: falcon.testing.TestClient, runtime: Runtime, account: Account) -> str:
    return session_cookie(client, runtime, account)


class Captcha:
    """A stand-in captcha verifier plugin: the token ``solved`` passes."""

    @hookimpl
    def hepcore_verify_captcha(self, token: str, request: Any) -> bool:
        return token == "solved"


@pytest.fixture
def paste_host(tmp_path: Path, clock: FakeClock,
               app_kind: str) -> Iterator[Callable[..., tuple[Runtime, Any]]]:
    """``paste_host(plugins=[...], **options)`` -> (runtime, test client)."""
    made: list[Runtime] = []

    def make(plugins: list[object] = (), **options: Any) -> tuple[Runtime, Any]:  # type: ignore[assignment]
        runtime = build_runtime(paste_config(tmp_path / f"host{len(made)}", **options),
                                clock=clock, plugins=plugins)
        made.append(runtime)
        return runtime, falcon.testing.TestClient(create_app(runtime, asgi=app_kind == "asgi"))

    yield make
    for runtime in made:
        runtime.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
