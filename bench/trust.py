"""Trust re-evaluation (issue 14): after a key or certificate upload, how long until every
signature is judged again, and what a pull's latency is meanwhile.

Pushes ``--images`` images and a signature of each, made with material that is not uploaded
yet: with ``--tool cosign`` a legacy cosign signature (an ECDSA key); with ``--tool notation``
a Notary Project signature as a referrer, JWS and COSE envelopes in turn, by a leaf certificate
of a root CA. It waits until trust has judged them all (untrusted), uploads the key (or the
root to the ``ca`` trust store), and times until every verdict is trusted (read from the meta DB
file), while one client keeps timing manifest GETs. Target (issue 14): 10,000 signatures
re-evaluated in under 30 s, without blocking pulls.

    BENCH_TMPDIR=/dev/shm python bench/trust.py --images 10000 [--tool notation] [--pushers 8]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from procstat import cpu_seconds  # noqa: E402

from tests.ext.cosigning import Signer, payload, signature_manifest  # noqa: E402
from tests.liveserver import live_server  # noqa: E402
from tests.oci import (  # noqa: E402
    EMPTY,
    OCI_MANIFEST,
    canonical,
    descriptor,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)

REPOS = 20
NOTARY = "application/vnd.cncf.notary.signature"


class CosignSigner:
    """A legacy cosign signature per image, by an ECDSA key uploaded to /v2/_zot/ext/cosign."""

    upload = "/v2/_zot/ext/cosign"

    def __init__(self) -> None:
        self.signer = Signer.ecdsa()
        self.material = self.signer.public_pem()

    def sign(self, client: httpx.Client, repo: str, subject: dict[str, Any], n: int) -> None:
        data = payload(subject["digest"])
        signature = signature_manifest(client, repo, data, self.signer.sign(data))
        put_manifest(client, repo, subject["digest"].replace(":", "-") + ".sig", signature)


class NotationSigner:
    """A Notary Project signature per image (JWS and COSE in turn) as a referrer, by a leaf of
    a root CA uploaded to /v2/_zot/ext/notation?truststoreType=ca."""

    upload = "/v2/_zot/ext/notation?truststoreType=ca"

    def __init__(self) -> None:
        from tests.ext.trust import pki

        root = pki.root("bench notation root")
        self.chain = [pki.leaf(root, "bench notation signer"), root]
        self.material = root.pem

    def sign(self, client: httpx.Client, repo: str, subject: dict[str, Any], n: int) -> None:
        from ocireg.ext.trust.verdict import Subject
        from tests.ext.trust.signers import payload as notary_payload
        from tests.ext.trust.signers import sign_cose, sign_jws

        signed = notary_payload(Subject(subject["digest"], subject["mediaType"], subject["size"]))
        kind, make = (
            ("application/cose", sign_cose) if n % 2 else ("application/jose+json", sign_jws)
        )
        envelope = make(self.chain, signed)
        push_blob(client, repo, envelope)
        push_blob(client, repo, b"{}")
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": NOTARY,
            "config": EMPTY,
            "layers": [descriptor(kind, envelope)],
            "subject": subject,
        }
        put_manifest(client, repo, sha256(canonical(manifest)), manifest)


SIGNERS: dict[str, type[CosignSigner | NotationSigner]] = {
    "cosign": CosignSigner,
    "notation": NotationSigner,
}


def _push_all(
    url: str, images: int, signer: CosignSigner | NotationSigner, pushers: int
) -> list[tuple[str, str]]:
    def push(numbers: range) -> list[tuple[str, str]]:
        done = []
        with httpx.Client(base_url=url, timeout=60) as client:
            for n in numbers:
                repo = f"bench/app{n % REPOS}"
                manifest = image_manifest(client, repo, [f"layer {n}".encode()])
                put_manifest(client, repo, f"v{n}", manifest)
                signer.sign(client, repo, descriptor(OCI_MANIFEST, canonical(manifest)), n)
                done.append((repo, f"v{n}"))
        return done

    with ThreadPoolExecutor(pushers) as pool:
        parts = pool.map(push, [range(i, images, pushers) for i in range(pushers)])
        return [each for part in parts for each in part]


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
    url: str, db: Path, pushed: list[tuple[str, str]], upload: str, material: bytes, pid: int
) -> dict[str, float]:
    stop = asyncio.Event()
    cpu_quiet = cpu_seconds(pid)
    baseline = asyncio.create_task(_time_pulls(url, pushed, stop))
    await asyncio.sleep(5)
    stop.set()
    quiet = await baseline
    cpu_quiet = cpu_seconds(pid) - cpu_quiet
    cpu_started = cpu_seconds(pid)
    stop = asyncio.Event()
    during = asyncio.create_task(_time_pulls(url, pushed, stop))
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post(upload, content=material)).status_code == 200
    n = len(pushed)
    seconds = await asyncio.to_thread(_wait, db, lambda judged, trusted: trusted >= n, 600)
    stop.set()
    busy = await during
    cpu = cpu_seconds(pid) - cpu_started
    # the server's CPU during the re-evaluation, less what the pulls meanwhile cost at the
    # quiet phase's rate: the re-evaluation's own cost, whatever the machine's load
    own = cpu - cpu_quiet / len(quiet) * len(busy)

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
        "server_cpu_seconds_during": round(cpu, 1),
        "reevaluation_cpu_seconds_est": round(own, 1),
        "reevaluation_cpu_ms_per_signature_est": round(own / n * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--tool", choices=sorted(SIGNERS), default="cosign")
    parser.add_argument("--pushers", type=int, default=8, help="clients pushing at once")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_TMPDIR")))
    signer = SIGNERS[args.tool]()
    extra = {"extensions": {"trust": {args.tool: True}}, "log": {"level": "warn"}}
    load_before = os.getloadavg()[0]
    with live_server(base, extra) as live:
        db = live.root / ".ocireg" / "meta.db"
        started = time.monotonic()
        pushed = _push_all(live.url, args.images, signer, args.pushers)
        push_seconds = time.monotonic() - started
        _wait(db, lambda judged, trusted: judged >= args.images, 1200)
        load_at_upload = os.getloadavg()[0]
        figures = asyncio.run(
            _measure(live.url, db, pushed, signer.upload, signer.material, live.process.pid)
        )
    figures |= {"tool": args.tool, "push_seconds": round(push_seconds, 1)}
    figures |= {"load_before": load_before, "load_at_upload": load_at_upload,
                "load_after": os.getloadavg()[0]}  # fmt: skip
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
