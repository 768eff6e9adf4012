"""The methods ``@dataclass`` writes, compiled once per machine rather than at every start.

``@dataclass`` writes the source of each class's ``__init__``, ``__repr__``, ``__eq__`` (and
more) and compiles it when the class is defined. A server start defines some 130 dataclasses
(ocireg's, pydantic's, anyio's, annotated_types'): about 650 small compilations, some 0.05 CPU s
of every cold start (issue 13). Python keeps compiled modules in ``__pycache__``; this does the
same for that generated source: the code compiled from each text is kept in one file, by the
exact text, and the next start executes it instead of compiling the text again. The code
object of a text depends only on the text and the interpreter, so the file is named by the
interpreter's cache tag and starts with its bytecode magic number; any other file is ignored.

It is the user's file (``$XDG_CACHE_HOME/ocireg/dataclass-code/``, ``~/.cache`` by default),
written whole (temporary file, rename) and mode 0600, and read only when it belongs to this
user and nobody else may write it (code from it is run, as from ``__pycache__``). Only the
``ocireg`` command installs it (:func:`install`), before it imports anything else: importing
ocireg as a library changes nothing.

How: ``dataclasses`` runs each text with ``exec(text, globals, namespace)``. Installing gives
that module an ``exec`` of its own (a module's global shadows the builtin for that module
alone), which runs the kept code for a text instead. Compiling a text as ``exec`` would
(``"<string>"``, no ``__future__`` flags: ``dataclasses`` has none) makes the same code
object, so the classes are the same.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import importlib.util
import marshal
import os
import stat
import sys
from pathlib import Path
from types import CodeType
from typing import Any

_KEEP_FACTOR = 4


class _Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, CodeType] = _read(path)
        self.used: dict[str, CodeType] = {}
        self.new = False

    def code(self, text: str) -> CodeType:
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


def _read(path: Path) -> dict[str, CodeType]:
    try:
        with path.open("rb") as file:
            status = os.fstat(file.fileno())
            if status.st_uid != os.getuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return {}
            if file.read(len(importlib.util.MAGIC_NUMBER)) != importlib.util.MAGIC_NUMBER:
                return {}
            table = marshal.loads(file.read())  # marshal.load(file): small reads, 10x slower
    except (OSError, EOFError, ValueError, TypeError):
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
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no HOME and no passwd entry
        return None
    return base / "ocireg" / "dataclass-code" / f"{sys.implementation.cache_tag}.marshal"


def install(path: Path | None = None) -> bool:
    """Take compiled methods from ``path`` (the default: :func:`default_path`) from now on;
    False when there is no place for the file."""
    global _store
    path = path or default_path()
    if path is None:
        return False
    _store = _Store(path)
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    return True


def save() -> None:
    """Write what was compiled since the file was read (nothing when nothing was); a file
    that cannot be written is left as it is."""
    if _store is None or not _store.new:
        return
    path = _store.path
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(importlib.util.MAGIC_NUMBER)
            marshal.dump(_store.to_keep(), file)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return
    _store.new = False


def uninstall() -> None:
    """Back to compiling every time (tests)."""
    global _store
    vars(dataclasses).pop("exec", None)
    _store = None
