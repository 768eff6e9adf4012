"""Trust re-evaluation (issue 14): after a key upload, how long until every cosign signature is
judged again, and what a pull's latency is meanwhile.

Pushes ``--images`` images and a legacy cosign signature of each (signed with a key that is not
uploaded yet), waits until trust has judged them all (untrusted), uploads the key, and times
until every verdict is trusted (read from the meta DB file), while one client keeps timing
manifest GETs. Target (issue 14): 10,000 signatures re-evaluated in under 30 s, without
blocking pulls.

    BENCH_TMPDIR=/dev/shm python bench/trust.py --images 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.ext.cosigning import Signer, payload, signature_manifest  # noqa: E402
from tests.liveserver import live_server  # noqa: E402
from tests.oci import image_manifest, put_manifest  # noqa: E402

REPOS = 20


def _push_all(url: str, images: int, signer: Signer) -> list[tuple[str, str]]:
    pushed = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for n in range(images):
            repo = f"bench/app{n % REPOS}"
            manifest = image_manifest(client, repo, [f"layer {n}".encode()])
            digest = put_manifest(client, repo, f"v{n}", manifest).headers["Docker-Content-Digest"]
            data = payload(digest)
            signature = signature_manifest(client, repo, data, signer.sign(data))
            put_manifest(client, repo, digest.replace(":", "-") + ".sig", signature)
            pushed.append((repo, f"v{n}"))
    return pushed


def _verdicts(db: Path) -> tuple[int, int]:
    """(judged, trusted) signature layers."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        try:
            row = connection.execute("SELECT COUNT(*), SUM(trusted) FROM trust_verdicts").fetchone()
        except sqlite3.OperationalError:
            return 0, 0
    return row[0], row[1] or 0


async def _time_pulls(url: str, pushed: list[tuple[str, str]], stop: asyncio.Event) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        i = 0
        while not stop.is_set():
            repo, tag = pushed[i % len(pushed)]
            started = time.perf_counter()
            answer = await client.get(f"/v2/{repo}/manifests/{tag}")
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200
            i += 1
    return times


def _wait(db: Path, done: Callable[[int, int], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if done(*_verdicts(db)):
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"not done in {timeout}s: {_verdicts(db)}")


async def _measure(
    url: str, db: Path, pushed: list[tuple[str, str]], key: bytes
) -> dict[str, float]:
    stop = asyncio.Event()
    baseline = asyncio.create_task(_time_pulls(url, pushed, stop))
    await asyncio.sleep(5)
    stop.set()
    quiet = await baseline
    stop = asyncio.Event()
    during = asyncio.create_task(_time_pulls(url, pushed, stop))
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/v2/_zot/ext/cosign", content=key)).status_code == 200
    n = len(pushed)
    seconds = await asyncio.to_thread(_wait, db, lambda judged, trusted: trusted >= n, 600)
    stop.set()
    busy = await during

    def p(times: list[float], q: float) -> float:
        return round(statistics.quantiles(times, n=100)[q - 1] * 1000, 2)

    return {
        "signatures": n,
        "reevaluation_seconds": round(seconds, 2),
        "pull_p50_ms_quiet": p(quiet, 50),
        "pull_p99_ms_quiet": p(quiet, 99),
        "pull_p50_ms_during": p(busy, 50),
        "pull_p99_ms_during": p(busy, 99),
        "pulls_during": len(busy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_TMPDIR")))
    signer = Signer.ecdsa()
    extra = {"extensions": {"trust": {"cosign": True}}, "log": {"level": "warn"}}
    with live_server(base, extra) as live:
        db = live.root / ".ocireg" / "meta.db"
        started = time.monotonic()
        pushed = _push_all(live.url, args.images, signer)
        push_seconds = time.monotonic() - started
        _wait(db, lambda judged, trusted: judged >= args.images, 600)
        figures = asyncio.run(_measure(live.url, db, pushed, signer.public_pem()))
    figures["push_seconds"] = round(push_seconds, 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
