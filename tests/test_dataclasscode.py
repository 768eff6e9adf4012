"""Dataclass methods compiled once per machine (ocireg.dataclasscode): classes behave exactly as
``@dataclass`` makes them, the next process compiles nothing already kept, and a file that is
not this interpreter's, not whole, not only this user's or reached through a place that is
not the user's own is never read, and never written through."""

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
    root = tmp_path / "xdg"
    root.mkdir(mode=0o700)
    yield root / "ocireg" / "dataclass-code" / "code.marshal"
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
    dataclasscode.install(blocker / "code" / "code.marshal")  # its directory cannot exist
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


def saved(cache: Path) -> None:
    dataclasscode.install(cache)
    define()
    dataclasscode.save()
    dataclasscode.uninstall()


def test_a_planted_symlink_is_never_written_through(cache: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    cache.parent.mkdir(parents=True, mode=0o700)
    cache.symlink_to(victim)
    (cache.parent / f".{cache.name}.{os.getpid()}").symlink_to(victim)  # a guessed temporary
    saved(cache)
    assert victim.read_text() == "precious"
    assert not cache.is_symlink() and cache.read_bytes().startswith(importlib.util.MAGIC_NUMBER)


def test_a_symlinked_cache_file_is_not_read(cache: Path, tmp_path: Path) -> None:
    saved(cache)
    elsewhere = tmp_path / "elsewhere.marshal"
    cache.rename(elsewhere)
    cache.symlink_to(elsewhere)
    dataclasscode.install(cache)
    define()
    dataclasscode.save()  # compiled again: the link was not followed, so it is replaced
    assert not cache.is_symlink()


@pytest.mark.parametrize("directory", ["ocireg", "dataclass-code"])
def test_a_symlinked_directory_is_neither_read_nor_written(
    cache: Path, tmp_path: Path, directory: str
) -> None:
    saved(cache)
    link = cache.parent if directory == "dataclass-code" else cache.parent.parent
    target = tmp_path / "moved"
    link.rename(target)
    link.symlink_to(target)
    before = sorted(p.name for p in target.rglob("*"))
    dataclasscode.install(cache)
    assert dataclasscode._store is not None and not dataclasscode._store.known
    define()
    dataclasscode.save()
    assert sorted(p.name for p in target.rglob("*")) == before


@pytest.mark.parametrize("directory", ["root", "ocireg", "dataclass-code"])
def test_a_directory_others_may_write_is_neither_read_nor_written(
    cache: Path, directory: str
) -> None:
    saved(cache)
    place = {"root": cache.parents[2], "ocireg": cache.parents[1], "dataclass-code": cache.parent}
    place[directory].chmod(0o777)
    inode = kept(cache)()
    dataclasscode.install(cache)
    assert dataclasscode._store is not None and not dataclasscode._store.known
    define()
    dataclasscode.save()
    assert kept(cache)() == inode


def test_a_sticky_root_such_as_tmp_is_fine(cache: Path) -> None:
    cache.parents[2].chmod(0o1777)
    saved(cache)
    dataclasscode.install(cache)
    assert dataclasscode._store is not None and dataclasscode._store.known


def test_a_root_of_another_user_is_left_alone(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As under ``sudo`` with the user's HOME: nothing created there, nothing read."""
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    saved(cache)
    assert not cache.parents[1].exists()


def test_a_root_that_is_missing_is_made_below_the_users_own(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".cache" / "ocireg" / "dataclass-code" / "code.marshal"
    try:
        saved(path)
    finally:
        dataclasscode.uninstall()
    assert path.read_bytes().startswith(importlib.util.MAGIC_NUMBER)
    assert path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "failure", [MemoryError, RecursionError, SystemError, IndexError], ids=lambda e: e.__name__
)
def test_a_file_marshal_cannot_load_only_means_compiling(
    cache: Path, monkeypatch: pytest.MonkeyPatch, failure: type[Exception]
) -> None:
    saved(cache)

    def loads(_data: bytes) -> Any:
        raise failure("corrupt")

    monkeypatch.setattr(dataclasscode.marshal, "loads", loads)
    assert dataclasscode.install(cache)
    assert dataclasscode._store is not None and not dataclasscode._store.known


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", "/home/someone")
    assert dataclasscode.user_cache_root() == Path("/home/someone/.cache")
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/me")
    assert dataclasscode.user_cache_root() == Path("/var/cache/me")


def methods(classes: list[type]) -> list[Any]:
    return [cls.__init__.__code__ for cls in classes]  # type: ignore[misc]


def test_classes_with_the_same_text_get_code_of_their_own(cache: Path) -> None:
    """CPython specialises code objects in place: classes sharing one would thrash."""

    def same_fields() -> list[type]:
        return [dataclasses.make_dataclass(f"C{n}", [("x", int), ("y", int)]) for n in range(3)]

    dataclasscode.install(cache)
    first = methods(same_fields())
    dataclasscode.save()
    dataclasscode.uninstall()
    dataclasscode.install(cache)
    second = methods(same_fields())
    for codes in (first, second):
        assert len({id(code) for code in codes}) == len(codes)
        assert all(code == codes[0] for code in codes)


def test_the_tests_keep_the_users_cache_in_a_directory_of_their_own(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Commands tests run must not read or rewrite the developer's ~/.cache/ocireg."""
    cache = Path(os.environ["XDG_CACHE_HOME"])
    assert cache.is_relative_to(tmp_path_factory.getbasetemp())
    assert dataclasscode.default_path() == cache / "ocireg" / "dataclass-code" / (
        f"{sys.implementation.cache_tag}.marshal"
    )
