"""Which configured sinks want an event: their names (stable keys) and filters."""

from __future__ import annotations

from dataclasses import dataclass

from ocireg.repopattern import matches

from .settings import Sink


@dataclass(frozen=True)
class Target:
    """A configured sink under its stable key (what the outbox and the metrics call it)."""

    key: str
    sink: Sink

    def wants(self, type: str, repo: str) -> bool:
        if self.sink.events and type not in self.sink.events:
            return False
        return not self.sink.repositories or any(
            matches(pattern, repo) for pattern in self.sink.repositories
        )


def targets(sinks: list[Sink]) -> list[Target]:
    """Each sink keyed by its type, address and channel, so reordering the configuration
    keeps each sink's backlog; two sinks alike get ``#2``, ``#3`` after the key."""
    found: list[Target] = []
    seen: dict[str, int] = {}
    for sink in sinks:
        base = f"{sink.type}:{sink.address}" + (f"#{sink.channel}" if sink.channel else "")
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base}#{seen[base]}"
        found.append(Target(key, sink))
    return found


def wanting(all_targets: list[Target], type: str, repo: str) -> list[str]:
    return [target.key for target in all_targets if target.wants(type, repo)]
