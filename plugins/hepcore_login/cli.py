"""``hepcore login-link``: print a one-time sign-in link."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from hepcore.cli import base_url_arg

from .service import LINK_MAX_AGE, issue_link_token

if TYPE_CHECKING:
    from hepcore.runtime import Runtime


def cmd_login_link(args: argparse.Namespace, runtime: Runtime) -> int:
    account = runtime.accounts.by_name(args.account)
    token = issue_link_token(runtime, account.id, args.next)
    config = runtime.config.service("login")
    if config.public_base_url:
        base = config.public_base_url
    elif args.base:
        base = args.base + config.prefix.rstrip("/")
    else:
        raise ValueError("no base URL: pass --base https://your.host or set public_base_url"
                         " in [services.login]")
    print(f"{base}/{token}")
    return 0


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "login-link", help=f"print a one-time sign-in link (valid {LINK_MAX_AGE // 60} minutes)")
    p.add_argument("--account", required=True)
    p.add_argument("--base", type=base_url_arg,
                   help="the host's URL, e.g. https://paste.example.org (without the"
                   " login prefix); not needed when [services.login] has public_base_url")
    p.add_argument("--next", default="/", help="where to go after signing in (a local path)")
    p.set_defaults(func=cmd_login_link)
