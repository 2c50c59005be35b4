"""The ``hepcore`` admin command: set up a host, serve it, manage accounts and keys.

Every command takes ``--data DIR`` (default ``$HEPCORE_DATA`` or
``./hepcore-data``). Listing commands take ``--json``. Errors go to stderr
with exit code 1 (2 for usage errors: :class:`UsageError`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pluggy import PluginValidationError

from .config import (
    CONFIG_FILE,
    DATABASE_FILE,
    DEFAULT_CONFIG_TOML,
    SECRET_FILE,
    Config,
    load_config,
    new_secret,
)
from .errors import ConfigError, HepcoreError, NotFoundError
from .memory import limit_malloc_arenas

SERVICES = ("uploader", "paste", "cdn", "images")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
MAX_SIZE = 2**63 - 1  # what an SQLite integer holds
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class UsageError(HepcoreError):
    """A command-line value the command itself refuses (one only it can check,
    such as a tier name from the config): exit code 2, like argparse's own."""


def parse_size(text: str) -> int:
    """``104857600``, ``100MiB``, ``100M``, ``2.5GB`` (binary units) to bytes."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 100MiB)")
    unit = (m.group(2) or "").lower()[:1]
    size = int(float(m.group(1)) * _UNITS[unit])
    if size > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"{text!r} is too large (at most 8 EiB)")
    return size


def _ts(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def is_host(data: str | os.PathLike[str]) -> bool:
    """Whether ``data`` holds a hepcore host (its ``hepcore.toml`` or its database)."""
    return (Path(data) / CONFIG_FILE).exists() or (Path(data) / DATABASE_FILE).exists()


def _require_host(data: str | os.PathLike[str]) -> None:
    if not is_host(data):
        raise ConfigError(f"{data} is not a hepcore data directory (no {CONFIG_FILE}, no"
                          f" {DATABASE_FILE}): pass --data, or run 'hepcore init' there first")


def _runtime(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The host in ``--data``. Unless ``create``, the directory must hold one
    already: a mistyped ``--data`` must neither leave an empty host behind
    nor report on one (a backup of nothing, an empty account list)."""
    from .runtime import build_runtime

    if not create:
        _require_host(args.data)
    return build_runtime(load_config(args.data))


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


