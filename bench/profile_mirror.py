"""Serve a sync mirror (an ocireg config file) in this process, for `bench/sync.py`'s
``SYNC_MIRROR_SCRIPT``: under cProfile when ``SYNC_PROFILE=FILE`` (``kill -USR1`` dumps the
stats so far to FILE), and with httpx's own transport (httpcore, reads of ``SYNC_READ`` bytes,
1 MiB by default) instead of the upstream client's threaded one when ``SYNC_TRANSPORT=httpx``
(to compare them).

    SYNC_MIRROR_SCRIPT=bench/profile_mirror.py SYNC_TRANSPORT=httpx python bench/sync.py ...
"""

from __future__ import annotations

import cProfile
import os
import signal
import ssl
import sys
from types import FrameType

import httpcore
import httpx
import uvicorn

import ocireg.ext.sync.upstream as upstream
from ocireg.app import create_app
from ocireg.config import load_config


def httpx_transport(verify: ssl.SSLContext | bool, *_: float) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(verify=verify)


def main() -> None:
    config = load_config(sys.argv[1])
    if os.environ.get("SYNC_TRANSPORT") == "httpx":
        httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = int(os.environ.get("SYNC_READ", 1 << 20))
        upstream.ThreadedTransport = httpx_transport  # type: ignore[assignment,misc]
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
