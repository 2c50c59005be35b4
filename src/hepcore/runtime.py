"""The runtime: everything a host builds once at start-up and shares with its services.

``build_runtime(config)`` makes the plugin manager, opens the database,
applies migrations, picks the storage and limit backends, and asks plugins
for their services. Requests then go through these objects, never through
hooks, except for the per-request hooks (inspection, events, sessions,
captchas).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

import pluggy

from .accounts import AccountStore
from .clock import Clock, system_clock
from .config import Config
from .db import Database
from .errors import ConfigError, UnknownCredential
from .events import Event
from .http import Request
from .inspection import Rejection, UploadCandidate
from .jobs import Jobs
from .limits import QuotaStore, RateLimiter
from .migrations import core as core_migrations
from .outbound import Fetcher, OutboundPolicy
from .pending import PendingObjects
from .plugins import make_plugin_manager
from .service import Service
from .storage import Storage
from .tokens import Actor, KeyStore, TokenSigner, TokenVerifier

log = logging.getLogger("hepcore")
SWEEP_JOB = "storage.sweep"
SWEEP_INTERVAL = 600.0


class Runtime:
    """Shared objects of one host. Build it with :func:`build_runtime`."""

    def __init__(self, config: Config, pm: pluggy.PluginManager, clock: Clock) -> None:
        self.config = config
        self.pm = pm
        self.clock = clock
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(config.database_path)
        self.db.migrate([core_migrations])
        self.accounts = AccountStore(self.db, clock)
        self.keys = KeyStore(self.db, self.accounts, clock)
        self.storage: Storage = self._pick(
            "storage", config.storage_backend, pm.hook.hepcore_storage_backends(config=config)
        )(config)
        limiter, quotas = _with_clock(self._pick(
            "limits", config.limits_backend, pm.hook.hepcore_limit_stores(config=config)
        ), clock, config, self.db)
        self.limiter: RateLimiter = limiter
        self.quotas: QuotaStore = quotas
        self.pending = PendingObjects(self.db, self.storage, clock)
        self._signer: TokenSigner | None = None
        self.verifiers: list[TokenVerifier] = [
            v for group in pm.hook.hepcore_token_verifiers(runtime=self) for v in (group or [])
        ]
        self.services: dict[str, Service] = {}
        self.jobs = Jobs(config.data_dir / "locks")

    @staticmethod
    def _pick(kind: str, name: str, offered: Iterable[dict[str, Any] | None]) -> Any:
        registry: dict[str, Any] = {}
        for group in offered:
            for key, factory in (group or {}).items():
                registry.setdefault(key, factory)
        if name not in registry:
            raise ConfigError(
                f"[{kind}] backend {name!r} is not installed; available: "
                f"{', '.join(sorted(registry)) or 'none'}"
            )
        return registry[name]

    @property
    def signer(self) -> TokenSigner:
        """The host's :class:`TokenSigner` (needs a secret; see ``hepcore init``)."""
        if self._signer is None:
            self._signer = TokenSigner(self.config.secrets, self.clock)
        return self._signer

    @cached_property
    def fetcher(self) -> Fetcher:
        """The safe outbound :class:`~hepcore.outbound.Fetcher`, from ``[outbound]``.

        Built on first use. Tests may assign their own (one with a resolver they control).
        """
        config = self.config
        return Fetcher(OutboundPolicy(
            allow=tuple(config.outbound_allow),
            connect_timeout=config.outbound_connect_timeout,
            read_timeout=config.outbound_read_timeout,
            total_timeout=config.outbound_total_timeout,
            user_agent=config.outbound_user_agent,
        ))

    def _load_services(self) -> None:
        for group in self.pm.hook.hepcore_register_services(runtime=self):
            for service in group or []:
                if service.name in self.services:
                    raise ConfigError(f"two plugins provide the service {service.name!r}")
                self.services[service.name] = service
        for service in self.services.values():
            self.db.migrate(service.migrations)
        for service in self.services.values():
            service.start()
            if service.strict_options:
                service.config.refuse_unread()

    def service_config(self, name: str) -> Any:
        return self.config.service(name)

    def verify(self, service: str, credential: str) -> Actor:
        """Ask each verifier in turn; raises a :class:`CredentialError` when none accepts."""
        for verifier in self.verifiers:
            actor = verifier.verify(service, credential)
            if actor is not None:
                return actor
        raise UnknownCredential(service)

    def inspect(self, candidate: UploadCandidate) -> Rejection | None:
        """The first :class:`Rejection` of ``hepcore_inspect_upload``, or ``None``.
        A plugin that raises, or answers anything but a ``Rejection`` or
        ``None``, raises here (a :class:`TypeError` for the latter): each
        service then refuses the upload as it does for an internal failure."""
        rejection = self.pm.hook.hepcore_inspect_upload(candidate=candidate)
        if rejection is not None and not isinstance(rejection, Rejection):
            raise TypeError(f"an upload inspection plugin returned {type(rejection).__name__},"
                            " not a Rejection or None")
        return rejection

    def emit(self, name: str, service: str, account_id: str | None, data: dict[str, Any]) -> None:
        """Announce an event to ``hepcore_event`` observers; their failures are logged only."""
        event = Event(name, service, account_id, data, self.clock())
        for impl in self.pm.hook.hepcore_event.get_hookimpls():
            try:
                impl.function(event=event)
            except Exception:
                log.exception("event observer %s failed on %s", impl.plugin_name, name)

    def session_actor(self, request: Request) -> Actor | None:
        actor: Actor | None = self.pm.hook.hepcore_session_actor(request=request, runtime=self)
        return actor

    def verify_captcha(self, token: str, request: Request) -> bool | None:
        verdict: bool | None = self.pm.hook.hepcore_verify_captcha(token=token, request=request)
        return verdict

    def incr_counter(self, name: str, by: int = 1) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))

    def counter(self, name: str) -> int:
        row = self.db.one("SELECT value FROM counters WHERE name = ?", (name,))
        return int(row[0]) if row else 0

    def sweep_abandoned(self) -> None:
        """Remove what interrupted uploads left: partial files and unacknowledged bytes."""
        partial = self.storage.sweep()
        unrecorded = self.pending.sweep()
        if partial or unrecorded:
            log.info("removed %d abandoned partial uploads and %d unacknowledged objects",
                     partial, unrecorded)

    def close(self) -> None:
        self.jobs.stop()
        self.db.close()


def _with_clock(factory: Callable[..., Any], clock: Clock, *args: Any) -> Any:
    """Call a backend factory, passing the host's clock as ``clock=`` when it takes one."""
    try:
        takes_clock = "clock" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_clock = False
    return factory(*args, clock=clock) if takes_clock else factory(*args)


def build_runtime(config: Config, *, clock: Clock = system_clock,
                  plugins: Iterable[object] = (), load_entry_points: bool = True) -> Runtime:
    """Build a :class:`Runtime`: plugins, database and migrations, backends, services.

    Sweeps abandoned writes older than an hour (G3): partial files, and bytes
    whose row never committed (:mod:`hepcore.pending`); the ``storage.sweep``
    job does the same every ten minutes once jobs are started.
    """
    pm = make_plugin_manager(config.blocked_plugins, plugins, load_entry_points)
    runtime = Runtime(config, pm, clock)
    runtime._load_services()
    runtime.sweep_abandoned()
    runtime.jobs.every(SWEEP_JOB, SWEEP_INTERVAL, runtime.sweep_abandoned)
    return runtime
