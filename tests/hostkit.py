"""A host's data directory, made with the admin CLI as a self-hoster would."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from hepcore.cli import main


def uploader_host(data: Path, account: str) -> str:
    """``hepcore init``, one account and an uploader key for it; the key."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(data), "init"]) == 0
        assert main(["--data", str(data), "accounts", "create", account]) == 0
        assert main(["--data", str(data), "keys", "create", "--service", "uploader",
                     "--account", account]) == 0
    return out.getvalue().strip().splitlines()[-1]
