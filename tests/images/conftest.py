"""Fixtures of the image service's tests: an images-only host mounted at ``/``,
an account with an ``fxf_`` key, and helpers to upload real Pillow images."""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from httpkit import multipart
from PIL import Image
from webhookkit import Receiver

from hepcore import Account, Config, Runtime, ServiceConfig

PUBLIC_BASE = "https://upload.fixitfy.com.tr"


@pytest.fixture
def images_options() -> dict[str, Any]:
    """``[services.images]`` options; override in a test module to change limits."""
    return {}


@pytest.fixture
def outbound_allow() -> list[str]:
    """``[outbound] allow``; the webhook tests open it for their 127.0.0.1 receiver."""
    return []


@pytest.fixture
def config(tmp_path: Path, images_options: dict[str, Any], outbound_allow: list[str]) -> Config:
    """Only the image service, at ``/`` with the upstream public base URL."""
    return Config(
        data_dir=tmp_path / "data",
        secrets=["test-secret-old", "test-secret-new"],
        services={"images": ServiceConfig("images", prefix="/", public_base_url=PUBLIC_BASE,
                                          options=dict(images_options))},
        blocked_plugins=["uploader", "paste", "cdn", "phash_blocklist", "login"],
        outbound_allow=list(outbound_allow),
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (:class:`webhookkit.Receiver`), stopped after."""
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def account(runtime: Runtime) -> Account:
    return runtime.accounts.create("alice", email="alice@example.org")


@pytest.fixture
def key(runtime: Runtime, account: Account) -> str:
    """A fresh ``fxf_`` key of ``account`` (label ``ci``)."""
    token, _ = runtime.keys.create("images", account.id, label="ci")
    return token


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (32, 24),
                color: tuple[int, int, int] = (200, 10, 10), **save: Any) -> bytes:
    """A real image made with Pillow; ``save`` goes to ``Image.save``."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt, **save)
    return buf.getvalue()


Upload = Callable[..., falcon.testing.Result]


@pytest.fixture
def upload(client: falcon.testing.TestClient, key: str) -> Upload:
    """``upload(data, credential=key, filename="x.png", content_type=None,
    field="file")``: POST /api/v1/upload as multipart."""

    def post(data: bytes, credential: str | None = None, *, filename: str = "image.bin",
             content_type: str | None = "application/octet-stream",
             field: str = "file") -> falcon.testing.Result:
        body, ctype = multipart([(field, filename, content_type, data)])
        return client.simulate_post("/api/v1/upload", body=body, headers={
            **auth(credential or key), "Content-Type": ctype})

    return post


_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def progressive_jpeg(scans: int) -> bytes:
    """A real 200x200 progressive JPEG (10 scans from Pillow) with its last scan
    repeated until it has ``scans``: libjpeg decodes each repeat again."""
    buf = io.BytesIO()
    Image.linear_gradient("L").resize((200, 200)).convert("RGB").save(
        buf, "JPEG", progressive=True)
    data = buf.getvalue()
    pos, found = 2, []
    while data[pos + 1] != 0xD9:
        end = pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if data[pos + 1] == 0xDA:
            end = _ENTROPY_END.search(data, end).start()  # type: ignore[union-attr]
            found.append((pos, end))
        pos = end
    assert len(found) == 10
    start, end = found[-1]
    return data[:end] + data[start:end] * (scans - 10) + data[end:]
