"""App factories for servers started by ``hepcore serve``.

The data directory comes from ``$HEPCORE_DATA`` and an optional custom
factory (``module:callable``, called with ``asgi=``) from ``$HEPCORE_FACTORY``.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..runtime import Runtime


def default_factory(asgi: bool = False) -> Any:
    """The plain hepcore host: every installed service on the configured mounts,
    with its background jobs running."""
    from ..config import load_config
    from .app import create_app

    return prepare_serving(create_app(load_config(), asgi=asgi))


def prepare_serving(app: Any, runtime: Runtime | None = None) -> Any:
    """Make ``app`` ready to serve in this process: metrics shared between
    workers, the access log on stdout, background jobs started. Call it in
    each worker, from the app factory a server loads; returns ``app``.

    ``runtime`` is the app's runtime: by default ``app.hepcore``, which
    :func:`~hepcore.web.create_app` sets; pass it for your own ``falcon.App``
    built with :func:`~hepcore.web.add_service`, which cannot carry it.
    ``hepcore serve --factory`` does not call this for you.
    """
    from ..observe import prepare_worker

    if runtime is None:
        runtime = getattr(app, "hepcore", None)
        if runtime is None:
            raise TypeError("prepare_serving() needs the runtime of an app not made by"
                            " create_app(): prepare_serving(app, runtime)")
    prepare_worker(access_log_stream=runtime.config.access_log)
    runtime.jobs.start()
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
