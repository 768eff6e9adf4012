"""Giving memory back to the system after a burst of work that built many objects.

CPython returns memory to the system only when whole arenas empty, and glibc keeps what a
thread's arena freed for later: after a pass that parsed hundreds of megabytes of manifests
(the meta DB sync at start, a heavy search), the process would stay at its peak size although
it holds little. Collecting the cycles that burst left and asking glibc to trim its arenas
returns most of it. Elsewhere than glibc the trim is skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable


def _trim_function() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _trim_function()


def give_back() -> None:
    """Free what reference cycles hold, then return free heap pages to the system (a few ms
    for a small heap: call it after bursts, not per request)."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
