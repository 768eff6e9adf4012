"""Images built on an image already scanned read only their own layers: each layer's reading is
kept by its digest in the meta DB, and the operator sees it in the metrics
(``ocireg_cve_layers_read_total``, ``ocireg_cve_layers_reused_total``). The results are those of
reading every layer, whiteouts in the new layers applied to the kept ones."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocireg.ext.cve.store import CveStore
from tests.ext import osvdata
from tests.ext.test_cve_e2e import DIST, _bookworm_records, _layer, _push, _requests_metadata
from tests.ext.test_cve_search import ZLI_CVE_LIST, _cli, _export, _tagged, _wait_for, ask
from tests.liveserver import LiveServer, live_server

BACKGROUND_ROUND = "cve-background-scan"


def _layers(client: httpx.Client) -> tuple[float, float]:
    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            found[sample.name] = sample.value
    return found["ocireg_cve_layers_read_total"], found["ocireg_cve_layers_reused_total"]


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("cve-layers")
    extra = {
        "extensions": {"search": {"cve": {}}, "metrics": {}},
        "log": {"level": "debug"},  # the background round's line, when it scans nothing
    }
    with live_server(directory / "server", extra) as server:
        export = _export(directory / "osv", osvdata.ALL)
        done = _cli("cve", "update", str(server.root.parent / "config.json"), "--from", str(export))
        assert done.returncode == 0, done.stderr
        # the first background round (5 s after start) is over: no scan but the push's own
        # reads a layer, so the counts below are exact
        _wait_for(
            lambda: any(
                e.get("msg") == "scheduler round done" and e.get("job") == BACKGROUND_ROUND
                for e in server.log_events()
            )
        )
        yield server


def test_a_derived_image_reads_only_the_layers_it_adds(server: LiveServer) -> None:
    release, status = _bookworm_records()
    base = _layer({"etc/os-release": release.encode(), "var/lib/dpkg/status": status.encode()})
    old = _layer({f"{DIST}/requests-2.30.0.dist-info/METADATA": _requests_metadata("2.30.0")})
    upgrade = _layer(
        {
            f"{DIST}/.wh.requests-2.30.0.dist-info": b"",
            f"{DIST}/requests-2.31.0.dist-info/METADATA": _requests_metadata("2.31.0"),
        }
    )
    store = CveStore.reader(server.root / ".ocireg" / "meta.db")

    def cves(image: str) -> list[str]:
        found = ask(client, ZLI_CVE_LIST % (image, 100, 0, "", "", ""))["CVEListForImage"]
        return sorted(cve["Id"] for cve in found["CVEList"])

    with httpx.Client(base_url=server.url, timeout=30) as client:
        steps = [
            ("layers/base:1", [base], (1, 0), ["CVE-2023-5363"]),
            ("layers/app:1", [base, old], (2, 1), ["CVE-2023-32681", "CVE-2023-5363"]),
            # shares two layers, and its own whites out the older requests of the kept one
            ("layers/app:2", [base, old, upgrade], (3, 3), ["CVE-2023-5363"]),
        ]
        for reference, layers, counts, expected in steps:
            _pushed(server, client, store, reference, layers)
            assert _layers(client) == counts, reference
            assert cves(reference) == expected, reference
    store.close()


def _pushed(
    server: LiveServer, client: httpx.Client, store: CveStore, reference: str, layers: list[bytes]
) -> None:
    """Push an image and wait for its scan and for search to know its tag."""
    digest = _push(client, reference, layers)
    _wait_for(lambda: digest in store.scan_counts())
    repo, tag = reference.split(":")
    _wait_for(lambda: (repo, tag) in _tagged(server))  # search reads the meta DB
