"""The benchmark scenarios. Each takes a Ctx and returns Metrics; setup is outside the timing."""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import loadgen
import procstat
import wrkload
from servers import Server
from workload import (
    OCI_MANIFEST,
    MiB,
    PatternBlob,
    expect,
    mount_blob,
    pool,
    pull_blob,
    push_blob,
    push_blob_chunked,
    push_image_base,
    put_manifest,
    referrer_manifest,
    sha256,
    walk_pages,
)


@dataclass(frozen=True)
class Sizes:
    blob_mib: int = 256
    chunk_mib: int = 8
    repeats: int = 3  # throughput runs per blob scenario; the median is reported
    small_blobs: int = 2000
    small_kib: int = 4
    small_workers: int = 16
    manifests: int = 1000
    manifest_workers: int = 8
    gets: int = 5000
    get_workers: int = 32
    tags: int = 10_000
    repos: int = 2000
    referrers: int = 1000
    client_procs: int = 1  # >1: manifest GET/HEAD load from that many client processes
    wait_quiet: bool = False  # see harness --wait-quiet
    setup_workers: int = 16
    list_repeats: int = 5  # timed listings per variant; the median is reported
    rss_mib: int = 2048
    wrk_seconds: int = 8  # duration of each wrk scenario
    put_runs: int = 5  # manifest-put-wrk: runs of `manifests` PUTs, each into a fresh repository
    put_seconds: int = 4  # wrk's -d for each: it waits that long even when the PUTs are done
    wrk_blobs: int = 100_000  # distinct small blobs prepared for small-blobs-wrk (never reused)
    burst_tags: int = 15_000  # tag-burst: PUTs (new tags) into one repository
    burst_segment: int = 1_000  # tag-burst: the rate is also reported per segment of this many


FULL = Sizes()
QUICK = replace(
    FULL,
    blob_mib=32,
    repeats=1,
    small_blobs=200,
    manifests=200,
    gets=1000,
    tags=1000,
    repos=200,
    referrers=100,
    list_repeats=3,
    rss_mib=256,
    wrk_seconds=3,
    put_runs=3,
    wrk_blobs=40_000,
    burst_tags=3_000,
)


@dataclass
class Span:
    """Wall time and CPU seconds (server tree, this client process) over timed sections."""

    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    ops: int = 0  # requests (or MB) in the timed part, for CPU per op; 0 when not counted
    op: str = "req"
    other_cpu: float = 0.0  # everything else on the machine: a noise indicator

    def pct(self, cpu: float) -> float:
        return 100 * cpu / self.wall if self.wall else 0.0


@dataclass
class Metric:
    key: str
    label: str
    unit: str
    value: float | None
    note: str = ""
    span: Span | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.unit not in ("ms", "MiB")


@dataclass
class Ctx:
    client: httpx.AsyncClient
    server: Server
    sizes: Sizes
    cache: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def timed(self, span: Span) -> Iterator[None]:
        pid = self.server.pid
        server0 = procstat.cpu_seconds(pid) if pid else 0.0
        machine0 = procstat.machine_busy_seconds()
        client0, wall0 = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            span.wall += time.perf_counter() - wall0
            client = time.process_time() - client0
            server = (procstat.cpu_seconds(pid) - server0) if pid else 0.0
            span.client_cpu += client
            span.server_cpu += server
            span.other_cpu += procstat.machine_busy_seconds() - machine0 - client - server


def big_blob(ctx: Ctx) -> PatternBlob:
    if "blob" not in ctx.cache:
        ctx.cache["blob"] = blob = PatternBlob.make(ctx.sizes.blob_mib * MiB)
        _ = blob.digest  # hash before any timing
    blob: PatternBlob = ctx.cache["blob"]
    return blob


async def _throughput(
    ctx: Ctx, key: str, label: str, run: Callable[[int], Awaitable[int]]
) -> Metric:
    span, rates = Span(op="MB"), []
    for attempt in range(ctx.sizes.repeats):
        before = span.wall
        with ctx.timed(span):
            moved = await run(attempt)
        rates.append(moved / 1e6 / (span.wall - before))
        span.ops += round(moved / 1e6)
    note = f"{ctx.sizes.repeats} runs: " + ", ".join(f"{r:.0f}" for r in rates)
    return Metric(key, label, "MB/s", statistics.median(rates), note, span)


