"""The ``hepcore_*`` hooks a plugin may implement.

Hooks are called when a host is built (to register things) or at defined
points of a request (inspection, events, sessions, captchas). Every hook is
documented in ``docs/plugins.md``; a test fails when one is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from argparse import _SubParsersAction

    from .config import Config
    from .events import Event
    from .http import Request
    from .inspection import Rejection, UploadCandidate
    from .runtime import Runtime
    from .service import Service
    from .tokens import Actor, TokenVerifier

hookspec = pluggy.HookspecMarker("hepcore")


@hookspec
def hepcore_register_services(runtime: Runtime) -> list[Service] | None:
    """Return the services this plugin provides (routes, envelope, migrations).

    Called once per host build. Services whose ``name`` is not enabled in the
    configuration are not mounted. Two plugins returning the same service name
    is a configuration error.
    """


@hookspec
def hepcore_storage_backends(config: Config) -> dict[str, Any] | None:
    """Return ``{name: factory}`` of storage backends this plugin offers.

    ``factory(config)`` returns a :class:`~hepcore.storage.Storage`. The host
    uses the one named by ``[storage] backend`` (``local`` by default).
    """


@hookspec
def hepcore_limit_stores(config: Config) -> dict[str, Any] | None:
    """Return ``{name: factory}`` of rate-limit and quota stores.

    ``factory(config, db)`` returns a ``(RateLimiter, QuotaStore)`` pair. The
    host uses the one named by ``[limits] backend`` (``sqlite`` by default).
    A factory that also takes a ``clock`` parameter is given the host's clock
    (tests pass a fake one).
    """


@hookspec
def hepcore_token_verifiers(runtime: Runtime) -> list[TokenVerifier] | None:
    """Return :class:`~hepcore.tokens.TokenVerifier` objects.

    Verifiers are asked in turn; each returns ``None`` for a credential it
    does not own, an :class:`~hepcore.tokens.Actor` for a good one, and
    raises a :class:`~hepcore.errors.CredentialError` for a bad one it owns.
    """


@hookspec(firstresult=True)
def hepcore_inspect_upload(candidate: UploadCandidate) -> Rejection | None:
    """Inspect an upload before it is accepted (moderation).

    ``candidate`` carries the service, account, type, size, SHA-256, the
    leading bytes and, for images, the decoded image. Return a
    :class:`~hepcore.inspection.Rejection` (code, message, status) to refuse
    it, or ``None`` to let it through. The first rejection wins; nothing is
    stored and no quota is charged for a rejected upload.
    """


@hookspec
def hepcore_event(event: Event) -> None:
    """Observe something that happened (``upload.created``, ``upload.deleted``, ...).

    Called after the change is committed. Exceptions are logged and ignored:
    an observer never fails a request.
    """


@hookspec(firstresult=True)
def hepcore_session_actor(request: Request, runtime: Runtime) -> Actor | None:
    """Identify the signed-in user of a request (a host's own login).

    Return an :class:`~hepcore.tokens.Actor` with ``via="session"``, or
    ``None`` when the request carries no valid session.
    """


@hookspec(firstresult=True)
def hepcore_verify_captcha(token: str, request: Request) -> bool | None:
    """Verify a captcha token for an anonymous request.

    Return ``True`` (passed), ``False`` (failed), or ``None`` when this plugin
    does not verify captchas. With no verifier installed, anonymous creation
    stays off.
    """


@hookspec
def hepcore_cli_commands(subparsers: _SubParsersAction[Any]) -> None:
    """Add sub-commands to the ``hepcore`` CLI.

    Add parsers with ``subparsers.add_parser(...)`` and set
    ``func=callable(args, runtime) -> int`` as a default; the CLI builds the
    runtime and calls it.
    """
