"""The parsed-manifest cache is bounded by estimated bytes, not by count."""

from __future__ import annotations

from ocireg.registry.manifestcache import LARGEST_SHARE, ManifestCache, estimated_cost
from ocireg.registry.manifests import Manifest

MANIFEST = Manifest(media_type="application/vnd.oci.image.manifest.v1+json", config=None)


def test_large_entries_push_out_the_oldest_and_the_total_stays_in_budget() -> None:
    cache = ManifestCache(budget=estimated_cost(1000) * LARGEST_SHARE)
    for n in range(LARGEST_SHARE + 6):
        cache.put(f"d{n}", MANIFEST, 1000)
        assert cache.used <= cache.budget
    assert len(cache) == LARGEST_SHARE
    assert cache.get("d0") is None and cache.get(f"d{LARGEST_SHARE + 5}") is MANIFEST


def test_a_used_entry_stays_and_one_too_large_is_never_kept() -> None:
    cache = ManifestCache(budget=estimated_cost(1000) * LARGEST_SHARE)
    for n in range(LARGEST_SHARE):
        cache.put(f"d{n}", MANIFEST, 1000)
    assert cache.get("d0") is MANIFEST  # now the most recently used
    cache.put("new", MANIFEST, 1000)
    assert cache.get("d0") is MANIFEST and cache.get("d1") is None
    cache.put("huge", MANIFEST, 2000)  # more than its share of the budget alone
    assert cache.get("huge") is None and len(cache) == LARGEST_SHARE
