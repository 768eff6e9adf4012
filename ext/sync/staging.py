"""zot's ``downloadDir``: a local directory where blobs are downloaded before they go into
storage.

Each worker process stages in a directory of its own, ``ocireg-sync-<pid>-<random>``, which it
holds an exclusive ``flock`` on for as long as it runs. At start-up every such directory whose
lock can be taken belongs to a process that is gone (a crash, a kill): it is removed, so nothing
is left there after a restart, while the directories of workers still running are left alone.
A staged blob is committed through the registry's upload path, which checks its digest (with the
hash computed beside the download when the file is linked in, else hashing the copy), so it
becomes visible only whole and verified, whatever the storage driver.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from ocireg.digests import Digest
from ocireg.logs import event

log = logging.getLogger("ocireg.sync")
PREFIX = "ocireg-sync-"
LOCK = ".lock"


def check_usable(path: str) -> str:
    """``path`` if a process can stage downloads there (it exists as a writable directory, or
    can be created as one); ValueError saying why not."""
    directory = Path(path)
    if not directory.is_absolute():
        raise ValueError("must be an absolute path")
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        what = "is not a directory" if existing == directory else f"{existing} is not a directory"
        raise ValueError(f"unusable: {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == directory else f" ({existing}, where it would be created)"
        raise ValueError(f"unusable: not writable by this user{where}")
    return path


class Staging:
    """This process's staging directory under ``downloadDir``."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep()
        name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        # made under a name no sweep looks at, locked, then named: another worker's sweep never
        # finds it unlocked
        making = self.root / f".{name}"
        making.mkdir()
        self._lock = open(making / LOCK, "wb")  # noqa: SIM115 - held while we run
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.directory = making.rename(self.root / name)

    def path(self, digest: Digest) -> Path:
        return self.directory / f"{digest.algorithm}-{digest.encoded}-{uuid.uuid4().hex[:8]}"

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self._lock.close()

    def _sweep(self) -> None:
        for candidate in [*self.root.glob(f"{PREFIX}*"), *self.root.glob(f".{PREFIX}*")]:
            # one being made has no lock file for a moment: only a named one is gone without it
            named = candidate.name.startswith(PREFIX)
            if candidate.is_dir() and _abandoned(candidate, named):
                shutil.rmtree(candidate, ignore_errors=True)
                event(log, logging.INFO, "sync staging swept", directory=str(candidate))


def _abandoned(directory: Path, without_lock: bool) -> bool:
    """Whether no live process holds ``directory``'s lock (it then is ours to remove)."""
    handle: BinaryIO
    try:
        handle = open(directory / LOCK, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return without_lock
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
        return True
