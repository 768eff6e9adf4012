"""``extensions.search.cve``: its keys work, zot's trivy keys are warned about by path, anything
else is refused by path (`ocireg verify`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocireg.cli import main


def verify(tmp_path: Path, capsys: pytest.CaptureFixture[str], cve: Any) -> tuple[int, str]:
    path = tmp_path / "config.json"
    config = {"storage": {"rootDirectory": str(tmp_path / "data")},
              "extensions": {"search": {"cve": cve}}}  # fmt: skip
    path.write_text(json.dumps(config))
    status = main(["verify", str(path)])
    return status, capsys.readouterr().err


def test_zots_trivy_keys_are_warned_about_by_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trivy = {"dbRepository": "ghcr.io/aquasecurity/trivy-db", "javaDBRepository": "ghcr.io/j"}
    zot = {"updateInterval": "24h", "trivy": trivy}
    status, err = verify(tmp_path, capsys, zot)
    assert status == 0
    lines = [line for line in err.splitlines() if "cve" in line]
    assert [line.split(": ")[1] for line in lines] == [
        "extensions.search.cve.trivy.dbRepository",
        "extensions.search.cve.trivy.javaDBRepository",
    ]


def test_our_keys_get_no_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sources = [
        "/osv/all.zip",
        "oci://registry.example:5000/osv/all:2024",
        "oci+http://r/o@sha256:" + 64 * "a",
    ]
    status, err = verify(tmp_path, capsys, {"updateInterval": "30m", "sources": sources})
    assert status == 0
    assert "cve" not in err


@pytest.mark.parametrize(
    ("cve", "where"),
    [
        ({"sbom": {"enable": True}}, "extensions.search.cve.sbom"),
        ({"updateInterval": "soon"}, "extensions.search.cve.updateInterval"),
        ({"updateInterval": "0s"}, "extensions.search.cve.updateInterval"),
        ({"sources": "/osv"}, "extensions.search.cve.sources"),
        ({"sources": ["oci://registry.example/osv"]}, "extensions.search.cve.sources"),
        ({"sources": ["oci://osv:latest"]}, "extensions.search.cve.sources"),
    ],
)
def test_what_cannot_work_is_refused_by_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cve: dict[str, Any], where: str
) -> None:
    status, err = verify(tmp_path, capsys, cve)
    assert status == 1
    assert where in err
