"""hepcore's Hep.gg Paste-compatible service, registered through the ``hepcore`` entry point."""

from __future__ import annotations

from typing import Any

from hepcore import hookimpl

from .service import PasteService


@hookimpl
def hepcore_register_services(runtime: Any) -> list[Any]:
    return [PasteService(runtime, runtime.config.service("paste"))]


@hookimpl
def hepcore_cli_commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)
