"""A plugin with a misspelt hook: hepcore refuses to start instead of ignoring it."""

from __future__ import annotations

from hepcore import Rejection, UploadCandidate, hookimpl


@hookimpl
def hepcore_inspect_uplaod(candidate: UploadCandidate) -> Rejection | None:  # "uplaod"
    return Rejection("NEVER", "This hook is never called", status=415)
