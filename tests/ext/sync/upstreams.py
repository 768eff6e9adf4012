"""Upstreams for sync tests: Debian's docker-registry with htpasswd, filled with skopeo, and a
mirror (ocireg with the sync extension) pointed at it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.auth.registries import write_htpasswd
from tests.conformance.distribution import docker_registry
from tests.liveserver import LiveServer, live_server
from tests.tools import require_binary

USER, PASSWORD = "mirror", "s3cret"


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
            self.skopeo, "copy", "--all", "--dest-tls-verify=false",
            f"--dest-creds={USER}:{PASSWORD}", *flags,
            f"oci:{layout}:{tag}", f"docker://{self.host}/{repo}:{target_tag}",
        )  # fmt: skip

    def digest(self, repo: str, tag: str) -> str:
        return inspect_digest(self.skopeo, f"docker://{self.host}/{repo}:{tag}", creds=True)


def skopeo(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def inspect_digest(binary: str, ref: str, creds: bool = False) -> str:
    auth = [f"--creds={USER}:{PASSWORD}"] if creds else []
    out = skopeo(binary, "inspect", "--raw", "--tls-verify=false", *auth, ref)
    import hashlib

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


def credentials_file(path: Path, upstream: Upstream, password: str = PASSWORD) -> Path:
    path.write_text(json.dumps({upstream.host: {"username": USER, "password": password}}))
    return path


@contextmanager
def mirror(directory: Path, sync: dict[str, Any]) -> Iterator[LiveServer]:
    with live_server(directory, {"extensions": {"sync": sync}}) as server:
        yield server
