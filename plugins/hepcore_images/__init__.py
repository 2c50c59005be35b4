"""hepcore's Fixitfy-compatible image service, registered through the ``hepcore``
entry point ``images``."""

from __future__ import annotations

from typing import Any

from hepcore import hookimpl

from .service import ImagesService


@hookimpl
def hepcore_register_services(runtime: Any) -> list[Any]:
    return [ImagesService(runtime, runtime.config.service("images"))]


@hookimpl
def hepcore_cli_commands(subparsers: Any) -> None:
    from .cli import add_commands

    add_commands(subparsers)
