"""The conformance suite, driven through ``ocireg conformance`` as a CI user runs it.

Against ocireg every workflow passes (responses checked strictly against the schema); against
CNCF distribution 2.8.2 it fails exactly where that registry departs from the spec.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ocireg.auth.bearer import Access
from tests.auth.registries import full_access, htpasswd_registry, token_registry
from tests.auth.tokenserver import TokenServer
from tests.conformance.authproxy import auth_proxy
from tests.conformance.distribution import docker_registry
from tests.liveserver import LiveServer, live_server
from tests.tools import require_binary

SUITE = Path(__file__).resolve().parents[2] / "conformance"
ALL = "pull,push,discovery,management,main"


def conformance(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocireg", "conformance", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


# What pytest would print about itself; a user of the tool must see none of it.
PYTEST_INTERNALS = ("deselected", "PytestAssertRewriteWarning", "warnings summary", "rootdir")


def assert_nothing_of_pytest(done: subprocess.CompletedProcess[str], cwd: Path) -> None:
    for internal in PYTEST_INTERNALS:
        assert internal not in done.stdout + done.stderr, done.stdout + done.stderr
    assert sorted(path.name for path in cwd.iterdir()) == [], "the run wrote to the cwd"


def junit_outcomes(path: Path) -> dict[str, str]:
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


def test_every_workflow_passes_against_ocireg(server: LiveServer, tmp_path: Path) -> None:
    junit, html = tmp_path / "junit.xml", tmp_path / "report.html"
    done = conformance(
        "--url", server.url, "--workflows", ALL, "--schema", "strict",
        "--automatic-crossmount", "true", "--junit", str(junit), "--html", str(html),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.splitlines()
    for title in ("Pull", "Push", "Content Discovery", "Content Management", "Spec main branch"):
        line = next(line for line in summary if line.strip().startswith(title))
        assert " ok " in line and "0 failed, 0 skipped" in line, line
    assert summary[-1] == "result: passed"
    outcomes = junit_outcomes(junit)
    assert len(outcomes) >= 50 and set(outcomes.values()) == {"passed"}
    assert "OCI conformance of" in html.read_text()


# What CNCF distribution 2.8.2 really lacks, each a departure from distribution-spec v1.1.
DISTRIBUTION_FAILS = {
    # no referrers API: 404 instead of an image index, so no listing, filtering or 400s
    "test_discovery::test_referrers_lists_every_referrer",
    "test_discovery::test_referrers_artifact_types",
    "test_discovery::test_referrers_filtered_by_artifact_type",
    "test_discovery::test_referrers_of_unknown_subject_is_empty",
    "test_discovery::test_referrers_of_invalid_digest_is_400",
    "test_discovery::test_referrer_of_a_subject_never_pushed_is_listed",
    # no OCI-Subject header on a push with a subject
    "test_discovery::test_subject_pushes_answer_oci_subject",
    "test_push::test_manifest_with_subject_answers_oci_subject",
    # no tags pagination: n and last are ignored, and the list is not in lexical order
    "test_discovery::test_tags_list_is_sorted_and_complete",
    "test_discovery::test_tags_list_n",
    "test_discovery::test_tags_list_n_and_last",
    "test_discovery::test_tags_list_last_alone",
    "test_discovery::test_tags_list_n_zero",
    # no 416 for an out-of-order chunk (202), nor for a chunk re-sent to a stale location (404)
    "test_push::test_out_of_order_chunk_is_416",
    "test_push::test_chunk_resent_to_stale_location_is_416",
    # an unknown upload answers BLOB_UPLOAD_INVALID, not BLOB_UPLOAD_UNKNOWN
    "test_push::test_unknown_upload_is_404",
    # a malformed digest as manifest reference is a 500, not 400 or 404
    "test_pull::test_malformed_manifest_digest_is_400_or_404",
    # deleting a tag answers 400 DIGEST_INVALID rather than 202, or 400 UNSUPPORTED
    "test_management::test_delete_tag",
}


def test_suite_fails_distribution_exactly_where_it_departs(tmp_path: Path) -> None:
    binary = require_binary("docker-registry", "apt-get install docker-registry")
    junit = tmp_path / "junit.xml"
    with docker_registry(binary, tmp_path / "distribution") as url:
        done = conformance("--url", url, "--junit", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = junit_outcomes(junit)
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    assert failed == DISTRIBUTION_FAILS
    passed = {name for name, outcome in outcomes.items() if outcome == "passed"}
    assert "test_push::test_mount_from_another_repository" in passed
    assert "test_pull::test_blob_range_request" in passed
    assert "FAILED discovery::test_referrers_lists_every_referrer: spec §Listing Referrers" in (
        done.stdout
    )
    # The 404s and the 500 depart from the schema; distribution's upload session IDs (UUIDs
    # with dashes, not ocireg's 32 hex digits) are its own business: counted, not listed.
    lines = done.stdout.splitlines()
    departing = next(line for line in lines if "response(s) depart from spec/openapi.yaml" in line)
    assert int(departing.split()[0]) <= 10, done.stdout
    assert "Docker-Upload-UUID:" not in done.stdout and "Location:" not in done.stdout
    left_out = next(line for line in lines if "departures in opaque values left out" in line)
    assert int(left_out.split()[0]) >= 20, left_out


def _legacy_tag_invalid(request: Request) -> Response | None:
    """What ocireg answered before: 400 TAG_INVALID for a reference that is no tag."""
    if request.method in ("GET", "HEAD") and request.url.path.endswith("/.INVALID_MANIFEST_NAME"):
        body = {"errors": [{"code": "TAG_INVALID", "message": "manifest tag did not match URI"}]}
        return JSONResponse(body, 400)
    return None


def test_suite_fails_a_400_for_a_malformed_reference(server: LiveServer, tmp_path: Path) -> None:
    """The official suite fails a registry that answers GET or HEAD of
    ``.INVALID_MANIFEST_NAME`` with 400; ours must fail it too, and only for that."""
    junit = tmp_path / "junit.xml"
    with auth_proxy(server.url, "open", override=_legacy_tag_invalid) as url:
        done = conformance("--url", url, "--workflows", "pull", "--junit", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = junit_outcomes(junit)
    failed = {name for name, outcome in outcomes.items() if outcome == "failed"}
    assert failed == {"test_pull::test_malformed_reference_is_404"}


def _no_deletes(request: Request) -> Response | None:
    """A registry that does not delete: 405 for every DELETE, as the spec allows."""
    return Response(status_code=405) if request.method == "DELETE" else None


def test_output_is_the_tools_own_and_skips_say_why(server: LiveServer, tmp_path: Path) -> None:
    """What a user sees: progress, the summary with the reason of every skip, and nothing of
    pytest; nothing is left in the current directory."""
    cwd, html = tmp_path / "cwd", tmp_path / "report.html"
    cwd.mkdir()
    with auth_proxy(server.url, "open", override=_no_deletes) as url:
        done = conformance("--url", url, "--workflows", "pull,management", "--html", str(html),
                           cwd=cwd)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert_nothing_of_pytest(done, cwd)
    lines = done.stdout.splitlines()
    assert set(lines[0]) <= set(".Fs") and len(lines[0]) >= 12  # the progress line
    assert lines[1] == f"OCI conformance of {url}"
    skipped = {
        "SKIPPED management::test_delete_tag: the registry does not delete tags (405)",
        "SKIPPED management::test_delete_manifest: the registry does not delete manifests (405)",
        "SKIPPED management::test_delete_blob: the registry does not delete blobs (405)",
    }
    assert skipped <= set(lines), done.stdout
    assert lines[-1] == "result: passed"
    assert "the registry does not delete blobs (405)" in html.read_text()


def test_push_passes_with_automatic_mounting_off(tmp_path: Path) -> None:
    """``storage.automaticMount: false`` is the registry for the "automatic content discovery
    disabled" variant (OCI_AUTOMATIC_CROSSMOUNT=0), which the default registry fails."""
    with live_server(tmp_path, {"storage": {"automaticMount": False}}) as live:
        done = conformance(
            "--url", live.url, "--workflows", "push", "--automatic-crossmount", "false"
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        done = conformance(
            "--url", live.url, "--workflows", "push", "--automatic-crossmount", "true"
        )  # fmt: skip
        assert done.returncode == 1
        assert "FAILED push::test_mount_without_from" in done.stdout


def test_suite_gets_its_own_tokens_from_distributions_token_auth(tmp_path: Path) -> None:
    """distribution's token auth: the same departures and nothing more, so every request the
    suite made got the token it needed, the mounts' included."""
    binary = require_binary("docker-registry", "apt-get install docker-registry")
    junit = tmp_path / "junit.xml"
    tokens = TokenServer(tmp_path / "token-server", users={"ci": "ci-pw"},
                         policy=_everything_for_ci, anonymous=False)  # fmt: skip
    with tokens, docker_registry(binary, tmp_path / "distribution", tokens) as url:
        assert httpx.get(f"{url}/v2/").status_code == 401
        done = conformance("--url", url, "--junit", str(junit),
                           env={"OCI_USERNAME": "ci", "OCI_PASSWORD": "ci-pw"})  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    outcomes = junit_outcomes(junit)
    assert {name for name, outcome in outcomes.items() if outcome == "failed"} == DISTRIBUTION_FAILS
    assert outcomes["test_push::test_mount_from_another_repository"] == "passed"
    assert tokens.requests and {request.subject for request in tokens.requests} == {"ci"}


def test_unknown_workflow_is_a_usage_error() -> None:
    done = conformance("--url", "http://127.0.0.1:9", "--workflows", "pull,fly")
    assert done.returncode == 2
    assert "unknown workflow fly" in done.stdout


def test_url_is_required() -> None:
    done = conformance(env={"OCI_ROOT_URL": ""})
    assert done.returncode == 2
    assert "give --url or set OCI_ROOT_URL" in done.stderr


def test_a_bad_variable_is_named_and_nothing_runs() -> None:
    done = conformance("--url", "http://127.0.0.1:9", "--workflows", "pull",
                       env={"OCI_SCHEMA": "loose"})  # fmt: skip
    assert done.returncode == 2
    assert "OCI_SCHEMA must be one of strict, warn, off, not 'loose'" in done.stdout
    assert "Pull                         none 0 passed" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_unreachable_registry_fails(tmp_path: Path) -> None:
    done = conformance("--url", "http://127.0.0.1:9", "--workflows", "pull")
    assert done.returncode == 1
    assert "result: FAILED" in done.stdout


@pytest.mark.parametrize("enabled", ["1", "0"])
def test_drop_in_mode_reads_the_upstream_variables(
    server: LiveServer, tmp_path: Path, enabled: str
) -> None:
    env = {
        **os.environ,
        "OCI_ROOT_URL": server.url,
        "OCI_NAMESPACE": "dropin/repo",
        "OCI_TEST_PULL": enabled,
        "OCI_TEST_PUSH": "0",
        "OCI_TEST_CONTENT_DISCOVERY": "0",
        "OCI_TEST_CONTENT_MANAGEMENT": "0",
        "OCI_TEST_SPEC_MAIN": "0",
    }
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITE), "-c", str(ini), "--rootdir", str(SUITE),
         "--import-mode=importlib", "-p", "no:cacheprovider", "-p", "no:benchmark", "-q"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    if enabled == "1":
        assert "12 passed" in done.stdout and "skipped" in done.stdout
    else:
        assert "passed" not in done.stdout


