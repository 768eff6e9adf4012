"""skopeo copies a multi-arch index in and out, inspects it, lists tags and deletes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocireg.conformance.clients.tools import binary, host, plain_http, run
from ocireg.conformance.layout import build_multiarch_layout
from ocireg.conformance.settings import Settings

pytestmark = pytest.mark.workflow("clients")
SECTION = "skopeo (Pull, Push, Content Discovery, Content Management)"


@pytest.fixture(scope="module")
def skopeo(settings: Settings) -> list[str]:
    command = [binary("skopeo", "apt-get install skopeo")]
    return command


def options(settings: Settings, *flags: str) -> list[str]:
    found = []
    for flag in flags:
        if not settings.tls_verify or plain_http(settings):
            found.append(f"--{flag}tls-verify=false")
        if settings.username:
            found.append(f"--{flag}creds={settings.username}:{settings.password or ''}")
    return found


def test_copy_inspect_list_delete_copy_back(
    skopeo: list[str], settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    index_digest = build_multiarch_layout(source, "v1")
    remote = f"docker://{host(settings)}/{settings.namespace}-skopeo"
    tags = [f"sk-{settings.run_id}-1", f"sk-{settings.run_id}-2"]
    for tag in tags:
        run(*skopeo, "copy", "--all", *options(settings, "dest-"), f"oci:{source}:v1",
            f"{remote}:{tag}", section=SECTION)  # fmt: skip
    read = options(settings, "")
    raw = json.loads(
        run(*skopeo, "inspect", *read, "--raw", f"{remote}:{tags[0]}", section=SECTION)
    )
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json", raw
    assert len(raw["manifests"]) == 2
    digest = run(*skopeo, "inspect", *read, "--format", "{{.Digest}}", f"{remote}:{tags[0]}",
                 section=SECTION).strip()  # fmt: skip
    assert digest == index_digest, f"{SECTION}: the index digest changed: {digest}"
    arm = json.loads(run(*skopeo, "inspect", *read, "--override-arch", "arm64",
                         f"{remote}:{tags[0]}", section=SECTION))  # fmt: skip
    assert arm["Architecture"] == "arm64"
    listed = json.loads(run(*skopeo, "list-tags", *read, remote, section=SECTION))["Tags"]
    assert set(tags) <= set(listed), f"{SECTION}: list-tags gave {listed}"

    back = tmp_path / "back"
    run(*skopeo, "copy", "--all", *options(settings, "src-"), f"{remote}:{tags[0]}",
        f"oci:{back}:v1", section=SECTION)  # fmt: skip
    copied = json.loads((back / "index.json").read_text())["manifests"][0]["digest"]
    assert copied == index_digest, f"{SECTION}: copied back as {copied}, pushed {index_digest}"

    run(*skopeo, "delete", *read, f"{remote}:{tags[0]}", section=SECTION)
    after = json.loads(run(*skopeo, "list-tags", *read, remote, section=SECTION))["Tags"]
    assert not set(tags) & set(after), f"{SECTION}: tags of the deleted index remain: {after}"
