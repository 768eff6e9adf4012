"""Start-up cost (issue 13): time from exec to the first 200 on ``GET /v2/``, ocireg and
docker-registry measured in one run.

Scenarios, each run ``--runs`` times, ocireg's and docker-registry's runs interleaved so that
drift in the machine's load hits both, medians reported:

* ``cold``: ``ocireg serve`` with the embedded default's settings (one worker, docker2s2, default
  log level) on a new empty root each run; docker-registry likewise;
* ``populated``: one worker on a root of ``--repos`` repositories written directly to disk in the
  OCI layout (``bench/meta.py``'s writer), its meta DB current (a restart);
* ``restart``: two workers on that root, the whole process group SIGKILLed while serving and
  started again on the same root; docker-registry SIGKILLed and restarted on its root.

The servers run with Python's bytecode cache on (in a temporary directory, one untimed start
first), as after ``pip install``: this environment sets PYTHONDONTWRITEBYTECODE, which would
add the compilation of ocireg's own modules to every start.

    BENCH_TMPDIR=/dev/shm python bench/startup.py --runs 7 --repos 2000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meta import populate
from procstat import cpu_seconds, machine_busy_seconds, tree
from servers import DOCKER_REGISTRY, docker_registry_config, free_port

TARGET_ONE_WORKER = 1.0  # seconds, cold start of one worker
TARGET_RESTART = 2.0  # seconds, two workers after SIGKILL


@dataclass
class Server:
    argv: list[str]
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    cpu: float = 0.0  # CPU seconds the server's processes had used by the first 200

    def start(self, timeout: float = 60.0) -> float:
        """Exec the server and return the seconds until ``GET /v2/`` answers 200."""
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, SIGKILLed whole
        )
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.argv}: exited with {self.process.returncode}")
            if _answers_200(self.port):
                seconds = time.perf_counter() - started
                self.cpu = cpu_seconds(self.process.pid)
                return seconds
            time.sleep(0.005)
        raise RuntimeError(f"{self.argv}: no 200 on /v2/ within {timeout} s")

    def kill(self) -> None:
        """SIGKILL the whole process group (parent and workers), as a crash or OOM would."""
        if self.process is not None:
            members = tree(self.process.pid)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            _wait_gone(members)
            self.process = None


def _answers_200(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/v2/")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _wait_gone(pids: list[int]) -> None:
    """Workers are reaped by init after their parent is killed: wait until they are."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.01)


def ocireg_server(workdir: Path, root: Path, env: dict[str, str], workers: int = 1) -> Server:
    """The embedded default's settings (``default_config``) on a free port and ``root``."""
    port = free_port()
    config = {
        "storage": {"rootDirectory": str(root)},
        "http": {"address": "127.0.0.1", "port": port, "compat": ["docker2s2"]},
    }
    if workers > 1:
        config["http"]["workers"] = workers  # type: ignore[index]
    path = workdir / f"ocireg-{port}.json"
    path.write_text(json.dumps(config))
    return Server([sys.executable, "-m", "ocireg", "serve", str(path)], port, env)


def docker_registry_server(workdir: Path, root: Path) -> Server:
    port = free_port()
    path = workdir / f"distribution-{port}.yml"
    path.write_text(docker_registry_config(root, port))
    return Server([DOCKER_REGISTRY, "serve", str(path)], port, dict(os.environ))


def python_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


@dataclass
class Series:
    label: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def once(server: Server) -> tuple[float, float]:
    try:
        return server.start(), server.cpu
    finally:
        server.kill()


def restart(server: Server) -> tuple[float, float]:
    """Serving already: SIGKILL everything and start again on the same root."""
    server.kill()
    return server.start(), server.cpu


def measure(rounds: int, steps: list[tuple[Series, Callable[[], tuple[float, float]]]]) -> None:
    for number in range(rounds):
        for series, step in steps:
            seconds, cpu = step()
            series.times.append(seconds)
            series.cpu.append(cpu)
        print(f"round {number + 1}/{rounds}: " + ", ".join(
            f"{s.label} {s.times[-1]:.2f} s" for s, _ in steps), file=sys.stderr)  # fmt: skip


