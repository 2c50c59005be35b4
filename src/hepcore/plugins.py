"""The plugin manager: one per host, never a module global.

It holds the ``hepcore_*`` specs, the in-tree defaults, every plugin found
under the ``hepcore`` entry-point group (in-tree services are registered
that way too), minus the ones the configuration blocks.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "hepcore"
DEFAULT_PLUGINS = ("hepcore.defaults",)


def make_plugin_manager(
    blocked: Iterable[str] = (), extra_plugins: Iterable[object] = (),
    load_entry_points: bool = True,
) -> pluggy.PluginManager:
    """Build a plugin manager with the specs, defaults, entry-point plugins and
    ``extra_plugins`` (objects or modules, e.g. a test's own plugin).

    ``blocked`` names (entry-point names, module names of defaults) are never
    registered. Raises :class:`pluggy.PluginValidationError` when a plugin
    implements a hook that does not exist (a misspelt ``hepcore_*`` name).
    """
    pm = pluggy.PluginManager("hepcore")
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if not pm.is_blocked(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm
