"""Upstreams for sync tests: Debian's docker-registry with htpasswd, filled with skopeo, and a
mirror (ocireg with the sync extension) pointed at it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocireg.registry.mediatypes import OCI_INDEX, OCI_MANIFEST
from tests.auth.registries import write_htpasswd
from tests.conformance.distribution import docker_registry
from tests.liveserver import LiveServer, live_server
from tests.tools import require_binary

USER, PASSWORD = "mirror", "s3cret"
ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass
class Upstream:
    url: str
    directory: Path
    skopeo: str

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def push(self, layout: Path, tag: str, repo: str, target_tag: str, *flags: str) -> None:
        skopeo(
            self.skopeo,
            "copy",
            "--all",
            "--dest-tls-verify=false",
            f"--dest-creds={USER}:{PASSWORD}",
            *flags,
            f"oci:{layout}:{tag}",
            f"docker://{self.host}/{repo}:{target_tag}",
        )

    def digest(self, repo: str, tag: str) -> str:
        return inspect_digest(self.skopeo, f"docker://{self.host}/{repo}:{tag}", creds=True)


def skopeo(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def inspect_digest(binary: str, ref: str, creds: bool = False) -> str:
    auth = [f"--creds={USER}:{PASSWORD}"] if creds else []
    out = skopeo(binary, "inspect", "--raw", "--tls-verify=false", *auth, ref)
    return "sha256:" + hashlib.sha256(out.encode()).hexdigest()


def raw(binary: str, ref: str, creds: bool = False) -> dict[str, Any]:
    auth = [f"--creds={USER}:{PASSWORD}"] if creds else []
    return json.loads(skopeo(binary, "inspect", "--raw", "--tls-verify=false", *auth, ref))


@contextmanager
def upstream_registry(directory: Path, port: int | None = None) -> Iterator[Upstream]:
    binary = require_binary("docker-registry", "apt-get install docker-registry")
    tool = require_binary("skopeo", "apt-get install skopeo")
    directory.mkdir(parents=True, exist_ok=True)
    htpasswd = directory / "htpasswd"
    if not htpasswd.exists():
        write_htpasswd(htpasswd, {USER: PASSWORD})
    with docker_registry(binary, directory, htpasswd=htpasswd, port=port) as url:
        yield Upstream(url, directory, tool)


def credentials_file(path: Path, upstream: Upstream | str, password: str = PASSWORD) -> Path:
    """A credentialsFile for ``upstream`` (or a URL), written atomically (a reader never sees
    half of it)."""
    host = upstream.host if isinstance(upstream, Upstream) else upstream.split("://", 1)[1]
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({host: {"username": USER, "password": password}}))
    partial.replace(path)
    return path


def single_image_layout(layout: Path, tag: str, layer_size: int) -> tuple[str, str]:
    """An OCI layout whose ``tag`` is one image with one random layer of ``layer_size`` bytes;
    (manifest digest, layer digest)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob(data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    layer = blob(os.urandom(layer_size))
    config = blob(
        json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }
    described = blob(json.dumps(manifest).encode())
    entry = {"mediaType": OCI_MANIFEST, **described, "annotations": {ANNOTATION: tag}}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    (layout / "index.json").write_text(json.dumps(index))
    return described["digest"], layer["digest"]


@contextmanager
def mirror(directory: Path, sync: dict[str, Any]) -> Iterator[LiveServer]:
    with live_server(directory, {"extensions": {"sync": sync}}) as server:
        yield server
