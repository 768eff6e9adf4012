"""Start-up warnings: configured zot keys that ocireg accepts but does not implement yet.

Each is one line, ``source: key.path: not implemented yet, ignored: what that means``, printed by
``ocireg verify`` and logged by ``ocireg serve`` at start, so a zot file that asks for something
ocireg does not do never looks as if it were in effect. Keys whose absence would put data
somewhere other than the file says (``storage.storageDriver`` naming gcs or azure) are refused by
the config model instead; see :mod:`ocireg.config`.
"""

from __future__ import annotations

from ocireg.config import Config, RootConfig, extension_warnings

_IGNORED = "not implemented yet, ignored"


def _root_warnings(root: RootConfig, path: str, source: str) -> list[str]:
    lines = []
    if root.cacheDriver is not None and root.postgres() is None:
        lines.append(
            f"{source}: {path}.cacheDriver: {_IGNORED}: the dedupe index and the meta DB "
            "stay on local disk under storage.rootDirectory (ocireg's cacheDriver is "
            "name: postgres)"
        )
    if root.remoteCache:
        lines.append(
            f"{source}: {path}.remoteCache: {_IGNORED}: where the dedupe index lives is set by "
            "cacheDriver alone (name: postgres, else the local meta DB)"
        )
    if root.redirectBlobURL and not root.on_s3():
        lines.append(
            f"{source}: {path}.redirectBlobURL: {_IGNORED}: blobs are always served by "
            "ocireg itself, never by a redirect (it takes effect with the s3 storageDriver)"
        )
    return lines + _s3_warnings(root, path, source)


def _s3_warnings(root: RootConfig, path: str, source: str) -> list[str]:
    if root.storageDriver is None:
        return []
    lines = [
        f"{source}: {path}.storageDriver.{key}: {_IGNORED}: ocireg's s3 driver does not act on it"
        for key in root.storageDriver.unbuilt_keys()
    ]
    return lines


def _auth_warnings(config: Config, source: str) -> list[str]:
    auth = config.http.auth
    if auth is None:
        return []
    lines = [
        f"{source}: http.auth.{name}: not used: with http.auth.bearer only registry tokens "
        "authenticate (as in zot), so no password is checked"
        for name in auth.unused_in_bearer_mode()
    ]
    if not _ui_configured(config) and auth.openid is None:
        session_keys = ("sessionKeysFile", "sessionDriver", "secureSession")
        lines += [
            f"{source}: http.auth.{name}: not used: only the web UI (extensions.ui) and "
            "OpenID login (http.auth.openid) have browser sessions"
            for name in session_keys
            if getattr(auth, name) is not None
        ]
    return lines


def _ui_configured(config: Config) -> bool:
    sections = {str(k).lower(): v for k, v in (config.extensions or {}).items()}
    if "ui" not in sections:
        return False
    ui = sections["ui"]
    return not isinstance(ui, dict) or ui.get("enable", True) is not False


def startup_warnings(config: Config, source: str) -> list[str]:
    """Every warning for ``config``, in file order: storage, http, extensions."""
    return config_warnings(config, source) + extension_warnings(config, source)


def config_warnings(config: Config, source: str) -> list[str]:
    """The warnings outside ``extensions`` (those depend on which extensions are known)."""
    lines = _root_warnings(config.storage, "storage", source)
    for key, route in (config.storage.subPaths or {}).items():
        lines += _root_warnings(route, f"storage.subPaths.{key}", source)
    lines += _auth_warnings(config, source)
    return lines