# --- init / demo / serve -------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    data = Path(args.data)
    # Closed to other users: the database holds private pastes, sessions and
    # webhook signing secrets. A directory that exists already keeps its mode.
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = data / CONFIG_FILE
    if config_path.exists():
        print(f"kept existing {config_path}")
    else:
        config_path.write_text(DEFAULT_CONFIG_TOML)
        print(f"wrote {config_path}")
    secret_path = data / SECRET_FILE
    if secret_path.exists():
        print(f"kept existing {secret_path}")
    else:
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_secret() + "\n")
        print(f"wrote {secret_path}")
    runtime = _runtime(args, create=True)
    print(f"database ready at {runtime.config.database_path}")
    runtime.close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Initialise, make sure the demo account exists, issue a fresh uploader key."""
    if not (Path(args.data) / CONFIG_FILE).exists():
        cmd_init(args)
    runtime = _runtime(args, create=True)
    try:
        account = runtime.accounts.by_name(args.account)
    except NotFoundError:
        account = runtime.accounts.create(args.account)
    token, _ = runtime.keys.create("uploader", account.id, label="demo")
    mount = runtime.config.service("uploader").prefix.rstrip("/")
    base = f"http://{args.host}:{args.port}{mount}"
    print(f"account: {account.name}")
    print("try it:")
    print(f"  curl -H 'Authorization: {token}' -F file=@README.md {base}/upload")
    print(token)
    runtime.close()
    return 0


# gunicorn restarts a worker whose main thread stops heartbeating for this
# long; gthread workers heartbeat while requests run, so it never cuts one.
WORKER_TIMEOUT = 120
# After SIGTERM, requests in progress get this long to finish (the systemd
# unit of docs/deploying.md waits TimeoutStopSec=130 before SIGKILL).
GRACEFUL_TIMEOUT = 120


def gunicorn_settings(args: argparse.Namespace, config: Config) -> dict[str, Any]:
    """The gunicorn settings of ``hepcore serve`` (names of ``gunicorn.config``)."""
    return {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": "gthread",
        "threads": args.threads,
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "accesslog": None,  # hepcore writes its own (hepcore.observe)
        "loglevel": config.log_level,
        # 8190 (gunicorn's most, and what nginx passes by default) rather than
        # 4094: URLs of long filenames must not be 414s that uvicorn serves.
        "limit_request_line": 8190,
        # gunicorn's control socket ($HOME/.gunicorn/gunicorn.ctl) would be one
        # path shared by every host a user runs, and a control surface nothing
        # here documents; hepcore serve is driven by signals only.
        "control_socket_disable": True,
        # [server] trust_proxy alone decides whether X-Forwarded-* count, and
        # hepcore reads them itself. gunicorn would otherwise let any loopback
        # peer set the URL scheme, or a SCRIPT_NAME header that makes it answer 500.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "forwarder_headers": "",
    }


def uvicorn_options(args: argparse.Namespace, config: Config) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` for ``hepcore serve --asgi``."""
    return {
        "factory": True, "host": args.host, "port": args.port, "workers": args.workers,
        "log_level": config.log_level, "timeout_keep_alive": 30,
        "timeout_graceful_shutdown": GRACEFUL_TIMEOUT,
        "access_log": False,  # hepcore writes its own (hepcore.observe)
        # [server] trust_proxy alone decides whether X-Forwarded-* count
        # (uvicorn would trust them from loopback); gunicorn is set the same.
        "proxy_headers": False,
    }


def _check_host(config: Config) -> None:
    """Build the default host once, here, so that what only a start-up finds (a
    service's bad option, two services on one mount) stops ``serve`` with a
    message instead of failing in every worker. Closed again before any worker
    forks."""
    from .runtime import build_runtime
    from .web.app import create_app

    runtime = build_runtime(config)
    try:
        create_app(runtime)
    finally:
        runtime.close()


def _port(text: str) -> int:
    port = _int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return port


def positive_int(text: str) -> int:
    """An argparse ``type`` for counts and limits: a whole number, at least 1
    (for plugin commands too)."""
    number = _int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return number


def seconds(text: str) -> float:
    """An argparse ``type`` for durations: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more seconds")
    return value


def base_url_arg(text: str) -> str:
    """An argparse type: an http(s) URL with a host and neither query nor
    fragment (the start of URLs a command writes), without its trailing slash."""
    from .config import is_base_url

    if not is_base_url(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL such as https://your.host")
    return text.rstrip("/")


def shown(text: object) -> str:
    """``text`` for a line of a command's output: control, format and line
    separator characters (tab and newline included) as ``\\xNN``/``\\uNNNN``
    escapes, so that a filename, URL or label a user chose can neither drive
    the operator's terminal nor forge a row or column."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(c if c.isprintable() else _escape(c) for c in value)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def path_arg(text: str) -> str:
    """An argparse ``type`` for the name of a file a command reads: kept as
    given, so a name that is not UTF-8 still opens. Every other argument must
    be UTF-8 text (:class:`Parser`), the data directory included."""
    return text


def display_name(path: str | os.PathLike[str]) -> str:
    """The last part of ``path`` as text; bytes that are not UTF-8 become U+FFFD."""
    name = os.path.basename(os.fspath(path))
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable argv bytes arrive as lone surrogates
        return False
    return True


