"""The methods ``@dataclass`` writes, compiled once per machine rather than at every start.

``@dataclass`` writes the source of each class's ``__init__``, ``__repr__``, ``__eq__`` (and
more) and compiles it when the class is defined. A server start defines some 130 dataclasses
(ocireg's, pydantic's, anyio's, annotated_types'): about 650 small compilations, some 0.05 CPU s
of every cold start (issue 13). Python keeps compiled modules in ``__pycache__``; this does the
same for that generated source: the code compiled from each text is kept in one file, by the
exact text, and the next start executes it instead of compiling the text again. The code
object of a text depends only on the text and the interpreter, so the file is named by the
interpreter's cache tag and starts with its bytecode magic number; any other file is ignored.

It is the user's file (``$XDG_CACHE_HOME/ocireg/dataclass-code/``, ``~/.cache`` by default;
a relative ``XDG_CACHE_HOME`` is ignored, as the XDG spec says). Code from it is run, so it is
read and written only through directories that are the effective user's own: the cache root
must belong to the effective user (and be writable by nobody else, unless sticky, as
``/tmp``), and ``ocireg/`` and ``dataclass-code/`` must be real directories (not symlinks),
the effective user's, writable by nobody else. The file is opened without following a
symlink and read only when it is a regular file of the effective user's that nobody else may
write; it is written whole (a new temporary file, created exclusively, then renamed) with
mode 0600. So ``sudo ocireg`` with the user's ``HOME`` neither reads nor creates anything
there. What remains trusted is what ``__pycache__`` trusts: the effective user's own files
(anyone who can write them can already run code as that user). A file that cannot be read
whole (truncated, corrupt, another interpreter's) is ignored and replaced at the next save.

Only the ``ocireg`` command installs it (:func:`install`), before it imports anything else:
importing ocireg as a library changes nothing. Server workers that uvicorn spawns rather
than forks (see ``ocireg.workers``) do not start through this command: they compile as usual.

How: ``dataclasses`` runs each text with ``exec(text, globals, namespace)``. Installing gives
that module an ``exec`` of its own (a module's global shadows the builtin for that module
alone), which runs the kept code for a text instead. Compiling a text as ``exec`` would
(``"<string>"``, no ``__future__`` flags: ``dataclasses`` has none) makes the same code
object, so the classes are the same. A text used again in the same process (classes with
the same fields) gets a fresh copy of its code: CPython keeps its specialising caches in
the code object, and methods of different classes sharing one would keep undoing each
other's.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import importlib.util
import marshal
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from types import CodeType
from typing import Any

_KEEP_FACTOR = 4
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY
_NOT_OURS_TO_WRITE = stat.S_IWGRP | stat.S_IWOTH


class _Store:
    # The whole table stays in memory for the process's life (some 4 MB for 1,600 texts): a
    # class defined after the start (a module imported on first use) still finds its code,
    # and the save at exit still keeps what other commands use.
    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, CodeType] = _read(path)
        self.used: dict[str, CodeType] = {}
        self.new = False

    def code(self, text: str) -> CodeType:
        if text in self.used:  # another class with the same text: a code object of its own
            return _fresh(self.used[text])
        code = self.known.get(text)
        if code is None:
            # as exec(text) compiles it: no __future__ flags from this module
            code = self.known[text] = compile(text, "<string>", "exec", dont_inherit=True)
            self.new = True
        self.used[text] = code
        return code

    def to_keep(self) -> dict[str, CodeType]:
        """Everything known, unless upgrades have left far more than this process used."""
        return self.known if len(self.known) <= _KEEP_FACTOR * len(self.used) else self.used


_store: _Store | None = None


def _fresh(code: CodeType) -> CodeType:
    """A copy of ``code`` and of the code objects in it (the methods the text defines)."""
    constants = tuple(_fresh(c) if isinstance(c, CodeType) else c for c in code.co_consts)
    return code.replace(co_consts=constants)


def _private(descriptor: int, *, sticky_ok: bool = False) -> bool:
    """The open directory or file is the effective user's, and nobody else may write it."""
    status = os.fstat(descriptor)
    if status.st_uid != os.geteuid():
        return False
    return not status.st_mode & _NOT_OURS_TO_WRITE or (
        sticky_ok and bool(status.st_mode & stat.S_ISVTX)
    )


