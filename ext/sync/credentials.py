"""``credentialsFile``: a JSON map of upstream ``host[:port]`` to ``{username, password}``, as
zot reads it, read again whenever the file changes (its modification time, size or inode), so
rotated passwords apply without a restart. A file that cannot be read or parsed keeps the last
good credentials and is logged once per change."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from ocireg.logs import event

log = logging.getLogger("ocireg.sync")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


class CredentialsFile:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._stamp: tuple[float, int, int] | None = None
        self._known: dict[str, Credentials] = {}

    def for_host(self, host: str) -> Credentials | None:
        """The credentials for ``host[:port]`` as the file says now."""
        if self.path is None:
            return None
        self._reload_if_changed()
        return self._known.get(host)

    def _reload_if_changed(self) -> None:
        assert self.path is not None
        try:
            info = os.stat(self.path)
        except OSError as error:
            stamp = (0.0, -1, -1)
            if stamp != self._stamp:
                self._stamp = stamp
                event(
                    log,
                    logging.ERROR,
                    "sync credentials unreadable",
                    path=self.path,
                    error=str(error),
                )
            return
        stamp = (info.st_mtime, info.st_size, info.st_ino)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._known = _parse(self.path)
        except (OSError, ValueError) as error:
            event(log, logging.ERROR, "sync credentials invalid", path=self.path, error=str(error))
            return
        event(log, logging.INFO, "sync credentials loaded", path=self.path, hosts=len(self._known))


def _parse(path: str) -> dict[str, Credentials]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object of host -> {username, password}")
    known = {}
    for host, entry in data.items():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), str) for key in ("username", "password")
        ):
            raise ValueError(f"{host}: must be {{username, password}} strings")
        known[str(host)] = Credentials(entry["username"], entry["password"])
    return known
