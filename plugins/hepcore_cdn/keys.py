"""Issuing CDN keys: each needs a name (spec section 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hepcore.errors import ConfigError
from hepcore.tokens import KeyRecord

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

def check_key_name(name: str | None) -> str:
    """The name, or :class:`ConfigError` ``Name can't be blank``; the key store
    refuses one over 255 characters (``Name is too long (maximum is 255
    characters)``), however the key is issued."""
    if name is None or not name.strip():
        raise ConfigError("Name can't be blank")
    return name


def create_key(runtime: Runtime, account_id: str, name: str | None) -> tuple[str, KeyRecord]:
    """Issue a ``sk_cdn_`` key named ``name``; the plain key is returned once."""
    return runtime.keys.create("cdn", account_id, label=check_key_name(name))


def active_keys(runtime: Runtime, account_id: str) -> list[KeyRecord]:
    return [k for k in runtime.keys.list(account_id=account_id, service="cdn")
            if k.status == "active"]
