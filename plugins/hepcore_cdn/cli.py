"""``hepcore cdn`` sub-commands: keys with names, quota tiers and limits,
uploads (list, delete), importing files with an original URL (for
``/rescue``) and recounting usage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepcore.cli import UsageError, display_name, parse_size, path_arg, positive_int, shown
from hepcore.clock import iso_s
from hepcore.errors import QuotaExceeded, StorageError
from hepcore.limits import Usage
from hepcore.outbound import human_size

from .keys import create_key
from .names import sanitize
from .quota import scope_of
from .store import new_writer
from .types import detect_type

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

    from .service import CdnService


def _service(runtime: Runtime) -> CdnService:
    service = runtime.services.get("cdn")
    if service is None:
        raise ValueError("the cdn service is not installed or is blocked")
    return service  # type: ignore[return-value]


def cmd_key_create(args: argparse.Namespace, runtime: Runtime) -> int:
    account = runtime.accounts.by_name(args.account)
    token, record = create_key(runtime, account.id, args.name)
    print(f"created cdn key {record.id} ({record.display}) for {account.name};"
          " it is shown only once:", file=sys.stderr)
    print(token)
    return 0


def _quota_lines(service: CdnService, account: Any) -> dict[str, Any]:
    quota = service.quota(account)
    return {"account": account.name, "quota_tier": quota.tier, "per_file_limit": quota.per_file,
            "storage_limit": quota.total, "storage_used": quota.used,
            "percentage_used": quota.body()["percentage_used"]}


def cmd_quota(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    account = runtime.accounts.by_name(args.account)
    settings: dict[str, Any] = {}
    unset: list[str] = []
    if args.tier is not None:
        if args.tier not in service.tiers:
            raise UsageError(f"--tier must be one of: {', '.join(service.tiers)}")
        settings["quota_tier"] = args.tier
    if args.max_file_size is not None:
        settings["cdn_max_file_size"] = args.max_file_size
    if args.storage_limit is not None:
        settings["cdn_storage_limit"] = args.storage_limit
    if args.tier_limits:
        if settings.keys() & {"cdn_max_file_size", "cdn_storage_limit"}:
            raise UsageError("--tier-limits drops the per-account limits; it cannot be"
                             " combined with --max-file-size or --storage-limit")
        unset = ["cdn_max_file_size", "cdn_storage_limit"]
    if settings or unset:
        account = runtime.accounts.update(account.id, settings=settings, unset=unset)
    info = _quota_lines(service, account)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"{account.name}\ttier {info['quota_tier']}\tper file"
              f" {human_size(info['per_file_limit'])}\ttotal {human_size(info['storage_limit'])}"
              f"\tused {human_size(info['storage_used'])} ({info['percentage_used']}%)")
    return 0


def cmd_list(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    account = runtime.accounts.by_name(args.account)
    uploads = service.uploads.list(account.id, args.limit)
    base = service.base_for(None)
    if args.json:
        print(json.dumps([service.upload_json(u, base) for u in uploads], indent=2))
        return 0
    for u in uploads:
        print(f"{u.id}\t{iso_s(u.created_at)}\t{u.size}\t{shown(u.content_type)}"
              f"\t{shown(u.filename)}" + (f"\t{shown(u.original_url)}" if u.original_url else ""))
    return 0


def cmd_delete(args: argparse.Namespace, runtime: Runtime) -> int:
    service = _service(runtime)
    account = runtime.accounts.by_name(args.account)
    upload = service.uploads.own(account.id, args.id)
    if upload is None:
        raise ValueError(f"{account.name} has no upload {args.id}")
    service.remove([upload])
    print(f"deleted {upload.id}")
    return 0


def cmd_import(args: argparse.Namespace, runtime: Runtime) -> int:
    """Store a local file for an account, recording ``--original-url`` for ``/rescue``."""
    service = _service(runtime)
    account = runtime.accounts.by_name(args.account)
    quota = service.quota(account)
    path = Path(args.file)
    name = sanitize(args.filename if args.filename is not None else display_name(path))
    if not name:
        raise ValueError("the filename is blank")
    with open(path, "rb") as fh, new_writer(service.storage, quota.per_file) as writer:
        size = os.fstat(fh.fileno()).st_size
        if size > quota.per_file:
            raise ValueError(f"{path} is larger than the per-file limit"
                             f" ({human_size(quota.per_file)})")
        while chunk := fh.read(1024 * 1024):
            writer.write(chunk)
        try:
            upload = service.store(writer, account, filename=name,
                                   content_type=detect_type(writer.head, name, None),
                                   total=quota.total, original_url=args.original_url)
        except QuotaExceeded:
            raise ValueError("the account's storage quota would be exceeded") from None
        except StorageError as exc:
            raise ValueError(f"storage failed: {exc}") from None
    print(json.dumps(service.upload_json(upload, service.base_for(None)), indent=2))
    return 0


def cmd_recount(args: argparse.Namespace, runtime: Runtime) -> int:
    """Set each account's quota usage to the sum of its uploads' sizes."""
    service = _service(runtime)
    accounts = ([runtime.accounts.by_name(args.account)] if args.account
                else runtime.accounts.list())
    for account in accounts:
        with runtime.db.write() as conn:
            used, count = service.uploads.usage(account.id)
            before = runtime.quotas.usage(scope_of(account.id))
            conn.execute(
                "INSERT INTO quota_usage (scope, bytes, count) VALUES (?, ?, ?)"
                " ON CONFLICT(scope) DO UPDATE SET bytes = excluded.bytes, count = excluded.count",
                (scope_of(account.id), used, count))
        if before != Usage(used, count):
            print(f"{account.name}: {before.bytes} -> {used} bytes, {before.count} -> {count}"
                  " uploads")
    return 0


def add_commands(subparsers: Any) -> None:
    cdn = subparsers.add_parser("cdn", help="the CDN: named keys, quotas, uploads, imports")
    actions = cdn.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("key", help="issue a named sk_cdn_ key; printed once, last line")
    p.add_argument("--account", required=True)
    p.add_argument("--name", required=True, help="what the key is for (at most 255 characters)")
    p.set_defaults(func=cmd_key_create)

    p = actions.add_parser("quota", help="show or set an account's tier and limits")
    p.add_argument("--account", required=True)
    p.add_argument("--tier", help="unverified, verified or functionally_unlimited")
    p.add_argument("--max-file-size", type=parse_size, metavar="SIZE",
                   help="per-file limit override, e.g. 200MiB")
    p.add_argument("--storage-limit", type=parse_size, metavar="SIZE",
                   help="total limit override, e.g. 100GiB")
    p.add_argument("--tier-limits", action="store_true",
                   help="drop the overrides: the tier's limits apply again")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_quota)

    p = actions.add_parser("list", help="an account's uploads, newest first")
    p.add_argument("--account", required=True)
    p.add_argument("--limit", type=positive_int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = actions.add_parser("delete", help="delete one of an account's uploads")
    p.add_argument("--account", required=True)
    p.add_argument("id")
    p.set_defaults(func=cmd_delete)

    p = actions.add_parser("import", help="store a local file, with the URL it came from")
    p.add_argument("--account", required=True)
    p.add_argument("--original-url", required=True,
                   help="where the file used to live (found again by /rescue?url=)")
    p.add_argument("--filename", help="display filename (default: the file's name)")
    p.add_argument("file", type=path_arg)
    p.set_defaults(func=cmd_import)

    p = actions.add_parser("recount", help="recompute quota usage from the stored uploads")
    p.add_argument("--account")
    p.set_defaults(func=cmd_recount)
