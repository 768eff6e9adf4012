"""The report itself: per client, per rule, a count and the first example; bounded in clients
(``maxClients``), rules (a fixed table) and examples (one each)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .memory import Memory
from .rules import RULES

OTHERS = "(other clients)"
USER_AGENT_LIMIT = 256  # characters of a User-Agent that name a client


@dataclass
class Client:
    requests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)

    def depart(self, rule: str, example: dict[str, Any]) -> None:
        self.counts[rule] = self.counts.get(rule, 0) + 1
        self.examples.setdefault(rule, example)


class Book:
    def __init__(self, max_clients: int) -> None:
        self.max_clients = max_clients
        self.since = datetime.now(UTC)
        self.clients: dict[str, Client] = {}

    def client(self, user_agent: str) -> Client:
        name = user_agent[:USER_AGENT_LIMIT] or "(no User-Agent)"
        found = self.clients.get(name)
        if found is None:
            if len(self.clients) >= self.max_clients:
                name = OTHERS
                found = self.clients.get(name)
            if found is None:  # OTHERS takes one entry beyond max_clients, and only one
                found = self.clients[name] = Client()
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "clients": [
                {
                    "userAgent": name,
                    "requests": client.requests,
                    "departures": [_departure(rule, client) for rule in _by_level(client)],
                }
                for name, client in sorted(self.clients.items())
            ],
        }


_LEVELS = {"MUST": 0, "SHOULD": 1, "info": 2}


def _by_level(client: Client) -> list[str]:
    """The client's rules, MUSTs first, then by name."""
    return sorted(client.counts, key=lambda rule: (_LEVELS[RULES[rule].level], rule))


def _departure(rule: str, client: Client) -> dict[str, Any]:
    known = RULES[rule]
    return {
        "rule": rule,
        "level": known.level,
        "summary": known.summary,
        "section": known.section,
        "count": client.counts[rule],
        "example": client.examples[rule],
    }
