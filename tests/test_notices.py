"""zot keys ocireg does not implement: one warning line each from `ocireg verify` and at start,
or a refusal with the reason where ignoring them would misplace data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocireg.cli import main
from tests.s3server import S3Endpoint, s3_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used here by name

BEARER = {"realm": "https://auth.example/token", "service": "reg", "cert": "/etc/c.pem"}


def verify(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any) -> tuple[int, list[str]]:
    path = tmp_path / "zot.json"
    path.write_text(json.dumps(data))
    status = main(["verify", str(path)])
    err = capsys.readouterr().err
    prefix = f"{path}: "
    lines = [line.removeprefix(prefix) for line in err.splitlines()]
    assert all(line != text for line, text in zip(lines, err.splitlines(), strict=True))
    return status, lines


def storage(**keys: Any) -> dict[str, Any]:
    return {"storage": {"rootDirectory": "/var/lib/zot", **keys}}


# Small configs with the keys of zot's examples/config-{redis,dynamodb,boltdb,...}.json.
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            storage(cacheDriver={"name": "redis", "url": "redis://localhost:6379"}),
            "storage.cacheDriver: not implemented yet, ignored: the dedupe index and the meta "
            "DB stay on local disk under storage.rootDirectory (ocireg's cacheDriver is "
            "name: postgres)",
        ),
        (
            storage(remoteCache=True),
            "storage.remoteCache: not implemented yet, ignored: where the dedupe index lives "
            "is set by cacheDriver alone (name: postgres, else the local meta DB)",
        ),
        (
            storage(redirectBlobURL=True),
            "storage.redirectBlobURL: not implemented yet, ignored: blobs are always served "
            "by ocireg itself, never by a redirect (it takes effect with the s3 storageDriver)",
        ),
        (
            storage(subPaths={"/a": {"rootDirectory": "/var/lib/a", "remoteCache": True}}),
            "storage.subPaths./a.remoteCache: not implemented yet, ignored: where the dedupe "
            "index lives is set by cacheDriver alone (name: postgres, else the local meta DB)",
        ),
        (
            {**storage(), "http": {"auth": {"htpasswd": {"path": "/h"}, "bearer": BEARER}}},
            "http.auth.htpasswd: not used: with http.auth.bearer only registry tokens "
            "authenticate (as in zot), so no password is checked",
        ),
        (
            {**storage(), "extensions": {"apikey": {"enable": True}}},
            "extensions.apikey: not implemented yet, ignored",
        ),
    ],
)
def test_verify_warns_once_per_unimplemented_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any, expected: str
) -> None:
    status, lines = verify(tmp_path, capsys, data)
    assert status == 0
    assert lines == [expected]


def test_keys_left_at_what_ocireg_does_get_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {**storage(remoteCache=False, redirectBlobURL=False, fastRestart=True)}
    assert verify(tmp_path, capsys, data) == (0, [])


@pytest.mark.parametrize(
    ("driver", "why"),
    [
        (
            {"name": "gcs", "bucket": "zot"},
            "the gcs storage driver is not implemented: ocireg would store everything on local "
            "disk under rootDirectory instead, so it refuses this file",
        ),
        ({"name": "azure"}, "the azure storage driver is not implemented"),
        ({"name": "floppy"}, "unknown storage driver 'floppy': zot knows s3, gcs and azure"),
        ({"region": "x"}, "needs a name (zot knows s3, gcs and azure)"),
    ],
)
def test_an_unbuilt_storage_driver_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], driver: Any, why: str
) -> None:
    status, lines = verify(tmp_path, capsys, storage(storageDriver=driver))
    assert status == 1
    assert len(lines) == 1
    assert lines[0].startswith("storage.storageDriver: Value error, ")
    assert why in lines[0]


@pytest.mark.parametrize(
    ("driver", "problem"),
    [
        ({"name": "s3", "region": "us-east-2"}, "storage.storageDriver.bucket: Field required"),
        (
            {"name": "s3", "bucket": "zot", "accesskey": "a"},
            "accesskey and secretkey go together",
        ),
        (
            {"name": "s3", "bucket": "zot", "chunksize": 1024},
            "storage.storageDriver.chunksize: Input should be greater than or equal to 5242880",
        ),
    ],
)
def test_a_bad_s3_driver_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], driver: Any, problem: str
) -> None:
    status, lines = verify(tmp_path, capsys, storage(storageDriver=driver))
    assert status == 1
    assert any(problem in line for line in lines), lines


def test_s3_keys_not_built_are_warned_and_dedupe_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], s3_endpoint: S3Endpoint
) -> None:
    # verify asks the bucket: a real one, on the test endpoint
    driver = {**s3_endpoint.driver_config(s3_endpoint.new_bucket()), "encrypt": True}
    data = storage(storageDriver=driver, dedupe=True, redirectBlobURL=True)
    status, lines = verify(tmp_path, capsys, data)
    assert status == 0
    assert lines[:1] == [
        "storage.storageDriver.encrypt: not implemented yet, ignored: ocireg's s3 driver does "
        "not act on it",
    ]
    assert not any("redirectBlobURL" in line for line in lines)  # in effect on s3
    assert not any("dedupe" in line for line in lines)  # by reference on s3


def test_gcs_in_a_sub_path_is_refused_before_listening(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gcs.json"
    data = storage(
        subPaths={"/a": {"rootDirectory": str(tmp_path / "a"), "storageDriver": {"name": "gcs"}}}
    )
    data["storage"]["rootDirectory"] = str(tmp_path / "root")
    path.write_text(json.dumps(data))
    assert main(["serve", str(path)]) == 1
    err = capsys.readouterr().err
    assert "storage.subPaths./a.storageDriver: Value error, the gcs storage driver" in err
    assert not (tmp_path / "root").exists()


def test_serve_logs_the_same_warnings_at_start(tmp_path: Path) -> None:
    from tests.liveserver import live_server

    extra = {
        "storage": {"cacheDriver": {"name": "redis", "url": "redis://localhost:6379"}},
    }
    with live_server(tmp_path, extra) as live:
        lines = [line["msg"] for line in live.log_events()]
    assert (
        "configuration: storage.cacheDriver: not implemented yet, ignored: the dedupe index "
        "and the meta DB stay on local disk under storage.rootDirectory (ocireg's cacheDriver "
        "is name: postgres)"
    ) in lines