def test_real_clients_against_ocireg(server: LiveServer, tmp_path: Path) -> None:
    require_binary("skopeo", "apt-get install skopeo")
    junit = tmp_path / "junit.xml"
    done = conformance("--url", server.url, "--workflows", "clients", "--junit", str(junit))
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = junit_outcomes(junit)
    notation = "test_notary::test_notation_cli_signs_and_the_signature_is_listed"
    expected_notation = "passed" if shutil.which("notation") else "skipped"
    assert outcomes.pop(notation) == expected_notation  # notation is not packaged for Debian
    assert outcomes == {
        "test_skopeo::test_copy_inspect_list_delete_copy_back": "passed",
        "test_oras::test_push_and_pull[monolithic]": "passed",
        "test_oras::test_push_and_pull[chunked]": "passed",
        "test_oras::test_attach_and_discover": "passed",
        "test_notary::test_notary_signature_is_found_and_verifies": "passed",
    }


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_suite_authenticates_with_basic_and_bearer_tokens(server: LiveServer, mode: str) -> None:
    with auth_proxy(server.url, mode, "ci", "s3cret") as url:
        good = conformance("--url", url, "--workflows", "pull,push", "--username", "ci",
                           "--password", "s3cret")  # fmt: skip
        bad = conformance("--url", url, "--workflows", "pull", "--username", "ci",
                          "--password", "wrong")  # fmt: skip
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[-1] == "result: passed"
    assert bad.returncode == 1
    assert "401" in bad.stdout


