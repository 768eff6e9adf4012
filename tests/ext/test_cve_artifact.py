"""OSV data from an OCI artifact in a registry: pushed to a live ocireg as a client would (its
layers a zip, a gzip tar and a JSON array of real advisories), then pulled by ``ocireg cve
update --from oci+http://...`` and, periodically, by another registry's ``cve.sources``."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.ext.cve import artifact
from ocireg.ext.cve.store import CveStore
from ocireg.registry.mediatypes import OCI_EMPTY, OCI_MANIFEST
from tests.ext import osvdata
from tests.ext.test_cve_search import _cli, _wait_for
from tests.liveserver import LiveServer, live_server
from tests.oci import descriptor, push_blob, put_manifest

REPO = "osv/db"
Records = list[dict[str, Any]]


def _zip(records: Records) -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as out:
        for record in records:
            out.writestr(f"{record['id']}.json", json.dumps(record))
    return raw.getvalue()


def _tar_gz(records: Records) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for record in records:
            data = json.dumps(record).encode()
            member = tarfile.TarInfo(f"osv/{record['id']}.json")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def push_osv(
    client: httpx.Client,
    tag: str,
    layers: list[tuple[str, bytes]],
    artifact_type: str = artifact.ARTIFACT_TYPE,
) -> str:
    """Push an OSV artifact as ``oras push --artifact-type`` writes one: the empty config."""
    push_blob(client, REPO, b"{}")
    for _, data in layers:
        push_blob(client, REPO, data)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [descriptor(media_type, data) for media_type, data in layers],
    }
    return str(put_manifest(client, REPO, tag, document).headers["Docker-Content-Digest"])


def _three_layers(records: Records) -> list[tuple[str, bytes]]:
    return [
        (artifact.ZIP, _zip(records[:3])),
        (artifact.TAR_GZIP, _tar_gz(records[3:6])),
        (artifact.JSON, json.dumps(records[6:]).encode()),
    ]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The registry the OSV artifacts are published to."""
    with live_server(tmp_path_factory.mktemp("osv-source")) as server:
        yield server


def _config(where: Path) -> str:
    """A scanning registry's configuration: ``ocireg cve update`` imports into its meta DB."""
    config = {"storage": {"rootDirectory": str(where / "data")},
              "extensions": {"search": {"cve": {}}}}  # fmt: skip
    (where / "config.json").write_text(json.dumps(config))
    return str(where / "config.json")


def _store(where: Path) -> CveStore:
    return CveStore.reader(where / "data" / ".ocireg" / "meta.db")


def _oci(server: LiveServer, reference: str) -> str:
    return server.url.replace("http://", "oci+http://") + "/" + reference


def test_the_cli_imports_an_artifacts_layers_then_skips_it_unchanged(
    source: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=source.url, timeout=30) as client:
        digest = push_osv(client, "2024", _three_layers(osvdata.ALL))
    config = _config(tmp_path)
    reference = _oci(source, f"{REPO}:2024")
    first = _cli("cve", "update", config, "--from", reference)
    assert first.returncode == 0, first.stderr
    assert f"{reference}: {len(osvdata.ALL)} stored (0 withdrawn), 0 unchanged" in first.stdout
    store = _store(tmp_path)
    assert set(store.modified_times()) == {record["id"] for record in osvdata.ALL}
    store.close()
    again = _cli("cve", "update", config, "--from", reference)
    assert again.returncode == 0, again.stderr
    assert f"{reference}: artifact {digest} already imported, not pulled" in again.stdout
    # another source (by digest): pulled, and every record already held
    by_digest = _cli("cve", "update", config, "--from", _oci(source, f"{REPO}@{digest}"))
    assert f"0 stored (0 withdrawn), {len(osvdata.ALL)} unchanged" in by_digest.stdout


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("missing", "GET manifests/missing answered HTTP 404"),
        ("other", "artifactType 'application/vnd.example', not application/vnd.ocireg.osv.v1"),
        ("layer", "layer 0 is 'application/vnd.oci.image.layer.v1.tar', not one of"),
        ("mixed", "layer 1 is 'application/zip', not one of"),
    ],
)
def test_what_is_no_osv_artifact_is_refused(
    source: LiveServer, tmp_path: Path, tag: str, message: str
) -> None:
    good = (artifact.ZIP, _zip(osvdata.ALL))
    with httpx.Client(base_url=source.url, timeout=30) as client:
        if tag == "other":
            push_osv(client, tag, [good], "application/vnd.example")
        elif tag == "layer":
            push_osv(client, tag, [("application/vnd.oci.image.layer.v1.tar", b"x")])
        elif tag == "mixed":
            push_osv(client, tag, [good, ("application/zip", good[1])])
    done = _cli("cve", "update", _config(tmp_path), "--from", _oci(source, f"{REPO}:{tag}"))
    assert done.returncode == 1
    assert message in done.stderr
    store = _store(tmp_path)
    assert store.advisory_count() == 0  # nothing partial: not even the good layer
    store.close()


def test_a_configured_artifact_is_pulled_again_each_update_interval(
    source: LiveServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=source.url, timeout=30) as client:
        push_osv(client, "latest", [(artifact.ZIP, _zip(osvdata.ALL[:4]))])
        cve = {"sources": [_oci(source, f"{REPO}:latest")], "updateInterval": "1s"}
        with live_server(tmp_path / "scanner", {"extensions": {"search": {"cve": cve}}}) as scanner:
            store = CveStore.reader(scanner.root / ".ocireg" / "meta.db")
            _wait_for(lambda: store.advisory_count() == 4)
            # the publisher moves the tag: the next round pulls the new artifact
            push_osv(client, "latest", [(artifact.ZIP, _zip(osvdata.ALL))])
            _wait_for(lambda: store.advisory_count() == len(osvdata.ALL))
            store.close()
            reads = [e for e in scanner.log_events() if e.get("msg") == "cve source read"]
    assert [e["stored"] for e in reads if e["pulled"]] == [4, len(osvdata.ALL) - 4]
    assert all(e["stored"] == 0 for e in reads if not e["pulled"])
