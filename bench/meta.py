"""Meta DB figures: a full rebuild from storage, and a restart with a current DB.

Writes a storage root of ``--repos`` repositories with ``--tags`` tagged image manifests each
(one config per repository, one small layer per image; OCI layouts written directly, with
index.json as ocireg writes it), then times ``sync_all`` on an empty DB (a rebuild) and again
on the DB it produced (what a restart does). Targets (issue 5): 100,000 manifests rebuilt in
under 60 s; a restart with a current DB ready in under 2 s.

    BENCH_TMPDIR=/dev/shm python bench/meta.py --repos 10000 --tags 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from ocireg.meta.db import SQLiteMetaDB
from ocireg.meta.sync import sync_all
from ocireg.registry.index import IndexEdit, IndexStore
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.storage.filesystem import FilesystemDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(repo_dir: Path, data: bytes) -> dict[str, object]:
    encoded = hashlib.sha256(data).hexdigest()
    path = repo_dir / "blobs" / "sha256" / encoded
    path.write_bytes(data)
    return {"digest": f"sha256:{encoded}", "size": len(data)}


def populate(root: Path, repos: int, tags: int) -> None:
    driver = FilesystemDriver(root)
    indexes = IndexStore(driver)
    for r in range(repos):
        repo = f"team{r % 100}/app{r}"
        repo_dir = root / repo
        (repo_dir / "blobs" / "sha256").mkdir(parents=True)
        (repo_dir / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2026-01-01T00:00:00Z",
                "config": {"Labels": {"org.opencontainers.image.vendor": f"v{r}"}},
            }
        )
        config_desc = {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            **_blob(repo_dir, config.encode()),
        }
        edit = IndexEdit(None)
        for t in range(tags):
            layer = {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                **_blob(repo_dir, f"layer {r} {t}".encode()),
            }
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": config_desc,
                    "layers": [layer],
                    "annotations": {"org.opencontainers.image.version": f"{t}"},
                }
            )
            descriptor = {"mediaType": OCI_MANIFEST, **_blob(repo_dir, manifest.encode())}
            edit.set_tag(f"v{t}", descriptor)
        indexes.save(repo, edit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=10)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ocireg-meta-", dir=os.environ.get("BENCH_TMPDIR")))
    try:
        root = base / "root"
        started = time.perf_counter()
        populate(root, args.repos, args.tags)
        written = time.perf_counter() - started
        registry = Registry(FilesystemDriver(root), KeyedLocks(None))
        db = SQLiteMetaDB(base / "meta.db")
        rebuild = sync_all(registry, db)
        db.close()
        fresh = Registry(FilesystemDriver(root), KeyedLocks(None))  # a new process: cold caches
        started = time.perf_counter()
        reopened = SQLiteMetaDB(base / "meta.db")
        restart = sync_all(fresh, reopened)
        restart_seconds = time.perf_counter() - started
        manifests = args.repos * args.tags
        size = (base / "meta.db").stat().st_size
        print(
            f"storage: {args.repos} repositories x {args.tags} tags = {manifests} manifests, "
            f"written in {written:.1f} s"
        )
        print(
            f"rebuild: {rebuild.seconds:.1f} s ({manifests / rebuild.seconds:,.0f} manifests/s), "
            f"{rebuild.rebuilt} repositories read; meta.db {size / 1e6:.0f} MB"
        )
        print(
            f"restart: {restart_seconds:.2f} s (open + sync), {restart.rebuilt} repositories "
            "read again"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
