"""The ``ocireg`` entry point (``ocireg.launch``): the cyclic collector is off while a command
starts, and on, with start-up's objects frozen, once the command runs or a server's app is
built. Importing ``ocireg`` as a library leaves the collector alone."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocireg import cli, dataclasscode, launch
from ocireg.config import Config


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    yield
    gc.enable()
    gc.unfreeze()


def test_the_collector_is_off_while_a_command_starts_and_on_when_it_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[bool] = []
    real_main = cli.main

    def main(argv: list[str] | None = None) -> int:
        seen.append(gc.isenabled())  # while the command line is read
        return real_main(argv)

    def schema(_args: object) -> int:
        seen.append(gc.isenabled())  # while the command runs
        return 0

    monkeypatch.setattr(cli, "main", main)
    monkeypatch.setattr(cli, "cmd_schema", schema)
    monkeypatch.setattr(sys, "argv", ["ocireg", "schema"])
    # launch.main sets pydantic's switch in os.environ: gone again after this test, so that
    # the servers later tests start in this process's environment decide it for themselves
    monkeypatch.setenv(launch.PYDANTIC_PLUGINS_SWITCH, "")
    monkeypatch.delenv(launch.PYDANTIC_PLUGINS_SWITCH)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # launch.main compiles dataclasses once
    try:
        assert launch.main() == 0
    finally:
        dataclasscode.uninstall()  # this process goes on compiling as it did
    assert seen == [False, True]
    assert gc.isenabled() and gc.get_freeze_count() > 0


# importing connexion warns (its jsonschema RefResolver, starlette's test client)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient.")
def test_a_server_collects_once_its_app_is_built(tmp_path: Path) -> None:
    from ocireg import server

    config = Config.model_validate({"storage": {"rootDirectory": str(tmp_path)}})
    gc.disable()
    server._build(config)
    assert gc.isenabled() and gc.get_freeze_count() > 0


def test_importing_ocireg_leaves_the_collector_alone() -> None:
    code = "import gc, ocireg.cli, ocireg.launch, ocireg.server; print(gc.isenabled())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_the_console_script_and_python_m_share_the_entry_point() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "ocireg"]
    assert script.value == "ocireg.launch:main"
    version = subprocess.run(
        [sys.executable, "-m", "ocireg", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip().endswith(__import__("ocireg").__version__)