# -- against ocireg with its own authentication on ------------------------------------------

CLIENT_CHECKS = {
    "test_skopeo::test_copy_inspect_list_delete_copy_back",
    "test_oras::test_push_and_pull[monolithic]",
    "test_oras::test_push_and_pull[chunked]",
    "test_oras::test_attach_and_discover",
    "test_notary::test_notary_signature_is_found_and_verifies",
}
NOTATION = "test_notary::test_notation_cli_signs_and_the_signature_is_listed"


def _outcomes_with_auth(junit: Path) -> dict[str, str]:
    outcomes = junit_outcomes(junit)
    expected_notation = "passed" if shutil.which("notation") else "skipped"
    assert outcomes.pop(NOTATION) == expected_notation
    return outcomes


def test_every_workflow_passes_with_htpasswd_and_access_control(tmp_path: Path) -> None:
    require_binary("skopeo", "apt-get install skopeo")
    junit = tmp_path / "junit.xml"
    users = {"ci": "ci-pw", "nobody": "nobody-pw"}
    with htpasswd_registry(tmp_path / "registry", users, full_access("ci")) as live:
        good = conformance(
            "--url", live.url, "--workflows", f"{ALL},clients", "--schema", "strict",
            "--automatic-crossmount", "true", "--junit", str(junit),
            env={"OCI_USERNAME": "ci", "OCI_PASSWORD": "ci-pw", "HOME": str(tmp_path)},
        )  # fmt: skip
        wrong = conformance("--url", live.url, "--workflows", "pull",
                            env={"OCI_USERNAME": "ci", "OCI_PASSWORD": "guessed"})  # fmt: skip
        nobody = {"OCI_USERNAME": "nobody", "OCI_PASSWORD": "nobody-pw"}
        denied = conformance("--url", live.url, "--workflows", "pull", env=nobody)
        log = [json.loads(line) for line in live.log_lines() if line.startswith("{")]
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.splitlines()[-1] == "result: passed"
    outcomes = _outcomes_with_auth(junit)
    assert len(outcomes) >= 55 and set(outcomes.values()) == {"passed"}, outcomes
    assert set(outcomes) >= CLIENT_CHECKS
    assert not (tmp_path / ".docker").exists()  # oras got the credentials, not a config file
    writes = [line for line in log if line.get("method") in ("PUT", "PATCH", "POST", "DELETE")]
    assert writes and {line["user"] for line in writes if line["status"] < 400} == {"ci"}
    assert wrong.returncode == 1 and "401" in wrong.stdout, wrong.stdout
    assert denied.returncode == 1 and "403" in denied.stdout, denied.stdout