class Parser(argparse.ArgumentParser):
    """``argparse`` with one rule more: an argument must be valid UTF-8,
    since names, URLs, labels and tags end up in the database and in JSON.
    Arguments whose ``type`` is :func:`path_arg` are exempt. Plugin commands
    get this class from the sub-command parsers they are added to."""

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        # A sub-command's action sees the arguments of the sub-command's own parser.
        if (action.type is not path_arg and action.nargs != argparse.PARSER
                and not _is_utf8(arg_string)):
            raise argparse.ArgumentError(action, "not valid UTF-8 text")
        return super()._get_value(action, arg_string)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def cmd_serve(args: argparse.Namespace) -> int:
    _require_host(args.data)
    data = str(Path(args.data).resolve())
    os.environ["HEPCORE_DATA"] = data
    if args.factory:
        os.environ["HEPCORE_FACTORY"] = args.factory
    if args.app_dir:
        app_dir = str(Path(args.app_dir).resolve())
        sys.path.insert(0, app_dir)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (app_dir, os.environ.get("PYTHONPATH")) if p)
    # Fail here, with a readable message, rather than in every worker (which
    # uvicorn would restart for ever): a bad configuration, a broken plugin.
    from .plugins import make_plugin_manager

    config = load_config(data)
    make_plugin_manager(config.blocked_plugins)
    from .web.entry import load_factory

    try:
        load_factory(args.factory)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the app factory {args.factory!r}: {exc}") from None
    limit_malloc_arenas(config.malloc_arenas)  # before any worker or thread starts
    if not args.factory:  # a factory of your own may bring plugins of its own
        _check_host(config)
    # Workers share their metrics through files here; stale ones from a
    # previous run would be counted again. exist_ok: another serve starting
    # on the same data directory at the same moment may have just made it.
    metrics_dir = Path(data) / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    if args.asgi:
        import uvicorn

        uvicorn.run("hepcore.web.entry:asgi_app", **uvicorn_options(args, config))
        return 0
    from gunicorn.app.base import BaseApplication

    from .web.entry import wsgi_app

    settings = gunicorn_settings(args, config)

    class Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return wsgi_app()

    Gunicorn().run()
    return 0


# --- accounts ------------------------------------------------------------


def _account_line(a: Any) -> str:
    extra = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(a.settings.items()))
    return f"{a.name}\t{a.id}\t{a.plan}\t{a.status}\t{a.email or '-'}\t{extra}".rstrip()


