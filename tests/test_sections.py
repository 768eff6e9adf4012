"""Configuration sections whose model is imported only when a file has them (ocireg.sections):
the same checks, paths, key spelling and schema as nested models, and nothing imported for a
section a file leaves out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocireg.auth.policyconfig import AccessControlConfig
from ocireg.auth.settings import AuthConfig
from ocireg.config import Config, config_json_schema, load_config
from ocireg.configcheck import ConfigError
from ocireg.retentionconfig import RetentionConfig
from ocireg.storage.s3config import S3DriverConfig

SECTION_MODULES = (
    "ocireg.auth.settings",
    "ocireg.auth.policyconfig",
    "ocireg.cluster.settings",
    "ocireg.retentionconfig",
    "ocireg.storage.s3config",
)

FULL = {
    "storage": {
        "rootDirectory": "/data",
        "retention": {"policies": [{"repositories": ["**"], "keepTags": [{"patterns": ["v.*"]}]}]},
        "subPaths": {
            "/s3": {"rootDirectory": "/s3", "storageDriver": {"name": "S3", "bucket": "bucket"}}
        },
    },
    "http": {
        "address": "127.0.0.1",
        "port": 5000,
        "auth": {"htpasswd": {"path": "/etc/htpasswd"}, "failDelay": 1},
        "accessControl": {"repositories": {"**": {"anonymousPolicy": ["read"]}}},
    },
    "cluster": {"members": ["127.0.0.1:5000"], "hashKey": "0123456789abcdef"},
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_a_file_without_the_sections_imports_none_of_their_models(tmp_path: Path) -> None:
    path = write(tmp_path, {"storage": {"rootDirectory": str(tmp_path / "data")}})
    script = (
        "import sys; from ocireg.config import load_config; "
        f"load_config({str(path)!r}); print([m for m in {SECTION_MODULES!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_present_sections_are_their_models(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert isinstance(config.http.auth, AuthConfig)
    assert config.http.auth.htpasswd is not None and config.http.auth.failDelay == 1
    assert isinstance(config.http.accessControl, AccessControlConfig)
    assert isinstance(config.storage.retention, RetentionConfig)
    assert config.storage.retention.policies[0].keepTags[0].patterns == ["v.*"]
    s3 = (config.storage.subPaths or {})["/s3"].storageDriver
    assert isinstance(s3, S3DriverConfig) and s3.name == "s3"  # the driver check ran first
    assert config.cluster is not None and config.cluster.hashKey == "0123456789abcdef"
    assert config.http.authenticating()


def test_an_absent_section_is_none(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"storage": {"rootDirectory": "/d"}}))
    assert (config.http.auth, config.http.accessControl, config.cluster) == (None, None, None)
    assert config.storage.retention is None and config.storage.storageDriver is None
    assert not config.http.authenticating()


def test_problems_inside_a_section_keep_their_paths(tmp_path: Path) -> None:
    data = json.loads(json.dumps(FULL))
    data["http"]["auth"]["failDelay"] = 99
    data["http"]["accessControl"]["repositories"]["**"]["anonymousPolicy"] = ["fly"]
    data["storage"]["retention"]["policies"][0]["keepTags"][0]["patterns"] = ["("]
    data["cluster"]["hashKey"] = "short"
    path = write(tmp_path, data)
    found = problems(path)
    assert any(p.startswith(f"{path}: http.auth.failDelay: ") for p in found), found
    assert any(
        p.startswith(f"{path}: http.accessControl.repositories.**.anonymousPolicy.0: ")
        for p in found
    ), found
    assert any(
        p.startswith(f"{path}: storage.retention.policies.0.keepTags.0.patterns: ") for p in found
    ), found
    assert any(p.startswith(f"{path}: cluster.hashKey: ") for p in found), found


def test_keys_inside_a_section_match_any_case_and_typos_name_the_nearest(
    tmp_path: Path,
) -> None:
    data = {
        "storage": {"rootDirectory": "/d"},
        "HTTP": {"Auth": {"HTPASSWD": {"Path": "/etc/htpasswd"}, "FailDelay": 2}},
    }
    config = load_config(write(tmp_path, data))
    assert config.http.auth is not None and config.http.auth.failDelay == 2
    data["HTTP"]["Auth"]["htpasswd"] = {"pathh": "/etc/htpasswd"}
    del data["HTTP"]["Auth"]["HTPASSWD"]
    path = write(tmp_path, data)
    assert sorted(problems(path)) == [
        f"{path}: http.auth.htpasswd.path: Field required",
        f"{path}: http.auth.htpasswd.pathh: unknown key (did you mean path?)",
    ]


def test_a_model_instance_is_taken_as_it_is() -> None:
    auth = AuthConfig.model_validate({"htpasswd": {"path": "/etc/htpasswd"}})
    config = Config.model_validate({"storage": {"rootDirectory": "/d"}, "http": {"auth": auth}})
    assert config.http.auth is auth


def test_workers_read_the_same_configuration_back(tmp_path: Path) -> None:
    # `ocireg serve` hands the workers its configuration as JSON
    config = load_config(write(tmp_path, FULL))
    assert Config.model_validate_json(config.model_dump_json()) == config


def test_the_schema_describes_a_section_as_a_nested_model() -> None:
    schema = config_json_schema()
    auth = schema["$defs"]["HTTPConfig"]["properties"]["auth"]
    assert auth == {"anyOf": [{"$ref": "#/$defs/AuthConfig"}, {"type": "null"}], "default": None}
    assert "htpasswd" in schema["$defs"]["AuthConfig"]["properties"]
    for name in ("AccessControlConfig", "RetentionConfig", "S3DriverConfig", "ClusterConfig"):
        assert name in schema["$defs"]