async def blob_push(ctx: Ctx) -> list[Metric]:
    blob = big_blob(ctx)

    async def run(attempt: int) -> int:
        await push_blob(ctx.client, f"bench/mono{attempt}", blob.digest, blob.stream(), blob.size)
        return blob.size

    label = f"push {ctx.sizes.blob_mib} MiB blob, monolithic POST+PUT"
    return [await _throughput(ctx, "blob_push", label, run)]


async def blob_push_chunked(ctx: Ctx) -> list[Metric]:
    blob = big_blob(ctx)

    async def run(attempt: int) -> int:
        await push_blob_chunked(
            ctx.client, f"bench/chunked{attempt}", blob, ctx.sizes.chunk_mib * MiB
        )
        return blob.size

    label = f"push {ctx.sizes.blob_mib} MiB blob in {ctx.sizes.chunk_mib} MiB PATCH chunks"
    return [await _throughput(ctx, "blob_push_chunked", label, run)]


async def blob_pull(ctx: Ctx) -> list[Metric]:
    blob = big_blob(ctx)
    if not ctx.cache.get("pull_ready"):
        await push_blob(ctx.client, "bench/pull", blob.digest, blob.stream(), blob.size)
        ctx.cache["pull_ready"] = True

    async def run(_attempt: int) -> int:
        received = await pull_blob(ctx.client, "bench/pull", blob.digest)
        assert received == blob.size, (received, blob.size)
        return received

    label = f"pull {ctx.sizes.blob_mib} MiB blob (GET, streamed)"
    return [await _throughput(ctx, "blob_pull", label, run)]


async def small_blobs(ctx: Ctx) -> list[Metric]:
    sizes = ctx.sizes
    blobs = [os.urandom(sizes.small_kib * 1024) for _ in range(sizes.small_blobs)]
    items = [(sha256(b), b) for b in blobs]

    async def one(item: tuple[str, bytes]) -> None:
        await push_blob(ctx.client, "bench/small", item[0], item[1], len(item[1]))

    span = Span(ops=2 * sizes.small_blobs)
    with ctx.timed(span):
        await pool(sizes.small_workers, items, one)
    label = (
        f"{sizes.small_blobs} x {sizes.small_kib} KiB blobs, POST+PUT, "
        f"concurrency {sizes.small_workers}"
    )
    return [Metric("small_blobs", label, "blobs/s", sizes.small_blobs / span.wall, "", span)]


async def manifest_put(ctx: Ctx) -> list[Metric]:
    sizes, repo = ctx.sizes, "bench/manifests"
    base = await push_image_base(ctx.client, repo)
    bodies = [(f"t{i}", base.manifest(i)) for i in range(sizes.manifests)]

    async def one(item: tuple[str, bytes]) -> None:
        await put_manifest(ctx.client, repo, item[0], item[1])

    span = Span(ops=sizes.manifests)
    with ctx.timed(span):
        await pool(sizes.manifest_workers, bodies, one)
    ctx.cache["manifest_tags"] = [tag for tag, _ in bodies]
    label = f"{sizes.manifests} distinct manifest PUTs by tag, concurrency {sizes.manifest_workers}"
    return [Metric("manifest_put", label, "req/s", sizes.manifests / span.wall, "", span)]


async def _request_load(ctx: Ctx, method: str, paths: list[str]) -> tuple[Span, list[float]]:
    """Send ``paths`` at concurrency ``get_workers`` from this process or ``client_procs``."""
    sizes, span = ctx.sizes, Span(ops=len(paths))
    if sizes.client_procs > 1:
        args = (ctx.server.url, method, paths, sizes.get_workers, sizes.client_procs)
        with ctx.timed(span):
            load = await asyncio.to_thread(loadgen.run, *args)
        span.wall, span.client_cpu = load.wall, load.client_cpu  # children, start-up excluded
        span.other_cpu -= load.total_cpu
        return span, load.latencies
    latencies: list[float] = []
    headers = {"Accept": OCI_MANIFEST}

    async def one(path: str) -> None:
        start = time.perf_counter()
        response = await ctx.client.request(method, path, headers=headers)
        latencies.append(time.perf_counter() - start)
        expect(response, 200)

    with ctx.timed(span):
        await pool(sizes.get_workers, paths, one)
    return span, latencies


