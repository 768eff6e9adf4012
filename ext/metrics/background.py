"""zot's scheduler and GC metrics, fed by the scheduler's and the collector's listeners."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ocireg.registry.gc import Collected
from ocireg.scheduler import Priority, Snapshot, Task


class SchedulerMetrics:
    """Gauges are summed over worker processes (each runs its own scheduler)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        gauge: dict[str, Any] = {"registry": registry, "multiprocess_mode": "livesum"}
        self.workers_total = Gauge("zot_scheduler_workers_total", "Scheduler workers.", **gauge)
        self.workers = Gauge(
            "zot_scheduler_workers", "Scheduler workers by state.", ["state"], **gauge
        )
        self.queue = Gauge(
            "zot_scheduler_tasksqueue_length", "Queued tasks by priority.", ["priority"], **gauge
        )
        self.generators_total = Gauge("zot_scheduler_generators_total", "Periodic jobs.", **gauge)
        self.generators = Gauge(
            "zot_scheduler_generators_status",
            "Periodic jobs by state.",
            ["priority", "state"],
            **gauge,
        )
        self.durations = Histogram(
            "zot_scheduler_workers_tasks_duration_seconds",
            "Task run time by task kind.",
            ["name"],
            registry=registry,
        )

    def task_done(self, task: Task, seconds: float, error: BaseException | None) -> None:
        self.durations.labels(task.name.split(":", 1)[0]).observe(seconds)

    def changed(self, snapshot: Snapshot) -> None:
        self.workers_total.set(snapshot.workers)
        self.workers.labels("busy").set(snapshot.busy)
        self.workers.labels("idle").set(snapshot.workers - snapshot.busy)
        for priority, length in snapshot.queued.items():
            self.queue.labels(priority.name.lower()).set(length)
        self.generators_total.set(len(snapshot.jobs))
        counts = {(p, state): 0 for p in Priority for state in ("waiting", "running")}
        for key in snapshot.jobs.values():
            counts[key] = counts.get(key, 0) + 1
        for (priority, state), count in counts.items():
            self.generators.labels(priority.name.lower(), state).set(count)


class GCMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "zot_gc_runs", "GC runs (one per repository).", ["error"], registry=registry
        )
        self.duration = Histogram("zot_gc_duration_seconds", "GC run time.", registry=registry)
        self.deleted = Counter(
            "zot_gc_deleted", "Content removed by GC.", ["type"], registry=registry
        )

    def __call__(self, result: Collected, seconds: float, error: BaseException | None) -> None:
        self.runs.labels(str(error is not None).lower()).inc()
        self.duration.observe(seconds)
        for kind, items in (
            ("manifest", result.manifests),
            ("blob", result.blobs),
            ("upload", result.uploads),
        ):
            if items:
                self.deleted.labels(kind).inc(len(items))
