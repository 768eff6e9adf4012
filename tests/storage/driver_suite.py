"""The suite every storage driver must pass. A driver's test module subclasses
:class:`DriverSuite` and provides the ``driver`` fixture; nothing else."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ocireg.storage.driver import (
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    StorageDriver,
)


class DriverSuite:
    @pytest.fixture
    def driver(self) -> StorageDriver:
        raise NotImplementedError

    def test_put_then_get(self, driver: StorageDriver) -> None:
        driver.put_content("a/b/c", b"hello")
        assert driver.get_content("a/b/c") == b"hello"

    def test_put_replaces(self, driver: StorageDriver) -> None:
        driver.put_content("f", b"one")
        driver.put_content("f", b"two!")
        assert driver.get_content("f") == b"two!"
        assert driver.stat("f").size == 4

    def test_put_pieces_writes_them_as_one_file_replaced_whole(self, driver: StorageDriver) -> None:
        driver.put_content("f", b"old content")
        driver.put_pieces("f", [b"new ", b"", b"content", b" in pieces"])
        assert driver.get_content("f") == b"new content in pieces"

        def failing() -> Iterator[bytes]:
            yield b"half"
            raise OSError("the source failed")

        with pytest.raises(OSError, match="source failed"):
            driver.put_pieces("f", failing())
        assert driver.get_content("f") == b"new content in pieces"  # never half-written

    def test_put_new_content_leaves_a_file_that_is_there(self, driver: StorageDriver) -> None:
        """A manifest push writes its blob so: one already there keeps its age (GC's)."""
        assert driver.put_new_content("n/file", b"first")
        before = driver.stat("n/file").mod_time
        time.sleep(0.02)
        assert not driver.put_new_content("n/file", b"first")
        assert driver.get_content("n/file") == b"first"
        assert driver.stat("n/file").mod_time == before
        with pytest.raises(InvalidPathError):
            driver.put_new_content("", b"x")

    def test_missing_file(self, driver: StorageDriver) -> None:
        with pytest.raises(PathNotFoundError):
            driver.get_content("nope")
        with pytest.raises(PathNotFoundError):
            driver.stat("nope")
        with pytest.raises(PathNotFoundError):
            driver.reader("nope")
        with pytest.raises(PathNotFoundError):
            driver.delete("nope")
        with pytest.raises(PathNotFoundError):
            driver.move("nope", "other")
        assert not driver.exists("nope")

    @pytest.mark.parametrize("bad", ["/abs", "a/../b", "a//b", "./a", "..", "a\\b", "a/"])
    def test_invalid_paths(self, driver: StorageDriver, bad: str) -> None:
        with pytest.raises(InvalidPathError):
            driver.put_content(bad, b"x")
        with pytest.raises(InvalidPathError):
            driver.get_content(bad)

    def test_reader_from_offset(self, driver: StorageDriver) -> None:
        driver.put_content("r", b"0123456789")
        with driver.reader("r", 4) as handle:
            assert handle.read() == b"456789"
        with driver.reader("r", 10) as handle:
            assert handle.read() == b""
        with pytest.raises(InvalidOffsetError):
            driver.reader("r", 11)
        with pytest.raises(InvalidOffsetError):
            driver.reader("r", -1)

    def test_writer_invisible_until_commit(self, driver: StorageDriver) -> None:
        writer = driver.writer("w/file")
        writer.write(b"abc")
        writer.write(b"def")
        assert writer.size == 6
        assert not driver.exists("w/file")
        writer.commit()
        assert driver.get_content("w/file") == b"abcdef"

    def test_writer_cancel_leaves_nothing(self, driver: StorageDriver) -> None:
        writer = driver.writer("w/gone")
        writer.write(b"abc")
        writer.cancel()
        assert not driver.exists("w/gone")
        assert driver.list("") in ([], ["w"])  # no temporary file is listed
        if driver.exists("w"):
            assert driver.list("w") == []

    def test_append_writer(self, driver: StorageDriver) -> None:
        driver.put_content("u", b"")
        for part in (b"one", b"two"):
            writer = driver.writer("u", append=True)
            writer.write(part)
            writer.commit()
        assert driver.get_content("u") == b"onetwo"
        writer = driver.writer("u", append=True)
        assert writer.size == 6
        writer.write(b"three")
        assert writer.size == 11
        writer.cancel()  # an append that is cancelled is cut back to where it started
        assert driver.get_content("u") == b"onetwo"

    def test_writer_context_cancels_on_error(self, driver: StorageDriver) -> None:
        with pytest.raises(RuntimeError), driver.writer("ctx") as writer:
            writer.write(b"partial")
            raise RuntimeError("boom")
        assert not driver.exists("ctx")

    def test_list_and_stat(self, driver: StorageDriver) -> None:
        driver.put_content("d/x", b"1")
        driver.put_content("d/y/z", b"22")
        assert driver.list("d") == ["d/x", "d/y"]
        assert "d" in driver.list("")
        assert driver.stat("d/y").is_dir
        info = driver.stat("d/y/z")
        assert (info.size, info.is_dir, info.path) == (2, False, "d/y/z")
        with pytest.raises(PathNotFoundError):
            driver.list("missing")
        assert driver.children("d") == ["d/x", "d/y"]
        assert driver.children("missing") == []

    def test_walk(self, driver: StorageDriver) -> None:
        driver.put_content("t/a", b"1")
        driver.put_content("t/b/c", b"2")
        paths = [info.path for info in driver.walk("t")]
        assert paths == ["t/a", "t/b", "t/b/c"]

    def test_move(self, driver: StorageDriver) -> None:
        driver.put_content("m/src", b"data")
        driver.put_content("m2/dst", b"old")
        driver.move("m/src", "m2/dst")
        assert driver.get_content("m2/dst") == b"data"
        assert not driver.exists("m/src")
        driver.move("m2/dst", "new/deep/place")
        assert driver.get_content("new/deep/place") == b"data"

    def test_a_move_that_says_it_renews_the_mtime_does(self, driver: StorageDriver) -> None:
        """Upload commits rely on it to skip a touch (GC ages a committed blob by it)."""
        if not driver.move_renews_mtime:
            pytest.skip(f"{driver.name}: callers touch what it moves")
        driver.put_content("old/file", b"x")
        before = driver.stat("old/file").mod_time
        time.sleep(0.02)
        driver.move("old/file", "new/file")
        assert driver.stat("new/file").mod_time > before

    def test_delete_tree(self, driver: StorageDriver) -> None:
        driver.put_content("tree/a", b"1")
        driver.put_content("tree/b/c", b"2")
        driver.put_content("treeish", b"keep")
        driver.delete("tree")
        assert not driver.exists("tree/a")
        assert not driver.exists("tree")
        assert driver.get_content("treeish") == b"keep"

    def test_remove_empty_dir_keeps_what_holds_something(self, driver: StorageDriver) -> None:
        driver.put_content("full/a/file", b"1")
        driver.put_content("emptied/file", b"2")
        driver.delete("emptied/file")
        assert driver.remove_empty_dir("emptied")
        assert not driver.exists("emptied")
        assert driver.remove_empty_dir("never/was")
        assert not driver.remove_empty_dir("full")
        assert not driver.remove_empty_dir("full/a")
        assert driver.get_content("full/a/file") == b"1"

    def test_link(self, driver: StorageDriver) -> None:
        driver.put_content("l/src", b"shared")
        driver.link("l/src", "other/dst")
        assert driver.get_content("other/dst") == b"shared"
        driver.delete("l/src")
        assert driver.get_content("other/dst") == b"shared"
        with pytest.raises(PathNotFoundError):
            driver.link("l/src", "x")

    def test_touch(self, driver: StorageDriver) -> None:
        driver.put_content("t/file", b"x")
        before = driver.stat("t/file").mod_time
        time.sleep(0.02)
        driver.touch("t/file")
        assert driver.stat("t/file").mod_time > before
        assert driver.get_content("t/file") == b"x"
        with pytest.raises(PathNotFoundError):
            driver.touch("t/missing")

    def test_large_stream(self, driver: StorageDriver) -> None:
        chunk = bytes(range(256)) * 4096  # 1 MiB
        writer = driver.writer("big")
        for _ in range(8):
            writer.write(chunk)
        writer.commit()
        assert driver.stat("big").size == 8 << 20
        with driver.reader("big", (8 << 20) - 3) as handle:
            assert handle.read() == chunk[-3:]
