"""Moderation by perceptual hash: refuse images that look like a blocklist entry.

A model for third-party moderation plugins (docs/images.md, upload step 12). The
blocklist lives in the host database, so the moderator needs the runtime,
which ``hepcore_inspect_upload`` does not receive: the plugin takes it from
``hepcore_register_services`` (called once per host build), applies its own
migrations there, and registers a moderator object bound to that host. It
provides no service and mounts no routes.
"""

from __future__ import annotations

from typing import Any

from hepcore import hookimpl

from .blocklist import Blocklist, BlocklistModerator, blocklist_migrations

MODERATOR = "phash_blocklist.moderator"


@hookimpl
def hepcore_register_services(runtime: Any) -> None:
    runtime.db.migrate([blocklist_migrations])
    runtime.pm.register(BlocklistModerator(Blocklist(runtime.db, runtime.clock)),
                        name=MODERATOR)


@hookimpl
def hepcore_cli_commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)
