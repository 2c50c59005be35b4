"""The embedded defaults, registered as a plugin like any other:
local-disk storage, SQLite limits and quotas, hashed-key verification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .clock import Clock, system_clock
from .hookimpl import hookimpl

if TYPE_CHECKING:
    from .config import Config
    from .db import Database
    from .runtime import Runtime


def _local_storage(config: Config) -> Any:
    from .storage import LocalStorage

    options = config.storage_options
    # A relative root is relative to the data directory, like every path in hepcore.toml.
    root = config.data_dir / (options.get("root") or "files")
    return LocalStorage(root, public_base_url=options.get("public_base_url"))


def _sqlite_limits(config: Config, db: Database, clock: Clock = system_clock) -> Any:
    from .limits import SQLiteQuotaStore, SQLiteRateLimiter

    return SQLiteRateLimiter(db, clock), SQLiteQuotaStore(db)


@hookimpl(trylast=True)
def hepcore_storage_backends(config: Config) -> dict[str, Any]:
    return {"local": _local_storage}


@hookimpl(trylast=True)
def hepcore_limit_stores(config: Config) -> dict[str, Any]:
    return {"sqlite": _sqlite_limits}


@hookimpl(trylast=True)
def hepcore_token_verifiers(runtime: Runtime) -> list[Any]:
    from .tokens import HashedKeyVerifier

    return [HashedKeyVerifier(runtime.keys)]
