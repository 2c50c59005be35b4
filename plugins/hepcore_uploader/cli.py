"""``hepcore`` sub-commands of the uploader: ``uploads`` (list, shorten, set,
delete, counter) and ``sharex`` (a ShareX config or a shell upload script)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from hepcore.cli import UsageError, base_url_arg, positive_int, shown
from hepcore.clock import iso_ms
from hepcore.errors import CredentialError
from hepcore.tokens import Actor

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

    from .service import UploaderService


def _service(runtime: Runtime) -> UploaderService:
    service = runtime.services.get("uploader")
    if service is None:
        raise ValueError("the uploader service is not installed or is blocked")
    return service  # type: ignore[return-value]


def _actor(runtime: Runtime, name: str) -> Actor:
    return Actor(account=runtime.accounts.by_name(name), via="cli")


def _base(service: UploaderService, actor: Actor) -> str:
    return service.serve_base(None, service.policy(actor))


def cmd_list(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    actor = _actor(runtime, args.account)
    items, next_before = service.list_items(actor.account.id, kind=args.type, limit=args.limit,
                                            before=args.before)
    base = _base(service, actor)
    if args.json:
        print(json.dumps({"uploads": [service.item_json(i, base) for i in items],
                          "nextBefore": next_before}, indent=2))
        return 0
    for item in items:
        what = item.link if item.kind == "link" else f"{item.type} {item.size} bytes"
        star = "*" if item.favourite else " "
        print(f"{star} {item.id}\t{item.kind}\t{iso_ms(item.created_at)}\t{item.views} views"
              f"\t{shown(what)}" + (f"\talias={item.alias}" if item.alias else ""))
    if next_before:
        print(f"more: --before {next_before}", file=sys.stderr)
    return 0


def cmd_shorten(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    actor = _actor(runtime, args.account)
    item = service.shorten(actor, args.url, args.alias, service.config.public_base_url)
    print(f"{_base(service, actor)}/{item.id}")
    return 0


def cmd_set(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    actor = _actor(runtime, args.account)
    item = service.own_item(actor.account.id, args.id)
    changes: dict[str, Any] = {}
    if args.alias is not None:
        changes["alias"] = args.alias
    if args.favourite is not None:
        changes["favourite"] = args.favourite
    if args.link is not None:
        changes["link"] = args.link
    item = service.update_item(item, changes, service.config.public_base_url)
    print(json.dumps(service.item_json(item, _base(service, actor)), indent=2))
    return 0


def cmd_delete(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    actor = _actor(runtime, args.account)
    item = service.delete_item(service.own_item(actor.account.id, args.id))
    print(f"deleted {item.id}")
    return 0


def cmd_counter(args: argparse.Namespace, runtime: Runtime) -> int:
    print(runtime.counter("uploader.uploads"))
    return 0


def cmd_sharex(args: argparse.Namespace, runtime: Runtime) -> int:
    from .sharex import sxcu_bytes, upload_script

    service = _service(runtime)
    api_base = (args.api_base or service.config.public_base_url or "").rstrip("/")
    if not api_base:
        raise ValueError("no public base URL: set public_base_url in [services.uploader]"
                         " or pass --api-base https://your.host")
    if args.script:
        out = upload_script(api_base=api_base).encode()
    else:
        if args.token:
            token = args.token
            try:  # refuse a token that would not work
                owner = runtime.verify("uploader", token).account
            except CredentialError:
                raise ValueError("--token is not an active uploader token") from None
            if args.account and owner.name != args.account:
                raise ValueError(f"--token belongs to another account than {args.account}")
        elif args.account:
            account = runtime.accounts.by_name(args.account)
            token, _ = runtime.keys.create("uploader", account.id, label="sharex")
            print("issued a new uploader token for this config; the previous one is revoked",
                  file=sys.stderr)
        else:
            raise UsageError("pass --account NAME (issues a new token) or --token TOKEN")
        out = sxcu_bytes(api_base=api_base, token=token, name=service.service_name)
    if args.output:
        # The config carries a live token: readable by its owner only.
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(out)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(out)
    return 0


def add_commands(subparsers: Any) -> None:
    uploads = subparsers.add_parser("uploads", help="the uploader's items: list, shorten, edit")
    actions = uploads.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("list", help="list an account's uploads and links, newest first")
    p.add_argument("--account", required=True)
    p.add_argument("--type", choices=("links", "files"))
    p.add_argument("--limit", type=positive_int, default=50)
    p.add_argument("--before", metavar="TIMESTAMP", help="ISO-8601; items created earlier")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("shorten", help="shorten a URL, optionally with a vanity alias")
    p.add_argument("--account", required=True)
    p.add_argument("url")
    p.add_argument("--alias")
    p.set_defaults(func=cmd_shorten)

    p = actions.add_parser("set", help="set an item's alias, favourite flag or link target")
    p.add_argument("--account", required=True)
    p.add_argument("id", help="ID (with or without extension) or alias;"
                   " put -- before an ID that starts with -")
    p.add_argument("--alias", help='new alias; "" clears it')
    fav = p.add_mutually_exclusive_group()
    fav.add_argument("--favourite", dest="favourite", action="store_true", default=None)
    fav.add_argument("--no-favourite", dest="favourite", action="store_false")
    p.add_argument("--link", help="new target of a shortlink")
    p.set_defaults(func=cmd_set)

    p = actions.add_parser("delete", help="delete an item; its ID is never reissued")
    p.add_argument("--account", required=True)
    p.add_argument("id", help="ID or alias; put -- before an ID that starts with -")
    p.set_defaults(func=cmd_delete)

    p = actions.add_parser("counter", help="lifetime number of uploads on this host")
    p.set_defaults(func=cmd_counter)

    p = subparsers.add_parser("sharex", help="a ShareX .sxcu (or --script: a shell uploader)")
    p.add_argument("--account", help="account whose token goes into the config")
    p.add_argument("--token", help="use this existing token (tokens are stored hashed)")
    p.add_argument("--api-base", type=base_url_arg,
                   help="public URL of the uploader, e.g. https://hep.gg")
    p.add_argument("--script", action="store_true",
                   help="print a POSIX shell upload script instead (token from $HEPCORE_TOKEN)")
    p.add_argument("--output", "-o", metavar="FILE")
    p.set_defaults(func=cmd_sharex)