def cmd_accounts_create(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    account = runtime.accounts.create(args.name, plan=args.plan, email=args.email)
    print(f"created account {account.name} ({account.id})")
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    accounts = _runtime(args).accounts.list()
    if args.json:
        _print_json([a.public() for a in accounts])
    else:
        for a in accounts:
            print(_account_line(a))
    return 0


def cmd_accounts_show(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    account = runtime.accounts.by_name(args.name)
    keys = runtime.keys.list(account_id=account.id)
    if args.json:
        _print_json({**account.public(), "keys": [k.public() for k in keys]})
        return 0
    print(_account_line(account))
    print(f"created {_ts(account.created_at)}")
    for k in keys:
        print(f"  {k.id}\t{k.service}\t{k.display}\t{k.status}\t{shown(k.label or '-')}")
    return 0


def cmd_accounts_set(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    account = runtime.accounts.by_name(args.name)
    settings: dict[str, Any] = {}
    if args.max_upload_size is not None:
        settings["max_file_size"] = args.max_upload_size
    if args.allowed_types is not None:
        settings["allowed_types"] = [t.strip() for t in args.allowed_types.split(",") if t.strip()]
    if args.quota_tier is not None:
        settings["quota_tier"] = args.quota_tier
    if args.serve_base_url is not None:
        settings["serve_base_url"] = args.serve_base_url
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value
    for key, value in settings.items():
        _check_setting(key, value)
    account = runtime.accounts.update(account.id, plan=args.plan, status=args.status,
                                      email=args.email, settings=settings, unset=args.unset)
    print(_account_line(account))
    return 0


def _check_setting(key: str, value: Any) -> None:
    """The account settings the services read must have their types: a wrong
    one would fail that account's every request instead of this command."""
    if key == "max_file_size" and (isinstance(value, bool) or not isinstance(value, int)
                                   or value < 1):
        raise ConfigError(f"max_file_size must be a whole number of bytes, got {value!r}")
    if key == "allowed_types" and (not isinstance(value, list) or not all(
            isinstance(t, str) and t for t in value)):
        raise ConfigError(f"allowed_types must be a list of media types, got {value!r}")
    if key == "serve_base_url":
        from urllib.parse import urlsplit

        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"serve_base_url must be an http(s) URL, got {value!r}")


# --- keys ----------------------------------------------------------------


def _key_for(runtime: Any, key_id: str) -> Any:
    return runtime.keys.get(key_id)


def cmd_keys_create(args: argparse.Namespace) -> int:
    if args.service == "cdn" and not (args.label or "").strip():
        # CDN keys are named (the name is part of the API); KeyStore checks its length.
        raise UsageError("cdn keys need a name: pass --label NAME (or use hepcore cdn key)")
    runtime = _runtime(args)
    account = runtime.accounts.by_name(args.account)
    token, record = runtime.keys.create(args.service, account.id, label=args.label)
    print(f"created {args.service} key {record.id} for {account.name}; it is shown only once:",
          file=sys.stderr)
    print(token)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    account_id = runtime.accounts.by_name(args.account).id if args.account else None
    keys = runtime.keys.list(account_id=account_id, service=args.service)
    if args.json:
        _print_json([k.public() for k in keys])
        return 0
    names = {a.id: a.name for a in runtime.accounts.list()}
    for k in keys:
        print(f"{k.id}\t{k.service}\t{k.display}\t{k.status}\t{names.get(k.account_id, '?')}"
              f"\t{shown(k.label or '-')}\tused {k.request_count}x, last {_ts(k.last_used_at)}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    key = _runtime(args).keys.revoke(args.key_id)
    print(f"revoked {key.id} ({key.display})")
    return 0


def cmd_keys_disable(args: argparse.Namespace) -> int:
    key = _runtime(args).keys.set_status(args.key_id, "disabled")
    print(f"disabled {key.id} ({key.display})")
    return 0


def cmd_keys_enable(args: argparse.Namespace) -> int:
    key = _runtime(args).keys.set_status(args.key_id, "active")
    print(f"enabled {key.id} ({key.display})")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    token, record = _runtime(args).keys.rotate(args.key_id)
    print(f"revoked {args.key_id}; new key {record.id} is shown only once:", file=sys.stderr)
    print(token)
    return 0


# --- parser --------------------------------------------------------------


# --- operations ------------------------------------------------------------


def cmd_backup(args: argparse.Namespace) -> int:
    from .maintenance import backup

    runtime = _runtime(args)
    try:
        report = backup(runtime, Path(args.dest))
    finally:
        runtime.close()
    print(f"backup written to {report.path}: database and {report.files} files "
          f"({report.bytes} bytes)")
    for key in report.vanished:
        print(f"  deleted while copying: {key}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .maintenance import restore

    count = restore(Path(args.src), Path(args.data), force=args.force)
    print(f"restored {args.src} into {args.data}: database and {count} files")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .maintenance import check

    runtime = _runtime(args)
    try:
        report = check(runtime, repair=args.repair, grace=args.grace)
    finally:
        runtime.close()
    print(f"{report.objects} stored objects, {report.referenced} referenced by rows")
    for service, keys in sorted(report.missing.items()):
        for key in keys:
            print(f"missing bytes: {service}: {key}")
    for key in report.orphans:
        print(f"orphan object: {key}")
    for key in report.pending:
        print(f"pending object: {key} (not acknowledged; swept within the hour)")
    for key in report.unowned:
        print(f"object outside every service: {key}")
    if args.repair:
        swept = f", swept {report.swept_pending} pending objects" if report.swept_pending else ""
        print(f"repaired: removed {report.removed_orphans} orphan objects, "
              f"dropped {report.forgotten_rows} rows without bytes{swept}")
        return 0
    if not report.clean:
        return 2
    if report.unowned:  # informational: e.g. the objects of a service no longer installed
        print(f"ok: every row has its bytes and every object of a service its row;"
              f" {len(report.unowned)} objects outside every service left alone")
    else:
        print("ok: every row has its bytes and every object its row")
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        names = runtime.jobs.names
    finally:
        runtime.close()
    if args.json:
        _print_json([{"name": name} for name in names])
        return 0
    for name in names:
        print(name)
    return 0


def cmd_jobs_run(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        if args.name not in runtime.jobs.names:
            print(f"hepcore: error: no job {args.name!r}; jobs: "
                  f"{', '.join(runtime.jobs.names) or 'none'}", file=sys.stderr)
            return 1
        runtime.jobs.run(args.name)
    finally:
        runtime.close()
    print(f"ran {args.name}")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from .apidoc import build_openapi

    with contextlib.ExitStack() as stack:
        if not is_host(args.data):  # the default configuration, leaving nothing behind
            args.data = stack.enter_context(tempfile.TemporaryDirectory(prefix="hepcore-"))
        runtime = _runtime(args, create=True)
        stack.callback(runtime.close)
        service = runtime.services.get(args.service)
        if service is None:
            print(f"hepcore: error: no service {args.service!r}; services: "
                  f"{', '.join(runtime.services) or 'none'}", file=sys.stderr)
            return 1
        prefix = runtime.config.service(args.service).prefix
        print(json.dumps(build_openapi(service, prefix), indent=2, ensure_ascii=False))
    return 0


def build_parser(plugin_commands: bool = True,
                 blocked: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = Parser(prog="hepcore", description=__doc__.split("\n")[0])
    parser.add_argument("--data",
                        default=os.environ.get("HEPCORE_DATA") or "hepcore-data",
                        help="data directory (default: $HEPCORE_DATA or ./hepcore-data)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("init", help="create the data directory, config and secret")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="init, a demo account and a fresh uploader key")
    p.add_argument("--account", default="demo")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8000)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="serve the host (gunicorn, or uvicorn with --asgi)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8000)
    p.add_argument("--workers", type=positive_int, default=2)
    p.add_argument("--threads", type=positive_int, default=8,
                   help="threads per gunicorn worker")
    p.add_argument("--asgi", action="store_true", help="serve with uvicorn (ASGI)")
    p.add_argument("--factory", help="app factory module:callable, called with asgi=")
    p.add_argument("--app-dir", help="directory to import the factory module from")
    p.set_defaults(func=cmd_serve)

    acc = sub.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="action", metavar="ACTION")
    acc.required = True
    p = acc.add_parser("create", help="create an account")
    p.add_argument("name")
    p.add_argument("--plan", choices=("free", "prime"), default="free")
    p.add_argument("--email")
    p.set_defaults(func=cmd_accounts_create)
    p = acc.add_parser("list", help="list accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_accounts_list)
    p = acc.add_parser("show", help="show one account and its keys")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_accounts_show)
    p = acc.add_parser("set", help="change plan, status or per-account limits")
    p.add_argument("name")
    p.add_argument("--plan", choices=("free", "prime"))
    p.add_argument("--status", choices=("active", "suspended", "banned", "unapproved"))
    p.add_argument("--email")
    p.add_argument("--max-upload-size", type=parse_size, metavar="SIZE")
    p.add_argument("--allowed-types", metavar="TYPES", help="comma-separated, e.g. image/*,text/plain")
    p.add_argument("--quota-tier", choices=("unverified", "verified", "functionally_unlimited"))
    p.add_argument("--serve-base-url", metavar="URL")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any other setting; VALUE is JSON when it parses as JSON")
    p.add_argument("--unset", action="append", metavar="KEY")
    p.set_defaults(func=cmd_accounts_set)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", metavar="ACTION")
    keys.required = True
    p = keys.add_parser("create", help="issue a key; prints it once, as the last line")
    p.add_argument("--service", required=True, choices=SERVICES)
    p.add_argument("--account", required=True)
    p.add_argument("--label")
    p.set_defaults(func=cmd_keys_create)
    p = keys.add_parser("list", help="list keys (masked)")
    p.add_argument("--account")
    p.add_argument("--service", choices=SERVICES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keys_list)
    for name, func, text in (("revoke", cmd_keys_revoke, "revoke a key for good"),
                             ("disable", cmd_keys_disable, "disable a key (reversible)"),
                             ("enable", cmd_keys_enable, "re-enable a disabled key"),
                             ("rotate", cmd_keys_rotate, "revoke a key and issue a new one")):
        p = keys.add_parser(name, help=text)
        p.add_argument("key_id")
        p.set_defaults(func=func)

    p = sub.add_parser("backup", help="copy database and files into DEST while serving")
    p.add_argument("dest")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into the data directory (host stopped)")
    p.add_argument("src")
    p.add_argument("--force", action="store_true", help="replace an existing database")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("check", help="every row has its bytes, every stored file its row")
    p.add_argument("--repair", action="store_true",
                   help="delete orphan files and rows whose bytes are gone")
    p.add_argument("--grace", type=seconds, default=30.0,
                   help="seconds to wait before deleting orphans (uploads in flight)")
    p.set_defaults(func=cmd_check)

    jobs = sub.add_parser("jobs", help="background jobs of the services").add_subparsers(
        dest="action", metavar="ACTION")
    jobs.required = True
    p = jobs.add_parser("list", help="list the registered jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs_list)
    p = jobs.add_parser("run", help="run one job now")
    p.add_argument("name")
    p.set_defaults(func=cmd_jobs_run)

    p = sub.add_parser("openapi", help="print a service's OpenAPI 3.1 document")
    p.add_argument("service")
    p.set_defaults(func=cmd_openapi)

    if plugin_commands:
        _add_plugin_commands(sub, blocked)
    return parser


def _blocked_plugins(argv: Sequence[str] | None) -> list[str]:
    """``[plugins] blocked`` of the ``--data`` directory, so blocked plugins add no commands."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--data", default=os.environ.get("HEPCORE_DATA") or "hepcore-data")
    known, _ = pre.parse_known_args(argv)
    try:
        return load_config(known.data).blocked_plugins
    except (HepcoreError, OSError):
        return []  # the command itself reports the bad configuration


def _add_plugin_commands(sub: Any, blocked: Sequence[str] = ()) -> None:
    from .plugins import make_plugin_manager

    try:
        pm = make_plugin_manager(blocked)
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the admin CLI down
        print(f"hepcore: plugin commands unavailable: {exc}", file=sys.stderr)
        return
    pm.hook.hepcore_cli_commands(subparsers=sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(blocked=_blocked_plugins(argv))
    args = parser.parse_args(argv)
    try:
        func = args.func
        if getattr(func, "__module__", __name__) != __name__:
            if not getattr(args, "needs_host", True):  # a client command
                return int(func(args, None) or 0)
            runtime = _runtime(args)
            try:
                return int(func(args, runtime) or 0)
            finally:
                runtime.close()
        return int(func(args) or 0)
    except UsageError as exc:
        print(f"hepcore: error: {exc}", file=sys.stderr)
        return 2
    except (HepcoreError, ValueError, PluginValidationError) as exc:
        print(f"hepcore: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a missing or unreadable file, a directory that cannot be made
        print(f"hepcore: error: {_os_error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _os_error_message(exc: OSError) -> str:
    """``No such file or directory: missing.png`` rather than ``[Errno 2] ...``."""
    if not exc.strerror:
        return str(exc)
    names = [os.fsdecode(n) if isinstance(n, str | bytes) else str(n)
             for n in (exc.filename, exc.filename2) if n is not None]
    return f"{exc.strerror}: {' -> '.join(names)}" if names else exc.strerror
