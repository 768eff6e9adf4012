"""uvicorn's supervisor of several workers, which remembers why it stops (``ocireg.server``).

A module of its own because it imports ``multiprocessing`` through uvicorn's supervisors,
which a single worker never needs."""

from __future__ import annotations

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess


class Supervisor(Multiprocess):
    """uvicorn's supervisor of several workers, which remembers why it stops."""

    reason: str | None = None

    def handle_int(self) -> None:
        self.reason = self.reason or "SIGINT"
        super().handle_int()

    def handle_term(self) -> None:
        self.reason = self.reason or "SIGTERM"
        super().handle_term()

    def a_worker_failed_to_start(self) -> bool:
        return any(process.exitcode == STARTUP_FAILURE for process in self.processes)
