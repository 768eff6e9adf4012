"""Markdown for the figures: one table of metrics and ratios, one of CPU use per scenario."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from scenarios import Metric, Span

OURS, THEIRS = "ocireg", "docker-registry"
_VARIANT = re.compile(r"_\d+p(?=_|$)")
# key -> (kind, bound): "ratio" means ocireg/docker-registry >= bound (<= bound for a figure where
# lower is better, a time), "max" means ocireg <= bound
TARGETS: dict[str, tuple[str, float]] = {
    "blob_push": ("ratio", 1.5),
    "blob_push_chunked": ("ratio", 1.5),
    "blob_pull": ("ratio", 1.0),
    "small_blobs": ("ratio", 2.0),
    "manifest_put": ("ratio", 2.0),
    "manifest_get": ("ratio", 3.0),
    "manifest_get_wrk": ("ratio", 3.0),
    "manifest_put_wrk": ("ratio", 2.0),
    "small_blobs_wrk": ("ratio", 2.0),
    "tag_burst": ("ratio", 1.0),
    "tag_burst_last": ("ratio", 1.0),
    "catalog_paged": ("ratio", 0.5),
    "rss": ("max", 150.0),
}

Results = dict[str, dict[str, Metric]]  # server name -> metric key -> metric


def to_json(results: Results) -> dict[str, Any]:
    return {server: {k: asdict(m) for k, m in ms.items()} for server, ms in results.items()}


def from_json(data: dict[str, Any]) -> Results:
    results: Results = {}
    for server, metrics in data.items():
        results[server] = {}
        for key, raw in metrics.items():
            span_raw = raw.pop("span", None)
            span = Span(**span_raw) if span_raw else None
            results[server][key] = Metric(**raw, span=span)
    return results


def noise(results: Results, key: str) -> float:
    """Outside CPU % while a metric was measured, the worse of the servers; inf if unknown."""
    if not any(key in metrics for metrics in results.values()):
        return float("inf")
    spans = [ms[key].span for ms in results.values() if key in ms and ms[key].span is not None]
    if spans:
        return max(span.pct(span.other_cpu) for span in spans)
    parent = key.rsplit("_", 1)[0]  # p50/p99 figures ride with their throughput figure
    return noise(results, parent) if parent != key else float("inf")


def merge(saved: Results, fresh: Results, keep_quieter: bool) -> Results:
    """``fresh`` over ``saved`` per metric; with ``keep_quieter``, only where it was measured
    with less outside CPU. A metric's figures for both servers always come from one run."""
    merged = {server: dict(metrics) for server, metrics in saved.items()}
    for key in dict.fromkeys(key for metrics in fresh.values() for key in metrics):
        if keep_quieter and noise(fresh, key) > noise(saved, key):
            continue
        for server, metrics in fresh.items():
            if key in metrics:
                merged.setdefault(server, {})[key] = metrics[key]
    return merged


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def target_status(key: str, ours: Metric, theirs: Metric | None) -> tuple[str, str]:
    """(target text, met/missed/blank) for one metric."""
    if key not in TARGETS or ours.value is None:
        return "", ""
    kind, bound = TARGETS[key]
    if kind == "max":
        return f"ocireg < {bound:.0f} {ours.unit}", "met" if ours.value < bound else "**missed**"
    if theirs is None or not theirs.value:
        return f">= {bound}x", "?"
    ratio = ours.value / theirs.value
    if not ours.higher_is_better:
        return f"<= {bound}x", "met" if ratio <= bound else "**missed**"
    return f">= {bound}x", "met" if ratio >= bound else "**missed**"


def ordered(metrics: dict[str, Metric]) -> dict[str, Metric]:
    """Variants run later (``manifest_get_2p``: 2 client processes) next to their base."""
    keys = list(metrics)

    def rank(key: str) -> tuple[int, int]:
        base = _VARIANT.sub("", key)
        return (keys.index(base) if base in metrics else keys.index(key), base != key)

    return {key: metrics[key] for key in sorted(keys, key=rank)}


def metrics_table(results: Results) -> str:
    ours, theirs = ordered(results.get(OURS, {})), results.get(THEIRS, {})
    lines = [
        f"| metric | unit | {OURS} | {THEIRS} | ratio {OURS}/{THEIRS} | target | status |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for key, mine in ours.items():
        other = theirs.get(key)
        ratio = ""
        if mine.value is not None and other is not None and other.value:
            ratio = f"{mine.value / other.value:.2f}x"
        arrow = "higher is better" if mine.higher_is_better else "lower is better"
        target, status = target_status(key, mine, other)
        cells = [mine.label, f"{mine.unit} ({arrow})", _fmt(mine.value)]
        cells += [_fmt(other.value) if other else "not run", ratio, target, status]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes_table(results: Results) -> str:
    lines = [
        "| metric | server | notes | wall s | server CPU % | client CPU % | other CPU % "
        "| server CPU per op |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key in ordered(results.get(OURS, {})):
        for server in (OURS, THEIRS):
            metric = results.get(server, {}).get(key)
            if metric is None or (not metric.note and metric.span is None):
                continue
            span = metric.span
            cpu = ["", "", "", "", ""]
            if span is not None:
                cpu = [f"{span.wall:.2f}", f"{span.pct(span.server_cpu):.0f}"]
                cpu.append(f"{span.pct(span.client_cpu):.0f}")
                cpu.append(f"{max(span.pct(span.other_cpu), 0):.0f}")  # clock ticks: +-1 %
                per = f"{span.server_cpu / span.ops * 1e6:.0f} µs/{span.op}" if span.ops else ""
                cpu.append(per)
            lines.append("| " + " | ".join([key, server, metric.note, *cpu]) + " |")
    return "\n".join(lines)


def missed(results: Results) -> list[str]:
    ours, theirs = results.get(OURS, {}), results.get(THEIRS, {})
    return [k for k, m in ours.items() if target_status(k, m, theirs.get(k))[1] == "**missed**"]


def render(results: Results, header: str, analysis: str = "") -> str:
    parts = [
        header,
        "## Figures\n",
        metrics_table(results),
        "\nCPU % is CPU seconds over wall seconds during the timed part (2 cores = 200 %). "
        "The server figure sums the server's process tree; the client figure is the harness, "
        "plus wrk in the wrk scenarios; other is everything else on the machine (other people's "
        "tests: noise).\n",
        notes_table(results),
    ]
    lost = missed(results)
    parts.append("\nTargets missed: " + (", ".join(lost) if lost else "none") + ".\n")
    if analysis:
        parts.append(analysis.strip() + "\n")
    return "\n".join(parts)
