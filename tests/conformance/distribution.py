"""Debian's docker-registry (CNCF distribution 2.8.2) on a loopback port, for comparisons."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization

from tests.auth.tokenserver import TokenServer
from tests.liveserver import free_port

CONFIG = """\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""
TOKEN_AUTH = """\
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {cert}
"""


def libtrust_key_id(tokens: TokenServer) -> str:
    """The ``kid`` distribution 2.8 looks a token's signing key up by: libtrust's key ID, the
    first 240 bits of the SHA-256 of the DER public key, in base32 groups of four."""
    der = tokens.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


HTPASSWD_AUTH = """\
auth:
  htpasswd:
    realm: basic-realm
    path: {path}
"""


@contextmanager
def docker_registry(
    binary: str,
    directory: Path,
    tokens: TokenServer | None = None,
    htpasswd: Path | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """The registry at its URL; with ``tokens`` (running), it wants that server's tokens, whose
    ``kid`` this sets to the key ID distribution expects; with ``htpasswd`` (bcrypt entries),
    Basic auth. ``port``: the one to listen on (to start it again where it was)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = directory / "config.yml"
    text = CONFIG.format(root=directory / "data", port=port)
    if tokens is not None:
        tokens.kid = libtrust_key_id(tokens)
        issuer = tokens.claims("", [])["iss"]
        text += TOKEN_AUTH.format(
            realm=tokens.realm, service=tokens.service, issuer=issuer, cert=tokens.cert_path
        )
    if htpasswd is not None:
        text += HTPASSWD_AUTH.format(path=htpasswd)
    config.write_text(text)
    url = f"http://127.0.0.1:{port}"
    with open(directory / "registry.log", "wb") as log:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/v2/", timeout=1).status_code in (200, 401):
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((directory / "registry.log").read_text()) from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
