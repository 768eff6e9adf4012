"""Manifests' bytes kept by digest are bounded by their total size."""

from __future__ import annotations

from ocireg.registry.manifestbytes import LARGEST_SHARE, ManifestBytes

BUDGET = 1000 * LARGEST_SHARE


def test_the_oldest_go_and_the_total_stays_in_budget() -> None:
    kept = ManifestBytes(budget=BUDGET)
    for n in range(LARGEST_SHARE + 6):
        kept.put(f"d{n}", bytes(1000))
        assert kept.used <= kept.budget
    assert len(kept) == LARGEST_SHARE
    assert kept.get("d0") is None and kept.get(f"d{LARGEST_SHARE + 5}") == bytes(1000)


def test_a_used_entry_stays_and_one_too_large_is_never_kept() -> None:
    kept = ManifestBytes(budget=BUDGET)
    for n in range(LARGEST_SHARE):
        kept.put(f"d{n}", bytes(1000))
    assert kept.get("d0") is not None  # now the most recently used
    kept.put("new", bytes(1000))
    assert kept.get("d0") is not None and kept.get("d1") is None
    kept.put("huge", bytes(1001))  # more than its share of the budget alone
    assert kept.get("huge") is None and len(kept) == LARGEST_SHARE
