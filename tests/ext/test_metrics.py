"""metrics: zot's Prometheus names, summed over worker processes, at a configurable path."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocireg.cli import main
from tests.liveserver import live_server
from tests.oci import canonical, image_manifest, put_manifest

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client, path: str = "/metrics") -> Samples:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, metric: str, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_summed_over_two_workers(tmp_path: Path) -> None:
    sections = {
        "http": {"workers": 2},
        "storage": {"gcInterval": "200ms"},
        "extensions": {"metrics": {}},
    }
    with live_server(tmp_path, sections) as live, httpx.Client(base_url=live.url) as client:
        before = scrape(client)
        for _ in range(40):  # fresh connections, so both workers answer some
            assert httpx.get(f"{live.url}/v2/").status_code == 200
        repo = "metrics/app"
        document = image_manifest(client, repo, layers=[b"a" * 1000])
        put_manifest(client, repo, "v1", document)
        for _ in range(3):
            assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
        client.get(f"/v2/{repo}/manifests/nope")
        time.sleep(0.6)  # a few GC rounds
        after = scrape(client)

    def grew(metric: str, **labels: str) -> float:
        return value(after, metric, **labels) - value(before, metric, **labels)

    # 40 version checks, 3 pulls, and the first scrape (counted once its answer is sent)
    assert grew("zot_http_requests_total", method="GET", code="200") == 44
    assert grew("zot_http_requests_total", method="GET", code="404") == 1
    assert grew("zot_repo_uploads_total", repo=repo) == 1
    assert grew("zot_repo_downloads_total", repo=repo) == 3
    assert value(after, "zot_http_repo_latency_seconds_count", repo=repo) >= 7
    assert value(after, "zot_http_method_latency_seconds_count", method="PUT") == 1
    assert value(after, "zot_http_method_latency_seconds_count", method="POST") == 2
    config_size = len(b'{"architecture":"amd64","os":"linux"}')
    manifest_size = len(canonical(document))
    assert value(after, "zot_repo_storage_bytes", repo=repo) == 1000 + config_size + manifest_size
    pids = {
        dict(labels)["pid"] for name, labels in after if name == "process_resident_memory_bytes"
    }
    assert len(pids) == 2
    assert value(after, "zot_gc_runs_total", error="false") >= 2
    assert value(after, "zot_gc_duration_seconds_count") >= 2
    assert value(after, "zot_scheduler_workers_tasks_duration_seconds_count", name="gc") >= 2
    assert value(after, "zot_scheduler_workers_total") == 8  # 4 per worker process
    assert value(after, "zot_scheduler_generators_total") == 4  # gc and meta-flush, per worker
    (info,) = [dict(labels) for name, labels in after if name == "zot_info"]
    assert "-metrics" in info["binaryType"]


def test_path_is_configurable_and_only_get_and_head(tmp_path: Path) -> None:
    sections = {"extensions": {"metrics": {"prometheus": {"path": "/prom"}}}}
    with live_server(tmp_path, sections) as live, httpx.Client(base_url=live.url) as client:
        assert ("zot_info", ()) not in scrape(client, "/prom")
        assert client.get("/metrics").status_code == 404
        assert client.head("/prom").content == b""
        refused = client.post("/prom")
        assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")


def test_a_path_under_v2_is_refused_by_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "storage: {rootDirectory: /d}\nextensions:\n  metrics:\n    prometheus: {path: /v2/m}\n"
    )
    assert main(["verify", str(path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{path}: extensions.metrics.prometheus.path: Value error, must be an absolute path "
        "outside /v2, such as /metrics"
    )
