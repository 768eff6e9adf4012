"""Hostile neighbour: manifest GET latency while other clients send the worst allowed search query.

Writes ``--repos`` repositories with one image of ``--layers`` layers each (issue 21's case: 25
manifests of 28,000 layers; the layer blobs are not written, search reads only manifests), and
one small image to pull. Starts ``ocireg serve`` with the search extension at its default
limits, waits until the meta DB has every image, then:

1. measures manifest GETs of the small image, one at a time, for ``--seconds`` (quiet);
2. does it again while ``--hostile`` clients each send :data:`WORST` in a loop (loaded).

Reported: GET p50/p99/max in both phases, the hostile queries answered and how, and the server's
peak RSS. Targets (issue 21): loaded GET p99 < 50 ms, RSS < 300 MiB throughout. Loopback only.

    BENCH_TMPDIR=/dev/shm python bench/hostile_search.py --repos 25 --layers 28000 --hostile 10
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procstat import RssSampler
from search import search_server

from ocireg.registry.index import IndexEdit, IndexStore
from ocireg.storage.filesystem import FilesystemDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SEARCH = "/v2/_zot/ext/search"

# The worst query the default limits let through, by hand: every query field the limits allow
# (10 aliases + 1) scans every image of every repository (ImageListForDigest matches any digest
# containing "sha256:"), and one of them lists a page of 100 images with every layer digest
# (cost 11,102 of 75,000; the whole query 11,132). It runs until queryTimeout stops it.
_SCAN = 'ImageListForDigest(id: "sha256:") { Page { TotalCount } }'
WORST = (
    '{ ImageListForDigest(id: "sha256:", requestedPage: {limit: 100}) '
    "{ Results { Manifests { Layers { Digest } } } } "
    + " ".join(f"a{n}: {_SCAN}" for n in range(10))
    + " }"
)


def _blob(repo_dir: Path, data: bytes) -> dict[str, object]:
    encoded = hashlib.sha256(data).hexdigest()
    (repo_dir / "blobs" / "sha256" / encoded).write_bytes(data)
    return {"digest": f"sha256:{encoded}", "size": len(data)}


def _image(root: Path, indexes: IndexStore, repo: str, layers: int) -> None:
    repo_dir = root / repo
    (repo_dir / "blobs" / "sha256").mkdir(parents=True)
    (repo_dir / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    config = {"mediaType": "application/vnd.oci.image.config.v1+json",
              **_blob(repo_dir, b'{"architecture":"amd64","os":"linux"}')}  # fmt: skip
    descriptors = [
        {"mediaType": OCI_LAYER, "size": 1,
         "digest": "sha256:" + hashlib.sha256(f"{repo} {n}".encode()).hexdigest()}
        for n in range(layers)
    ]  # fmt: skip
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                "layers": descriptors}  # fmt: skip
    edit = IndexEdit(None)
    edit.set_tag(
        "v1", {"mediaType": OCI_MANIFEST, **_blob(repo_dir, json.dumps(manifest).encode())}
    )
    indexes.save(repo, edit)


def populate(root: Path, repos: int, layers: int) -> None:
    indexes = IndexStore(FilesystemDriver(root))
    for r in range(repos):
        _image(root, indexes, f"big/app{r}", layers)
    _image(root, indexes, "small/app", 1)


def _percentile(times: list[float], fraction: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure_gets(url: str, seconds: float) -> list[float]:
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = client.get("/v2/small/app/manifests/v1",
                                  headers={"Accept": OCI_MANIFEST})  # fmt: skip
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            time.sleep(0.01)  # a client pulling now and then, not a load generator
    return times


def hostile(url: str, stop: threading.Event, outcomes: Counter[str]) -> None:
    with httpx.Client(base_url=url, timeout=300) as client:
        while not stop.is_set():
            response = client.post(SEARCH, json={"query": WORST})
            errors = response.json().get("errors") or [{}]
            outcomes[errors[0].get("message", "answered")[:60]] += 1


def report(name: str, times: list[float]) -> None:
    print(f"{name}: {len(times)} GETs, p50 {statistics.median(times):.1f} ms, "
          f"p99 {_percentile(times, 0.99):.1f} ms, max {max(times):.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=25)
    parser.add_argument("--layers", type=int, default=28_000)
    parser.add_argument("--hostile", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--limits", type=json.loads, default={},
                        help="extensions.search.limits as a JSON object")  # fmt: skip
    args = parser.parse_args()
    fill = partial(populate, repos=args.repos, layers=args.layers)
    with search_server("ocireg-hostile-", fill, {"limits": args.limits}) as (url, server, sync):
        print(f"{args.repos} images of {args.layers} layers; meta DB built in {sync:.1f} s")
        with RssSampler(server.pid) as rss:
            report("quiet", measure_gets(url, args.seconds / 3))
            stop, outcomes = threading.Event(), Counter[str]()
            clients = [threading.Thread(target=hostile, args=(url, stop, outcomes))
                       for _ in range(args.hostile)]  # fmt: skip
            for client in clients:
                client.start()
            time.sleep(1)  # every hostile query under way
            report(f"with {args.hostile} hostile clients", measure_gets(url, args.seconds))
            stop.set()
            for client in clients:
                client.join()
        print(f"hostile queries answered: {dict(outcomes)}")
        print(f"server peak RSS: {rss.peak_kib / 1024:.0f} MiB ({rss.samples} samples)")


if __name__ == "__main__":
    main()
