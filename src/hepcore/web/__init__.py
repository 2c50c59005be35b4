"""The web layer: the only part of hepcore that imports Falcon."""

from .app import App, AsgiApp, add_service, create_app
from .entry import prepare_serving

__all__ = ["App", "AsgiApp", "add_service", "create_app", "prepare_serving"]
