"""Pausing the collector while a large document is parsed, from several threads at once;
large buffers given back at free once the mmap threshold is pinned."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

import pytest

from ocireg.heap import collector_paused, give_back

# Buffers of an upload's part size, built and freed on a thread and on the main thread (each
# gets an arena of its own), then the growth of the resident size in MiB.
_BURSTS = """
import sys, threading
from ocireg.heap import pin_mmap_threshold
if sys.argv[1] == "pin" and not pin_mmap_threshold():
    print("not glibc")
    raise SystemExit
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 >> 20
before = resident()
def bursts():
    for _ in range(3):
        block = bytes(10 << 20)
        del block
        block = bytearray(b"x" * (10 << 20))
        del block
worker = threading.Thread(target=bursts)
worker.start()
worker.join()
bursts()
print(resident() - before)
"""


def _growth_mib(pin: bool) -> str:
    argument = "pin" if pin else "default"
    run = subprocess.run(
        [sys.executable, "-c", _BURSTS, argument], capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


# Pieces of a streamed blob (1 MiB reads), each built and freed in turn, then the page faults
# they cost: a piece mapped anew each time faults in each of its 256 pages.
_PIECES = """
import resource, sys
from ocireg.heap import pin_mmap_threshold
if not pin_mmap_threshold():
    print("not glibc")
    raise SystemExit
if sys.argv[1] == "small":
    import ctypes
    ctypes.CDLL(None).mallopt(-1, 128 << 10)  # glibc's default trim threshold
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for n in range(200):
    piece = bytes([n]) * (1 << 20)
    del piece
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _script(script: str, argument: str) -> str:
    """What ``script`` prints, run in a Python of its own (malloc settings are per process)."""
    run = subprocess.run(
        [sys.executable, "-c", script, argument], capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


def _piece_faults(threshold: str) -> str:
    return _script(_PIECES, threshold)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_streamed_pieces_reuse_memory_rather_than_mapping_each_anew() -> None:
    faults = _piece_faults("pinned")
    if faults == "not glibc":
        pytest.skip("the C library is not glibc: nothing is pinned")
    assert int(faults) < 2000  # the first piece's pages, then none
    # with each piece's memory given back at free: 200 pieces x 256 pages
    assert int(_piece_faults("small")) > 200 * 200


# Streams on 40 threads at once (starlette's thread pool), each reading 1 MiB pieces (3 held at
# a time) while small objects that live on are made between them; then the growth of the
# resident size in MiB, with glibc's number of arenas (8 per core) or the one pinned.
_STREAMS = """
import ctypes, sys, threading
from ocireg import heap
if sys.argv[1] == "pinned" and not heap.pin_mmap_threshold():
    print("not glibc")
    raise SystemExit
if sys.argv[1] == "default":  # the same thresholds, glibc's own number of arenas
    ctypes.CDLL(None).mallopt(-1, heap.TRIM_THRESHOLD)
    ctypes.CDLL(None).mallopt(-3, heap.MMAP_THRESHOLD)
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 >> 20
kept = []
start = threading.Barrier(40)
def stream():
    start.wait()
    held = []
    for n in range(40):
        held.append(bytes([n]) * (1 << 20))
        if len(held) > 3:
            held.pop(0)
        kept.append(bytearray(2000))
before = resident()
threads = [threading.Thread(target=stream) for _ in range(40)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(resident() - before)
"""


def _stream_growth_mib(arenas: str) -> str:
    return _script(_STREAMS, arenas)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_streams_on_many_threads_leave_little_behind_with_few_arenas() -> None:
    pinned = _stream_growth_mib("pinned")
    if pinned == "not glibc":
        pytest.skip("the C library is not glibc: nothing is pinned")
    assert int(pinned) < 25  # 4 arenas' free tops and what the kept objects pin
    # one arena per thread (up to 8 per core), each keeping its pieces' memory
    assert int(_stream_growth_mib("default")) > int(pinned)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_freed_part_buffers_leave_the_process_once_the_threshold_is_pinned() -> None:
    pinned = _growth_mib(pin=True)
    if pinned == "not glibc":
        pytest.skip("the C library is not glibc: nothing is pinned")
    assert int(pinned) < 5
    # the same bursts under glibc's dynamic threshold keep freed parts in the arenas
    assert int(_growth_mib(pin=False)) >= 10


def test_the_collector_is_back_on_when_the_last_pause_ends() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_pauses_from_threads_that_overlap() -> None:
    inside, leave = threading.Barrier(3), threading.Event()

    def parse() -> None:
        with collector_paused():
            inside.wait()
            leave.wait()

    threads = [threading.Thread(target=parse) for _ in range(2)]
    for thread in threads:
        thread.start()
    inside.wait()
    assert not gc.isenabled()
    leave.set()
    for thread in threads:
        thread.join()
    assert gc.isenabled()


def test_a_pause_ends_when_its_parse_fails() -> None:
    try:
        with collector_paused():
            raise ValueError("not JSON")
    except ValueError:
        pass
    assert gc.isenabled()
    give_back()  # and giving memory back works wherever the suite runs
