"""Verifying one Notary Project signature (issue 14: target < 5 ms).

Times ``verify_notation`` on envelopes made as tests/ext/trust makes them (jwcrypto, pycose,
certificates from ``cryptography``, an RFC 3161 token from ``openssl ts``): a root, an
intermediate and a leaf, trusted through the uploaded root. Each case is verified
``--rounds`` times after a warm-up; the figures are per verification, in one thread.

    python bench/notation_verify.py --rounds 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.ext.trust's makers

from ocireg.ext.trust.notation import verify_notation
from ocireg.ext.trust.verdict import TrustStore
from tests.ext.trust import pki
from tests.ext.trust.signers import (
    SIGNING_AUTHORITY,
    SUBJECT,
    jws_signature,
    openssl_timestamp,
    sign_cose,
    sign_jws,
    with_jws_timestamp,
)

JWS, COSE = "application/jose+json", "application/cose"


def cases(workdir: Path) -> list[tuple[str, bytes, str, TrustStore]]:
    root = pki.root()
    intermediate = pki.certificate("Wabbit Intermediate CA", root, ca=True)
    chains = {
        kind: [pki.leaf(intermediate, key_kind=kind), intermediate, root]
        for kind in ("ec256", "rsa3072")
    }
    tsa_root = pki.root("Wabbit TSA Root")
    tsa = pki.tsa_leaf(tsa_root)
    ca, authority = TrustStore(ca=(root.cert,)), TrustStore(signing_authority=(root.cert,))
    stamped = sign_jws(chains["ec256"])
    token = openssl_timestamp("openssl", workdir, jws_signature(stamped), tsa, [tsa_root])
    return [
        ("JWS, ES256 (P-256), notary.x509", sign_jws(chains["ec256"]), JWS, ca),
        ("COSE, ES256 (P-256), notary.x509", sign_cose(chains["ec256"]), COSE, ca),
        ("JWS, PS384 (RSA 3072), notary.x509", sign_jws(chains["rsa3072"]), JWS, ca),
        ("COSE, PS384 (RSA 3072), notary.x509", sign_cose(chains["rsa3072"]), COSE, ca),
        (
            "JWS, ES256, notary.x509.signingAuthority",
            sign_jws(chains["ec256"], scheme=SIGNING_AUTHORITY),
            JWS,
            authority,
        ),
        (
            "JWS, ES256, notary.x509 + RFC 3161 timestamp (P-256 TSA)",
            with_jws_timestamp(stamped, token),
            JWS,
            TrustStore(ca=(root.cert,), tsa=(tsa_root.cert,)),
        ),
    ]


def measure(verify: Callable[[], object], rounds: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds per verification: on a shared machine the CPU time is the
    verifier's own cost, the wall-clock time what a caller waits."""
    for _ in range(min(50, rounds)):
        verify()
    wall, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.thread_time()
        verify()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return sorted(wall), sorted(cpu)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print("| case | CPU median ms | wall median ms | wall p99 ms | target (< 5 ms) |")
    print("| --- | ---: | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as workdir:
        for label, envelope, envelope_type, store in cases(Path(workdir)):

            def verify(
                e: bytes = envelope, t: str = envelope_type, s: TrustStore = store
            ) -> object:
                verdict = verify_notation(e, t, SUBJECT, s, pki.NOW)
                assert verdict.trusted, verdict.reason
                return verdict

            wall, cpu = measure(verify, args.rounds)
            cpu_median, wall_median = statistics.median(cpu), statistics.median(wall)
            p99 = wall[int(len(wall) * 0.99) - 1]
            status = "met" if cpu_median < 0.005 else "**missed**"
            print(f"| {label} | {ms(cpu_median)} | {ms(wall_median)} | {ms(p99)} | {status} |")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
