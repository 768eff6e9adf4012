"""Giving memory back to the system after a burst of work that built many objects.

CPython returns memory to the system only when whole arenas empty, and glibc keeps what a
thread's arena freed for later: after a pass that parsed hundreds of megabytes of manifests
(the meta DB sync at start, a heavy search), the process would stay at its peak size although
it holds little. Collecting the cycles that burst left and asking glibc to trim its arenas
returns most of it. Elsewhere than glibc the trim is skipped.
"""

from __future__ import annotations

import ctypes
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _trim_function() -> Callable[[int], int] | None:
    # The C library the interpreter already uses, by the symbols of the process itself:
    # ctypes.util.find_library would run `ldconfig -p` at every start to find its file name.
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _trim_function()

# mallopt's parameter numbers (glibc's malloc.h) and the values pinned. The mmap threshold is
# under S3's smallest part (5 MiB), so every part buffer is its own mapping, returned at free;
# the blocks under it come from the arenas. The trim threshold keeps up to 2 MiB free at the
# top of an arena rather than giving it back at once, so that the 1 MiB pieces a blob is
# streamed in (an S3 GET's reads, a request body's batches), each freed before the next is
# made, reuse the same memory. With every such piece a fresh mapping (a threshold of 128 KiB)
# or given back at each free (the default trim threshold, 128 KiB), each piece cost 256 page
# faults: 2.0-2.5 s of CPU per GiB pulled from S3 against 1.3-1.6 (bench/S3.md).
# Pieces under the mmap threshold come from the arena of the thread that made them, and glibc
# makes up to 8 arenas per core: blob GETs read in starlette's thread pool (40 threads), so
# after 16-40 streams at once every arena held its pieces and the free memory at its top,
# +35 MiB per worker never returned. ARENA_MAX arenas in all keep that to about +10 MiB
# (bench/S3.md); threads share an arena's lock, which the interpreter's lock mostly
# serialises anyway.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 2 << 20
ARENA_MAX = 4


def _is_glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018 (only glibc has the symbol)
    except (OSError, AttributeError):
        return False
    return True


def pin_mmap_threshold() -> bool:
    """Serve every block of ``MMAP_THRESHOLD`` (4 MiB) or more with its own ``mmap``,
    returned to the system at ``free``, keep ``TRIM_THRESHOLD`` free in an arena for the
    next blocks, and make at most ``ARENA_MAX`` arenas; False where the C library is not
    glibc (nothing is done there) or refuses the threshold (the other two settings are
    refinements: their refusal alone does not make this False).

    glibc starts so, but once such a block is freed it raises its *dynamic* threshold to that
    block's size: after the first 10 MiB part of an upload to S3, every later part came from
    the arena of whichever of the upload's writer threads built it, and freed parts stayed
    there, one arena per thread. A 2 GiB upload grew the process to 157 MiB; with the
    threshold pinned (which turns the dynamic one off) it held at 120 MiB (bench/S3.md).
    Settings of malloc are the process's: a forked worker inherits them, a spawned one must
    call this again."""
    if not _is_glibc():
        return False
    libc = ctypes.CDLL(None)
    libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    libc.mallopt(_M_ARENA_MAX, ARENA_MAX)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def give_back() -> None:
    """Free what reference cycles hold, then return free heap pages to the system (a few ms
    for a small heap: call it after bursts, not per request)."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


_paused = 0
_paused_lock = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic collection while a large document becomes objects (nested and from
    several threads at once: the last one out turns it back on).

    Parsing a 4 MiB manifest makes some 60,000 objects, enough to set off full collections
    that walk every object of the process with the interpreter held, 30-50 ms each, while the
    event loop waits. What a parse builds has no cycles (reference counting frees it), so a
    collection then finds nothing; the cycles other requests make meanwhile wait a moment.
    """
    global _paused
    with _paused_lock:
        _paused += 1
        gc.disable()
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0:
                gc.enable()


def started() -> None:
    """Start-up is over: collect from here on, leaving what start-up made out of it.

    Freezing without a collection first keeps start-up's own cyclic garbage for good: a few
    thousand objects (3,600 of 138,000 measured after an app build), a bounded one-off cost.
    A collection here would cost 40-90 ms on the way to the first answer, and enabling without
    freezing would make the first requests pay a full collection of the whole start-up heap."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
