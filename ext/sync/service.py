"""Sets sync up in each worker process: one client per upstream, on-demand answers for misses,
and a periodic job per upstream that has content rules and a poll interval."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ocireg.cluster.members import ownership
from ocireg.extensions.runtime import SetupContext
from ocireg.scheduler import Priority, Task

from .content import Content
from .counters import SyncCounters
from .credentials import CredentialsFile
from .downloads import Downloads
from .images import Images
from .ondemand import OnDemandSync, Target
from .periodic import PeriodicSync, RoundMarker
from .referrers import Referrers
from .settings import SyncSettings
from .signed import SignedOnly
from .staging import Staging
from .store import Conversions
from .upstream import Upstream

FIRST_ROUND = 1.0  # seconds after start-up: a mirror starts filling at once, as zot's does


@dataclass
class SyncState:
    counters: SyncCounters
    targets: list[Target]
    images: Images
    downloads: Downloads
    on_demand: OnDemandSync | None
    periodic: list[PeriodicSync]


def setup(context: SetupContext) -> SyncState:
    settings: SyncSettings = context.settings
    credentials = CredentialsFile(settings.credentialsFile)
    targets = [
        Target(each, Upstream(each, credentials), Content(each.content))
        for each in settings.registries
    ]
    meta_path: Path | None = getattr(context.app.meta, "path", None)
    conversions = Conversions(meta_path)
    state_dir = meta_path.parent / "sync" if meta_path is not None else None
    counters = SyncCounters()
    metrics = context.app.extensions.get("metrics")  # set up before sync: exported there
    if metrics is not None:
        counters.export_to(metrics.state.own)
    staging = Staging(settings.downloadDir) if settings.downloadDir is not None else None
    downloads = Downloads(counters, staging)
    images = Images(downloads, conversions)
    referrers = Referrers(images)
    signed = SignedOnly(context.app, images, referrers)
    on_demand_targets = [target for target in targets if target.settings.onDemand]
    on_demand = None
    if on_demand_targets:
        on_demand = OnDemandSync(on_demand_targets, images, downloads, referrers, signed)
        context.serve_misses(on_demand)
    config = context.app.config
    owns = ownership(config.cluster, config.http.address, config.http.port)
    periodic = []
    for number, target in enumerate(targets):
        interval = target.settings.pollInterval
        if interval is None or not target.settings.content:
            continue
        name = f"sync-{number}"
        marker = RoundMarker(state_dir, name)
        job = PeriodicSync(target, context.registries, images, referrers, signed, marker, owns)
        periodic.append(job)
        if marker.interrupted():
            context.scheduler.once(Task(f"{name}-resume", job.resume, Priority.LOW))
        context.scheduler.every(name, interval, job.round, Priority.LOW, first_delay=FIRST_ROUND)

    async def close() -> None:
        for target in targets:
            await target.upstream.close()
        conversions.close()
        if staging is not None:
            staging.close()

    context.scheduler.at_stop(close)
    return SyncState(counters, targets, images, downloads, on_demand, periodic)
