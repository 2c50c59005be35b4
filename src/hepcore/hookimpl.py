"""The marker plugins use to implement hooks: ``from hepcore import hookimpl``."""

import pluggy

hookimpl = pluggy.HookimplMarker("hepcore")
