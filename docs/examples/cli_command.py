"""A CLI command: ``hepcore usage [--json]``, active keys and requests per account."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hepcore import Runtime, hookimpl


def usage(args: argparse.Namespace, runtime: Runtime) -> int:
    rows = []
    for account in runtime.accounts.list():
        keys = runtime.keys.list(account_id=account.id)
        rows.append({
            "account": account.name,
            "active_keys": sum(key.status == "active" for key in keys),
            "requests": sum(key.request_count for key in keys),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['account']}\t{row['active_keys']} active keys\t{row['requests']} requests")
    return 0


@hookimpl
def hepcore_cli_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("usage", help="active keys and requests per account")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=usage)
