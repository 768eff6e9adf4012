"""What a running app shares with its handlers, reachable from every request's scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ocireg.config import Config
from ocireg.registry.store import Registry

SCOPE_KEY = "ocireg.state"


@dataclass
class AppState:
    config: Config
    registry: Registry
    max_manifest_size: int
    ready: bool = False


def state_of(scope: Mapping[str, Any]) -> AppState:
    state: AppState = scope[SCOPE_KEY]
    return state
