"""What the configuration asks of this machine, checked before anything listens: storage roots
that can be created and written, a log file that can be opened, an address this host has, and
the files TLS needs. Each problem is one ``source: key.path: why`` line (a ConfigError), never a
traceback; ``ocireg verify`` and ``ocireg serve`` both ask.

Nothing is left behind: a probe directory or file made to learn whether a place is writable is
removed at once.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from pathlib import Path

from ocireg.config import Config, RootConfig
from ocireg.configcheck import ConfigError


def check_environment(config: Config, source: str) -> None:
    problems = [f"{source}: {problem}" for problem in _problems(config)]
    if problems:
        raise ConfigError(problems)


def _problems(config: Config) -> list[str]:
    found = []
    roots = {"storage.rootDirectory": config.storage.rootDirectory}
    for key, route in (config.storage.subPaths or {}).items():
        roots[f"storage.subPaths.{key}.rootDirectory"] = route.rootDirectory
    for key, root in roots.items():
        why = _unusable_directory(Path(root).expanduser())
        if why:
            found.append(f"{key}: {root}: {why}")
    for key, path in (("log.output", config.log.output), ("log.audit", config.log.audit)):
        why = _unwritable_file(Path(path).expanduser()) if path else None
        if why:
            found.append(f"{key}: {path}: {why}")
    found += _bucket_problems(config)
    found += _database_problems(config)
    why = _unbindable(config.http.address)
    if why:
        found.append(f"http.address: {config.http.address}: {why}")
    if config.http.tls is not None:
        for key in ("cert", "key", "cacert"):
            value = getattr(config.http.tls, key)
            if value is not None and not os.access(value, os.R_OK):
                found.append(f"http.tls.{key}: cannot read {value}")
    return found + _session_key_problems(config)


def _session_key_problems(config: Config) -> list[str]:
    auth = config.http.auth
    if auth is None or auth.sessionKeysFile is None:
        return []
    from ocireg.auth.sessionkeys import read_session_keys

    try:
        read_session_keys(auth.sessionKeysFile)
    except ConfigError as exc:
        return exc.problems
    return []


def _bucket_problems(config: Config) -> list[str]:
    """Each s3 root's bucket, asked once: a missing bucket or wrong credentials would
    otherwise fail every request."""
    from ocireg.registry.build import root_driver

    found = []
    roots: list[tuple[str, RootConfig]] = [("storage", config.storage)]
    roots += [(f"storage.subPaths.{k}", r) for k, r in (config.storage.subPaths or {}).items()]
    for key, root in roots:
        if root.storageDriver is None:
            continue
        bucket = root.storageDriver.bucket
        try:
            driver = root_driver(root)  # an S3Driver; the s3 extra missing is said here
            why = getattr(driver, "check_bucket", lambda: None)()
        except (RuntimeError, ValueError) as error:
            why = str(error)
        if why:
            found.append(f"{key}.storageDriver.bucket: {bucket}: {why}")
    return found


def _database_problems(config: Config) -> list[str]:
    """The PostgreSQL meta DB, connected to once: like a bucket, one that cannot be reached
    would otherwise fail every request."""
    from ocireg.meta.backends import check_reachable

    why = check_reachable(config)
    return [why] if why else []


def _unusable_directory(path: Path) -> str | None:
    """Why the registry could not keep a directory at ``path``, or None."""
    if path.exists() and not path.is_dir():
        return "exists and is not a directory"
    existing = path if path.exists() else _nearest_existing(path)
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:  # the real question: can a directory be made (and so files written) here?
        Path(tempfile.mkdtemp(prefix=".ocireg-probe-", dir=existing)).rmdir()
    except OSError as exc:
        return f"cannot write in {existing}: {_reason(exc)}"
    return None


def _unwritable_file(path: Path) -> str | None:
    if path.is_dir():
        return "is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "cannot be written"
    if not path.parent.is_dir():
        return f"its directory {path.parent} does not exist"
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".ocireg-probe-", dir=path.parent)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write in {path.parent}: {_reason(exc)}"
    return None


def _unbindable(address: str) -> str | None:
    """Whether this host has ``address`` (any port: the port may be held by the server being
    replaced)."""
    try:
        infos = socket.getaddrinfo(address, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"not an address this host can resolve ({exc.strerror})"
    family, kind, proto, _, where = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.bind(where)
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            return "not an address of this host"
        return _reason(exc)
    return None


def _nearest_existing(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
