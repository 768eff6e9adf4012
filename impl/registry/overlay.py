"""A mapping that shares a large base dictionary between versions and keeps its changes apart.

An index's lookup maps (tag -> entry, digest -> entry, ...) have an entry per tag, and every
push makes a new version of them that earlier versions' readers must not see change. Copying
the maps for each version costs O(tags) per push. An :class:`Overlay` instead layers a small
dictionary of changes over a base that is never changed once shared; :meth:`Overlay.fork`
copies only the changes, and folds them into a new base once they are large enough that
copying them would cost more than folding them in now and then (amortised O(sqrt(n)) a fork).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, MutableMapping
from typing import TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class Overlay(MutableMapping[K, V]):
    """``base`` with ``delta``'s keys set over it and ``removed``'s keys taken out. Iterates
    like a dictionary edited in place: the base's keys in order, then new keys."""

    __slots__ = ("_base", "_delta", "_removed", "_size")

    def __init__(
        self,
        base: dict[K, V] | None = None,
        delta: dict[K, V] | None = None,
        removed: set[K] | None = None,
        size: int | None = None,
    ) -> None:
        self._base: dict[K, V] = {} if base is None else base  # never changed: shared
        self._delta: dict[K, V] = {} if delta is None else delta
        # keys of the base taken out; one set again is in the delta, at the end like a new key
        self._removed: set[K] = set() if removed is None else removed
        self._size = len(self._base) if size is None else size

    def fork(self) -> Overlay[K, V]:
        """A copy to change independently of this one."""
        changes = len(self._delta) + len(self._removed)
        if changes > 64 + 2 * math.isqrt(len(self._base)):
            return Overlay(self.flattened())
        return Overlay(self._base, dict(self._delta), set(self._removed), self._size)

    def flattened(self) -> dict[K, V]:
        merged = dict(self._base)
        for key in self._removed:
            del merged[key]
        merged.update(self._delta)
        return merged

    def __getitem__(self, key: K) -> V:
        delta = self._delta
        if key in delta:
            return delta[key]
        if key in self._removed:
            raise KeyError(key)
        return self._base[key]

    @overload
    def get(self, key: K, /) -> V | None: ...

    @overload
    def get(self, key: K, /, default: V | T) -> V | T: ...

    def get(self, key: K, /, default: object = None) -> object:
        delta = self._delta
        if key in delta:
            return delta[key]
        if key in self._removed:
            return default
        return self._base.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._delta or (key not in self._removed and key in self._base)

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self:
            self._size += 1  # a removed key of the base stays removed there: it is new again
        self._delta[key] = value

    def __delitem__(self, key: K) -> None:
        if key not in self:
            raise KeyError(key)
        self._size -= 1
        self._delta.pop(key, None)
        if key in self._base:
            self._removed.add(key)

    def __iter__(self) -> Iterator[K]:
        base, delta, removed = self._base, self._delta, self._removed
        if not removed:
            yield from base
        else:
            for key in base:
                if key not in removed:
                    yield key
        for key in delta:
            if key not in base or key in removed:
                yield key

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"Overlay({dict(self.items())!r})"
