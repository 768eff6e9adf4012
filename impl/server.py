"""Run the registry under uvicorn (uvloop + httptools), in one or several worker processes."""

from __future__ import annotations

import logging
import os
import ssl
import sys
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from ocireg.app import create_app, plan
from ocireg.config import Config, HTTPConfig, TLSConfig
from ocireg.connections import ConnectionGuard, GuardedHttpToolsProtocol, protocol_factory
from ocireg.extensions.loading import prepare_all
from ocireg.openfiles import raise_open_file_limit
from ocireg.routing import check_spec
from ocireg.tls import ClientCertHttpToolsProtocol
from ocireg.workers import fork_workers

CONFIG_ENV = "OCIREG_CONFIG_JSON"
_NEVER = 10 * 365 * 24 * 3600.0  # idleTimeout 0: keep idle connections (uvicorn needs a number)
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}


def setup_logging(config: Config) -> None:
    handler: logging.Handler
    if config.log.output:
        handler = logging.FileHandler(config.log.output)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("ocireg")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[config.log.level.lower()])
    root.propagate = False


def app_from_env() -> ASGIApp:
    """Factory each worker process calls: the parent passes the resolved config in the env."""
    config = Config.model_validate_json(os.environ[CONFIG_ENV])
    setup_logging(config)
    return create_app(config)


def _tls_options(tls: TLSConfig) -> dict[str, Any]:
    """HTTPS (the protocol that passes client certificates on is in
    :func:`_connection_options`). With a CA, a client certificate is asked for and, when one
    is sent, verified against the CA (an unverifiable one fails the handshake); a client
    without one still connects and may authenticate otherwise: Go's VerifyClientCertIfGiven,
    as zot does."""
    options: dict[str, Any] = {
        "ssl_certfile": tls.cert,
        "ssl_keyfile": tls.key,
    }
    if tls.cacert is not None:
        options["ssl_ca_certs"] = tls.cacert
        options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
    return options


def _connection_options(http: HTTPConfig) -> dict[str, Any]:
    """The connection limits: uvicorn's idle keep-alive timeout, and the protocol that adds
    the header timeout and the per-client cap (``connections.py``)."""
    guard = ConnectionGuard(http.readHeaderTimeout or None, http.maxConnectionsPerClient or None)
    protocol = ClientCertHttpToolsProtocol if http.tls is not None else GuardedHttpToolsProtocol
    return {
        "http": protocol_factory(guard, protocol),
        "timeout_keep_alive": http.idleTimeout or _NEVER,
    }


def serve(config: Config) -> None:
    setup_logging(config)
    options: dict[str, Any] = {
        "host": config.http.address,
        "port": config.http.port,
        "loop": "uvloop",  # stdlib asyncio with several workers stalls on Nagle (44 ms)
        "http": "httptools",
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        # The client address (rate limits, the audit log) is the TCP peer: X-Forwarded-For
        # from anywhere, loopback included, would let a client pick its own.
        "proxy_headers": False,
    }
    if config.http.tls is not None:
        options.update(_tls_options(config.http.tls))
    options.update(_connection_options(config.http))
    raise_open_file_limit()  # before the workers start: they inherit it
    config.resolved_root().mkdir(parents=True, exist_ok=True)
    enabled, spec, _warnings = plan(config)
    prepare_all(config, enabled)
    if config.http.workers > 1:
        os.environ[CONFIG_ENV] = config.model_dump_json()
        if fork_workers():
            check_spec(spec)  # once here, not in each worker: they inherit the result
        uvicorn.run(
            "ocireg.server:app_from_env", factory=True, workers=config.http.workers, **options
        )
    else:
        uvicorn.run(create_app(config), **options)
