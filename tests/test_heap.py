"""Pausing the collector while a large document is parsed, from several threads at once."""

from __future__ import annotations

import gc
import threading

from ocireg.heap import collector_paused, give_back


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
