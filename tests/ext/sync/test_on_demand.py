"""On-demand sync against a real upstream (docker-registry with htpasswd): skopeo pulls from
the mirror what only the upstream has, and gets the same content."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocireg.conformance.layout import build_multiarch_layout
from tests.ext.sync.upstreams import (
    credentials_file,
    inspect_digest,
    mirror,
    raw,
    skopeo,
    upstream_registry,
)

pytestmark = pytest.mark.e2e


def on_demand(url: str, credentials: Path, **more: object) -> dict[str, object]:
    registry = {"urls": [url], "onDemand": True, "tlsVerify": False, "maxRetries": 1,
                "retryDelay": "100ms", **more}  # fmt: skip
    return {"credentialsFile": str(credentials), "registries": [registry]}


def test_oci_index_pulled_on_demand_keeps_its_digest(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    index_digest = build_multiarch_layout(layout, "v1")
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "library/multi", "v1")
        creds = credentials_file(tmp_path / "creds.json", upstream)
        with mirror(tmp_path / "mirror", on_demand(upstream.url, creds)) as server:
            remote = f"docker://{server.host}/library/multi:v1"
            assert inspect_digest(upstream.skopeo, remote) == index_digest
            out = tmp_path / "out"
            skopeo(upstream.skopeo, "copy", "--all", "--src-tls-verify=false", remote,
                   f"oci:{out}:v1")  # fmt: skip
            assert (
                raw(upstream.skopeo, f"oci:{out}:v1")["manifests"]
                == raw(upstream.skopeo, f"oci:{layout}:v1")["manifests"]
            )
