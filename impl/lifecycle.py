"""The two lines that frame a server's life in the log: ``ocireg started`` (written once the
socket listens, with the address actually bound, the root, the workers, the enabled extensions
and the authentication methods) and ``ocireg stopped`` (with the reason, when one is known)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable

from ocireg import __version__
from ocireg.config import Config
from ocireg.logs import event

log = logging.getLogger("ocireg.server")


def auth_methods(config: Config) -> list[str]:
    """How callers can authenticate, as ocireg will check them: in bearer mode only registry
    tokens (htpasswd and LDAP next to it are unused, as in zot)."""
    http, auth = config.http, config.http.auth
    if auth is not None and auth.bearer is not None:
        return ["bearer"]
    methods = ["mtls"] if http.verifies_client_certificates() else []
    if auth is not None:
        methods += [name for name in ("htpasswd", "ldap") if getattr(auth, name) is not None]
        methods += ["apikey"] if auth.apikey else []
        if auth.openid is not None:
            methods += [f"openid:{name}" for name in auth.openid.providers]
    return methods


def address(config: Config, listener: socket.socket) -> str:
    """The URL of a listening socket: the port it has, not only the one asked for."""
    host, port = listener.getsockname()[:2]
    scheme = "https" if config.http.tls is not None else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def started(config: Config, extensions: Iterable[str], listener: socket.socket) -> None:
    event(
        log,
        logging.INFO,
        "ocireg started",
        version=__version__,
        address=address(config, listener),
        root=str(config.resolved_root()),
        workers=config.http.workers,
        extensions=sorted(extensions),
        auth=auth_methods(config),
    )


def stopped(reason: str | None) -> None:
    event(log, logging.INFO, "ocireg stopped", reason=reason)
