"""The host configuration: an explicit object, built from a TOML file and the environment.

Nothing here is read at import time. ``load_config(data_dir)`` reads
``<data_dir>/hepcore.toml`` and the secret file; tests build :class:`Config`
directly.
"""

from __future__ import annotations

import math
import os
import secrets
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlsplit

from .errors import ConfigError

CONFIG_FILE = "hepcore.toml"
SECRET_FILE = "secret"
DATABASE_FILE = "hepcore.db"
DEFAULT_DATA_DIR = "hepcore-data"
SERVE_MODES = ("direct", "x-accel-redirect", "x-sendfile")


@dataclass
class ServiceConfig:
    """Where one service is mounted and its own options.

    A request belongs to the service when its ``Host`` is in ``hosts`` (or
    ``hosts`` is empty) and its path starts with ``prefix``. ``options``
    holds the service's own settings (its ``[services.NAME]`` table).

    A service reads them with the typed readers (:meth:`flag`, :meth:`integer`,
    :meth:`number`, :meth:`text`, :meth:`texts`, :meth:`raw`): each returns
    ``default`` when the option is absent, raises a :class:`ConfigError`
    naming ``services.NAME.OPTION`` and what it must be when the value does
    not fit, and records the name as read, so that :meth:`unread` can list
    the keys of the table that nothing asked for (misspelt names).
    """

    name: str
    prefix: str = "/"
    hosts: list[str] = field(default_factory=list)
    public_base_url: str | None = None
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    _read: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def _refuse(self, name: str, expected: str) -> ConfigError:
        return ConfigError(f"services.{self.name}.{name} must be {expected}")

    def raw(self, name: str, default: Any = None) -> Any:
        """The option ``name`` as written (``default`` when absent), unchecked:
        for options the service checks itself. Recorded as read."""
        self._read.add(name)
        return self.options.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        """The boolean option ``name`` of ``[services.NAME]``; anything but
        ``true``/``false`` is a :class:`ConfigError` (a quoted ``"false"`` is
        not false)."""
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self._refuse(name, "true or false")
        return value

    def integer(self, name: str, default: int, *, low: int | None = None,
                high: int | None = None) -> int:
        """The integer option ``name``, within ``low`` and ``high`` (inclusive,
        each optional). A float (``1.5``, even ``2.0``), a boolean or a string
        is a :class:`ConfigError`: ``services.NAME.OPTION must be an integer >= 1``."""
        value = self.raw(name, default)
        if (isinstance(value, bool) or not isinstance(value, int)
                or not _within(value, low, None, high)):
            raise self._refuse(name, "an integer" + _bounds(low, None, high))
        return value

    def number(self, name: str, default: float, *, low: float | None = None,
               above: float | None = None, high: float | None = None) -> float:
        """The numeric option ``name`` (an integer or a finite float, never a
        boolean), as a float: at least ``low``, more than ``above``, at most ``high``
        (each optional). Else a :class:`ConfigError`:
        ``services.NAME.OPTION must be a number > 0``."""
        value = self.raw(name, default)
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or not _within(value, low, above, high)):
            raise self._refuse(name, "a number" + _bounds(low, above, high))
        return float(value)

    @overload
    def text(self, name: str, default: str) -> str: ...

    @overload
    def text(self, name: str, default: None = None) -> str | None: ...

    def text(self, name: str, default: str | None = None) -> str | None:
        """The string option ``name``; ``None`` only when it is absent and the
        default is ``None`` (an optional setting). Anything but a string is a
        :class:`ConfigError`: ``services.NAME.OPTION must be a string``."""
        value = self.raw(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str):
            raise self._refuse(name, "a string")
        return value

    def url(self, name: str) -> str | None:
        """The optional option ``name`` as a base URL (http or https, with a
        host, no query or fragment), without a trailing slash; ``None`` when
        absent or empty (TOML has no null). Else a :class:`ConfigError`:
        ``services.NAME.OPTION must be an http(s) URL``."""
        value = self.raw(name)
        if value is None or value == "":
            return None
        if not is_base_url(value):
            raise self._refuse(name, "an http(s) URL")
        return str(value).rstrip("/")

    def texts(self, name: str, default: Sequence[str] = ()) -> list[str]:
        """The option ``name`` as a list of strings (a copy). A bare string or a
        list holding anything else is a :class:`ConfigError`:
        ``services.NAME.OPTION must be a list of strings``."""
        value = self.raw(name, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._refuse(name, "a list of strings")
        return list(value)

    @property
    def read_names(self) -> frozenset[str]:
        """Every option name a reader has been asked for, present in ``options`` or not."""
        return frozenset(self._read)

    def unread(self) -> list[str]:
        """The keys of ``options`` that no reader has asked for yet, sorted."""
        return sorted(set(self.options) - self._read)

    def refuse_unread(self) -> None:
        """Raise :class:`ConfigError` ``unknown settings in [services.NAME]: a, b``
        when :meth:`unread` lists any key (the host calls this after ``start()``
        of a service with ``strict_options``)."""
        unknown = self.unread()
        if unknown:
            raise ConfigError(f"unknown settings in [services.{self.name}]: {', '.join(unknown)}")

    def __post_init__(self) -> None:
        prefix = "/" + self.prefix.strip("/")
        self.prefix = prefix if prefix != "/" else "/"
        self.hosts = [h.lower() for h in self.hosts]
        if self.public_base_url:
            self.public_base_url = self.public_base_url.rstrip("/")


def is_base_url(value: object) -> bool:
    """Whether ``value`` can prefix the URLs of replies: an http(s) URL with a
    host and neither query nor fragment."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname)
            and not parts.query and not parts.fragment and "#" not in value)


def _within(value: float, low: float | None, above: float | None, high: float | None) -> bool:
    return ((low is None or value >= low) and (above is None or value > above)
            and (high is None or value <= high))


def _bounds(low: float | None, above: float | None, high: float | None) -> str:
    """`` >= 1``, `` > 0``, `` from 0 to 64``: the range of a reader, as its message says it."""
    if low is not None and high is not None and above is None:
        return f" from {low} to {high}"
    parts = [f" >= {low}" if low is not None else "", f" > {above}" if above is not None else "",
             f" <= {high}" if high is not None else ""]
    return " and".join(p for p in parts if p)


@dataclass
class Config:
    """Everything a hepcore host needs to start.

    ``secrets`` are the signing secrets, oldest first: the last one signs,
    every one verifies (rotation).
    """

    data_dir: Path
    secrets: list[str] = field(default_factory=list)
    services: dict[str, ServiceConfig] = field(default_factory=dict)
    storage_backend: str = "local"
    storage_options: dict[str, Any] = field(default_factory=dict)
    limits_backend: str = "sqlite"
    blocked_plugins: list[str] = field(default_factory=list)
    trust_proxy: bool = False
    serve_mode: str = "direct"
    accel_prefix: str = "/_hepcore_files/"
    read_chunk_size: int = 1024 * 1024
    multipart_overhead: int = 64 * 1024
    # Seconds a request body may go without a byte before the read fails (a 400),
    # so that an idle client does not hold a worker thread for ever.
    body_timeout: float = 300.0
    # glibc malloc arenas of a served process (hepcore.memory); 0 keeps the C library's default.
    malloc_arenas: int = 2
    log_level: str = "info"
    # Served with the sandbox CSP besides the built-in HTML, XML, SVG and JavaScript types (G6).
    active_types: list[str] = field(default_factory=list)
    # [outbound]: the safe fetcher (hepcore.outbound); private destinations it may reach.
    outbound_allow: list[str] = field(default_factory=list)
    outbound_connect_timeout: float = 5.0
    outbound_read_timeout: float = 30.0
    outbound_total_timeout: float = 60.0
    outbound_user_agent: str = "hepcore"
    # [ops]: health, metrics and the access log (hepcore.observe).
    healthz_path: str = "/healthz"
    metrics_path: str = "/metrics"
    metrics_token: str = ""
    access_log: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self._check_types()
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"server.log_level must be one of {', '.join(LOG_LEVELS)}")
        self.log_level = self.log_level.lower()
        if self.multipart_overhead < 0:
            raise ConfigError("server.multipart_overhead must not be negative")
        if self.serve_mode not in SERVE_MODES:
            raise ConfigError(f"server.serve_mode must be one of {', '.join(SERVE_MODES)}")
        if not 4096 <= self.read_chunk_size <= 16 * 1024 * 1024:
            raise ConfigError("server.read_chunk_size must be between 4096 and 16777216")
        if (isinstance(self.body_timeout, bool) or not isinstance(self.body_timeout, int | float)
                or not 0 < self.body_timeout <= 86400):
            raise ConfigError("server.body_timeout must be a number of seconds above 0,"
                              " at most 86400")
        if (not isinstance(self.malloc_arenas, int) or isinstance(self.malloc_arenas, bool)
                or not 0 <= self.malloc_arenas <= 64):
            raise ConfigError("server.malloc_arenas must be an integer from 0 to 64")
        for name in ("healthz_path", "metrics_path"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith("/"):
                raise ConfigError(f"ops.{name} must be a path starting with /")
        self._check_outbound()
        self._check_active_types()

    def _check_types(self) -> None:
        """Each setting of the file has its declared type: a quoted ``"false"`` is
        not false, and must not quietly turn ``trust_proxy`` on."""
        for name, kind in _SETTING_TYPES.items():
            value = getattr(self, name)
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif kind is list:
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise ConfigError(f"{_setting_name(name)} must be {_KIND_NAMES[kind]}")

    def _check_active_types(self) -> None:
        from .serving import single_media_type

        if isinstance(self.active_types, str) or not all(
                isinstance(t, str) and single_media_type(t) == t.strip().lower()
                for t in self.active_types):
            raise ConfigError("server.active_types must be a list of media types (type/subtype)")
        self.active_types = [t.strip().lower() for t in self.active_types]

    def _check_outbound(self) -> None:
        from .outbound import parse_allow_entry

        if isinstance(self.outbound_allow, str) or not all(
                isinstance(e, str) for e in self.outbound_allow):
            raise ConfigError("outbound.allow must be a list of hostnames, IPs or CIDRs")
        self.outbound_allow = list(self.outbound_allow)
        for entry in self.outbound_allow:
            try:
                parse_allow_entry(entry)
            except ValueError:
                raise ConfigError(
                    f"outbound.allow: {entry!r} is not a hostname, IP or CIDR") from None
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            value = getattr(self, f"outbound_{name}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"outbound.{name} must be a positive number of seconds")
        if not isinstance(self.outbound_user_agent, str):
            raise ConfigError("outbound.user_agent must be a string")

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE

    def service(self, name: str) -> ServiceConfig:
        """The mount of ``name``; a service not configured gets a ``/<name>`` prefix."""
        if name not in self.services:
            self.services[name] = ServiceConfig(name=name, prefix=f"/{name}")
        return self.services[name]


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# The settings of hepcore.toml by Config field, with the type each must have.
# (Settings with checks of their own, such as the [outbound] ones and
# malloc_arenas, are not repeated here.)
_SETTING_TYPES: dict[str, type] = {
    "storage_backend": str, "limits_backend": str, "blocked_plugins": list,
    "trust_proxy": bool, "serve_mode": str, "accel_prefix": str, "read_chunk_size": int,
    "multipart_overhead": int, "log_level": str, "healthz_path": str, "metrics_path": str,
    "metrics_token": str, "access_log": bool,
}
_KIND_NAMES = {bool: "true or false", int: "an integer", str: "a string",
               list: "a list of strings"}
_SECTIONS = {"storage_backend": "storage.backend", "limits_backend": "limits.backend",
             "blocked_plugins": "plugins.blocked"}
_OPS = {"healthz_path", "metrics_path", "metrics_token", "access_log"}


def _setting_name(field_name: str) -> str:
    """``trust_proxy`` -> ``server.trust_proxy``: the name as written in hepcore.toml."""
    if field_name in _SECTIONS:
        return _SECTIONS[field_name]
    if field_name.startswith("outbound_"):
        return "outbound." + field_name.removeprefix("outbound_")
    return ("ops." if field_name in _OPS else "server.") + field_name


def default_data_dir() -> Path:
    """``$HEPCORE_DATA`` or ``./hepcore-data``."""
    return Path(os.environ.get("HEPCORE_DATA") or DEFAULT_DATA_DIR)


def read_secrets(data_dir: Path) -> list[str]:
    """Signing secrets from ``$HEPCORE_SECRETS`` (comma-separated) or the secret file."""
    env = os.environ.get("HEPCORE_SECRETS")
    if env:
        return [s.strip() for s in env.split(",") if s.strip()]
    path = data_dir / SECRET_FILE
    if path.exists():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return []


def new_secret() -> str:
    return secrets.token_urlsafe(48)


def config_from_dict(data: dict[str, Any], data_dir: Path) -> Config:
    """Build a :class:`Config` from a parsed TOML document; unknown keys are errors."""
    data = dict(data)
    server = dict(data.pop("server", {}))
    storage = dict(data.pop("storage", {}))
    limits = dict(data.pop("limits", {}))
    plugins = dict(data.pop("plugins", {}))
    services_raw = dict(data.pop("services", {}))
    outbound = data.pop("outbound", {})
    ops = data.pop("ops", {})
    if not isinstance(ops, dict):
        raise ConfigError("[ops] must be a table")
    unknown_ops = set(ops) - {"healthz_path", "metrics_path", "metrics_token", "access_log"}
    if unknown_ops:
        raise ConfigError(f"unknown ops settings: {', '.join(sorted(unknown_ops))}")
    ops.setdefault("metrics_token", os.environ.get("HEPCORE_METRICS_TOKEN", ""))
    if not isinstance(outbound, dict):
        raise ConfigError("[outbound] must be a table")
    data.pop("data_dir", None)
    if data:
        raise ConfigError(f"unknown top-level settings: {', '.join(sorted(data))}")
    services: dict[str, ServiceConfig] = {}
    for name, table in services_raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"services.{name} must be a table")
        table = dict(table)
        hosts = table.pop("hosts", [])
        if isinstance(hosts, str):
            hosts = [hosts]
        prefix = table.pop("prefix", f"/{name}")
        public_base_url = table.pop("public_base_url", None)
        if public_base_url == "":  # TOML has no null: empty means unset
            public_base_url = None
        enabled = table.pop("enabled", True)
        if not isinstance(prefix, str):
            raise ConfigError(f"services.{name}.prefix must be a string")
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ConfigError(f"services.{name}.hosts must be a list of host names")
        if public_base_url is not None and not is_base_url(public_base_url):
            raise ConfigError(f"services.{name}.public_base_url must be an http(s) URL")
        if not isinstance(enabled, bool):
            raise ConfigError(f"services.{name}.enabled must be true or false")
        services[name] = ServiceConfig(
            name=name, prefix=prefix, hosts=list(hosts), public_base_url=public_base_url,
            enabled=enabled, options=table,
        )
    known_server = {"trust_proxy", "serve_mode", "accel_prefix", "read_chunk_size",
                    "multipart_overhead", "body_timeout", "log_level", "active_types",
                    "malloc_arenas"}
    unknown = set(server) - known_server
    if unknown:
        raise ConfigError(f"unknown server settings: {', '.join(sorted(unknown))}")
    known_outbound = {"allow", "connect_timeout", "read_timeout", "total_timeout", "user_agent"}
    unknown = set(outbound) - known_outbound
    if unknown:
        raise ConfigError(f"unknown outbound settings: {', '.join(sorted(unknown))}")
    if "root" in storage and not isinstance(storage["root"], str):
        raise ConfigError("storage.root must be a string")
    if storage.get("public_base_url", "") != "" and not is_base_url(storage["public_base_url"]):
        raise ConfigError("storage.public_base_url must be an http(s) URL")
    return Config(
        data_dir=data_dir,
        secrets=read_secrets(data_dir),
        services=services,
        storage_backend=storage.pop("backend", "local"),
        storage_options=storage,
        limits_backend=limits.pop("backend", "sqlite"),
        blocked_plugins=plugins.get("blocked", []),
        **{f"outbound_{key}": value for key, value in outbound.items()},
        **ops,
        **server,
    )


def load_config(data_dir: str | os.PathLike[str] | None = None) -> Config:
    """Read ``<data_dir>/hepcore.toml`` (defaults when it is absent) and the secrets."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    path = root / CONFIG_FILE
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    else:
        data = {}
    return config_from_dict(data, root)


DEFAULT_CONFIG_TOML = """\
# hepcore host configuration. Paths are relative to this directory.
# Signing secrets live in the file `secret` beside this one (newest last),
# or in $HEPCORE_SECRETS (comma-separated); never in this file.

[server]
# Honour X-Forwarded-* headers only behind a proxy you control.
trust_proxy = false
# direct: hepcore streams files; x-accel-redirect (nginx) or x-sendfile
# (Apache, lighttpd): the front proxy serves them from the data directory.
serve_mode = "direct"
accel_prefix = "/_hepcore_files/"
read_chunk_size = 1048576
multipart_overhead = 65536
# Seconds a request body may go without a byte before hepcore gives up on it.
body_timeout = 300
# glibc malloc arenas per served process: few arenas keep a threaded worker's
# memory close to what its uploads need. 0 keeps the C library's default.
malloc_arenas = 2
# More types to serve sandboxed (Content-Security-Policy: default-src 'none';
# sandbox), besides HTML, XHTML, SVG, XML and JavaScript.
active_types = []

[storage]
backend = "local"

[limits]
backend = "sqlite"

[plugins]
# Entry-point names of plugins to leave out, e.g. ["images"].
blocked = []

# The outbound fetcher (CDN URL uploads, webhooks) refuses private, loopback,
# link-local and other reserved addresses. List hostnames, IPs or CIDRs here to
# allow some of them anyway (nothing is allowed by default). Times in seconds.
#
# [outbound]
# allow = ["10.0.0.0/8", "intranet.example.org"]
# connect_timeout = 5
# read_timeout = 30
# total_timeout = 60
# user_agent = "hepcore"

[ops]
# GET /healthz: 200 when the database and storage answer, else 503 (for load
# balancers and systemd). GET /metrics: Prometheus text format, answered only
# with "Authorization: Bearer <metrics_token>"; with no token (the default)
# /metrics is off. Set the token here or in $HEPCORE_METRICS_TOKEN.
healthz_path = "/healthz"
metrics_path = "/metrics"
# metrics_token = "..."
# One JSON line per request on the hepcore.access logger (no query strings,
# headers or credentials).
access_log = true

# All four services on one port, by path prefix.
[services.uploader]
prefix = "/"

[services.paste]
prefix = "/paste"

[services.cdn]
prefix = "/cdn"

[services.images]
prefix = "/img"

# Production: one host per service instead of prefixes, e.g.
#
# [services.uploader]
# prefix = "/"
# hosts = ["hep.example.org", "i.hep.example.org"]
# public_base_url = "https://hep.example.org"
# serve_base_url = "https://i.hep.example.org"
#
# [services.paste]
# prefix = "/"
# hosts = ["paste.example.org"]
# public_base_url = "https://paste.example.org"
#
# [services.cdn]
# prefix = "/"
# hosts = ["cdn.example.org"]
# public_base_url = "https://cdn.example.org"
#
# [services.images]
# prefix = "/"
# hosts = ["img.example.org"]
# public_base_url = "https://img.example.org"
"""
