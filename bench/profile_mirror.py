"""Serve a sync mirror (an ocireg config file) in this process, for `bench/sync.py`'s
``SYNC_MIRROR_SCRIPT``: under cProfile when ``SYNC_PROFILE=FILE`` (``kill -USR1`` dumps the
stats so far to FILE), and with httpcore's read size set to ``SYNC_READ`` bytes when given (to
compare against httpcore's 64 KiB).

    SYNC_MIRROR_SCRIPT=bench/profile_mirror.py SYNC_READ=65536 python bench/sync.py ...
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from types import FrameType

import httpcore
import uvicorn

import ocireg.ext.sync.upstream  # noqa: F401 - it sets the read size, which SYNC_READ overrides
from ocireg.app import create_app
from ocireg.config import load_config


def main() -> None:
    config = load_config(sys.argv[1])
    if os.environ.get("SYNC_READ"):
        httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = int(os.environ["SYNC_READ"])
    app = create_app(config)
    profiler = cProfile.Profile()
    out = os.environ.get("SYNC_PROFILE")

    def dump(_signal: int, _frame: FrameType | None) -> None:
        assert out is not None
        profiler.disable()
        profiler.dump_stats(out)
        profiler.enable()

    if out:
        signal.signal(signal.SIGUSR1, dump)
        profiler.enable()
    uvicorn.run(app, host="127.0.0.1", port=config.http.port, loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
