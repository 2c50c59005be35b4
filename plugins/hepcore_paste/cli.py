"""``hepcore`` sub-commands of the paste service: ``purge`` (expired pastes)
and ``paste`` (a small client that posts a file or stdin to a server)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from hepcore.cli import base_url_arg, is_host, path_arg, seconds
from hepcore.config import is_base_url, load_config

if TYPE_CHECKING:
    from hepcore.runtime import Runtime

    from .service import PasteService

URL_ENV = "HEPCORE_PASTE_URL"
KEY_ENV = "HEPCORE_PASTE_KEY"


def _service(runtime: Runtime) -> PasteService:
    service = runtime.services.get("paste")
    if service is None:
        raise ValueError("the paste service is not installed or is blocked")
    return service  # type: ignore[return-value]


def cmd_purge(args: argparse.Namespace, runtime: Runtime) -> int:
    counts = _service(runtime).purge()
    if args.json:
        print(json.dumps(counts, sort_keys=True))
    else:
        print(f"purged {counts['purged']} expired pastes, removed {counts['objects_removed']}"
              f" stored objects, set an expiry on {counts['expiry_set']} pastes of"
              " downgraded accounts")
    return 0


def _configured_server(data: str) -> str:
    """The paste service's ``public_base_url`` in the host of ``--data``, if there is one."""
    if not is_host(data):
        return ""
    return load_config(data).service("paste").public_base_url or ""


class _Unfollowed(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: the key would go wherever one points, and
    the POST would arrive as a GET."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        raise ValueError(f"the server answered {code}, a redirect to {newurl}; not followed,"
                         " so that the key goes nowhere else. Pass the paste service's own"
                         " URL as --server")


def _member(raw: bytes, name: str) -> Any:
    """Member ``name`` of the JSON object ``raw``; ``None`` when it is no such thing."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc.get(name) if isinstance(doc, dict) else None


def cmd_paste(args: argparse.Namespace, runtime: None) -> int:
    """A client: it talks to a paste server and needs no host of its own."""
    server = (args.server or os.environ.get(URL_ENV)
              or _configured_server(args.data)).rstrip("/")
    if not server:
        raise ValueError(f"no server: pass --server URL or set ${URL_ENV}")
    if not is_base_url(server):
        raise ValueError(f"{server!r} is not an http(s) URL such as https://your.host")
    key = args.key or os.environ.get(KEY_ENV)
    if not key:
        raise ValueError(f"no key: pass --key KEY or set ${KEY_ENV}")
    if args.file in (None, "-"):
        data = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as fh:
            data = fh.read()
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the paste is not UTF-8 text") from None
    body: dict[str, Any] = {"content": content}
    for name, value in (("title", args.title), ("language", args.language),
                        ("visibility", args.visibility)):
        if value is not None:
            body[name] = value
    request = urllib.request.Request(
        server + "/api/paste", data=json.dumps(body).encode("utf-8"), method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                 "User-Agent": "hepcore-paste"})
    try:
        with urllib.request.build_opener(_Unfollowed).open(request,
                                                           timeout=args.timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        message = _member(exc.read(), "error") or exc.reason
        raise ValueError(f"the server refused the paste ({exc.code}): {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ValueError(f"cannot reach {server}: {getattr(exc, 'reason', exc)}") from None
    made = _member(raw, "data")
    if not isinstance(made, dict) or not isinstance(made.get("url"), str):
        raise ValueError(  # noqa: TRY004 - the CLI reports ValueErrors as errors
            f"{server} did not answer as a paste service does: no URL in the reply")
    if args.json:
        print(json.dumps(made, sort_keys=True))
    else:
        print(made["url"])
    return 0


def add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("purge", help="purge expired pastes now (the host also does it"
                              " periodically)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_purge)

    p = subparsers.add_parser("paste", help="post a file (or stdin) to a paste server; prints"
                              " the URL")
    p.add_argument("file", nargs="?", type=path_arg, help="the file to paste; stdin when absent or -")
    p.add_argument("--server", type=base_url_arg, help=f"the paste service's URL (or ${URL_ENV}; default: this"
                   " host's public_base_url)")
    p.add_argument("--key", help=f"a hepgg_pst_ key (or ${KEY_ENV})")
    p.add_argument("--title")
    p.add_argument("--language")
    p.add_argument("--visibility", choices=("public", "unlisted", "private"))
    p.add_argument("--timeout", type=seconds, default=60.0)
    p.add_argument("--json", action="store_true", help="print the whole reply")
    p.set_defaults(func=cmd_paste, needs_host=False)
