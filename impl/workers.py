"""Worker processes forked from the serving parent instead of spawned.

uvicorn starts each worker with multiprocessing's "spawn": a new interpreter that imports the
whole server again and checks the spec again (1.5-2.5 s of CPU per worker, every worker at once,
measured in ``bench/startup.py``). By the time uvicorn starts the workers, the parent has
imported all of it and checked the spec (:func:`ocireg.server.serve`), so a forked worker
begins with that done and builds only its own app state: storage, meta DB connection,
scheduler. None of that exists in the parent, so nothing that must not cross a fork does.
A worker that dies is replaced by a fork of the same parent.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading

from uvicorn import _subprocess
from uvicorn.supervisors.multiprocess import SIGNALS


def _default_signals() -> None:
    """A spawned worker starts with default signal dispositions, a forked one would inherit
    the supervisor's (which only queue the signal): give it the defaults back, so a worker
    sent SIGHUP or SIGUSR1 still behaves as before. uvicorn then installs its own for
    SIGINT and SIGTERM."""
    for number in SIGNALS:
        python_default = signal.default_int_handler if number == signal.SIGINT else None
        signal.signal(number, python_default or signal.SIG_DFL)


def fork_workers() -> bool:
    """Make uvicorn fork its workers from this process, where fork is available and safe (no
    other thread that a fork would leave holding a lock); False when it will spawn them."""
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return False
    _subprocess.spawn = multiprocessing.get_context("fork")  # type: ignore[assignment]
    os.register_at_fork(after_in_child=_default_signals)
    return True
