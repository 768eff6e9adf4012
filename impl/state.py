"""What a running app shares with its handlers, reachable from every request's scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ocireg.config import Config
from ocireg.registry.routes import Registries

if TYPE_CHECKING:
    from ocireg.auth.guard import Guard
    from ocireg.extensions.loading import Enabled
    from ocireg.meta.db import MetaDB
    from ocireg.registry.gc import GarbageCollector
    from ocireg.scheduler import Scheduler

SCOPE_KEY = "ocireg.state"


@dataclass(frozen=True)
class Active:
    """A running extension: what enabled it, what its setup returned, and the endpoint
    templates its fragments declare (for discovery)."""

    enabled: Enabled
    state: Any
    endpoints: tuple[str, ...] = ()


@dataclass
class AppState:
    config: Config
    registries: Registries  # one registry per storage root
    max_manifest_size: int
    scheduler: Scheduler
    gc: GarbageCollector
    meta: MetaDB
    ready: bool = False
    guard: Guard | None = None  # None: no authentication or access control configured
    extensions: dict[str, Active] = field(default_factory=dict)


def state_of(scope: Mapping[str, Any]) -> AppState:
    state: AppState = scope[SCOPE_KEY]
    return state
