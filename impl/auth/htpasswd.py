"""htpasswd credential files for ``http.auth.htpasswd.path``, as zot reads them.

Each line is ``user:hash``. The hashes checked are bcrypt (``$2a$``, ``$2b$``, ``$2y$``, what
``htpasswd -B`` writes and zot documents) and SHA-crypt (``$5$`` SHA-256, ``$6$`` SHA-512, what
``openssl passwd -5/-6`` and ``mkpasswd`` write). Anything else (``{SHA}``, ``$apr1$``, DES, plain
text) never verifies: those are too weak to accept, and the operator is told once per user.

The file is read again when it changes, so users can be added without a restart; a file that goes
away keeps the users last read. Successful checks are remembered (as a keyed digest, never the
password) so a client sending Basic auth on every request pays for bcrypt once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import bcrypt
from pydantic import BaseModel, ConfigDict

from ocireg.logs import event

log = logging.getLogger("ocireg.auth")


class HtpasswdConfig(BaseModel):
    """``http.auth.htpasswd``."""

    model_config = ConfigDict(extra="forbid")

    path: str


class HtpasswdError(Exception):
    """The htpasswd file cannot be used."""


# --- SHA-crypt ($5$, $6$), Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" -------------
# The stdlib crypt module is deprecated (and gone in 3.13); libpass (the maintained successor of
# passlib) computes it. This function only adds crypt(3)'s handling of a setting around it.

ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999_999_999
SALT_MAX = 16

_CRYPT64 = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SETTING = re.compile(rb"\$([56])\$(?:rounds=([0-9]+)\$)?([./0-9A-Za-z]*)(?:\$|\Z)")
_SHA_CRYPT = {b"5": "sha256_crypt", b"6": "sha512_crypt"}  # passlib's handlers, by name


def sha_crypt(password: bytes, setting: bytes) -> bytes:
    """``crypt(3)`` for ``$5$``/``$6$`` settings: ``$id$[rounds=N$]salt``, or a whole hash.

    As glibc does, the salt is cut to 16 bytes and rounds are clamped to 1000..999999999; an
    explicit ``rounds=`` is written back even when it is the default.
    """
    match = _SETTING.match(setting)
    if match is None:
        raise ValueError("not a SHA-crypt setting: $5$ or $6$, then a salt of ./0-9A-Za-z")
    ident, rounds_text, salt = match[1], match[2], match[3][:SALT_MAX]
    rounds = ROUNDS_DEFAULT
    if rounds_text is not None:
        rounds = max(ROUNDS_MIN, min(int(rounds_text), ROUNDS_MAX))
    # passlib is imported on first use: a registry without htpasswd never needs it.
    from passlib import hash as passlib_hash

    crypt = getattr(passlib_hash, _SHA_CRYPT[ident])
    handler = crypt.using(salt=salt.decode("ascii"), rounds=rounds)
    hashed: str = handler.hash(password)
    prefix = f"${ident.decode()}$"
    if rounds_text is not None and not hashed.startswith(prefix + "rounds="):
        # libpass leaves the default rounds out; crypt(3) keeps what the setting said
        hashed = f"{prefix}rounds={rounds}${hashed.removeprefix(prefix)}"
    return hashed.encode("ascii")


# --- Stored hashes -------------------------------------------------------------------------------

_BCRYPT_HASH = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
# Only what crypt(3) itself writes: rounds in range, a salt of at most 16 of crypt's base64
# alphabet (what libpass takes; glibc and openssl write no other), the whole digest.
_SHA_HASH = re.compile(
    r"(\$([56])\$(?:rounds=[1-9][0-9]{3,8}\$)?)[./A-Za-z0-9]{0,16}\$([./A-Za-z0-9]+)"
)
_SHA_DIGEST_CHARS = {"5": 43, "6": 86}
# SHA-crypt's work grows with the square of the password's length; libxcrypt refuses passwords
# longer than this, and so does this module, so one request cannot hold a thread for seconds.
_SHA_CRYPT_KEY_MAX = 512
# zot (Go's x/crypto/bcrypt) compares only the first 72 bytes of a password, as bcrypt defines.
_BCRYPT_KEY_MAX = 72


def _check_bcrypt(password: bytes, hashed: bytes) -> bool:
    try:
        # bcrypt>=5 refuses a longer password instead of truncating it; truncate as zot does.
        return bcrypt.checkpw(password[:_BCRYPT_KEY_MAX], hashed)
    except ValueError:  # a salt that only looks right (its last character has spare bits set)
        return False


def _check_sha_crypt(password: bytes, hashed: bytes) -> bool:
    # crypt(3) reads a C string: a password with a NUL byte is not one it could have hashed
    # (libpass refuses it rather than hash a prefix, as glibc would)
    if len(password) > _SHA_CRYPT_KEY_MAX or b"\0" in password:
        return False
    return hmac.compare_digest(sha_crypt(password, hashed), hashed)


@dataclass(frozen=True)
class _Entry:
    hashed: bytes
    check: Callable[[bytes, bytes], bool] | None  # None: a format that never verifies
    # What a check costs, the scheme and its work factor ("$2b$10$", "$6$rounds=9000$"), which an
    # unknown user's dummy copies; for a format that never verifies, its name for the log.
    kind: str


def _entry(hashed: str) -> _Entry:
    if _BCRYPT_HASH.fullmatch(hashed):
        return _Entry(hashed.encode(), _check_bcrypt, "$2b" + hashed[3:7])
    sha = _SHA_HASH.fullmatch(hashed)
    if sha and len(sha[3]) == _SHA_DIGEST_CHARS[sha[2]] and hashed.isascii():
        return _Entry(hashed.encode(), _check_sha_crypt, sha[1])
    # Not kept: it may be a plain-text password.
    return _Entry(b"", None, _describe_unsupported(hashed))


_UNSUPPORTED = (
    ("{SHA}", "SHA-1 ({SHA})"),
    ("$apr1$", "Apache MD5 ($apr1$)"),
    ("$1$", "MD5-crypt ($1$)"),
    ("$y$", "yescrypt ($y$)"),
    ("$argon2", "Argon2"),
    ("$2", "a malformed or unsupported bcrypt hash"),
    ("$5$", "a malformed SHA-256-crypt hash"),
    ("$6$", "a malformed SHA-512-crypt hash"),
)


def _describe_unsupported(hashed: str) -> str:
    """A name for a hash this module does not check, never the text itself (it may be a
    plain-text password)."""
    if not hashed:
        return "an empty hash"
    for prefix, name in _UNSUPPORTED:
        if hashed.startswith(prefix):
            return name
    return "an unrecognised format (plain text or DES crypt?)"


# Dummy hashes for users that do not exist, by kind, so that each kind is hashed once a process.
_dummies: dict[str, _Entry] = {}
_DEFAULT_KIND = "$2b$10$"  # Go's bcrypt.DefaultCost, for a file without a checkable hash


def _dummy(kind: str) -> _Entry:
    entry = _dummies.get(kind)
    if entry is None:
        junk = secrets.token_hex(16).encode()  # a password crypt(3) could take: no NUL byte
        if kind.startswith("$2"):
            hashed = bcrypt.hashpw(junk, bcrypt.gensalt(rounds=int(kind[4:6])))
            entry = _Entry(hashed, _check_bcrypt, kind)
        else:
            salt = bytes(secrets.choice(_CRYPT64) for _ in range(SALT_MAX))
            entry = _Entry(sha_crypt(junk, kind.encode() + salt), _check_sha_crypt, kind)
        _dummies[kind] = entry
    return entry


# --- The file ------------------------------------------------------------------------------------

_CACHE_SIZE = 1024
_Signature = tuple[int, int, int, int, int, int]


def _signature(st: os.stat_result) -> _Signature:
    # ctime too: a copy that keeps the old mtime (cp -p, rsync -t) into the same inode and the
    # same size still changes it.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


@dataclass
class _Contents:
    """One reading of the file, with the successful checks made against it."""

    signature: _Signature
    entries: dict[str, _Entry]
    dummy: _Entry
    verified: OrderedDict[bytes, None] = field(default_factory=OrderedDict)


# The files (as read: path and signature) whose problems this process has logged. ``ocireg
# serve`` reads the file to check it before listening, then again to serve it: the same
# contents are told about once; a changed file is told about again.
_told: set[tuple[str, _Signature]] = set()


def told() -> list[tuple[str, _Signature]]:
    """The file versions whose problems this process has logged, for :func:`recall`."""
    return sorted(_told)


def recall(versions: Iterable[tuple[str, Sequence[int]]]) -> None:
    """Take another process's :func:`told`: a worker does not repeat what its parent said."""
    for path, (dev, ino, size, mtime, ctime, mode) in versions:
        _told.add((path, (dev, ino, size, mtime, ctime, mode)))


