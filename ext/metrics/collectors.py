"""Figures computed when Prometheus scrapes, so every worker process answers the same thing."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ocireg import __version__
from ocireg.registry.routes import Routed
from ocireg.storage.driver import PathNotFoundError

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


class StorageCollector(Collector):
    """``zot_repo_storage_bytes{repo}``: the bytes of each repository's blobs.

    A repository's blobs are summed again only when one of its ``blobs/<alg>`` directories
    changed (modification time or number of entries), so a scrape of a large registry costs
    a few directory reads per repository, not a stat of every blob.
    """

    def __init__(self, registry: Routed, limit: int) -> None:
        self.registry = registry
        self.limit = limit  # repositories with a series of their own; the rest sum as _other
        self._cache: dict[str, tuple[tuple[tuple[str, float, int], ...], int]] = {}

    def sizes(self) -> dict[str, int]:
        sizes = {name: self._size(name) for name in self.registry.repositories()}
        for gone in set(self._cache) - set(sizes):
            del self._cache[gone]
        return sizes

    def _size(self, repo: str) -> int:
        driver = self.registry.of(repo).driver
        try:
            folders = {path: driver.list(path) for path in driver.list(f"{repo}/blobs")}
            key = tuple(
                (path, driver.stat(path).mod_time, len(entries))
                for path, entries in sorted(folders.items())
            )
            cached = self._cache.get(repo)
            if cached is not None and cached[0] == key:
                return cached[1]
            total = sum(driver.stat(blob).size for entries in folders.values() for blob in entries)
        except PathNotFoundError:
            return 0  # deleted while we walked it
        self._cache[repo] = (key, total)
        return total

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "zot_repo_storage_bytes", "Bytes of blobs stored per repository.", labels=["repo"]
        )
        ordered = sorted(self.sizes().items())
        for repo, size in ordered[: self.limit]:
            family.add_metric([repo], size)
        if len(ordered) > self.limit:
            family.add_metric(["_other"], sum(size for _, size in ordered[self.limit :]))
        yield family


class InfoCollector(Collector):
    """``zot_info``: what is serving, as zot labels it."""

    def __init__(self, binary_type: str) -> None:
        self.binary_type = binary_type

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "zot_info",
            "Server information.",
            labels=["commit", "binaryType", "goVersion", "version"],
        )
        runtime = f"python{platform.python_version()}"
        family.add_metric(["", self.binary_type, runtime, f"v{__version__}"], 1)
        yield family


def worker_pids(directory: Path) -> list[int]:
    """The live processes that wrote multiprocess metric files (one file set per worker)."""
    pids = set()
    for path in directory.glob("*.db"):
        found = re.search(r"_(\d+)\.db$", path.name)
        if found and Path(f"/proc/{found[1]}").exists():
            pids.add(int(found[1]))
    return sorted(pids)


class WorkerProcessCollector(Collector):
    """The standard ``process_*`` figures for every live worker, labelled by ``pid``: with
    several workers, the one answering a scrape is only a part of the server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "process_cpu_seconds", "User and system CPU time spent.", labels=["pid"]
        )
        rss = GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory size.", labels=["pid"]
        )
        fds = GaugeMetricFamily("process_open_fds", "Open file descriptors.", labels=["pid"])
        for pid in worker_pids(self.directory):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
                open_fds = len(os.listdir(f"/proc/{pid}/fd"))
            except (OSError, IndexError, ValueError):
                continue  # the worker exited meanwhile
            label = [str(pid)]
            cpu.add_metric(label, (int(fields[11]) + int(fields[12])) / _TICKS)
            rss.add_metric(label, pages * _PAGE_SIZE)
            fds.add_metric(label, open_fds)
        yield from (cpu, rss, fds)
