"""Blob pull from S3, A/B: this tree's ocireg against another build of it, both on one
moto_server, pulls interleaved; each server's own CPU per GiB pulled and its pull rate.

The other build is a directory holding an ``ocireg`` package (put first on its PYTHONPATH),
e.g. a commit laid out as installed:

    git archive ef85982 impl ext spec conformance | tar -x -C /tmp/b
    mkdir /tmp/other && mv /tmp/b/impl /tmp/other/ocireg
    for p in ext spec conformance; do mv /tmp/b/$p /tmp/other/ocireg/$p; done
    python bench/s3_pull_ab.py --other /tmp/other --mib 128 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics

import s3
from procstat import cpu_seconds
from s3_clients import start_moto


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", required=True, help="a directory holding an ocireg package")
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pulls", type=int, default=2, help="pulls per server per round")
    args = parser.parse_args()
    moto, url = start_moto()
    try:
        os.environ["PYTHONPATH"] = args.other
        with s3.ocireg_on_s3(url, "other", "other") as other:
            del os.environ["PYTHONPATH"]
            with s3.ocireg_on_s3(url, "this", "this") as this:
                _compare({"other": other, "this": this}, args.mib, args.rounds, args.pulls)
    finally:
        moto.terminate()


def _compare(servers: dict[str, s3.Server], mib: int, rounds: int, pulls: int) -> None:
    digests = {name: s3.push(server, "ab/blob", mib, b"ab")[0] for name, server in servers.items()}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    rate: dict[str, list[float]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            assert server.pid is not None
            before = cpu_seconds(server.pid)
            for _ in range(pulls):
                rate[name].append(s3.pull(server, "ab/blob", digests[name], mib))
            cpu[name].append((cpu_seconds(server.pid) - before) * 1024 / (mib * pulls))
    print(f"blob {mib} MiB, {rounds} rounds of {pulls} pulls each, interleaved")
    for name in servers:
        print(
            f"{name:6} CPU s/GiB median {statistics.median(cpu[name]):.2f}"
            f" {[round(each, 2) for each in cpu[name]]}"
            f"   MiB/s median {statistics.median(rate[name]):.0f}"
            f" {[round(each) for each in rate[name]]}"
        )


if __name__ == "__main__":
    main()
