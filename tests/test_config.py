"""The configuration model: zot's keys, defaults, strictness and error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocireg.config import default_config, load_config
from ocireg.configcheck import ConfigError


def write(tmp_path: Path, data: Any, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else data)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_embedded_default() -> None:
    config = default_config()
    assert (config.http.address, config.http.port) == ("127.0.0.1", 5000)
    assert config.storage.rootDirectory == "./ocireg-data"
    assert config.http.compat == ["docker2s2"]
    assert config.http.workers == 1
    assert config.http.maxManifestSize == 4 * 1024 * 1024
    assert (config.storage.gcDelay, config.storage.gcInterval) == (3600.0, 3600.0)


def test_minimal_file_gets_zot_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"storage": {"rootDirectory": "/data"}}))
    assert config.distSpecVersion == "1.1.1"
    assert config.storage.dedupes() and config.storage.gc is True
    assert config.storage.commit is False
    assert config.http.compat == []  # zot accepts Docker manifests only when asked
    assert config.log.level == "info"


def test_keys_are_case_insensitive_as_in_zot(tmp_path: Path) -> None:
    data = {"Storage": {"ROOTDIRECTORY": "/data", "gcdelay": "2h"}, "HTTP": {"Port": 8080}}
    config = load_config(write(tmp_path, data))
    assert config.storage.rootDirectory == "/data"
    assert config.storage.gcDelay == 7200.0
    assert config.http.port == 8080


def test_port_may_be_a_string(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, {"storage": {"rootDirectory": "/d"}, "http": {"port": "8080"}})
    )
    assert config.http.port == 8080


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"storage": {"rootDirectory": "/d", "rootdir": "x"}}, "storage.rootdir: unknown key"),
        ({"storage": {"rootDirectory": "/d"}, "htpp": {}}, "htpp: unknown key"),
        (
            {
                "storage": {"rootDirectory": "/d"},
                "http": {"tls": {"cert": "c", "key": "k", "x": 1}},
            },
            "http.tls.x: unknown key",
        ),
        ({"http": {"port": 5000}}, "storage: Field required"),
        ({"storage": {}}, "storage.rootDirectory: Field required"),
        ({"storage": {"rootDirectory": ""}}, "storage.rootDirectory: String should have at least"),
        (
            {"storage": {"rootDirectory": "/d"}, "http": {"port": "http"}},
            "http.port: Input should be",
        ),
        (
            {"storage": {"rootDirectory": "/d"}, "http": {"port": 70000}},
            "http.port: Input should be",
        ),
        ({"storage": {"rootDirectory": "/d", "gcDelay": "1 day"}}, "storage.gcDelay: Value error"),
        (
            {"storage": {"rootDirectory": "/d", "dedupe": "maybe"}},
            "storage.dedupe: Input should be",
        ),
        ({"storage": {"rootDirectory": "/d"}, "http": {"compat": ["docker1"]}}, "http.compat.0:"),
        (
            {"storage": {"rootDirectory": "/d"}, "log": {"level": "loud"}},
            "log.level: Input should be",
        ),
        ({"storage": {"rootDirectory": "/d"}, "http": {"workers": 0}}, "http.workers:"),
    ],
)
def test_bad_values_name_their_key_path(tmp_path: Path, data: Any, expected: str) -> None:
    path = write(tmp_path, data)
    found = problems(path)
    assert any(line.startswith(f"{path}: {expected}") for line in found), found


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = {"storage": {"rootDirectory": "/d", "a": 1}, "http": {"b": 2}}
    assert len(problems(write(tmp_path, data))) == 2


def test_yaml_is_read_by_extension(tmp_path: Path) -> None:
    text = "storage:\n  rootDirectory: /d\nhttp:\n  port: 6000\nlog:\n  level: WARN\n"
    config = load_config(write(tmp_path, text, "config.yml"))
    assert config.http.port == 6000 and config.log.level == "warn"


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "storage": {\n    "rootDirectory": "/d",\n  }\n}', "c.yaml")
    path = path.rename(tmp_path / "c.json")
    assert problems(path) == [
        f"{path}: invalid JSON at line 4: Expecting property name enclosed in double quotes"
    ]


def test_invalid_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "storage: [unclosed\n", "c.yaml")
    assert problems(path)[0].startswith(f"{path}: invalid YAML:")


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    toml = write(tmp_path, "x = 1", "c.toml")
    assert problems(toml) == [f"{toml}: unknown format '.toml': use .json, .yaml or .yml"]
    missing = tmp_path / "nope.json"
    assert problems(missing)[0].startswith(f"{missing}: cannot read:")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, [1, 2])
    assert problems(path) == [f"{path}: (top level): must be a mapping of sections"]


def test_durations_serialise_back_to_go_spelling() -> None:
    dumped = json.loads(default_config().model_dump_json())
    assert dumped["storage"]["gcDelay"] == "1h"


def test_retention_policies_are_checked(tmp_path: Path) -> None:
    data = {
        "storage": {
            "rootDirectory": "/d",
            "retention": {
                "policies": [{"repositories": ["**"], "keepTags": [{"patterns": ["("]}]}]
            },
        }
    }
    (line,) = problems(write(tmp_path, data))
    assert line.startswith(
        f"{tmp_path / 'config.json'}: storage.retention.policies.0.keepTags.0.patterns: "
        "Value error, '(' is not a regular expression"
    )
    keys = {"storage": {"rootDirectory": "/d", "retention": {"Policies": [
        {"Repositories": ["a/**"], "KeepTags": [{"MostRecentlyPushedCount": 3}]}]}}}  # fmt: skip
    config = load_config(write(tmp_path, keys))
    assert config.storage.retention is not None
    assert config.storage.retention.policies[0].keepTags[0].mostRecentlyPushedCount == 3


def test_registry_tokens_exclude_api_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    auth = {
        "apikey": True,
        "bearer": {"realm": "https://auth/token", "service": "reg", "cert": "/c.pem"},
    }
    path.write_text(json.dumps({"storage": {"rootDirectory": "/d"}, "http": {"auth": auth}}))
    with pytest.raises(ConfigError, match=r"http\.auth: .*tokens are the only method"):
        load_config(path)


def test_passwords_next_to_registry_tokens_load_unused(tmp_path: Path) -> None:
    # zot accepts htpasswd with bearer and never consults it; so does ocireg, and says so.
    auth = {
        "htpasswd": {"path": "/etc/htpasswd"},
        "bearer": {"realm": "https://auth/token", "service": "reg", "cert": "/c.pem"},
    }
    data = {"storage": {"rootDirectory": "/d"}, "http": {"auth": auth}}
    config = load_config(write(tmp_path, data))
    assert config.http.auth is not None
    assert not config.http.auth.passwords_configured()
    assert config.http.auth.unused_in_bearer_mode() == ["htpasswd"]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("oidc", "OIDC workload identity tokens are not implemented"),
        ("awsSecretsManager", "AWS Secrets Manager is not implemented"),
        ("upstreamTokenEndpoint", "upstream token service is not implemented"),
    ],
)
def test_zot_token_sources_are_refused_with_the_reason(
    tmp_path: Path, key: str, reason: str
) -> None:
    bearer = {"realm": "https://auth/token", "service": "reg", "cert": "/c.pem", key: {"x": 1}}
    found = problems(
        write(tmp_path, {"storage": {"rootDirectory": "/d"}, "http": {"auth": {"bearer": bearer}}})
    )
    assert len(found) == 1
    assert f"http.auth.bearer.{key}: Value error, " in found[0]
    assert reason in found[0] and "unknown key" not in found[0]


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({"gcTimeWindow": "1am-5am"}, "storage.gcTimeWindow: Value error, invalid gcTimeWindow"),
        ({"gcTimeWindow": "01:00-01:00"}, "start and end are equal"),
        ({"gcTimeWindow": "01:00-24:30"}, "24:30 is not a time of day"),
        (
            {"subPaths": {"/a/b": {"rootDirectory": "/x"}}},
            "storage.subPaths: Value error, '/a/b': a sub-path is '/' and one repository "
            "path component",
        ),
        (
            {"subPaths": {"/a": {"rootDirectory": "/d/a"}}},
            "storage: Value error, storage.subPaths./a.rootDirectory /d/a overlaps "
            "storage.rootDirectory /d",
        ),
        ({"subPaths": {"/a": {"rootDirectory": "/x", "nope": 1}}}, "subPaths./a.nope: unknown"),
    ],
)
def test_storage_roots_and_windows_are_checked(
    tmp_path: Path, storage: dict[str, Any], expected: str
) -> None:
    found = problems(write(tmp_path, {"storage": {"rootDirectory": "/d", **storage}}))
    assert len(found) == 1 and expected in found[0], found


def test_zot_keys_load_where_zot_puts_them(tmp_path: Path) -> None:
    storage = {
        "rootDirectory": "/d",
        "fastRestart": True,
        "gcTimeWindow": "22:00-06:00",
        "maxRepos": 5,
        "subPaths": {"/a": {"rootDirectory": "/x", "dedupe": False, "gcTimeWindow": ""}},
    }
    config = load_config(write(tmp_path, {"storage": storage}))
    window = config.storage.time_window()
    assert window is not None and window.contains(23 * 3600) and not window.contains(12 * 3600)
    assert config.storage.subPaths is not None
    assert config.storage.subPaths["/a"].time_window() is None


def test_the_postgres_cache_driver_is_ours_and_checked(tmp_path: Path) -> None:
    url = "postgresql://ocireg@db.example:5432/registry"
    driver = {"name": "postgres", "url": url}
    config = load_config(
        write(tmp_path, {"storage": {"rootDirectory": "/d", "cacheDriver": driver}})
    )
    postgres = config.storage.postgres()
    assert postgres is not None and postgres.url == url
    zot = {"name": "redis", "url": "redis://localhost:6379"}  # zot's: kept, to be warned about
    config = load_config(write(tmp_path, {"storage": {"rootDirectory": "/d", "cacheDriver": zot}}))
    assert config.storage.postgres() is None and config.storage.cacheDriver == zot


_NOT_A_URL = (
    "storage.cacheDriver: Value error, url: not a PostgreSQL connection URL or key=value string"
)


@pytest.mark.parametrize(
    ("driver", "expected"),
    [
        ({"name": "postgres"}, "storage.cacheDriver: Value error, url: Field required"),
        ({"name": "postgres", "url": ""}, "storage.cacheDriver: Value error, url: String should"),
        ({"name": "postgres", "url": "host=h nosuch=1"},
         f'{_NOT_A_URL}: invalid connection option "nosuch"'),
        # libpq's own text would quote the string, password and all
        ({"name": "postgres", "url": "password=sec ret"}, f"{_NOT_A_URL}: see libpq's syntax"),
        ({"name": "postgres", "url": "postgresql://h/db", "pool": 3},
         "storage.cacheDriver: Value error, pool: Extra inputs"),
    ],
)  # fmt: skip
def test_a_bad_postgres_cache_driver_is_refused_naming_the_key(
    tmp_path: Path, driver: dict[str, Any], expected: str
) -> None:
    (problem,) = problems(
        write(tmp_path, {"storage": {"rootDirectory": "/d", "cacheDriver": driver}})
    )
    assert expected in problem and "sec" not in problem, problem


def test_the_postgres_cache_driver_is_refused_under_a_sub_path(tmp_path: Path) -> None:
    driver = {"name": "postgres", "url": "postgresql://h/db"}
    sub = {"rootDirectory": "/e", "cacheDriver": driver}
    (problem,) = problems(
        write(tmp_path, {"storage": {"rootDirectory": "/d", "subPaths": {"/a": sub}}})
    )
    assert "subPaths./a.cacheDriver: the meta DB is one for every storage root" in problem
