"""API keys (``http.auth.apikey``), as zot has them: a user who logged in some other way makes
keys at ``/zot/auth/apikey``, and a key works as the Basic password of that user.

A key is ``zak_`` and 32 random hex digits; only its SHA-256 is stored (in the meta DB), which
is enough for a secret with 128 bits of randomness, and cheap to check on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from ocireg.meta.db import MetaDB
from ocireg.meta.records import ApiKey

PREFIX = "zak_"
# How a user must have logged in to make keys: a leaked key must not be able to mint more,
# and an OpenID user's browser session is how they get keys at all (as in zot).
KEY_MAKERS = ("htpasswd", "ldap", "openid")
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # what zot shows for "never"
_NOTE_USE_EVERY = 60.0  # seconds: lastUsed is a hint, not worth a write per request


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_api_key(password: str) -> bool:
    """Whether ``password`` has an API key's form (its prefix): what else is sent as a
    password is not looked up."""
    return password.startswith(PREFIX)


class ApiKeys:
    def __init__(self, db: MetaDB, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._noted: dict[str, float] = {}

    def create(
        self,
        user: str,
        groups: tuple[str, ...],
        label: str,
        scopes: tuple[str, ...],
        expires_at: float | None,
        creator_ua: str,
    ) -> tuple[str, ApiKey]:
        """A new key (shown once, to the caller) and what is kept of it."""
        key = PREFIX + secrets.token_hex(16)
        details = ApiKey(
            uuid=str(uuid.uuid4()),
            user=user,
            label=label,
            scopes=scopes,
            created_at=self.clock(),
            expires_at=expires_at,
            creator_ua=creator_ua,
            groups=groups,
        )
        self.db.add_api_key(key_hash(key), details)
        return key, details

    def check(self, user: str, password: str) -> list[str] | None:
        """The groups of ``user`` when ``password`` is one of their live keys (a password
        method for :class:`ocireg.auth.guard.Guard`)."""
        if not is_api_key(password):
            return None
        digest = key_hash(password)
        key = self.db.api_key(digest)
        if key is None or not hmac.compare_digest(key.user.encode(), user.encode()):
            return None
        now = self.clock()
        if key.expired(now):
            return None
        if now - self._noted.get(digest, 0.0) >= _NOTE_USE_EVERY:
            self._noted[digest] = now
            self.db.used_api_key(digest, now)
        return list(key.groups)


_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", re.ASCII)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC).timestamp()  # what every later step can still show


def parse_expiration(text: str, now: float) -> float | None:
    """zot's ``expirationDate`` (RFC 3339), None when empty; ValueError when malformed, not
    in the future, or beyond the year 9998."""
    if not text:
        return None
    if not _RFC3339.fullmatch(text):
        raise ValueError("expirationDate must be an RFC 3339 date-time, e.g. 2027-01-31T00:00:00Z")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        raise ValueError("expirationDate is not a date-time that exists") from None
    if when <= now:
        raise ValueError("expirationDate is in the past")
    if when >= _LATEST:
        raise ValueError("expirationDate is too far in the future")
    return when


def zot_details(key: ApiKey, now: float) -> dict[str, object]:
    """The key's details with zot's field names (APIKeyDetails)."""
    return {
        "createdAt": _rfc3339(key.created_at),
        "expirationDate": _rfc3339(key.expires_at),
        "isExpired": key.expired(now),
        "creatorUa": key.creator_ua,
        "generatedBy": "manual",
        "lastUsed": _rfc3339(key.last_used),
        "label": key.label,
        "scopes": list(key.scopes),
        "uuid": key.uuid,
    }


def _rfc3339(when: float | None) -> str:
    if when is None:
        return _GO_ZERO_TIME
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
