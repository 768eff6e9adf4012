"""Dataclass methods compiled once per machine (ocireg.dataclasscode): classes behave exactly as
``@dataclass`` makes them, the next process compiles nothing already kept, and a file that is
not this interpreter's, not whole or not only this user's is never read."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocireg import dataclasscode


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "cache" / "code.marshal"
    yield path
    dataclasscode.uninstall()


def define() -> dict[str, type]:
    """Classes using what @dataclass writes: __init__ with defaults and factories,
    __post_init__, repr, eq, order, hash, frozen, slots, keyword-only fields."""

    @dataclasses.dataclass(frozen=True, order=True)
    class Point:
        x: int
        y: int = 0
        tags: list[str] = dataclasses.field(default_factory=list, compare=False, hash=False)

    @dataclasses.dataclass(slots=True, kw_only=True)
    class Options:
        name: str
        size: int = 3
        seen: list[int] = dataclasses.field(default_factory=list)

        def __post_init__(self) -> None:
            self.seen.append(self.size)

    @dataclasses.dataclass(unsafe_hash=True)
    class Pair:
        left: Any
        right: Any = None

    return {"Point": Point, "Options": Options, "Pair": Pair}


def behaviour(classes: dict[str, type]) -> list[Any]:
    point, options, pair = classes["Point"], classes["Options"], classes["Pair"]
    seen: list[Any] = [
        repr(point(1, 2, ["a"])),
        point(1, 2, ["a"]) == point(1, 2, ["b"]),
        point(1, 2) < point(2, 0),
        hash(point(1, 2)) == hash(point(1, 2, ["z"])),
        repr(options(name="n")),
        options(name="n", size=5).seen,
        repr(pair(1)),
        hash(pair(1, 2)) == hash(pair(1, 2)),
        {name: getattr(cls.__init__, "__annotations__", None) for name, cls in classes.items()},
        {name: cls.__doc__ for name, cls in classes.items()},
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        point(1).x = 2
    return seen


def kept(path: Path) -> Callable[[], int]:
    """The inode of the file now: a save that writes replaces the file."""
    return lambda: path.stat().st_ino


def test_classes_behave_as_dataclass_makes_them(cache: Path) -> None:
    expected = behaviour(define())
    assert dataclasscode.install(cache)
    assert behaviour(define()) == expected  # compiled here
    dataclasscode.save()
    dataclasscode.uninstall()
    assert dataclasscode.install(cache)
    assert behaviour(define()) == expected  # from the file


def test_the_next_process_compiles_nothing_kept(cache: Path) -> None:
    dataclasscode.install(cache)
    define()
    dataclasscode.save()
    assert cache.read_bytes().startswith(importlib.util.MAGIC_NUMBER)
    assert cache.stat().st_mode & 0o777 == 0o600
    inode = kept(cache)()
    dataclasscode.uninstall()
    dataclasscode.install(cache)
    define()
    dataclasscode.save()  # nothing new: not written again
    assert kept(cache)() == inode


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda p: p.write_bytes(b"\x00\x00\r\n" + p.read_bytes()[4:]), id="magic"),
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[:100]), id="truncated"),
        pytest.param(lambda p: p.chmod(0o620), id="group-writable"),
    ],
)
def test_a_file_that_is_not_fit_is_not_read(cache: Path, spoil: Callable[[Path], Any]) -> None:
    expected = behaviour(define())
    dataclasscode.install(cache)
    define()
    dataclasscode.save()
    dataclasscode.uninstall()
    spoil(cache)
    inode = kept(cache)()
    dataclasscode.install(cache)
    assert behaviour(define()) == expected
    dataclasscode.save()  # compiled again, so written again, whole and 0600
    assert kept(cache)() != inode and cache.stat().st_mode & 0o777 == 0o600


def test_an_unwritable_place_only_means_compiling_each_time(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    dataclasscode.install(blocker / "code.marshal")  # its directory cannot exist
    try:
        define()
        dataclasscode.save()
    finally:
        dataclasscode.uninstall()
    assert blocker.read_text() == ""


def test_only_the_ocireg_command_installs_it(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    code = "import dataclasses, ocireg.cli, ocireg.server; print('exec' in vars(dataclasses))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"
    schema = [sys.executable, "-m", "ocireg", "schema"]
    subprocess.run(schema, capture_output=True, env=env, check=True)
    written = tmp_path / "ocireg" / "dataclass-code" / f"{sys.implementation.cache_tag}.marshal"
    inode = written.stat().st_ino
    # another process (another hash seed) writes the same texts: nothing new, nothing written
    subprocess.run(schema, capture_output=True, env={**env, "PYTHONHASHSEED": "7"}, check=True)
    assert written.stat().st_ino == inode