async def manifest_get(ctx: Ctx) -> list[Metric]:
    sizes = ctx.sizes
    if "manifest_tags" not in ctx.cache:
        await manifest_put(ctx)
    tags: list[str] = ctx.cache["manifest_tags"]
    paths = [f"/v2/bench/manifests/manifests/{tags[i % len(tags)]}" for i in range(sizes.gets)]
    procs = sizes.client_procs
    suffix, clients = ("", "") if procs == 1 else (f"_{procs}p", f", {procs} client processes")
    metrics = []
    for method in ("GET", "HEAD"):
        span, latencies = await _request_load(ctx, method, paths)
        cuts = statistics.quantiles(latencies, n=100)
        p50, p99 = cuts[49] * 1e3, cuts[98] * 1e3
        key = f"manifest_{method.lower()}{suffix}"
        label = f"manifest {method} by tag, {sizes.gets} requests, concurrency {sizes.get_workers}"
        note = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        metrics.append(Metric(key, label + clients, "req/s", sizes.gets / span.wall, note, span))
        metrics.append(Metric(f"{key}_p50", f"manifest {method} p50{clients}", "ms", p50))
        metrics.append(Metric(f"{key}_p99", f"manifest {method} p99{clients}", "ms", p99))
    return metrics


_SCRATCH: list[Path] = []  # files the wrk scripts read, shared by both servers' runs


def scratch() -> Path:
    if not _SCRATCH:
        path = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
        atexit.register(shutil.rmtree, path, True)
        _SCRATCH.append(path)
    return _SCRATCH[0]


def _wrk_missing() -> bool:
    if wrkload.available() is None:
        print("  skipped: wrk is not on PATH (apt-get install wrk)", file=sys.stderr)
        return True
    return False


async def _wrk(ctx: Ctx, span: Span, path: str, *args: Any, **kwargs: Any) -> wrkload.WrkRun:
    """wrk on ``path`` of this server inside ``span``; its CPU counts as client, not other."""
    with ctx.timed(span):
        load = await asyncio.to_thread(wrkload.run, ctx.server.url + path, *args, **kwargs)
    span.client_cpu += load.client_cpu
    span.other_cpu -= load.client_cpu
    return load


def _wrk_note(ctx: Ctx, load: wrkload.WrkRun, extra: str = "") -> str:
    note = f"p50 {load.p50_ms or 0:.1f} ms, p99 {load.p99_ms or 0:.1f} ms{extra}"
    if load.socket_errors and any(n != "0" for n in re.findall(r"\d+", load.socket_errors)):
        note += f"; FLAG socket errors: {load.socket_errors}"
    return note + (f"; {ctx.server.detail}" if ctx.server.detail else "")


def _wrk_statuses(load: wrkload.WrkRun, wanted: int) -> int:
    """The script's count of ``wanted`` responses; fail the run on any other status."""
    ok, bad = load.counters.get("ok"), load.counters.get("bad", 0)
    if ok is None or bad or load.non_2xx:
        last = load.counters.get("last_bad", 0)
        raise RuntimeError(
            f"wrk: {bad} responses were not {wanted} (last {last}), "
            f"{load.non_2xx} non-2xx/3xx:\n{load.output}"
        )
    return ok


async def manifest_get_wrk(ctx: Ctx) -> list[Metric]:
    """Manifest GET by tag driven by wrk (C, one thread), so the client is not the limit."""
    if _wrk_missing():
        return []
    if "manifest_tags" not in ctx.cache:
        await manifest_put(ctx)
    sizes, span = ctx.sizes, Span()
    path = f"/v2/bench/manifests/manifests/{ctx.cache['manifest_tags'][0]}"
    headers = [f"Accept: {OCI_MANIFEST}"]
    load = await _wrk(ctx, span, path, sizes.get_workers, sizes.wrk_seconds, headers=headers)
    if load.non_2xx:
        raise RuntimeError(f"wrk: {load.non_2xx} non-2xx/3xx responses:\n{load.output}")
    span.ops = load.requests
    label = f"manifest GET by tag, wrk, {sizes.wrk_seconds} s at concurrency {sizes.get_workers}"
    return [
        Metric("manifest_get_wrk", label, "req/s", load.rate, _wrk_note(ctx, load), span),
        Metric("manifest_get_wrk_p50", "manifest GET p50 (wrk)", "ms", load.p50_ms),
        Metric("manifest_get_wrk_p99", "manifest GET p99 (wrk)", "ms", load.p99_ms),
    ]