def wait_for_meta_sync(server: Server, settle: float) -> None:
    """Let the first start on a populated root build its meta DB before the timed ones."""
    server.start()
    time.sleep(settle)
    server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--repos", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds the first start on the populated root may take to "
                        "build its meta DB")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    if not Path(DOCKER_REGISTRY).exists():
        sys.exit(f"{DOCKER_REGISTRY} is missing: apt-get install -y docker-registry")
    base = os.environ.get("BENCH_TMPDIR")
    with tempfile.TemporaryDirectory(prefix="bench-startup-", dir=base) as tmp:
        work = Path(tmp)
        env = python_env(work / "pycache")
        populated = work / "populated"
        started = time.perf_counter()
        populate(populated, args.repos, 1)
        print(f"wrote {args.repos} repositories in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
        once(ocireg_server(work, work / "warm-up", env))  # fills the bytecode cache
        one = ocireg_server(work, populated, env)
        wait_for_meta_sync(one, args.settle)
        two = ocireg_server(work, populated, env, workers=2)
        two.start()
        registry = docker_registry_server(work, work / "distribution")
        registry.start()
        fresh = iter(range(10**6))
        cold = Series("ocireg cold, 1 worker, empty root")
        cold_registry = Series("docker-registry cold, empty root")
        warm = Series(f"ocireg 1 worker, {args.repos:,} repositories")
        again = Series(f"ocireg restart after SIGKILL, 2 workers, {args.repos:,} repositories")
        again_registry = Series("docker-registry restart after SIGKILL")
        busy_before, wall_before = machine_busy_seconds(), time.monotonic()
        measure(
            args.runs,
            [
                (cold, lambda: once(ocireg_server(work, work / f"cold{next(fresh)}", env))),
                (cold_registry, lambda: once(
                    docker_registry_server(work, work / f"distribution{next(fresh)}"))),
                (warm, lambda: once(ocireg_server(work, populated, env))),
                (again, lambda: restart(two)),
                (again_registry, lambda: restart(registry)),
            ],
        )  # fmt: skip
        busy = (machine_busy_seconds() - busy_before) / (time.monotonic() - wall_before)
        two.kill()
        registry.kill()
    report(
        [cold, cold_registry, warm, again, again_registry], args.runs, busy,
        [(cold, cold_registry, TARGET_ONE_WORKER), (again, again_registry, TARGET_RESTART)],
    )  # fmt: skip
    if args.json:
        every = (cold, cold_registry, warm, again, again_registry)
        figures = {s.label: {"seconds": s.times, "cpu": s.cpu} for s in every}
        args.json.write_text(json.dumps(figures, indent=2))


def report(
    series: list[Series], runs: int, busy: float, ratios: list[tuple[Series, Series, float]]
) -> None:
    cpus = os.cpu_count()
    print(f"\nmedian of {runs} runs; server CPU: user + system seconds of the server's "
          f"processes up to the first 200; the machine was {busy * 100:.0f} % busy on "
          f"average (of {cpus} CPUs x 100 %, the benchmark's own servers included)\n")  # fmt: skip
    print("| start | median s | min s | max s | server CPU s (median) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for each in series:
        print(f"| {each.label} | {each.median:.2f} | {min(each.times):.2f} | "
              f"{max(each.times):.2f} | {statistics.median(each.cpu):.2f} |")  # fmt: skip
    print("\n| ocireg | docker-registry | ratio | target | status |")
    print("| --- | --- | ---: | --- | --- |")
    for ours, theirs, target in ratios:
        ratio = ours.median / theirs.median
        status = "met" if ours.median < target else "**missed**"
        print(f"| {ours.label}: {ours.median:.2f} s | {theirs.label}: {theirs.median:.2f} s | "
              f"{ratio:.1f}x | < {target:.0f} s | {status} |")  # fmt: skip


if __name__ == "__main__":
    main()
