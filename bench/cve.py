"""CVE scanning figures (issue 16): importing generated OSV records, matching this machine's
dpkg database against them, and ``CVEListForImage`` over HTTP.

1. ``--records`` OSV records (three quarters Debian:12 advisories, ``--installed-share`` of
   them naming a source package installed here, the rest other names; PyPI and npm ones)
   written to one zip, imported into an empty meta DB with ``update`` (target: 100,000 in
   under 60 s), then imported again (nothing changes: the incremental path).
2. This machine's ``/var/lib/dpkg/status`` as an inventory (read here with a minimal parser;
   the image inventory readers are not timed) matched against them (target: under 1 s).
3. ``--images`` stored scans (default 10,000: each image one of ten 200-package slices of that
   dpkg database, one of 100 "group" PyPI packages and four PyPI packages of its own), then an
   update of one advisory naming one group package: held by 1 % of the images. Timed: the
   update as the scheduler runs it (``service.refresh``: import, then the affected images
   matched again from their stored inventories; target: under 60 s).
4. A live ``ocireg serve`` with ``search.cve`` on that root, one image pushed, its scan written
   as the scanner writes it, and ``CVEListForImage`` asked ``--runs`` times (target: p50 under
   20 ms); then the same query answered in this process as the search process answers it
   (its executor, a read-only meta DB): the CPU time of the answer alone, without the HTTP hop
   and the search process's nice level (``--profile``: where it goes).

    BENCH_TMPDIR=/dev/shm python bench/cve.py --records 100000 --runs 50 --images 10000
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocireg.ext.cve.importer import update  # noqa: E402
from ocireg.ext.cve.matcher import match, stored  # noqa: E402
from ocireg.ext.cve.packages import Inventory, OsRelease, Package  # noqa: E402
from ocireg.ext.cve.service import refresh  # noqa: E402
from ocireg.ext.cve.store import CveStore, StoredPackage  # noqa: E402
from ocireg.ext.search.execution import Executor, SearchSchema  # noqa: E402
from ocireg.ext.search.facts import FactsCache  # noqa: E402
from ocireg.ext.search.schema import Search, build_schema  # noqa: E402
from ocireg.ext.search.settings import SearchLimits  # noqa: E402
from ocireg.meta.db import SQLiteMetaDB  # noqa: E402
from tests.liveserver import live_server  # noqa: E402
from tests.oci import image_manifest, put_manifest  # noqa: E402

LAYER = "sha256:" + "0" * 64


def dpkg_inventory(status: Path) -> Inventory:
    """Package, Version and Source (with its version) of each installed package."""
    packages = []
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" not in fields or "Version" not in fields:
            continue
        source, _, source_version = fields.get("Source", fields["Package"]).partition(" ")
        version = source_version.strip("()") or fields["Version"]
        packages.append(
            Package(
                "Debian:12",
                fields["Package"],
                fields["Version"],
                f"pkg:deb/debian/{fields['Package']}@{fields['Version']}",
                LAYER,
                "var/lib/dpkg/status",
                source,
                version,
            )
        )
    return Inventory(OsRelease("debian", "12"), tuple(packages))


def records(count: int, sources: list[str], share: float) -> list[dict[str, object]]:
    rng = random.Random(16)
    found = []
    for n in range(count):
        kind = n % 8
        if kind < 6:
            ecosystem = "Debian:12"
            name = rng.choice(sources) if rng.random() < share else f"source-{n}"
            fixed = f"{rng.randint(0, 9)}.{rng.randint(0, 20)}-{rng.randint(1, 5)}+deb12u1"
        elif kind == 6:
            ecosystem, name, fixed = "PyPI", f"package-{n}", f"{rng.randint(0, 5)}.{n % 30}.0"
        else:
            ecosystem, name, fixed = "npm", f"module-{n}", f"{rng.randint(0, 5)}.{n % 30}.1"
        found.append(
            {
                "id": f"BENCH-{n}",
                "modified": "2024-01-01T00:00:00Z",
                "aliases": [f"CVE-2024-{n:06d}"],
                "summary": f"generated advisory {n}",
                "details": "A generated advisory for the import benchmark.",
                "severity": [
                    {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}
                ],
                "affected": [
                    {
                        "package": {"ecosystem": ecosystem, "name": name},
                        "ranges": [
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                        ],
                    }
                ],
            }
        )
    return found


GROUPS = 100  # one group package per 1 % of the images


def store_images(
    meta: Path, store: CveStore, packages: list[StoredPackage], images: int
) -> list[str]:
    """``images`` scans written as ``CveStore.record_scan`` writes them (one transaction here:
    this is the set-up, not what is timed)."""
    bases = [packages[(n * 80) % len(packages) :][:200] for n in range(10)]
    base_findings = [match(store, base) for base in bases]
    digests = []
    with sqlite3.connect(meta) as db:
        for n in range(images):
            digest = f"sha256:{n:064x}"
            digests.append(digest)
            own = [
                StoredPackage("PyPI", f"group-{n % GROUPS}", f"group-{n % GROUPS}", "1.0.0", "app"),
                *(
                    StoredPackage("PyPI", f"own-{n}-{k}", f"own-{n}-{k}", "2.0.0", "app")
                    for k in range(4)
                ),
            ]
            rows = [*bases[n % 10], *own]
            db.executemany(
                "INSERT INTO cve_packages VALUES (?, ?, ?, ?, ?, ?)",
                [(digest, p.ecosystem, p.key, p.name, p.version, p.path) for p in rows],
            )
            db.executemany(
                "INSERT INTO cve_findings VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (digest, f.cve, f.advisory, f.package, f.installed, f.fixed, f.path)
                    for f in base_findings[n % 10]
                ],
            )
            db.execute("INSERT INTO cve_scans VALUES (?, ?, 1, '')", (digest, time.time()))
    return digests


def rescan(
    base: Path, meta: Path, store: CveStore, packages: list[StoredPackage], images: int
) -> None:
    started = time.perf_counter()
    store_images(meta, store, packages, images)
    print(f"stored {images} image scans in {time.perf_counter() - started:.1f} s (set-up)")
    update = base / "update"
    update.mkdir()
    record = records(1, [], 0)[0]
    record.update(id="BENCH-UPDATE", aliases=["CVE-2099-0001"])
    record["affected"] = [
        {
            "package": {"ecosystem": "PyPI", "name": "group-7"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}],
        }
    ]
    (update / "BENCH-UPDATE.json").write_text(json.dumps(record))
    before = store.scan_counts()
    started, cpu = time.perf_counter(), time.process_time()
    matched = refresh(store, [str(update)])
    took, took_cpu = time.perf_counter() - started, time.process_time() - cpu
    after = store.scan_counts()
    rescanned = [d for d in after if after[d] != before.get(d)]
    hits = store.images_with("CVE-2099-0001")
    assert matched == len(rescanned) == len(hits) == images // GROUPS, (matched, len(hits))
    print(
        f"update touching {matched} of {images} images ({matched / images:.0%}): "
        f"{took:.2f} s ({took_cpu:.2f} s CPU), {len(hits)} images now hold CVE-2099-0001"
    )


QUERY = (
    '{ CVEListForImage(image: "bench/debian:12", requestedPage: {limit: 10, '
    "offset: 0}) { Tag Page { TotalCount ItemCount } Summary { Count MaxSeverity"
    " } CVEList { Id Title Severity PackageList { Name InstalledVersion "
    "FixedVersion } } } }"
)


def in_process(meta: Path, runs: int, profile: bool) -> None:
    """The query as the search process answers it (its executor, a read-only meta DB and CVE
    store), in this process: the CPU time of the answer alone, without the HTTP hop or the
    search process's nice level."""
    db = SQLiteMetaDB.reader(meta)
    cve = CveStore.reader(meta)
    facts = FactsCache(db)
    executor = Executor(build_schema(SearchSchema), SearchLimits())
    profiler = cProfile.Profile(time.process_time)
    times = []
    for n in range(runs + 3):
        started = time.process_time()
        if profile and n >= 3:
            profiler.enable()
        body = executor.answer(QUERY, None, None, Search(db, facts, "", list, cve=cve))
        profiler.disable()
        times.append((time.process_time() - started) * 1000)
        assert b'"errors"' not in body, body[:300]
    times = times[3:]
    print(
        f"CVEListForImage in-process: CPU p50 {statistics.median(times):.1f} ms, "
        f"max {max(times):.1f} ms over {len(times)}"
    )
    if profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    cve.close()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--status", default="/var/lib/dpkg/status")
    parser.add_argument("--images", type=int, default=10_000, help="stored scans (0: skip)")
    parser.add_argument(
        "--installed-share",
        type=float,
        default=0.02,
        help="of the Debian records, the share naming a source package installed here",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the in-process CVEListForImage runs"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_TMPDIR")))
    inventory = dpkg_inventory(Path(args.status))
    sources = sorted({p.source_name for p in inventory.packages})
    export = base / "osv.zip"
    with zipfile.ZipFile(export, "w", zipfile.ZIP_DEFLATED) as out:
        for record in records(args.records, sources, args.installed_share):
            out.writestr(f"{record['id']}.json", json.dumps(record))
    data = base / "server" / "data"
    meta = data / ".ocireg" / "meta.db"
    meta.parent.mkdir(parents=True)
    SQLiteMetaDB(meta).close()
    store = CveStore(meta)
    # wall time, and this process's CPU time: the figure that depends less on what else the
    # machine is doing
    started, cpu = time.perf_counter(), time.process_time()
    first = update(store, str(export))
    imported, imported_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    update(store, str(export))
    again, again_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"import: {first.result.stored} records in {imported:.1f} s ({imported_cpu:.1f} s CPU); "
        f"again (unchanged): {again:.1f} s ({again_cpu:.1f} s CPU)"
    )
    started, cpu = time.perf_counter(), time.process_time()
    packages = stored(inventory.packages)
    findings = match(store, packages)
    matched, matched_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"match: {len(packages)} dpkg packages, {len(findings)} findings in {matched:.3f} s "
        f"({matched_cpu:.3f} s CPU)"
    )
    if args.images:
        rescan(base, meta, store, packages, args.images)
    store.close()
    sections = {"extensions": {"search": {"cve": {}}}, "log": {"level": "warn"}}
    with (
        live_server(base / "server", sections) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        document = image_manifest(client, "bench/debian", [b"debian layer"])
        digest = put_manifest(client, "bench/debian", "12", document).headers[
            "Docker-Content-Digest"
        ]
        writer = CveStore(meta)
        # the server's own scan (at push) fails on this layer, which is no tar: let it finish
        # before writing the scan the query reads, or it would overwrite it
        deadline = time.monotonic() + 60
        while digest not in writer.scan_counts() and time.monotonic() < deadline:
            time.sleep(0.1)
        writer.record_scan(digest, packages, findings)
        writer.close()
        times = []
        for _ in range(args.runs + 3):
            started = time.perf_counter()
            body = client.post("/v2/_zot/ext/search", json={"query": QUERY}).json()
            times.append((time.perf_counter() - started) * 1000)
            assert "errors" not in body, body
        times = times[3:]  # the first queries start the search process
        total = body["data"]["CVEListForImage"]["Page"]["TotalCount"]
        print(
            f"CVEListForImage ({total} CVEs, a page of 10): p50 "
            f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms over {len(times)}"
        )
        in_process(meta, args.runs, args.profile)


if __name__ == "__main__":
    main()
