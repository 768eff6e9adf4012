"""zot's ``http.auth.sessionKeysFile``: the keys of the web UI's session cookies.

The file is JSON, ``{"hashKey": "...", "encryptKey": "..."}``. ``hashKey`` signs the cookie
(HMAC-SHA256). The cookie holds only a random session id, so there is nothing to encrypt:
``encryptKey`` is accepted, and start-up says it is not used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ocireg.configcheck import ConfigError
from ocireg.logs import event

log = logging.getLogger("ocireg.auth")

KEYS_KEY = "http.auth.sessionKeysFile"
MIN_HASH_KEY = 16  # characters: a shorter key is guessable


@dataclass(frozen=True)
class SessionKeys:
    hash_key: bytes
    unused: tuple[str, ...]  # keys of the file that have no use here (for a warning)


def read_session_keys(path: str) -> SessionKeys:
    """zot's session keys file, ``{"hashKey": ..., "encryptKey": ...}``; ConfigError naming
    the key when it cannot be used."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{KEYS_KEY}: cannot read {path}: {exc}"]) from None
    if not isinstance(document, dict):
        raise ConfigError([f"{KEYS_KEY}: {path} must hold a JSON object"])
    hash_key = document.get("hashKey")
    if not isinstance(hash_key, str) or len(hash_key) < MIN_HASH_KEY:
        raise ConfigError(
            [f"{KEYS_KEY}: {path}: hashKey must be {MIN_HASH_KEY} characters or more"]
        )
    unknown = sorted(set(document) - {"hashKey", "encryptKey"})
    if unknown:
        raise ConfigError([f"{KEYS_KEY}: {path}: unknown keys {', '.join(unknown)}"])
    unused = ("encryptKey",) if "encryptKey" in document else ()
    return SessionKeys(hash_key.encode(), unused)


def warn_unused_session_keys(keys: SessionKeys) -> None:
    """Say, once at start-up, which keys of the file have no use here."""
    for key in keys.unused:
        why = "the cookie holds only a random id, signed with hashKey: nothing to encrypt"
        event(log, logging.WARNING, f"{KEYS_KEY}: {key} not used: {why}")