def _read(path: str) -> _Contents:
    """Read and parse the file; OSError when it cannot be read."""
    with open(path, "rb") as file:
        # The signature of what is read, not of the path later: a change during the read shows
        # up as a new signature at the next check.
        signature = _signature(os.fstat(file.fileno()))
        data = file.read()
    told = (path, signature) in _told
    _told.add((path, signature))
    entries = _parse(data.decode("utf-8", "surrogateescape"), path, warn=not told)
    return _Contents(signature, entries, _dummy(_common_kind(entries)))


def _parse(text: str, path: str, warn: bool = True) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, hashed = line.partition(":")
        if not colon or not user:
            # The line itself is not logged: it may be a password pasted by mistake.
            if warn:
                event(
                    log,
                    logging.WARNING,
                    "htpasswd line is not user:hash, skipped",
                    path=path,
                    line=number,
                )
            continue
        if user in entries and warn:
            event(
                log,
                logging.WARNING,
                "htpasswd user listed again, the later line wins",
                path=path,
                line=number,
                user=user,
            )
        entries[user] = _entry(hashed.strip())
    for user, entry in entries.items():
        if entry.check is None and warn:
            event(
                log,
                logging.WARNING,
                "htpasswd user can never log in: unsupported hash format",
                path=path,
                user=user,
                format=entry.kind,
            )
    return entries


