"""``ocireg.entrypoints`` answers as ``importlib.metadata.entry_points(group=...)`` does: the
same entry points in the same order, a shadowed copy of a distribution left out, and
``importlib.metadata`` asked where directories do not tell everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points as from_metadata
from pathlib import Path

import pytest

from ocireg.entrypoints import entry_points

GROUPS = ("console_scripts", "pydantic", "ocireg.extensions", "pytest11", "nonexistent")


def _expected(group: str) -> list[tuple[str, str]]:
    return [(point.name, point.value) for point in from_metadata(group=group)]


def _found(group: str) -> list[tuple[str, str]]:
    return [(point.name, point.value) for point in entry_points(group)]


def _distribution(directory: Path, name: str, text: str) -> None:
    info = directory / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(text)


@pytest.mark.parametrize("group", GROUPS)
def test_the_installed_distributions_give_what_importlib_metadata_gives(group: str) -> None:
    assert _found(group) == _expected(group)


def test_a_distribution_on_the_path_is_found_once_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, later = tmp_path / "first", tmp_path / "later"
    _distribution(first, "Fake.Ext", "# a comment\n[ocireg.extensions]\nfake = fakeext:THING\n")
    _distribution(first, "other", "[console_scripts]\nx = y:z\n[ocireg.extensions]\n"
                  "spaced=fakeext : THING.real [extra]\n")  # fmt: skip
    _distribution(later, "fake_ext", "[ocireg.extensions]\nshadowed = nowhere:NOTHING\n")
    (first / "fakeext.py").write_text("class THING:\n    real = 42\n")
    monkeypatch.setattr(sys, "path", [str(first), str(later), *sys.path])
    monkeypatch.delitem(sys.modules, "fakeext", raising=False)
    found = _found("ocireg.extensions")
    assert found == _expected("ocireg.extensions")
    assert sorted(found) == [("fake", "fakeext:THING"), ("spaced", "fakeext : THING.real [extra]")]
    loaded = sorted((point.name, point.load()) for point in entry_points("ocireg.extensions"))
    assert loaded[1] == ("spaced", 42)
    assert loaded[0][1].real == 42


def test_a_zip_on_the_path_is_left_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        bundle.writestr("zipped-1.0.dist-info/entry_points.txt", "[ocireg.extensions]\nz = m:a\n")
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path])
    assert _found("ocireg.extensions") == _expected("ocireg.extensions")
    assert ("z", "m:a") in _found("ocireg.extensions")


def _without_switch() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}


def test_the_command_still_loads_an_installed_pydantic_plugin(tmp_path: Path) -> None:
    """The ``ocireg`` command skips pydantic's plugin scan only when there is no plugin."""
    _distribution(tmp_path, "fakeplugin", "[pydantic]\nmine = fakeplugin:plugin\n")
    marker = tmp_path / "loaded"
    (tmp_path / "fakeplugin.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('yes')\n"
        "class _Plugin:\n    def new_schema_validator(self, *args, **kwargs):\n"
        "        return None, None, None\nplugin = _Plugin()\n"
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"storage": {"rootDirectory": str(tmp_path / "data")}}))
    done = subprocess.run(
        [sys.executable, "-m", "ocireg", "verify", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**_without_switch(), "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "yes"
