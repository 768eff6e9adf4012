"""Load from ``wrk`` (C, one thread), for request rates a Python client cannot drive.

``run`` starts wrk with an optional Lua script from ``bench/wrk/`` and parses its summary:
requests, duration, latency percentiles, socket errors, non-2xx/3xx responses and any
``BENCH <name> <integer>`` lines the script's ``done()`` prints (its own status counts).
wrk's CPU seconds come from ``getrusage(RUSAGE_CHILDREN)`` around the run: the harness waits
for no other child meanwhile (the servers outlive the run).
"""

from __future__ import annotations

import re
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "wrk"

_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TOTAL = re.compile(r"(\d+) requests in ([0-9.]+)(us|ms|s|m|h)")
_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$", re.M)
_SOCKET = re.compile(r"Socket errors: (.*)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_COUNTER = re.compile(r"^BENCH (\w+) (-?\d+)$", re.M)
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class WrkRun:
    requests: int  # completed responses, any status
    seconds: float  # wrk's own measured duration
    rate: float  # requests / seconds, as wrk prints it
    p50_ms: float | None
    p99_ms: float | None
    non_2xx: int  # wrk counts status > 399 here
    socket_errors: str  # "" when all zero
    counters: dict[str, int] = field(default_factory=dict)  # the script's BENCH lines
    client_cpu: float = 0.0  # wrk's user + system CPU seconds
    wall: float = 0.0  # wrk's lifetime, start-up included
    output: str = ""


def _run_until(argv: list[str], stop_file: Path | None) -> subprocess.CompletedProcess[str]:
    """wrk to its end, or until ``stop_file`` appears: then SIGINT, on which wrk stops waiting
    out its duration and prints its summary."""
    if stop_file is None:
        return subprocess.run(argv, capture_output=True, text=True)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        while process.poll() is None and not stop_file.exists():
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        out, err = process.communicate()
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


def available() -> str | None:
    return shutil.which("wrk")


def run(
    url: str,
    connections: int,
    seconds: int,
    script: str | None = None,
    script_args: list[str] | None = None,
    headers: list[str] | None = None,
    stop_file: Path | None = None,
    timeout: int | None = None,
) -> WrkRun:
    """Run wrk against ``url`` for ``seconds`` with ``connections`` on one thread; with
    ``stop_file``, interrupt it (it prints its summary) as soon as the script creates that file."""
    wrk = available()
    if wrk is None:
        raise RuntimeError("wrk is not on PATH (apt-get install wrk)")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if timeout:  # wrk's own is 2 s: slower answers count as timeouts, not in the latencies
        argv.append(f"--timeout={timeout}s")
    for header in headers or []:
        argv += ["-H", header]
    if script:
        argv += ["-s", str(SCRIPTS / script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = _run_until(argv, stop_file)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = done.stdout
    rate, total = _RATE.search(out), _TOTAL.search(out)
    if done.returncode != 0 or rate is None or total is None:
        raise RuntimeError(f"wrk failed ({' '.join(argv)}):\n{out}{done.stderr}")
    cuts = {p: float(v) * _SECONDS[u] * 1e3 for p, v, u in _PERCENTILE.findall(out)}
    sockets = _SOCKET.search(out)
    non_2xx = _NON_2XX.search(out)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkRun(
        requests=int(total[1]),
        seconds=float(total[2]) * _SECONDS[total[3]],
        rate=float(rate[1]),
        p50_ms=cuts.get("50"),
        p99_ms=cuts.get("99"),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sockets[1].strip() if sockets else "",
        counters={name: int(value) for name, value in _COUNTER.findall(out)},
        client_cpu=cpu,
        wall=wall,
        output=out + done.stderr,
    )
