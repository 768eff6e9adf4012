"""Cold-start CPU of two revisions, started alternately (issue 13): CPU seconds of the server's
processes from exec to the first 200 on ``GET /v2/`` (``startup.py``'s ``Server``: one worker,
a new empty root each start, bytecode cached), for this checkout and for another revision
exported as the installed package would be laid out:

    git archive REV | tar -x -C base-src
    mkdir base && cp -r base-src/impl base/ocireg && cp -r base-src/ext base/ocireg/ext
    cp -r base-src/spec base/ocireg/spec && cp -r base-src/conformance base/ocireg/conformance
    BENCH_TMPDIR=/dev/shm python bench/startup_ab.py --runs 15 --before $PWD/base

Alternating the two makes a loaded machine's drift hit both; CPU seconds depend much less on
the load than wall time does, though not at all only on the code either.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from startup import ocireg_server, once, python_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--before", type=Path, required=True, help="a PYTHONPATH where the other revision is ocireg"
    )
    args = parser.parse_args()
    base = os.environ.get("BENCH_TMPDIR")
    with tempfile.TemporaryDirectory(prefix="bench-startup-ab-", dir=base) as tmp:
        work = Path(tmp)
        envs = {label: python_env(work / f"pycache-{label}") for label in ("before", "after")}
        envs["before"]["PYTHONPATH"] = str(args.before)
        cpu: dict[str, list[float]] = {label: [] for label in envs}
        starts = iter(range(10**6))
        for env in envs.values():  # fill the bytecode caches, warm the page cache
            for _ in range(2):
                once(ocireg_server(work, work / f"warm{next(starts)}", env))
        for _ in range(args.runs):
            for label, env in envs.items():
                _, seconds = once(ocireg_server(work, work / f"cold{next(starts)}", env))
                cpu[label].append(seconds)
    load = os.getloadavg()[0]
    print(f"server CPU s per cold start, {args.runs} starts each, load average {load:.1f}")
    for label, figures in cpu.items():
        print(f"{label}: median {statistics.median(figures):.3f}, min {min(figures):.3f}")


if __name__ == "__main__":
    main()
