"""Which extensions a configuration enables, and how it is told when it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ocireg.configcheck import ConfigError
from ocireg.extensions.declaration import Extension, ExtensionSettings
from ocireg.extensions.loading import Enabled, available, resolve
from tests.extended import ROOT
from tests.extensions import badsettings


class DemoSettings(ExtensionSettings):
    level: int = 1


DEMO = Extension(name="demo", description="d", setup="x:setup", settings=DemoSettings)
NEEDY = Extension(
    name="needy",
    description="needs a module that is not installed",
    setup="x:setup",
    extra="needy",
    requires=("ocireg_no_such_module",),
)
KNOWN = available([DEMO, NEEDY])


def enabled(sections: dict[str, Any] | None) -> list[Enabled]:
    return resolve(sections, "cfg.yaml", KNOWN)[0]


def problems(sections: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        resolve(sections, "cfg.yaml", KNOWN)
    return caught.value.problems


def names(sections: dict[str, Any] | None) -> list[str]:
    return [each.name for each in enabled(sections)]


def test_builtins_are_known() -> None:
    assert {"specs", "mgmt", "lint"} <= set(available())


def test_a_present_section_enables_unless_enable_false() -> None:
    assert "demo" in names({"demo": {}})
    assert "demo" in names({"demo": None})  # `demo:` with nothing under it, in YAML
    assert "demo" in names({"demo": {"enable": True}})
    assert "demo" not in names({"demo": {"enable": False}})
    assert "demo" not in names({})


def test_default_on_extensions_run_without_a_section() -> None:
    assert names(None) == ["specs"]
    assert "specs" not in names({"specs": {"enable": False}})


def test_settings_are_validated_and_keys_are_case_insensitive() -> None:
    (demo,) = [each for each in enabled({"Demo": {"LEVEL": 3}}) if each.name == "demo"]
    assert isinstance(demo.settings, DemoSettings)
    assert demo.settings.level == 3


def test_bad_settings_name_the_key_path() -> None:
    assert problems({"demo": {"level": "high", "colour": 1}}) == [
        "cfg.yaml: extensions.demo.level: Input should be a valid integer, unable to parse "
        "string as an integer",
        "cfg.yaml: extensions.demo.colour: unknown key",
    ]
    assert problems({"demo": [1]}) == ["cfg.yaml: extensions.demo: must be a mapping"]


def test_unknown_extension_lists_the_known_ones() -> None:
    (line,) = problems({"nope": {}})
    assert line.startswith(
        "cfg.yaml: extensions.nope: unknown extension (known: clientreport, demo, events, lint,"
    )


def test_zot_extensions_not_implemented_yet_are_a_warning() -> None:
    chosen, warnings = resolve({"apikey": {"enable": True}}, "cfg.yaml", KNOWN)
    assert [each.name for each in chosen] == ["specs"]
    assert warnings == ["cfg.yaml: extensions.apikey: not implemented yet, ignored"]


def test_missing_extra_is_one_line_naming_the_install_command() -> None:
    assert problems({"needy": {}}) == [
        "cfg.yaml: extensions.needy: needs ocireg_no_such_module, not installed: "
        "pip install 'ocireg[needy]'"
    ]
    assert "needy" not in names({"needy": {"enable": False}})  # off: nothing to install


def test_two_different_extensions_cannot_share_a_name() -> None:
    other = Extension(name="demo", description="other", setup="y:setup")
    with pytest.raises(ValueError, match="two extensions are named 'demo'"):
        available([DEMO, other])


def test_an_extension_turned_on_by_another_is_enabled_and_said() -> None:
    leader = Extension(name="leader", description="l", setup="x:setup")
    follower = Extension(name="follower", description="f", setup="x:setup", follows=("leader",))
    known = available([leader, follower])
    chosen, warnings = resolve({"leader": {}}, "cfg.yaml", known)
    assert "follower" in [each.name for each in chosen]
    assert warnings == [
        "cfg.yaml: extensions.follower: on because extensions.leader is on, as in zot; "
        "`follower: {enable: false}` turns it off"
    ]
    chosen, warnings = resolve({"leader": {}, "follower": {"enable": False}}, "cfg.yaml", known)
    assert "follower" not in [each.name for each in chosen] and warnings == []
    chosen, warnings = resolve({"leader": {}, "follower": {}}, "cfg.yaml", known)
    assert "follower" in [each.name for each in chosen] and warnings == []
    assert resolve({}, "cfg.yaml", known)[1] == []


def test_an_extension_without_one_it_needs_is_refused_naming_both() -> None:
    base = Extension(name="base", description="b", setup="x:setup")
    user = Extension(name="user", description="u", setup="x:setup", needs=("base",))
    known = available([base, user])
    with pytest.raises(ConfigError) as caught:
        resolve({"user": {}}, "cfg.yaml", known)
    assert caught.value.problems == ["cfg.yaml: extensions.user: needs extensions.base enabled too"]
    with pytest.raises(ConfigError):
        resolve({"user": {}, "base": {"enable": False}}, "cfg.yaml", known)
    chosen, _ = resolve({"user": {}, "base": {}}, "cfg.yaml", known)
    assert [each.name for each in chosen][-2:] == ["base", "user"]
    assert "user" not in [e.name for e in resolve({"user": {"enable": False}}, "c", known)[0]]


BAD = available(
    [
        badsettings.NO_MODULE,
        badsettings.NO_CLASS,
        badsettings.NOT_SETTINGS,
        badsettings.NOT_INSTALLED,
    ]
)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("nomodule", "cannot be imported: No module named 'tests.extensions.no_such_module'"),
        ("noclass", "cannot be imported: module 'tests.extensions.badsettings' has no attribute"),
        ("notsettings", "ocireg.config:Config is not an ExtensionSettings"),
    ],
)
def test_a_settings_model_that_cannot_be_had_is_one_line_naming_the_key(
    name: str, why: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({name.upper(): {}}, "cfg.yaml", BAD)
    (problem,) = caught.value.problems
    assert problem.startswith(f"cfg.yaml: extensions.{name.upper()}: settings ")
    assert why in problem


def test_a_settings_model_of_a_default_on_extension_is_said_the_same_way() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({}, "cfg.yaml", available([badsettings.DEFAULT_ON]))
    (problem,) = caught.value.problems
    assert problem.startswith("cfg.yaml: extensions.defaulton: settings ")


def test_missing_dependencies_are_said_before_what_they_break() -> None:
    install = "pip install 'ocireg[notinstalled]'"
    needs = (
        f"cfg.yaml: extensions.notinstalled: needs ocireg_no_such_module, not installed: {install}"
    )
    with pytest.raises(ConfigError) as caught:
        resolve({"notinstalled": {}}, "cfg.yaml", BAD)
    assert caught.value.problems == [needs]  # not the settings module's ImportError
    with pytest.raises(ConfigError) as caught:
        resolve({"needy": {"level": "x", "enable": True}}, "cfg.yaml", available([NEEDY]))
    assert caught.value.problems[0].startswith("cfg.yaml: extensions.needy: needs ")


def run_ocireg(*args: str, extension: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OCIREG_EXTENSIONS": f"tests.extensions.badsettings:{extension}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "ocireg", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_verify_and_schema_say_a_broken_settings_name_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        json.dumps({"storage": {"rootDirectory": str(tmp_path)}, "extensions": {"noclass": {}}})
    )
    verified = run_ocireg("verify", str(config), extension="NO_CLASS")
    schema = run_ocireg("schema", extension="NO_CLASS")
    for done, source in ((verified, str(config)), (schema, "ocireg schema")):
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"{source}: extensions.noclass: settings tests.extensions.badsettings:NoSuchClass "
            "cannot be imported: module 'tests.extensions.badsettings' has no attribute "
            "'NoSuchClass'"
        ]
