"""Scanning images: their inventory from their layers, matched, and the result stored.

Scans happen at push (an observer records the image; a scheduler task scans it) and in the
background (images in the meta DB that were never scanned: pushed while scanning was off, or
before a crash). A restart rescans nothing: what is scanned is in the meta DB. An update of the
advisories matches again, from their stored inventories, only the images holding a package
the update names (:func:`rematch`).

The inventory comes from ``ocireg.ext.cve.inventory.inventory(layers, cache)``, imported when
first needed: ``layers`` is a list of (layer digest, opener of the layer blob); ``cache`` keeps
each layer's reading in ``cve_layers`` (:class:`KeptLayers`), so an image sharing layers with
one already scanned (zot's derived images) reads only the layers it does not share.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from ocireg.digests import parse_digest
from ocireg.extensions.runtime import ScanListener
from ocireg.logs import event
from ocireg.meta.db import MetaDB
from ocireg.registry import layout
from ocireg.registry.manifests import Manifest
from ocireg.registry.mediatypes import INDEX_TYPES
from ocireg.registry.routes import Registries

from .answers import vulnerabilities
from .attach import Sbom
from .matcher import match, stored
from .packages import Inventory
from .store import CveStore

log = logging.getLogger("ocireg.cve")

# zot's scannable layers: OCI tar (plain, gzip, zstd) and Docker's
SCANNABLE = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)

NOT_SCANNABLE = "no layer of a scannable type"

Opener = Callable[[], BinaryIO]
Layers = Sequence[tuple[str, Opener]]


@dataclass
class KeptLayers:
    """The layer readings kept in the CVE tables, as the inventory's cache; notes which of one
    scan's layers were read and which were not."""

    store: CveStore
    read: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def get(self, digest: str) -> bytes | None:
        reading = self.store.layer_reading(digest)
        if reading is not None:
            self.reused.append(digest)
        return reading

    def put(self, digest: str, reading: bytes) -> None:
        if digest in self.reused:  # kept, but by other readers: read again after all
            self.reused.remove(digest)
        self.read.append(digest)
        self.store.keep_layer_reading(digest, reading)


InventoryOf = Callable[[Layers, KeptLayers], Inventory]


def inventory_seam(layers: Layers, cache: KeptLayers) -> Inventory:
    """The inventory readers' entry point (``ocireg.ext.cve.inventory``)."""
    from ocireg.ext.cve.inventory import inventory

    result: Inventory = inventory(layers, cache)
    return result


def scannable(manifest: Manifest | None) -> bool:
    return (
        manifest is not None
        and not manifest.is_index
        and any(layer.media_type in SCANNABLE for layer in manifest.layers)
    )


def rematch(store: CveStore, touched: frozenset[tuple[str, str]]) -> int:
    """Match again the images an update can affect; how many there were."""
    digests = sorted(store.affected_images(touched))
    for digest in digests:
        store.record_match(digest, match(store, store.packages(digest)))
    if digests:
        event(log, logging.INFO, "cve rematched", images=len(digests))
    return len(digests)


@dataclass
class Scanner:
    store: CveStore
    registries: Registries
    inventory_of: InventoryOf = inventory_seam
    # told of each image scanned (the events extension's zotregistry.image.scanned); filled
    # by extensions set up after this one too, so the list is kept, not copied
    listeners: list[ScanListener] = field(default_factory=list)
    attach_sbom: bool = False  # cve.attachSBOM: keep each scanned image's SBOM to attach
    _sboms: list[Sbom] = field(default_factory=list)
    _pending: dict[str, str] = field(default_factory=dict)  # digest -> a repository holding it
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def scan(self, repo: str, digest: str) -> bool:
        """Scan one image manifest (an index's images are scanned as themselves); False when
        there is nothing to scan."""
        registry = self.registries.of(repo)
        manifest = registry.read_manifest(repo, digest, None)
        if manifest is None:
            return False
        if not scannable(manifest):  # an artifact: kept as such, so no round tries it again
            self.store.record_scan(digest, [], [], error=NOT_SCANNABLE)
            return True
        layers: list[tuple[str, Opener]] = []
        for layer in manifest.layers:
            if layer.media_type not in SCANNABLE:
                continue
            path = layout.blob_file(repo, parse_digest(str(layer.digest)))

            def opener(path: str = path) -> BinaryIO:
                return registry.driver.reader(path)

            layers.append((str(layer.digest), opener))
        kept = KeptLayers(self.store)
        try:
            found = self.inventory_of(layers, kept)
        except Exception as exc:
            event(log, logging.WARNING, "cve scan failed", repo=repo, digest=digest, error=str(exc))
            self.store.record_scan(digest, [], [], error=str(exc) or type(exc).__name__)
            return True
        packages = stored(found.packages)
        self.store.count_layer_reuses(kept.reused)
        self.store.record_scan(digest, packages, match(self.store, packages))
        if self.attach_sbom:
            self._keep_sbom(repo, digest, found)
        event(log, logging.DEBUG, "cve scanned", repo=repo, digest=digest, packages=len(packages),
              layers_read=len(kept.read), layers_reused=len(kept.reused))  # fmt: skip
        self._tell(repo, digest, manifest.media_type)
        return True

    def _keep_sbom(self, repo: str, digest: str, found: Inventory) -> None:
        from .inventory.sbom import cyclonedx_json

        document = cyclonedx_json(found, f"{repo}@{digest}").encode()
        with self._lock:
            self._sboms.append(Sbom(repo, digest, document))

    def take_sboms(self) -> list[Sbom]:
        """The SBOMs kept since the last call (pushed on the event loop, by the caller)."""
        with self._lock:
            taken, self._sboms = self._sboms, []
        return taken

    def _tell(self, repo: str, digest: str, media_type: str) -> None:
        if not self.listeners:
            return
        summary = vars(vulnerabilities(self.store, [digest]))
        for listener in self.listeners:
            try:
                listener(repo, digest, media_type, dict(summary))
            except Exception:  # the scan stands; a listener's failure is its own
                log.exception("cve: a scan listener failed for %s@%s", repo, digest)

    # -- at push ----------------------------------------------------------------------------
    def want(self, repo: str, digest: str) -> bool:
        """Remember an image to scan; True when the queue was empty (a task should start)."""
        with self._lock:
            first = not self._pending
            self._pending.setdefault(digest, repo)
            return first

    def scan_pending(self) -> int:
        done = 0
        while True:
            with self._lock:
                if not self._pending:
                    return done
                digest, repo = next(iter(self._pending.items()))
                del self._pending[digest]
            done += self.scan(repo, digest)

    # -- in the background ------------------------------------------------------------------
    def scan_unscanned(self, meta: MetaDB, *, retry_failed: bool = False) -> int:
        """Scan the image manifests the meta DB knows and no scan has seen (and, with
        ``retry_failed``, those whose scan failed); how many."""
        done = 0
        for repo in meta.repositories():
            rows = [r for r in meta.images(repo) if r.get("media_type") not in INDEX_TYPES]
            states = self.store.scan_states(str(r["digest"]) for r in rows)
            for row in rows:
                digest = str(row["digest"])
                state = states.get(digest)
                if state is None or (retry_failed and state not in ("", NOT_SCANNABLE)):
                    done += self.scan(repo, digest)
                    states[digest] = ""
        return done


async def run_pending(scanner: Scanner) -> int:
    return await asyncio.to_thread(scanner.scan_pending)
