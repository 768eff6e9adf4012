"""The pool of reusable body blocks: a block is handed out again only once nothing refers to
it (not a list, not a memoryview of it), and the pool keeps no more than it is allowed."""

from __future__ import annotations

from ocireg.ext.sync.blocks import BlockPool


def test_a_block_is_reused_only_once_nothing_refers_to_it() -> None:
    pool = BlockPool(16, kept=2)
    first = pool.take()
    first[:] = b"a" * 16
    held = [first]
    second = pool.take()
    assert second is not first  # the list still holds the first
    view = memoryview(second)[4:8]
    del first, held
    again = pool.take()
    assert again[:] == b"a" * 16  # the first, as it was left: reused, not zeroed
    assert again is not second  # a view of the second holds it
    view.release()
    del view
    assert pool.take() in (again, second)


def test_blocks_past_what_is_kept_are_made_and_not_kept() -> None:
    pool = BlockPool(8, kept=1)
    kept = pool.take()
    extra = pool.take()  # the kept one is in use: a new one, not kept
    assert extra is not kept
    del extra
    assert pool.take() is not kept  # still in use: another new one, the extra was not kept
    del kept
    pool.clear()
    assert len(pool.take()) == 8
