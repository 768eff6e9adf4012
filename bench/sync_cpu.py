"""The mirror's CPU per first on-demand pull (issue 15), alternating code variants in one run:
on a machine shared with other work, CPU seconds side by side are the figure to compare.

One docker-registry upstream holds a 256 MiB image; each round starts a fresh on-demand mirror
per variant and pulls the image through it once, as `bench/sync.py` does. A variant is
``NAME=PYTHONPATH`` (an archive of the code to compare, laid out as the ``ocireg`` package; an
empty path is the installed code). Each pull prints its seconds, the CPU seconds of the
upstream, the mirror (and its threads) and this client, and the mirror's CPU over the client's
(the client's work is the same in every pull, so the ratio also evens out a host whose speed
varies).

    python bench/sync_cpu.py --rounds 5 base=/tmp/base new=
    SYNC_PERF=/tmp/perf python bench/sync_cpu.py new=   # and `perf record` each mirror's pull

An archive of a commit, for a variant:

    git archive COMMIT impl ext spec conformance | tar x -C DIR/x && mv DIR/x/impl DIR/ocireg
    mv DIR/x/ext DIR/ocireg/ext; mv DIR/x/spec DIR/ocireg/spec
    mv DIR/x/conformance DIR/ocireg/conformance
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import docker_registry
from sync import measured, mirror, push_big
from workload import MiB


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each of the process's threads, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[tid] = (int(fields[11]) + int(fields[12])) / tick
    return found


async def first_pull(upstream: str, upstream_pid: int | None, perf: str | None) -> dict:
    with mirror(upstream, onDemand=True) as (server, _):
        assert server.pid is not None
        recorder = None
        if perf:
            argv = ["record", "-g", "-o", perf, "-p", str(server.pid)]
            recorder = await asyncio.create_subprocess_exec(
                "perf", *argv, stderr=asyncio.subprocess.DEVNULL
            )
            await asyncio.sleep(1.0)  # attached
        before = thread_cpu(server.pid)
        parties = {"upstream": upstream_pid, "mirror": server.pid}
        found = await measured(server.url, "bench/big", parties)
        after = thread_cpu(server.pid)
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            await recorder.wait()
    spent = {tid: round(cpu - before.get(tid, 0.0), 2) for tid, cpu in after.items()}
    # threads still there at the end (the body's reader has ended by then: the rest is its)
    found["threads_cpu_s"] = sorted((cpu for cpu in spent.values() if cpu >= 0.01), reverse=True)
    found["mirror_over_client"] = round(found["mirror_cpu_s"] / found["client_cpu_s"], 2)
    return found


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    variants = [variant.split("=", 1) for variant in args.variants]
    mirror_cpu: dict[str, list[float]] = {name: [] for name, _ in variants}
    perf = os.environ.get("SYNC_PERF")
    with docker_registry() as upstream:
        async with httpx.AsyncClient(base_url=upstream.url, timeout=600) as client:
            await push_big(client, "bench/big", args.mib * MiB)
        for round_ in range(args.rounds):
            for name, path in variants:
                os.environ["PYTHONPATH"] = path  # the mirror's code
                out = f"{perf}.{name}.{round_}" if perf else None
                found = await first_pull(upstream.url, upstream.pid, out)
                mirror_cpu[name].append(found["mirror_cpu_s"])
                load = os.getloadavg()[0]
                print(name, round_, json.dumps(found), f"load {load:.1f}", flush=True)
    return mirror_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=PYTHONPATH (empty: installed code)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    for name, cpu in asyncio.run(run(args)).items():
        print(name, "mirror CPU s", cpu, "median", sorted(cpu)[len(cpu) // 2])


if __name__ == "__main__":
    main()