async def manifest_put_wrk(ctx: Ctx) -> list[Metric]:
    """``manifests`` PUTs of one manifest under new tags into a fresh repository, driven by wrk
    (manifest_put.lua stops at the count and times it); ``put_runs`` runs, the median kept."""
    if _wrk_missing():
        return []
    sizes, span, runs = ctx.sizes, Span(), []
    for run in range(sizes.put_runs):
        repo = f"bench/manifests-wrk-{run}"
        body = await _manifest_body(ctx, repo)
        args = [repo, str(body), "t", str(sizes.manifests)]
        seconds, workers = sizes.put_seconds, sizes.manifest_workers
        load = await _wrk(ctx, span, "/v2/", workers, seconds, "manifest_put.lua", args)
        done = _wrk_statuses(load, 201)
        elapsed = load.counters.get("elapsed_us", 0) / 1e6
        if done < sizes.manifests or not elapsed:
            raise RuntimeError(f"wrk: {done} of {sizes.manifests} PUTs in {seconds} s; raise it")
        span.ops += done
        runs.append((sizes.manifests / elapsed, load))
    runs.sort(key=lambda pair: pair[0])
    rate, load = runs[len(runs) // 2]
    label = (
        f"{sizes.manifests} manifest PUTs by new tag into a fresh repository, wrk, concurrency "
        f"{sizes.manifest_workers}, median of {sizes.put_runs}"
    )
    figures = ", ".join(f"{r:,.0f}" for r, _ in runs)
    extra = f"; runs {figures} req/s"
    return [
        Metric("manifest_put_wrk", label, "req/s", rate, _wrk_note(ctx, load, extra), span),
        Metric("manifest_put_wrk_p50", "manifest PUT p50 (wrk)", "ms", load.p50_ms),
        Metric("manifest_put_wrk_p99", "manifest PUT p99 (wrk)", "ms", load.p99_ms),
    ]


async def manifest_put_wrk_sustained(ctx: Ctx) -> list[Metric]:
    """The same PUT under a new tag per request (t1-1, t1-2, ...) for ``wrk_seconds``: one
    repository grows to thousands of tags (no target; what a long push burst costs)."""
    if _wrk_missing():
        return []
    sizes, repo, span = ctx.sizes, "bench/manifests-wrk", Span()
    body = await _manifest_body(ctx, repo)
    args = [repo, str(body)]
    load = await _wrk(
        ctx, span, "/v2/", sizes.manifest_workers, sizes.wrk_seconds, "manifest_put.lua", args
    )
    span.ops = _wrk_statuses(load, 201)
    label = (
        f"manifest PUT by new tag (one body), wrk, {sizes.wrk_seconds} s at concurrency "
        f"{sizes.manifest_workers}, one growing repository"
    )
    rate, extra = span.ops / load.seconds, f"; {span.ops} PUTs, as many tags at the end"
    note = _wrk_note(ctx, load, extra)
    return [
        Metric("manifest_put_wrk_sustained", label, "req/s", rate, note, span),
        Metric("manifest_put_wrk_sustained_p99", "sustained manifest PUT p99", "ms", load.p99_ms),
    ]


async def tag_burst(ctx: Ctx) -> list[Metric]:
    """One burst of ``burst_tags`` PUTs of one manifest under new tags into one repository,
    driven by wrk (tag_burst.lua), timed at every ``burst_segment`` responses: the rate over
    the whole burst and over its last segment, where the repository is largest."""
    if _wrk_missing():
        return []
    sizes, repo, span = ctx.sizes, "bench/burst", Span()
    body = await _manifest_body(ctx, repo)
    stop = scratch() / f"burst-stop-{re.sub(r'[^A-Za-z0-9]+', '-', ctx.server.name)}"
    stop.unlink(missing_ok=True)
    args = [repo, str(body), str(sizes.burst_tags), str(sizes.burst_segment), str(stop)]
    seconds = 600  # an upper bound: the script stops wrk at the last response
    load = await _wrk(
        ctx, span, "/v2/", sizes.manifest_workers, seconds, "tag_burst.lua", args, stop_file=stop
    )
    span.ops = _wrk_statuses(load, 201)
    if span.ops < sizes.burst_tags:
        raise RuntimeError(f"wrk: {span.ops} of {sizes.burst_tags} PUTs in {seconds} s")
    marks = [load.counters[f"mark_{n}"] / 1e6 for n in _segment_ends(sizes)]
    rates = [sizes.burst_segment / (b - a) for a, b in zip([0.0, *marks], marks, strict=False)]
    tags = await _tag_count(ctx, repo)
    first, last = sizes.burst_tags - sizes.burst_segment, sizes.burst_tags
    curve = ", ".join(f"{rate:,.0f}" for rate in rates)
    extra = f"; {tags:,} tags at the end; req/s per {sizes.burst_segment:,}: {curve}"
    label = (
        f"burst of {sizes.burst_tags:,} manifest PUTs by new tag into one repository, wrk, "
        f"concurrency {sizes.manifest_workers}"
    )
    return [
        Metric("tag_burst", label, "req/s", last / marks[-1], _wrk_note(ctx, load, extra), span),
        Metric(
            "tag_burst_last",
            f"tag burst, tags {first:,}-{last:,} (the last segment)",
            "req/s",
            rates[-1],
        ),
        Metric("tag_burst_p99", "tag burst PUT p99", "ms", load.p99_ms),
    ]


def _segment_ends(sizes: Sizes) -> list[int]:
    return list(range(sizes.burst_segment, sizes.burst_tags + 1, sizes.burst_segment))


async def _tag_count(ctx: Ctx, repo: str) -> int:
    """Tags in ``repo``, following any Link (docker-registry answers in one response)."""
    count, _ = await walk_pages(ctx.client, f"/v2/{repo}/tags/list", "tags")
    return count


async def _manifest_body(ctx: Ctx, repo: str) -> Path:
    """The manifest wrk PUTs into ``repo``, whose config and layer are pushed first."""
    base = await push_image_base(ctx.client, repo)
    body = scratch() / "manifest.json"
    body.write_bytes(base.manifest())
    return body


def small_blob_files(sizes: Sizes) -> tuple[Path, Path]:
    """Digests (one a line) and the shared tail of ``wrk_blobs`` distinct blobs: blob i is
    ``b"%08d" % i + tail``, as small_blobs.lua builds it. Made once, so both servers get the
    same bytes."""
    digests, filler = scratch() / "small-digests.txt", scratch() / "small-filler.bin"
    if not digests.exists():
        tail = os.urandom(sizes.small_kib * 1024 - 8)
        lines = (sha256(b"%08d" % i + tail) for i in range(1, sizes.wrk_blobs + 1))
        filler.write_bytes(tail)
        digests.write_text("\n".join(lines) + "\n")
    return digests, filler


async def small_blobs_wrk(ctx: Ctx) -> list[Metric]:
    """Distinct 4 KiB blobs, POST then PUT ?digest= each, driven by wrk (small_blobs.lua)."""
    if _wrk_missing():
        return []
    sizes, repo = ctx.sizes, "bench/small-wrk"
    digests, filler = small_blob_files(sizes)
    span = Span(op="blob")
    args = [repo, str(digests), str(filler)]
    load = await _wrk(
        ctx, span, "/v2/", sizes.small_workers, sizes.wrk_seconds, "small_blobs.lua", args
    )
    span.ops = _wrk_statuses(load, 201)
    if load.counters.get("exhausted"):
        raise RuntimeError(f"wrk used all {sizes.wrk_blobs} prepared blobs: raise wrk_blobs")
    label = (
        f"{sizes.small_kib} KiB distinct blobs, POST+PUT, wrk, {sizes.wrk_seconds} s at "
        f"concurrency {sizes.small_workers}"
    )
    started = load.counters.get("posted", 0)
    extra = f" per request; {span.ops} pushed, {started - span.ops} left open at the end"
    rate = span.ops / load.seconds
    return [
        Metric("small_blobs_wrk", label, "blobs/s", rate, _wrk_note(ctx, load, extra), span),
        Metric("small_blobs_wrk_p50", "small blob request p50 (wrk)", "ms", load.p50_ms),
        Metric("small_blobs_wrk_p99", "small blob request p99 (wrk)", "ms", load.p99_ms),
    ]


# listing variants: key suffix, label, query; "whole" follows any Link the server sends anyway
VARIANTS = [("whole", "whole", ""), ("paged", "pages of 100", "?n=100")]


async def _listing(ctx: Ctx, key: str, label: str, url: str, field_: str, want: int) -> Metric:
    span, times, seen, pages = Span(), [], 0, 0
    for _ in range(ctx.sizes.list_repeats):
        before = span.wall
        with ctx.timed(span):
            seen, pages = await walk_pages(ctx.client, url, field_)
        times.append((span.wall - before) * 1e3)
    note = f"{pages} request(s), {seen} entries"
    if seen != want:
        note += f" (expected {want})"
    if "n=100" in url and seen > 100 and pages == 1:
        note += " (n ignored: one response)"
    return Metric(key, label, "ms", statistics.median(times), note, span)


async def tags_list(ctx: Ctx) -> list[Metric]:
    sizes, repo = ctx.sizes, "bench/tags"
    base = await push_image_base(ctx.client, repo)
    body = base.manifest()

    async def one(i: int) -> None:
        await put_manifest(ctx.client, repo, f"tag{i:05d}", body)

    setup = Span(ops=sizes.tags)
    with ctx.timed(setup):
        await pool(sizes.setup_workers, range(sizes.tags), one)
    rate = sizes.tags / setup.wall
    put_label = f"setup: one manifest PUT as {sizes.tags} tags, concurrency {sizes.setup_workers}"
    url, label = f"/v2/{repo}/tags/list", f"tags list, {sizes.tags} tags"
    return [
        Metric("tags_setup_put", put_label, "req/s", rate, "repository grows to N tags", setup),
        *[
            await _listing(ctx, f"tags_{kind}", f"{label}, {text}", url + query, "tags", sizes.tags)
            for kind, text, query in VARIANTS
        ],
    ]


async def catalog(ctx: Ctx) -> list[Metric]:
    sizes, source = ctx.sizes, "bench/catalog-base"
    base = await push_image_base(ctx.client, source)
    body = base.manifest()

    async def one(i: int) -> None:
        repo = f"cat/r{i:05d}"
        for desc in (base.config, base.layer):
            await mount_blob(ctx.client, repo, desc["digest"], source)
        await put_manifest(ctx.client, repo, "latest", body)

    await pool(sizes.setup_workers, range(sizes.repos), one)
    # every repository the run has made so far is listed, not only cat/*
    want, _ = await walk_pages(ctx.client, "/v2/_catalog?n=100", "repositories")
    url, label = "/v2/_catalog", f"catalog, {sizes.repos}+ repositories"
    return [
        await _listing(
            ctx, f"catalog_{kind}", f"{label}, {text}", url + query, "repositories", want
        )
        for kind, text, query in VARIANTS
    ]


async def referrers(ctx: Ctx) -> list[Metric]:
    sizes, repo = ctx.sizes, "bench/referrers"
    base = await push_image_base(ctx.client, repo)
    subject = base.manifest()
    await put_manifest(ctx.client, repo, "subject", subject)
    bodies = [referrer_manifest(subject, i) for i in range(sizes.referrers)]

    async def one(body: bytes) -> None:
        await put_manifest(ctx.client, repo, sha256(body), body)

    await pool(sizes.setup_workers, bodies, one)
    url = f"/v2/{repo}/referrers/{sha256(subject)}"
    label = f"referrers list, {sizes.referrers} referrers"
    probe = await ctx.client.get(url)
    if probe.status_code == 404:
        return [Metric("referrers", label, "ms", None, "n/a (404)")]
    return [await _listing(ctx, "referrers", label, url, "manifests", sizes.referrers)]


async def upload_rss(ctx: Ctx) -> list[Metric]:
    blob = PatternBlob.make(ctx.sizes.rss_mib * MiB)
    _ = blob.digest
    label = f"server peak RSS during a {ctx.sizes.rss_mib} MiB monolithic upload"
    if ctx.server.pid is None:
        return [Metric("rss", label, "MiB", None, "no pid: started elsewhere")]
    idle = procstat.rss_kib(ctx.server.pid) / 1024
    span = Span(ops=round(blob.size / 1e6), op="MB")
    with procstat.RssSampler(ctx.server.pid) as sampler, ctx.timed(span):
        await push_blob(ctx.client, "bench/rss", blob.digest, blob.stream(), blob.size)
    rate = blob.size / 1e6 / span.wall
    note = f"idle before {idle:.0f} MiB, {sampler.samples} samples, upload {rate:.0f} MB/s"
    return [Metric("rss", label, "MiB", sampler.peak_kib / 1024, note, span)]


SCENARIOS: dict[str, Callable[[Ctx], Awaitable[list[Metric]]]] = {
    "push": blob_push,
    "push-chunked": blob_push_chunked,
    "pull": blob_pull,
    "small-blobs": small_blobs,
    "manifest-put": manifest_put,
    "manifest-get": manifest_get,
    "manifest-get-wrk": manifest_get_wrk,
    "manifest-put-wrk": manifest_put_wrk,
    "manifest-put-wrk-sustained": manifest_put_wrk_sustained,
    "small-blobs-wrk": small_blobs_wrk,
    "tag-burst": tag_burst,
    "tags": tags_list,
    "catalog": catalog,
    "referrers": referrers,
    "rss": upload_rss,
}
