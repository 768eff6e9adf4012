"""What the report remembers of one client between its requests, each part bounded: the
oldest entry goes when a part is full, so a client cannot grow it by making many requests."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

SESSIONS = 64  # upload sessions whose last Location is kept
DIGESTS = 1024  # blobs the client pushed or was told of
WAITS = 64  # requests told to wait (429/503 with Retry-After)
REDIRECTS = 64  # requests answered with a redirect, not followed yet


class Bounded(Generic[K, V]):
    """A mapping that forgets its least recently set key past ``limit`` keys."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def set(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Memory:
    challenged: bool = False  # the registry has answered this client with a challenge
    locations: Bounded[str, str] = field(default_factory=lambda: Bounded(SESSIONS))
    # (repository, digest) of a blob the client pushed -> the repository's manifest count
    # then: a HEAD before the next manifest PUT is part of the same push ("just pushed")
    pushed: Bounded[tuple[str, str], int] = field(default_factory=lambda: Bounded(DIGESTS))
    manifests: Bounded[str, int] = field(default_factory=lambda: Bounded(DIGESTS))
    # digest -> a repository where the client learned the registry has it (HEAD or GET 200,
    # its own push, a mount): a later upload of it is needless (a mount would do)
    known: Bounded[str, str] = field(default_factory=lambda: Bounded(DIGESTS))
    waits: Bounded[tuple[str, str], float] = field(default_factory=lambda: Bounded(WAITS))
    # (method, path, query) answered with a redirect -> (when, whether its Location is here)
    redirects: Bounded[tuple[str, str, str], tuple[float, bool]] = field(
        default_factory=lambda: Bounded(REDIRECTS)
    )
    # a Location on this registry -> the request redirected to it: fetching it follows
    redirect_targets: Bounded[str, tuple[str, str, str]] = field(
        default_factory=lambda: Bounded(REDIRECTS)
    )
