"""Run the registry under uvicorn (uvloop + httptools), in one or several worker processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE

from ocireg import dataclasscode, lifecycle
from ocireg.app import cluster_membership, create_app, plan
from ocireg.auth import htpasswd
from ocireg.config import Config, HTTPConfig, TLSConfig
from ocireg.connections import ConnectionGuard, GuardedHttpToolsProtocol, protocol_factory
from ocireg.extensions.loading import prepare_all
from ocireg.heap import pin_mmap_threshold, started
from ocireg.logs import event, logging_config
from ocireg.nowebsocket import RefuseWebSocket
from ocireg.openfiles import raise_open_file_limit
from ocireg.registry.layout import META_DIR
from ocireg.routing import check_spec, remember_checks_in
from ocireg.tls import ClientCertHttpToolsProtocol

CONFIG_ENV = "OCIREG_CONFIG_JSON"
TOLD_ENV = "OCIREG_TOLD_JSON"  # what the parent has warned about, not to be repeated by workers
_NEVER = 10 * 365 * 24 * 3600.0  # idleTimeout 0: keep idle connections (uvicorn needs a number)

log = logging.getLogger("ocireg.server")


def app_from_env() -> ASGIApp:
    """Factory each worker process calls: the parent passes the resolved config in the env.
    uvicorn has already set this process's log up (``log_config``), and the parent has said
    the start-up warnings once for all workers."""
    config = Config.model_validate_json(os.environ[CONFIG_ENV])
    logging.captureWarnings(True)
    htpasswd.recall(json.loads(os.environ.get(TOLD_ENV, "[]")))
    return _build(config)


# A thread running Python (parsing a large manifest, a blob-delete's reference check) keeps
# the interpreter until the switch interval passes, and the event loop waits that long each
# time it needs the interpreter back, several times per request: at the default 5 ms a
# neighbour's small GET took 100 ms and more beside large pushes (bench/hostile_neighbour.py).
SWITCH_INTERVAL = 0.001


def _build(config: Config) -> ASGIApp:
    """The app, or one JSON error line (with the traceback as a field) and exit status 3: an
    app that cannot be built fails the same way every time, so uvicorn must not restart it."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    pin_mmap_threshold()  # in every worker, forked or spawned: large buffers go back at free
    try:
        app = create_app(config, notices=False)
    except Exception:
        log.exception("the app could not be built")
        sys.exit(STARTUP_FAILURE)
    started()
    # now: a server is often stopped by a signal that skips atexit (in a worker uvicorn
    # spawned, not forked, nothing was installed: nothing to save)
    dataclasscode.save()
    return app


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


class _Server(uvicorn.Server):
    """uvicorn's server for one worker, which says when it listens and why it stops."""

    def __init__(self, config: uvicorn.Config, ours: Config, extensions: list[str]) -> None:
        super().__init__(config)
        self.ours = ours
        self.extensions = extensions
        self.reason: str | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # a bind error is logged there, and exits
        if self.started:
            lifecycle.started(self.ours, self.extensions, self.servers[0].sockets[0])

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.reason = self.reason or signal.Signals(sig).name
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        # Here, not after run(): uvicorn raises the signal it caught again once it is done.
        lifecycle.stopped(self.reason)


def _serve_one(options: dict[str, Any], config: Config, extensions: list[str]) -> None:
    server = _Server(uvicorn.Config(_build(config), **options), config, extensions)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _supervise(options: dict[str, Any], config: Config, extensions: list[str]) -> None:
    """Several workers on one socket, bound and listening in this parent before they start:
    a connection made while they start waits in the queue rather than being refused. The
    start line is this parent's, once for all workers."""
    from ocireg.supervisor import Supervisor  # multiprocessing: not for one worker

    os.environ[CONFIG_ENV] = config.model_dump_json()
    os.environ[TOLD_ENV] = json.dumps(htpasswd.told())
    settings = uvicorn.Config(
        "ocireg.server:app_from_env", factory=True, workers=config.http.workers, **options
    )
    listener = settings.bind_socket()  # a bind error is logged there, and exits
    listener.listen(settings.backlog)
    lifecycle.started(config, extensions, listener)
    supervisor = Supervisor(settings, [listener])
    started()  # before the workers fork: they inherit what is frozen, and collect
    # what this parent defined (configuration, extensions); building the app is the workers'.
    # Forked workers (ocireg.workers) inherit the table and each saves what its build adds
    # (in _build); workers uvicorn spawns (no fork here) never load or save the file
    dataclasscode.save()
    supervisor.run()
    failed = supervisor.a_worker_failed_to_start()
    lifecycle.stopped("a worker failed to start" if failed else supervisor.reason)
    if failed:
        sys.exit(STARTUP_FAILURE)


def _user_cache() -> list[Path]:
    """``$XDG_CACHE_HOME/ocireg/spec-checked`` (``~/.cache`` by default), when there is a home."""
    try:
        base = dataclasscode.user_cache_root()  # a relative XDG_CACHE_HOME is ignored
    except RuntimeError:  # no HOME and no passwd entry
        return []
    return [base / "ocireg" / "spec-checked"]


def serve(config: Config) -> None:
    options: dict[str, Any] = {
        "host": config.http.address,
        "port": config.http.port,
        "loop": "uvloop",  # stdlib asyncio with several workers stalls on Nagle (44 ms)
        "http": "httptools",
        "ws": RefuseWebSocket,  # no route takes one: see impl/nowebsocket.py
        # Every worker logs as this process does: JSON lines, uvicorn's own included.
        "log_config": logging_config(config.log.level, config.log.output),
        "log_level": None,
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
    # The spec's check against the OpenAPI schema costs 0.3-0.5 s: paid once per machine and
    # root (and again after an upgrade of connexion or jsonschema, or other extensions).
    remember_checks_in(config.resolved_root() / META_DIR / "spec-checked", *_user_cache())
    enabled, spec, warnings = plan(config)
    cluster_membership(config)  # refused here, once, before any worker starts
    for warning in warnings:  # here, once, rather than in every worker
        event(log, logging.WARNING, warning)
    prepare_all(config, enabled)
    extensions = [each.name for each in enabled]
    if config.http.workers > 1:
        from ocireg.workers import fork_workers  # multiprocessing: not for one worker

        if fork_workers():
            check_spec(spec)  # once here, not in each worker: they inherit the result
        _supervise(options, config, extensions)
    else:
        _serve_one(options, config, extensions)
