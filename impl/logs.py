"""The log: one JSON object per line, whoever writes it.

Our own lines are built by :func:`event` (and the request log) as JSON already. Everything else
that reaches :mod:`logging` (uvicorn's ``Invalid HTTP request received.`` and bind errors,
asyncio, a library, a plain ``log.warning("... %s", x)`` in our code, Python warnings) is made
one by :class:`JsonLines`, so ``jq`` never meets a line it cannot read. :func:`logging_config`
is the one configuration, applied by ``ocireg serve`` and, through uvicorn's ``log_config``, by
every worker process.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
from datetime import UTC, datetime
from typing import Any

_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
}

# log.level as zot spells it, to logging's levels.
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
}

# A record whose message is already one JSON line (set by event()).
_ALREADY_JSON = "ocireg_json_line"


def _time(seconds: float | None = None) -> str:
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds")


def event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log ``msg`` with ``fields`` as one JSON line (nothing is built when the level is off)."""
    if not logger.isEnabledFor(level):
        return
    line = {
        "time": _time(),
        "level": _NAMES.get(level, "fatal"),
        "msg": msg,
        **fields,
        "pid": os.getpid(),
    }
    text = json.dumps(line, separators=(",", ":"), default=str)
    logger.log(level, text, extra={_ALREADY_JSON: True})


def relay(logger: logging.Logger, level: int, line: str) -> None:
    """Log a line another process formatted with :class:`JsonLines` (a search process's), as
    it is."""
    logger.log(level, line, extra={_ALREADY_JSON: True})


class Expected(Exception):
    """A mixin for exceptions that end a request as configured, not as a fault (a response cut
    off by ``http.writeTimeout``): uvicorn logs what an application raises as ``Exception in
    ASGI application``, an error with its traceback; :class:`ExpectedAsWarnings` makes such a
    record one warning line, its message the exception's."""


class ExpectedAsWarnings(logging.Filter):
    """On uvicorn's error logger: a record of an :class:`Expected` exception becomes a warning
    without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        raised = record.exc_info[1] if record.exc_info else None
        if isinstance(raised, Expected):
            record.msg, record.args = str(raised), ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class JsonLines(logging.Formatter):
    """Every record as one JSON line: an :func:`event` line as it is, any other record as
    ``{"time","level","msg","logger","pid"}``, with its traceback (if any) as a field rather
    than as lines of its own."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, _ALREADY_JSON, False):
            return record.getMessage()
        line: dict[str, Any] = {
            "time": _time(record.created),
            "level": _NAMES.get(record.levelno, "fatal"),
            "msg": record.getMessage(),
            "logger": record.name,
            "pid": record.process if record.process is not None else os.getpid(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, separators=(",", ":"), default=str)


def logging_config(level: str, output: str | None) -> dict[str, Any]:
    """The :func:`logging.config.dictConfig` for ``log.level`` and ``log.output``: ocireg's
    loggers at ``level``; everyone else's (uvicorn, asyncio, libraries) at warning or above,
    since their informational lines (uvicorn's "Started server process", "Uvicorn running
    on") say what ocireg's start and stop lines already say."""
    ours = LEVELS[level.lower()]
    theirs = max(ours, logging.WARNING)
    handler: dict[str, Any] = (
        {"class": "logging.FileHandler", "filename": output}
        if output
        else {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonLines"}},
        "filters": {"expected": {"()": f"{__name__}.ExpectedAsWarnings"}},
        "handlers": {"log": {**handler, "formatter": "json"}},
        "root": {"level": theirs, "handlers": ["log"]},
        "loggers": {
            "ocireg": {"level": ours, "propagate": True},
            "uvicorn": {"level": theirs, "propagate": True},
            "uvicorn.error": {"level": theirs, "propagate": True, "filters": ["expected"]},
        },
    }


def configure_logging(level: str, output: str | None) -> None:
    """Send every log line of this process, Python warnings included, to the one JSON log."""
    logging.config.dictConfig(logging_config(level, output))
    logging.captureWarnings(True)
