"""Moderation: refuse executables before they are stored."""

from __future__ import annotations

from hepcore import Rejection, UploadCandidate, hookimpl

# Leading bytes of Windows, Linux and macOS programs.
EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")


@hookimpl
def hepcore_inspect_upload(candidate: UploadCandidate) -> Rejection | None:
    if candidate.head.startswith(EXECUTABLE_MAGIC):
        return Rejection("BLOCKED_CONTENT", "Executables are not accepted", status=415)
    return None
