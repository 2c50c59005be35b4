"""hepcore_login: a minimal sign-in for hosts without their own.

``hepcore login-link --account NAME`` prints a one-time link (signed,
15 minutes). Opening it shows a confirmation page; confirming sets a
signed, HttpOnly, SameSite=Lax session cookie, which this plugin's
``hepcore_session_actor`` hook turns into the signed-in account. Hosts with
their own login block this plugin (``[plugins] blocked = ["login"]``) and
implement ``hepcore_session_actor`` themselves.
"""

from __future__ import annotations

from typing import Any

from hepcore import hookimpl
from hepcore.http import Request
from hepcore.tokens import Actor

from .service import LoginService, session_actor


@hookimpl
def hepcore_register_services(runtime: Any) -> list[Any]:
    return [LoginService(runtime, runtime.config.service("login"))]


@hookimpl
def hepcore_session_actor(request: Request, runtime: Any) -> Actor | None:
    return session_actor(request, runtime)


@hookimpl
def hepcore_cli_commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)
