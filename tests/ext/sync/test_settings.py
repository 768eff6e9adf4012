"""The sync section: zot's keys checked by `ocireg verify`, unbuilt ones warned by key path,
onlySigned refused without a trust extension that verifies, the documented example loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocireg.cli import main
from ocireg.config import load_config
from ocireg.ext.sync.settings import SyncSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "sync.yaml"


def verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sync: Any, **more: Any
) -> tuple[int, list[str]]:
    path = tmp_path / "zot.json"
    data = {"storage": {"rootDirectory": str(tmp_path)}, "extensions": {"sync": sync, **more}}
    path.write_text(json.dumps(data))
    status = main(["verify", str(path)])
    lines = [line.removeprefix(f"{path}: ") for line in capsys.readouterr().err.splitlines()]
    return status, [line for line in lines if line != "configuration is valid"]


def upstream(**keys: Any) -> dict[str, Any]:
    return {"urls": ["https://up.example:5000"], "onDemand": True, **keys}


def test_the_example_loads_with_every_rule() -> None:
    sync = load_config(EXAMPLE).extensions["sync"]  # type: ignore[index]
    settings = SyncSettings.model_validate(sync)
    periodic, on_demand = settings.registries
    assert periodic.pollInterval == 6 * 3600 and periodic.maxRetryDelay == 300
    assert periodic.content[0].tags is not None and periodic.content[0].tags.semver
    assert on_demand.onDemand and on_demand.manifestCheckInterval == 300
    assert (on_demand.syncTimeout, on_demand.reqConcurrent, on_demand.reqPerSec) == (3600, 5, 10)
    assert settings.notices() == []


def test_a_full_zot_entry_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = upstream(
        content=[
            {
                "prefix": "/a/**",
                "destination": "/m",
                "stripPrefix": True,
                "tags": {"regex": "^v", "excludeRegex": "rc", "semver": True},
            }
        ],
        pollInterval="6h",
        tlsVerify=False,
        certDir=str(tmp_path),
        maxRetries=3,
        retryDelay="5m",
        syncTimeout="30m",
        reqConcurrent=8,
        reqPerSec=2.5,
        preserveDigest=True,
        syncLegacyCosignTags=False,
    )
    sync = {
        "credentialsFile": "/c.json",
        "downloadDir": str(tmp_path / "downloads"),  # made at start-up
        "registries": [entry],
    }
    assert verify(tmp_path, capsys, sync) == (0, [])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("disableHTTP2", True),
        ("maxIdleConnsPerHost", 8),
        ("credentialHelper", "ecr"),
    ],
)
def test_keys_not_built_are_warned_by_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: Any
) -> None:
    status, lines = verify(tmp_path, capsys, {"registries": [upstream(**{key: value})]})
    assert status == 0
    (line,) = lines
    assert line.startswith(f"extensions.sync.registries.0.{key}: not supported yet, ignored: ")


@pytest.mark.parametrize(
    ("entry", "where", "why"),
    [
        ({"urls": ["https://u"]}, "registries.0", "does nothing"),
        (upstream(urls=["ftp://u"]), "registries.0.urls", "not an http(s)://host[:port] URL"),
        (upstream(urls=[]), "registries.0.urls", "at least 1 item"),
        (upstream(content=[{"prefix": "/a/[z-a]"}]), "registries.0.content.0.prefix", ""),
        (
            upstream(content=[{"prefix": "a", "tags": {"regex": "("}}]),
            "registries.0.content.0.tags.regex",
            "not a regular expression",
        ),
        (upstream(pollInterval="soon"), "registries.0.pollInterval", "invalid duration"),
        (upstream(maxRetries=-1), "registries.0.maxRetries", ""),
        (upstream(syncTimeout="0s"), "registries.0.syncTimeout", "greater than 0"),
        (upstream(reqConcurrent=0), "registries.0.reqConcurrent", "greater than 0"),
        (upstream(reqPerSec=-1), "registries.0.reqPerSec", "greater than 0"),
        (upstream(colour="red"), "registries.0.colour", "unknown key"),
    ],
)
def test_bad_entries_are_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: Any, where: str, why: str
) -> None:
    status, lines = verify(tmp_path, capsys, {"registries": [entry]})
    assert status != 0
    (line,) = lines
    assert line.startswith(f"extensions.sync.{where}: ")
    assert why in line


@pytest.mark.parametrize(
    ("trust", "why"),
    [
        (None, "needs the trust extension (extensions.trust)"),
        ({"enable": False, "cosign": True}, "needs the trust extension enabled"),
        ({}, "needs extensions.trust.cosign or extensions.trust.notation on"),
    ],
)
def test_only_signed_needs_a_trust_extension_that_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trust: Any, why: str
) -> None:
    more = {} if trust is None else {"trust": trust}
    entries = [upstream(), upstream(onlySigned=True)]
    status, lines = verify(tmp_path, capsys, {"registries": entries}, **more)
    assert status != 0
    (line,) = lines
    assert line.startswith(f"extensions.sync.registries.1.onlySigned: {why}")


@pytest.mark.parametrize("trust", [{"cosign": True}, {"Notation": True}])
def test_only_signed_with_trust_verifying_is_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trust: Any
) -> None:
    entry = upstream(onlySigned=True)
    assert verify(tmp_path, capsys, {"registries": [entry]}, trust=trust) == (0, [])
