"""``/healthz`` and ``/metrics``: host routes, outside every service's mount."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import falcon
import falcon.asgi

from ..http import dumps
from ..observe import CONTENT_TYPE, exposition
from ..runtime import Runtime

log = logging.getLogger("hepcore.ops")


class Healthz:
    """200 ``{"status": "ok", ...}`` when the database and storage answer, else 503."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: Any, resp: Any) -> None:
        checks = {"database": self._database(), "storage": self._storage()}
        healthy = all(v == "ok" for v in checks.values())
        resp.status = 200 if healthy else 503
        resp.content_type = "application/json"
        resp.cache_control = ["no-store"]
        resp.data = dumps({"status": "ok" if healthy else "unavailable", **checks})

    on_head = on_get

    def _database(self) -> str:
        try:
            self.runtime.db.one("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure is "unavailable"
            log.warning("healthz: database: %s", exc)
            return "unavailable"
        return "ok"

    def _storage(self) -> str:
        problem = self.runtime.storage.health()
        if problem:
            log.warning("healthz: storage: %s", problem)
            return "unavailable"
        return "ok"


class Metrics:
    """Prometheus text format, for ``Authorization: Bearer <[ops] metrics_token>`` only."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}".encode()

    def on_get(self, req: Any, resp: Any) -> None:
        given = (req.get_header("Authorization") or "").encode()
        if not hmac.compare_digest(given, self.expected):
            resp.status = 401
            resp.content_type = "application/json"
            resp.set_header("WWW-Authenticate", 'Bearer realm="metrics"')
            resp.data = dumps({"error": "metrics need the configured bearer token"})
            return
        resp.content_type = CONTENT_TYPE
        resp.cache_control = ["no-store"]
        resp.data = exposition()


class AsyncHealthz(Healthz):
    async def on_get(self, req: Any, resp: Any) -> None:  # type: ignore[override]
        Healthz.on_get(self, req, resp)

    on_head = on_get  # type: ignore[assignment]  # async like on_get: an ASGI app needs that


class AsyncMetrics(Metrics):
    async def on_get(self, req: Any, resp: Any) -> None:  # type: ignore[override]
        Metrics.on_get(self, req, resp)


def add_ops_routes(app: falcon.App[Any, Any], runtime: Runtime) -> None:
    """Mount the health check, and the metrics when a token is configured."""
    config = runtime.config
    asgi = isinstance(app, falcon.asgi.App)
    app.add_route(config.healthz_path, (AsyncHealthz if asgi else Healthz)(runtime))
    if config.metrics_token:
        app.add_route(config.metrics_path,
                      (AsyncMetrics if asgi else Metrics)(config.metrics_token))
