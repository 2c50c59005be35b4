"""hepcore's uploader inside your own Falcon app, under ``/files``, for WSGI or ASGI."""

from __future__ import annotations

import falcon
import falcon.asgi

import hepcore
from hepcore.web import AsgiApp, add_service, prepare_serving


class Home:
    """One of your own resources; it gets the runtime like any collaborator."""

    def __init__(self, runtime: hepcore.Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"uploads": self.runtime.counter("uploader.uploads")}


class AsyncHome(Home):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        super().on_get(req, resp)  # a quick SQLite read; run slow work in a thread


def create_app(runtime: hepcore.Runtime, asgi: bool = False) -> falcon.App:
    # AsgiApp: a falcon.asgi.App that routes a request before asking for its body.
    app = AsgiApp() if asgi else falcon.App()
    app.add_route("/", AsyncHome(runtime) if asgi else Home(runtime))
    add_service(app, runtime, "uploader", prefix="/files")
    return app


def get_app(asgi: bool = False) -> falcon.App:
    """What a server loads: the configuration from ``$HEPCORE_DATA``; metrics,
    the access log and background jobs set up in this worker."""
    runtime = hepcore.build_runtime(hepcore.load_config())
    return prepare_serving(create_app(runtime, asgi=asgi), runtime)


def get_asgi_app() -> falcon.asgi.App:
    """The ASGI app, for servers that call a factory without arguments."""
    return get_app(asgi=True)