def _create_root(root: Path) -> None:
    """Make the cache root when it is missing, below a directory of the effective user's."""
    existing = root
    while not existing.exists():
        if existing.parent == existing:
            return
        existing = existing.parent
    if existing != root and existing.stat().st_uid == os.geteuid():
        root.mkdir(parents=True, mode=0o700, exist_ok=True)


@contextlib.contextmanager
def _directory(path: Path, *, create: bool) -> Iterator[int | None]:
    """An open descriptor of the file's directory when the chain to it is the effective
    user's own (see the module's docstring), else None."""
    root, names = path.parents[2], (path.parent.parent.name, path.parent.name)
    opened: list[int] = []
    try:
        if create:
            _create_root(root)
        opened.append(os.open(root, _DIRECTORY))
        if not _private(opened[-1], sticky_ok=True):
            yield None
            return
        for name in names:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=opened[-1])
            opened.append(os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=opened[-1]))
            if not _private(opened[-1]):
                yield None
                return
        yield opened[-1]
    finally:
        for descriptor in opened:
            os.close(descriptor)


def _read(path: Path) -> dict[str, CodeType]:
    try:
        with _directory(path, create=False) as directory:
            if directory is None:
                return {}
            descriptor = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=directory)
        with os.fdopen(descriptor, "rb") as file:
            if not (stat.S_ISREG(os.fstat(descriptor).st_mode) and _private(descriptor)):
                return {}
            if file.read(len(importlib.util.MAGIC_NUMBER)) != importlib.util.MAGIC_NUMBER:
                return {}
            table = marshal.loads(file.read())  # marshal.load(file): small reads, 10x slower
    except Exception:  # corrupt data may raise anything, MemoryError too: compile instead
        return {}
    if not isinstance(table, dict):
        return {}
    return {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, CodeType)}


def _exec(source: Any, globals: Any = None, locals: Any = None, /, **options: Any) -> None:
    """``exec`` as ``dataclasses`` calls it, with the kept code for a text."""
    if isinstance(source, str) and _store is not None:
        source = _store.code(source)
    builtins.exec(source, globals, locals, **options)


def default_path() -> Path | None:
    """``$XDG_CACHE_HOME/ocireg/dataclass-code/<interpreter>.marshal``, when there is a home."""
    try:
        base = Path(user_cache_root())
    except RuntimeError:  # no HOME and no passwd entry
        return None
    return base / "ocireg" / "dataclass-code" / f"{sys.implementation.cache_tag}.marshal"


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME`` when it is an absolute path (the XDG spec ignores a relative one),
    else ``~/.cache``; RuntimeError when there is no home."""
    given = os.environ.get("XDG_CACHE_HOME", "")
    return Path(given) if os.path.isabs(given) else Path.home() / ".cache"


def install(path: Path | None = None) -> bool:
    """Take compiled methods from ``path`` (the default: :func:`default_path`; the two
    directories above the file are kept private, the one above them is the cache root) from
    now on; False when there is no place for the file."""
    global _store
    path = path or default_path()
    if path is None:
        return False
    _store = _Store(path)
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    return True


def save() -> None:
    """Write what was compiled since the file was read (nothing when nothing was); a file
    that cannot be written, or only through a place that is not the user's own, is left as
    it is."""
    if _store is None or not _store.new:
        return
    try:
        with _directory(_store.path, create=True) as directory:
            if directory is None:
                return
            _write(directory, _store.path.name, _store.to_keep())
    except OSError:
        return
    _store.new = False


def _write(directory: int, name: str, table: dict[str, CodeType]) -> None:
    temporary = f".{name}.{secrets.token_hex(8)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    descriptor = os.open(temporary, flags, 0o600, dir_fd=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(importlib.util.MAGIC_NUMBER)
            marshal.dump(table, file)
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        raise


def uninstall() -> None:
    """Back to compiling every time (tests)."""
    global _store
    vars(dataclasses).pop("exec", None)
    _store = None
