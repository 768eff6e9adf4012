"""``storage.subPaths``: several storage roots, and which one holds a repository.

zot's rule (``storage_controller.go``): a repository whose name has a ``/`` belongs to the
sub-path named by its first component (``team/app`` to ``/team``), if there is one; every
other repository (``app``, ``other/app``) to the main root. Each root is a complete
:class:`~ocireg.registry.store.Registry` with its own driver, dedupe store and settings, and
keeps each repository under its full name (``<subroot>/team/app``), so ``skopeo inspect
oci:<subroot>/team/app`` works on it. Locks are shared, keyed by repository name, which is
unique across roots.

Whatever walks or addresses storage asks :meth:`Registries.of` for a repository's root, and
walks :meth:`Registries.roots` for all of them; a plain ``Registry`` answers both for itself.
"""

from __future__ import annotations

from ocireg.registry.store import Registry


def route_of(repo: str) -> str | None:
    """The sub-path a repository name selects (``"team"`` for ``team/app``), or None."""
    first, slash, _ = repo.partition("/")
    return first if slash else None


class Registries:
    """The main root and one registry per sub-path, keyed by the path component."""

    def __init__(self, default: Registry, routes: dict[str, Registry] | None = None) -> None:
        self.default = default
        self.routes = dict(routes or {})

    def of(self, repo: str) -> Registry:
        route = route_of(repo)
        return self.routes.get(route, self.default) if route is not None else self.default

    def roots(self) -> list[Registry]:
        return [self.default, *self.routes.values()]

    def serves(self, registry: Registry, repo: str) -> bool:
        return self.of(repo) is registry

    def repositories(self) -> list[str]:
        """Every repository of every root, sorted."""
        return sorted(name for root in self.roots() for name in root.repositories())


# What walks storage accepts: one root or several.
Routed = Registry | Registries
