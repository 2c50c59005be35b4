"""App factories for servers started by ``hepcore serve``.

The data directory comes from ``$HEPCORE_DATA`` and an optional custom
factory (``module:callable``, called with ``asgi=``) from ``$HEPCORE_FACTORY``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any


def default_factory(asgi: bool = False) -> Any:
    """The plain hepcore host: every installed service on the configured mounts,
    with its background jobs running."""
    from ..config import load_config
    from .app import create_app

    return prepare_serving(create_app(load_config(), asgi=asgi))


def prepare_serving(app: Any) -> Any:
    """Make an app from ``create_app`` ready to serve in this process: metrics
    shared between workers, the access log on stdout, background jobs started.
    Call it in each worker (an app factory does); returns ``app``."""
    from ..observe import prepare_worker

    prepare_worker(access_log_stream=app.hepcore.config.access_log)
    app.hepcore.jobs.start()
    return app


def load_factory(spec: str | None) -> Any:
    if not spec:
        return default_factory
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"factory must look like module:callable, got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def wsgi_app() -> Any:
    return load_factory(os.environ.get("HEPCORE_FACTORY"))(asgi=False)


def asgi_app() -> Any:
    return load_factory(os.environ.get("HEPCORE_FACTORY"))(asgi=True)
