from __future__ import annotations

import random

from ocireg.registry.overlay import Overlay


def test_an_overlay_behaves_as_the_dictionary_it_stands_for() -> None:
    chance = random.Random(13)
    model: dict[int, int] = {}
    overlay: Overlay[int, int] = Overlay()
    versions: list[tuple[Overlay[int, int], dict[int, int]]] = []
    for step in range(3000):
        key = chance.randrange(400)
        if chance.random() < 0.3 and key in model:
            del model[key]
            del overlay[key]
        else:
            model[key] = step
            overlay[key] = step
        if step % 7 == 0:  # a new version; the old one must not see later changes
            versions.append((overlay, dict(model)))
            overlay = overlay.fork()
        assert len(overlay) == len(model)
        assert (key in overlay) == (key in model)
        assert overlay.get(key) == model.get(key)
    assert dict(overlay) == model and list(overlay) == list(model)
    for old, frozen in versions:
        assert dict(old) == frozen and len(old) == len(frozen)


def test_a_fork_of_many_changes_folds_them_into_a_new_base() -> None:
    overlay: Overlay[int, int] = Overlay({n: n for n in range(10_000)})
    for n in range(500):
        overlay[10_000 + n] = n
        del overlay[n]
    fork = overlay.fork()
    assert fork._delta == {} and fork._removed == set()
    assert dict(fork) == dict(overlay)
    fork[0] = 1
    assert 0 not in overlay and fork[0] == 1
