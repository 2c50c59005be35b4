"""``hepcore images ...``: the image service's admin commands.

Keys are issued and revoked with the core commands (``hepcore keys create
--service images --account NAME [--label L]``, ``hepcore keys revoke ID``);
these commands add the audit log, account role and ban, uploads (list,
upload, tag, delete) and the purge of deleted bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepcore.cli import display_name, path_arg
from hepcore.clock import iso_ms
from hepcore.tokens import Actor

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

    from .service import ImagesService

ROLES = ("user", "admin")
MAX_TAG = 64


def _service(runtime: Runtime) -> ImagesService:
    service = runtime.services.get("images")
    if service is None:
        raise ValueError("the images service is not installed or is blocked")
    return service  # type: ignore[return-value]


def _base(service: ImagesService) -> str:
    return service.config.public_base_url or \
        f"http://localhost{service.config.prefix.rstrip('/')}"


def cmd_audit(args: argparse.Namespace, runtime: Runtime) -> int:
    sql = ("SELECT l.ts, l.action, l.account_id, l.detail, a.name FROM audit_log l"
           " LEFT JOIN accounts a ON a.id = l.account_id"
           " WHERE l.action IN ('api_key.created', 'api_key.revoked')"
           " AND json_extract(l.detail, '$.key_id') IN"
           " (SELECT id FROM api_keys WHERE service = 'images')")
    params: list[Any] = []
    if args.account:
        sql += " AND l.account_id = ?"
        params.append(runtime.accounts.by_name(args.account).id)
    rows = runtime.db.all(sql + " ORDER BY l.ts, l.id", params)
    entries = []
    for row in rows:
        detail = json.loads(row["detail"] or "{}")
        entries.append({"time": iso_ms(row["ts"]), "action": row["action"],
                        "account": row["name"], "account_id": row["account_id"],
                        "key_id": detail.get("key_id"), "prefix": detail.get("prefix")})
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for e in entries:
        print(f"{e['time']}\t{e['action']}\t{e['prefix']}\t{e['account']}\t{e['key_id']}")
    return 0


def cmd_role(args: argparse.Namespace, runtime: Runtime) -> int:
    account = runtime.accounts.by_name(args.account)
    runtime.accounts.update(account.id, settings={"images_role": args.role})
    print(f"{account.name}: role {args.role}")
    return 0


STATUS_BEFORE_BAN = "images_status_before_ban"
"""The account setting where ``ban`` keeps the status that ``unban`` gives back."""


def cmd_ban(args: argparse.Namespace, runtime: Runtime) -> int:
    account = runtime.accounts.by_name(args.account)
    if account.status != "banned":
        runtime.accounts.update(account.id, status="banned",
                                settings={STATUS_BEFORE_BAN: account.status})
    print(f"{account.name}: banned")
    return 0


def cmd_unban(args: argparse.Namespace, runtime: Runtime) -> int:
    """Lift a ban only: the account gets back the status it had before it
    (a suspended or unapproved account stays so)."""
    account = runtime.accounts.by_name(args.account)
    if account.status not in ("banned", "active"):
        raise ValueError(f"{account.name} is not banned but {account.status}; change that"
                         f" with: hepcore accounts set {account.name} --status STATUS")
    before = account.setting(STATUS_BEFORE_BAN, "active")
    if account.status == "banned":
        runtime.accounts.update(account.id, unset=[STATUS_BEFORE_BAN], status=(
            before if before in ("active", "suspended", "unapproved") else "active"))
    print(f"{account.name}: not banned")
    return 0


def _before(text: str) -> float:
    from .store import page_before

    try:
        return page_before(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"not an ISO-8601 timestamp: {text!r} (try 2026-01-31T12:00:00Z)") from None


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _tag(text: str) -> str:
    tag = text.strip()
    if not tag:
        raise argparse.ArgumentTypeError("a tag must not be blank")
    if len(tag) > MAX_TAG:
        raise argparse.ArgumentTypeError(f"a tag has at most {MAX_TAG} characters")
    return tag


def cmd_list(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    account = runtime.accounts.by_name(args.account)
    items, more = service.uploads.page(account.id, args.limit, args.before)
    base = _base(service)
    if args.json:
        print(json.dumps({"uploads": [service.upload_detail(u, base) for u in items],
                          "next_before": iso_ms(items[-1].created_at) if more else None},
                         indent=2))
        return 0
    for u in items:
        tags = ",".join(u.tags) or "-"
        print(f"{u.filename}\t{iso_ms(u.created_at)}\t{u.mime}\t{u.width}x{u.height}"
              f"\t{u.size}\t{tags}")
    if more and items:
        print(f"more: --before {iso_ms(items[-1].created_at)}", file=sys.stderr)
    return 0


def cmd_upload(args: argparse.Namespace, runtime: Runtime) -> int:
    from .pipeline import Spool

    service = _service(runtime)
    actor = Actor(account=runtime.accounts.by_name(args.account), via="cli")
    if not service.config.public_base_url:
        print(f"note: [services.images] has no public_base_url, so the reply and the"
              f" upload.created event name {_base(service)}", file=sys.stderr)
    path = Path(args.file)
    with Spool(service.spool_dir, service.max_bytes) as spool, open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            spool.write(chunk)
        if spool.size == 0:
            raise ValueError("the file is empty")
        outcome = service.ingest(actor, spool, display_name(path), _base(service))
    print(json.dumps(service.upload_json(outcome, _base(service)), indent=2))
    return 0


def cmd_tag(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    upload = service.uploads.live(args.filename)
    if upload is None:
        raise ValueError(f"no live upload named {args.filename!r}")
    given = [*args.tags, *(args.clear or [])]
    tags = list(dict.fromkeys(given if args.clear is not None else [*upload.tags, *given]))
    service.uploads.set_tags(upload.filename, tags)
    print(f"{upload.filename}: {json.dumps(tags)}")
    return 0


def cmd_delete(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    upload = service.uploads.live(args.filename)
    if upload is None:
        raise ValueError(f"no live upload named {args.filename!r}")
    service.delete_upload(upload)
    print(f"deleted {upload.filename}")
    return 0


def cmd_purge(args: argparse.Namespace, runtime: Runtime) -> int:
    print(f"removed the bytes of {_service(runtime).purge_deleted()} deleted uploads")
    return 0


def add_commands(subparsers: Any) -> None:
    images = subparsers.add_parser(
        "images", help="the image service: audit log, roles, bans, uploads")
    actions = images.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("audit", help="api_key.created / api_key.revoked entries")
    p.add_argument("--account")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

    p = actions.add_parser("role", help="set an account's role (user or admin)")
    p.add_argument("account")
    p.add_argument("role", choices=ROLES)
    p.set_defaults(func=cmd_role)

    p = actions.add_parser("ban", help="ban an account: its keys and tokens get 403")
    p.add_argument("account")
    p.set_defaults(func=cmd_ban)
    p = actions.add_parser("unban", help="lift a ban")
    p.add_argument("account")
    p.set_defaults(func=cmd_unban)

    p = actions.add_parser("list", help="an account's live uploads, newest first")
    p.add_argument("--account", required=True)
    p.add_argument("--limit", type=_limit, default=50)
    p.add_argument("--before", metavar="TIMESTAMP", type=_before,
                   help="ISO-8601; uploads created earlier")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("upload", help="upload an image for an account (full pipeline)")
    p.add_argument("--account", required=True)
    p.add_argument("file", type=path_arg)
    p.set_defaults(func=cmd_upload)

    p = actions.add_parser("tag", help="add tags to an upload (or --clear them)")
    p.add_argument("filename")
    p.add_argument("tags", nargs="*", type=_tag, metavar="TAG")
    p.add_argument("--clear", nargs="*", type=_tag, metavar="TAG",
                   help="drop the current tags first: the TAGs given become the tags")
    p.set_defaults(func=cmd_tag)

    p = actions.add_parser("delete", help="soft-delete an upload")
    p.add_argument("filename")
    p.set_defaults(func=cmd_delete)

    p = actions.add_parser("purge", help="remove the stored bytes of deleted uploads now")
    p.set_defaults(func=cmd_purge)

    from .webhook_cli import add_webhook_commands

    add_webhook_commands(actions)
