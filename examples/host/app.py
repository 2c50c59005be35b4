"""The example hepcore host: every installed service, on the embedded defaults.

``create_app(config, asgi)`` is what tests use; ``get_app(asgi)`` is what
servers load (the data directory comes from ``$HEPCORE_DATA``). Add your
own routes, middleware or plugins here.
"""

from __future__ import annotations

import falcon

import hepcore
from hepcore.config import Config, load_config
from hepcore.web import prepare_serving


def create_app(config: Config, asgi: bool = False) -> falcon.App:
    return hepcore.create_app(config, asgi=asgi)


def get_app(asgi: bool = False) -> falcon.App:
    """The served app: metrics, the access log and background jobs (purges,
    webhook delivery) are set up here, in each worker."""
    return prepare_serving(create_app(load_config(), asgi=asgi))
