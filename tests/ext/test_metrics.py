"""metrics: zot's Prometheus names, summed over worker processes, at a configurable path."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocireg.cli import main
from tests.auth.registries import write_htpasswd
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


def repo_labels(samples: Samples) -> set[str]:
    return {dict(labels)["repo"] for _, labels in samples if "repo" in dict(labels)}


def test_only_existing_repositories_get_a_label_and_the_set_is_bounded(tmp_path: Path) -> None:
    sections = {"extensions": {"metrics": {"prometheus": {"maxRepoLabels": 2}}}}
    with live_server(tmp_path, sections) as live, httpx.Client(base_url=live.url) as client:
        for n in range(30):  # anonymous requests for repositories that do not exist
            assert client.get(f"/v2/spray/r{n}/manifests/latest").status_code == 404
            client.get(f"/v2/spray/r{n}/tags/list")
        assert client.get("/v2/UPPER/manifests/x").status_code in (400, 404)
        for odd in ("a//b", "a/../b"):  # no repository, nor a storage path to ask about
            assert client.get(f"/v2/{odd}/tags/list").status_code in (400, 404)
        assert repo_labels(scrape(client)) == set()
        assert "Traceback" not in live.log.read_text()
        for name in ("m/one", "m/two", "m/three"):
            put_manifest(client, name, "v1", image_manifest(client, name))
            assert client.get(f"/v2/{name}/manifests/v1").status_code == 200
        samples = scrape(client)
    latency = {
        dict(labels)["repo"]
        for name, labels in samples
        if name == "zot_http_repo_latency_seconds_count"
    }
    # the first two repositories keep their own series; the rest are counted together
    assert latency == {"m/one", "m/two", "_other"}
    assert value(samples, "zot_repo_downloads_total", repo="_other") == 1
    # storage sizes are per repository that exists: bounded by the same setting
    storage = {dict(labels)["repo"] for name, labels in samples if name == "zot_repo_storage_bytes"}
    assert len(storage - {"_other"}) <= 2


def test_a_user_sees_only_the_repositories_it_may_read(tmp_path: Path) -> None:
    users = {"alice": "pw-a", "admin": "pw-x"}
    access = {
        "repositories": {
            "a/**": {"policies": [{"users": ["alice"], "actions": ["read", "create"]}]},
        },
        "adminPolicy": {"users": ["admin"], "actions": ["read", "create", "update", "delete"]},
    }
    directory = tmp_path / "server"
    directory.mkdir()
    extra = {
        "http": {
            "auth": {"htpasswd": {"path": str(write_htpasswd(directory / "htpasswd", users))}},
            "accessControl": access,
        },
        "extensions": {"metrics": {}},
    }
    with live_server(directory, extra) as live:
        admin = httpx.Client(base_url=live.url, auth=("admin", "pw-x"))
        alice = httpx.Client(base_url=live.url, auth=("alice", "pw-a"))
        with admin, alice:
            for name in ("a/mine", "b/secret"):
                put_manifest(admin, name, "v1", image_manifest(admin, name))
            assert repo_labels(scrape(admin)) >= {"a/mine", "b/secret"}
            assert repo_labels(scrape(alice)) == {"a/mine"}
