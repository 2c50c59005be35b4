"""hepcore's Hep.gg-compatible uploader, registered through the ``hepcore`` entry point."""

from __future__ import annotations

from typing import Any

from hepcore import hookimpl

from .service import UploaderService


@hookimpl
def hepcore_register_services(runtime: Any) -> list[Any]:
    return [UploaderService(runtime, runtime.config.service("uploader"))]


@hookimpl
def hepcore_cli_commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)
