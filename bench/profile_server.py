"""Serve ocireg in this process under cProfile; print the hottest functions when it stops.

    python bench/profile_server.py PORT [ROOT] &      # storage in a temporary root by default
    python bench/harness.py --url http://127.0.0.1:PORT --scenario manifest-get
    kill -INT %1                                     # uvicorn stops, the profile is printed

Set PROFILE_OUT=FILE to also dump the raw stats for `python -m pstats FILE`.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import tempfile

import uvicorn
from servers import ocireg_config

from ocireg.app import create_app
from ocireg.config import Config


def main() -> int:
    port = int(sys.argv[1])
    root = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="bench-profile-")
    config = Config.model_validate(ocireg_config(root, port))  # type: ignore[arg-type]
    app = create_app(config)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvicorn.run(
            app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning"
        )
    finally:
        profiler.disable()
        if os.environ.get("PROFILE_OUT"):
            profiler.dump_stats(os.environ["PROFILE_OUT"])
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