def _everything_for_ci(subject: str, requested: Access) -> list[str]:
    return ["*"] if subject == "ci" else []


def test_every_workflow_passes_with_registry_tokens(tmp_path: Path) -> None:
    require_binary("skopeo", "apt-get install skopeo")
    junit = tmp_path / "junit.xml"
    namespace = "tokens/conformance"
    server = TokenServer(tmp_path / "token-server", users={"ci": "ci-pw"},
                         policy=_everything_for_ci, anonymous=False)  # fmt: skip
    with server, token_registry(tmp_path / "registry", server) as live:
        done = conformance(
            # Not --automatic-crossmount true: a mount without from= can only find blobs in
            # repositories the token grants pull on, and the suite cannot know which to ask for.
            "--url", live.url, "--workflows", f"{ALL},clients", "--schema", "strict",
            "--namespace", namespace, "--junit", str(junit),
            env={"OCI_USERNAME": "ci", "OCI_PASSWORD": "ci-pw", "HOME": str(tmp_path)},
        )  # fmt: skip
        wrong = conformance("--url", live.url, "--workflows", "pull",
                            env={"OCI_USERNAME": "ci", "OCI_PASSWORD": "guessed"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = _outcomes_with_auth(junit)
    oras = {name for name in outcomes if name.startswith("test_oras::")}
    assert {outcomes.pop(name) for name in oras} == {"skipped"}  # oras-py cannot push with tokens
    assert len(outcomes) >= 55 and set(outcomes.values()) == {"passed"}, outcomes
    requests = server.requests
    assert requests and {request.subject for request in requests} == {"ci"}
    # The mount from another repository asked for pull on its source along with push.
    assert (
        f"repository:{namespace}-crossmount:pull,push",
        f"repository:{namespace}:pull",
    ) in [request.scopes for request in requests]
    assert wrong.returncode == 1
    assert "the token server at" in wrong.stdout and "answered 401" in wrong.stdout


def _catalog(url: str) -> list[str]:
    repositories: list[str] = httpx.get(f"{url}/v2/_catalog?n=10000").json()["repositories"]
    return repositories


def _tags(url: str, repository: str) -> list[str]:
    response = httpx.get(f"{url}/v2/{repository}/tags/list")
    return (response.json().get("tags") or []) if response.status_code == 200 else []


def test_fuzzing_finds_nothing_wrong_with_ocireg_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """Fuzzing an open registry writes only inside the run's namespace, takes away what it
    wrote, and leaves nothing in the current directory (Hypothesis keeps its files elsewhere)."""
    junit, cwd = tmp_path / "junit.xml", tmp_path / "cwd"
    cwd.mkdir()
    with live_server(tmp_path / "registry") as live:
        done = conformance(
            "--url", live.url, "--workflows", "fuzz", "--schema", "strict", "--junit", str(junit),
            env={"OCI_NAMESPACE": "fuzz/ns"}, cwd=cwd,
        )  # fmt: skip
        catalog = _catalog(live.url)
        tagged = {repository: _tags(live.url, repository) for repository in catalog}
    assert done.returncode == 0, done.stdout + done.stderr
    outcomes = junit_outcomes(junit)
    names = {name.split("[")[0] for name in outcomes}
    assert names == {"test_fuzz::test_stateless", "test_fuzz::test_stateful"}, outcomes
    assert set(outcomes.values()) == {"passed"}, outcomes
    cases = len(list(ET.parse(junit).getroot().iter("testcase")))
    assert cases >= 15, f"one stateless case per operation expected, got {cases}"
    assert_nothing_of_pytest(done, cwd)
    # Generated names did reach the registry, every one of them under the namespace ...
    assert "fuzz/ns-fuzz" in catalog and len(catalog) > 1, catalog
    assert [name for name in catalog if not name.startswith("fuzz/ns-fuzz/")] == ["fuzz/ns-fuzz"]
    # ... and nothing the run wrote is left in them: no tag, no manifest, no open upload.
    assert tagged == {repository: [] for repository in catalog}, tagged
    for index in (live.root / "fuzz").rglob("index.json"):
        assert json.loads(index.read_text())["manifests"] == [], index
    assert not [path for path in (live.root / "fuzz").rglob(".uploads/*")]