def _common_kind(entries: dict[str, _Entry]) -> str:
    """The most frequent kind of hash in the file: an unknown user is checked against one."""
    kinds = Counter(entry.kind for entry in entries.values() if entry.check is not None)
    return kinds.most_common(1)[0][0] if kinds else _DEFAULT_KIND


def _now() -> float:
    return time.monotonic()


class HtpasswdFile:
    """The users of an htpasswd file, checked against the file as it is now (within a second)."""

    check_interval: float = 1.0  # seconds between two looks at the file's stat()

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            contents = _read(self.path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise HtpasswdError(f"cannot read the htpasswd file {self.path}: {reason}") from exc
        self._contents = contents
        self._lock = threading.Lock()
        self._checked_at = _now()
        self._unreadable = False  # warned that the file is gone, until it is back
        # Keys the remembered checks, so that what is kept in memory cannot be tried against
        # password guesses without it.
        self._secret = secrets.token_bytes(32)

    def verify(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s. Takes about one hash check whether or not the user
        exists (a bcrypt check is 1-250 ms: call it from a thread)."""
        contents = self._current()
        entry = contents.entries.get(user)
        key = _utf8(password)
        if entry is None or entry.check is None or key is None:
            # Spend what a real check would, so the time taken does not tell who exists.
            _spend(contents.dummy, key or b"")
            return False
        remembered = self._remembered(user, entry.hashed, key)
        with self._lock:
            if remembered in contents.verified:
                contents.verified.move_to_end(remembered)
                return True
        if not entry.check(key, entry.hashed):
            return False
        with self._lock:
            contents.verified[remembered] = None
            if len(contents.verified) > _CACHE_SIZE:
                contents.verified.popitem(last=False)
        return True

    def remembered(self, user: str, password: str) -> bool:
        """Whether this password was verified for this user since the file last changed: no
        hashing, so callers on an event loop can ask before they go to a thread."""
        contents = self._current()
        entry = contents.entries.get(user)
        key = _utf8(password)
        if entry is None or entry.check is None or key is None:
            return False
        remembered = self._remembered(user, entry.hashed, key)
        with self._lock:
            return remembered in contents.verified

    def users(self) -> list[str]:
        """The users who can log in (a hash in a supported format), sorted."""
        entries = self._current().entries
        return sorted(user for user, entry in entries.items() if entry.check is not None)

    def _remembered(self, user: str, hashed: bytes, password: bytes) -> bytes:
        """The key of a successful check. The stored hash is part of it, so a changed password
        can never be satisfied by the old one's remembered check."""
        parts = (user.encode("utf-8", "surrogatepass"), hashed, password)
        message = b"".join(len(part).to_bytes(4, "big") + part for part in parts)
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def _current(self) -> _Contents:
        """The contents, read again first if the file changed (looked at once a second at most)."""
        now = _now()
        with self._lock:
            contents = self._contents
            if now - self._checked_at < self.check_interval:
                return contents
            self._checked_at = now
        # Only this caller looks at the file; the others go on with the contents they have.
        return self._refresh(contents)

    def _refresh(self, contents: _Contents) -> _Contents:
        try:
            if _signature(os.stat(self.path)) == contents.signature:
                self._unreadable = False
                return contents
            fresh = _read(self.path)
        except OSError as exc:
            self._warn_unreadable(exc)
            return contents
        with self._lock:
            self._contents = fresh
        self._unreadable = False
        event(
            log, logging.INFO, "htpasswd file read again", path=self.path, users=len(fresh.entries)
        )
        return fresh

    def _warn_unreadable(self, exc: Exception) -> None:
        if not self._unreadable:
            self._unreadable = True
            event(
                log,
                logging.WARNING,
                "htpasswd file unreadable, keeping the users last read",
                path=self.path,
                error=str(exc),
            )


def _utf8(text: str) -> bytes | None:
    """The bytes a password was hashed from; None for lone surrogates, which have none."""
    try:
        # surrogateescape: a caller that decoded non-UTF-8 bytes that way gets them back.
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None


def _spend(dummy: _Entry, password: bytes) -> None:
    if dummy.check is not None:
        dummy.check(password, dummy.hashed)
