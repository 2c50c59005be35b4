"""Mounting services by Host header and/or path prefix (G7).

:class:`MountRouter` is a Falcon router: it picks the mount for a request's
host and path, then asks that mount's own compiled router for the route.
A path inside a mount that matches no route goes to the mount's fallback,
so it is answered in the owning service's envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from falcon.routing import CompiledRouter, map_http_methods, set_default_responders

from ..service import Service


@dataclass(eq=False)
class Mount:
    """Where a service answers: ``prefix`` (``""`` for the root) on ``hosts``
    (empty: any host). ``secret_prefixes``: see :func:`.observe.secret_prefixes`."""

    service: Service
    prefix: str = ""
    hosts: frozenset[str] = frozenset()
    router: CompiledRouter = field(default_factory=CompiledRouter)
    fallback: Any = None
    fallback_map: dict[str, Any] = field(default_factory=dict)
    secret_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.prefix = self.prefix.rstrip("/")

    def subpath(self, path: str) -> str | None:
        """The path relative to the mount, or ``None`` when the path is outside it."""
        if not self.prefix:
            return path
        if path == self.prefix:
            return "/"
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix):]
        return None

    def set_fallback(self, resource: Any) -> None:
        self.fallback = resource
        method_map = map_http_methods(resource)
        set_default_responders(method_map)
        self.fallback_map = method_map


class MountRouter:
    """A Falcon router over several :class:`Mount` objects.

    Routes the host app adds itself (``app.add_route``) are tried first, so
    a host can put its own pages beside the services. Then mounts with hosts
    are tried before host-less ones, longer prefixes before shorter. The
    chosen mount is left in ``req.context.hepcore_mount``.
    """

    def __init__(self, trust_proxy: bool = False) -> None:
        self.mounts: list[Mount] = []
        self.trust_proxy = trust_proxy
        self.own = CompiledRouter()
        self._has_own = False

    def add_mount(self, mount: Mount) -> None:
        for other in self.mounts:
            if other.prefix == mount.prefix and (
                (not other.hosts and not mount.hosts) or (other.hosts & mount.hosts)
            ):
                raise ValueError(
                    f"services {other.service.name!r} and {mount.service.name!r} share the"
                    f" mount {mount.prefix or '/'} on the same host; give each its own host"
                    " or prefix"
                )
        self.mounts.append(mount)
        self.mounts.sort(key=lambda m: (not m.hosts, -len(m.prefix)))

    def add_route(self, uri_template: str, resource: object, **kwargs: Any) -> None:
        """A route of the host app itself, outside every service."""
        self.own.add_route(uri_template, resource, **kwargs)
        self._has_own = True

    def find(self, uri: str, req: Any = None) -> tuple[Any, Any, dict[str, Any], str | None] | None:
        if self._has_own:
            route = self.own.find(uri, req)
            if route is not None:
                return route
        host = None  # parsed when a mount needs it
        for mount in self.mounts:
            if mount.hosts:
                if host is None:
                    host = request_host(req, self.trust_proxy)
                if host not in mount.hosts:
                    continue
            sub = mount.subpath(uri)
            if sub is None:
                continue
            if req is not None:
                req.context.hepcore_mount = mount
            route = mount.router.find(sub, req)
            if route is not None:
                return route
            return mount.fallback, mount.fallback_map, {}, None
        return None


def request_host(req: Any, trust_proxy: bool) -> str:
    """The request's host name, lower-case, without port (``X-Forwarded-Host`` when trusted)."""
    if req is None:
        return ""
    try:
        host = req.forwarded_host if trust_proxy else req.host
    except Exception:  # noqa: BLE001 - a malformed Host must not break the error path
        return ""
    return (host or "").split(":", 1)[0].lower()
