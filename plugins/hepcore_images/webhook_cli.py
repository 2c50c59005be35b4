"""``hepcore images webhooks ...``: the webhook API of section 10.2 for operators,
plus ``deliver`` (run the delivery job now)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from hepcore.cli import shown
from hepcore.clock import iso_ms
from hepcore.errors import ServiceError

from .webhook_delivery import JOB_NAME
from .webhooks import Webhooks, webhook_json

if TYPE_CHECKING:
    from hepcore.runtime import Runtime


def webhooks_of(runtime: Runtime) -> Webhooks:
    """The images service's :class:`Webhooks` (``service.webhooks``), or a fresh one."""
    service = runtime.services.get("images")
    if service is None:
        raise ValueError("the images service is not installed or is blocked")
    found = getattr(service, "webhooks", None)
    return found if isinstance(found, Webhooks) else Webhooks(service)


def _account_id(runtime: Runtime, name: str) -> str:
    return runtime.accounts.by_name(name).id


def _run(action: Any) -> Any:
    """Turn a service error (bad URL, unknown id) into the CLI's error line."""
    try:
        return action()
    except ServiceError as err:
        raise ValueError(err.message) from None


def _print_endpoint(data: dict[str, Any], pending: int | None = None) -> None:
    state = "enabled" if data["enabled"] else "disabled"
    line = f"{data['id']}\t{state}\t{shown(data['url'])}\tfailures={data['failure_count']}"
    if data["failure_count"]:
        line += (f"\tlast_status={data['last_status']}\tlast_error={data['last_error']}"
                 f"\tlast_failure_at={data['last_failure_at']}")
    if pending:
        line += f"\tpending={pending}"
    print(line)


def cmd_list(args: argparse.Namespace, runtime: Runtime) -> int:
    hooks = webhooks_of(runtime)
    account_id = _account_id(runtime, args.account)
    secret, endpoints = hooks.list(account_id)
    pending = hooks.store.pending_counts(account_id)
    if args.json:
        print(json.dumps({"signing_secret": secret, "webhooks": [
            {**webhook_json(e), "pending": pending.get(e.id, 0)} for e in endpoints]},
            indent=2))
        return 0
    print(f"signing secret: {secret or '(none yet)'}")
    for endpoint in endpoints:
        _print_endpoint(webhook_json(endpoint), pending.get(endpoint.id, 0))
    return 0


def cmd_add(args: argparse.Namespace, runtime: Runtime) -> int:
    hooks = webhooks_of(runtime)
    account_id = _account_id(runtime, args.account)
    endpoint, secret = _run(lambda: hooks.create(account_id, args.url, not args.disabled))
    if args.json:
        print(json.dumps({"webhook": webhook_json(endpoint), "signing_secret": secret},
                         indent=2))
    else:
        _print_endpoint(webhook_json(endpoint))
        print(f"signing secret: {secret}")
    return 0


def cmd_set(args: argparse.Namespace, runtime: Runtime) -> int:
    hooks = webhooks_of(runtime)
    account_id = _account_id(runtime, args.account)
    changes: dict[str, Any] = {}
    if args.url is not None:
        changes["url"] = args.url
    if args.enabled is not None:
        changes["enabled"] = args.enabled
    endpoint = _run(lambda: hooks.update(hooks.get(account_id, args.id), changes))
    data = webhook_json(endpoint)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_endpoint(data)
    return 0


def cmd_remove(args: argparse.Namespace, runtime: Runtime) -> int:
    hooks = webhooks_of(runtime)
    account_id = _account_id(runtime, args.account)
    _run(lambda: hooks.delete(hooks.get(account_id, args.id)))
    print(f"deleted {args.id}")
    return 0


def cmd_rotate(args: argparse.Namespace, runtime: Runtime) -> int:
    hooks = webhooks_of(runtime)
    print(hooks.rotate_secret(_account_id(runtime, args.account)))
    return 0


def cmd_deliver(args: argparse.Namespace, runtime: Runtime) -> int:
    hooks = webhooks_of(runtime)
    if JOB_NAME in runtime.jobs.names:
        runtime.jobs.run(JOB_NAME)  # waits while a server process runs it
    else:
        hooks.deliver_due()
    due = hooks.store.next_due()
    print("all events delivered" if due is None
          else f"undelivered events remain; next attempt at {iso_ms(due)}")
    return 0


def add_webhook_commands(subparsers: Any) -> None:
    """Add ``webhooks`` (list, add, set, remove, rotate-secret, deliver) to ``subparsers``
    (the actions of ``hepcore images``)."""
    hooks = subparsers.add_parser("webhooks", help="webhook endpoints of an account")
    actions = hooks.add_subparsers(dest="webhook_action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("list", help="endpoints, failure records and the signing secret")
    p.add_argument("--account", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("add", help="add an endpoint (creates the signing secret)")
    p.add_argument("--account", required=True)
    p.add_argument("url")
    p.add_argument("--disabled", action="store_true", help="add it disabled")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_add)

    p = actions.add_parser("set", help="change an endpoint's URL or enable/disable it")
    p.add_argument("--account", required=True)
    p.add_argument("id")
    p.add_argument("--url")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_true", default=None)
    state.add_argument("--disable", dest="enabled", action="store_false",
                       help="disable; cancels its pending deliveries")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_set)

    p = actions.add_parser("remove", help="delete an endpoint and its pending deliveries")
    p.add_argument("--account", required=True)
    p.add_argument("id")
    p.set_defaults(func=cmd_remove)

    p = actions.add_parser("rotate-secret", help="new signing secret; the old stops at once")
    p.add_argument("--account", required=True)
    p.set_defaults(func=cmd_rotate)

    p = actions.add_parser("deliver", help="deliver due events now")
    p.set_defaults(func=cmd_deliver)
