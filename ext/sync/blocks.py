"""Reusable byte blocks for bodies that stream through the mirror.

A fresh 1 MiB ``bytearray`` costs more than the bytes it receives: glibc maps it anew, the
kernel zeroes and faults in its 256 pages, ``bytearray()`` zeroes it once more and freeing it
unmaps it again. Profiled on a first on-demand pull (bench/RESULTS.md, issue 15), that was about
a fifth of the mirror's CPU. A pool keeps a few blocks and hands one out again once nothing else
refers to it: whoever still reads a block (a queue, the list of recent pieces, a writer thread,
the event loop's socket buffer, a ``memoryview`` of it) holds a reference, so a block whose
only reference is the pool's is unseen by anyone and can be overwritten.
"""

from __future__ import annotations

import sys


def _references(blocks: list[bytearray], index: int) -> int:
    return sys.getrefcount(blocks[index])


# What _references counts for a block held only by the pool's list: measured, not assumed, since
# what a call adds to the count depends on the interpreter's version (3.14 borrows references)
_UNUSED = _references([bytearray(1)], 0)


class BlockPool:
    """At most ``kept`` blocks of ``size`` bytes, reused; more are made (not kept) when all are
    in use, so a consumer that holds on to blocks costs memory, never wrong bytes."""

    def __init__(self, size: int, kept: int) -> None:
        self.size = size
        self._kept = kept
        self._blocks: list[bytearray] = []

    def take(self) -> bytearray:
        """A block that no one else refers to; its content is whatever it held before."""
        for index in range(len(self._blocks)):
            if _references(self._blocks, index) == _UNUSED:
                return self._blocks[index]
        block = bytearray(self.size)
        if len(self._blocks) < self._kept:
            self._blocks.append(block)
        return block

    def clear(self) -> None:
        """Forget the blocks (those still in use live on with their users)."""
        self._blocks = []
