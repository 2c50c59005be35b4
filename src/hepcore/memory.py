"""Keeping a threaded worker's memory steady: fewer glibc malloc arenas.

glibc gives threads their own malloc arenas (up to eight per core). Memory a
thread frees stays in its arena for that thread's later use, so when the
requests of a gthread worker land on different threads, each arena keeps a
few MiB of upload buffers and the worker's RSS climbs with the number of
threads that have streamed an upload. Two arenas keep the peak close to
what one upload needs, at no measurable cost: Python's small objects do not
go through malloc, and large buffers are few.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at ``count`` for this process and the processes it
    starts (``MALLOC_ARENA_MAX``); ``True`` when the cap is in force.

    Does nothing when ``count`` is 0, when ``MALLOC_ARENA_MAX`` is already set
    (the operator's choice wins), or off glibc. Call it before starting
    threads: arenas that exist stay.
    """
    if count <= 0 or "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not mallopt(M_ARENA_MAX, count):
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(count)  # for spawned workers (uvicorn --workers)
    return True
