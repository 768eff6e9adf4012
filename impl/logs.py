"""Structured log lines: one JSON object per event, as the request log writes them."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
}


def event(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    """Log ``msg`` with ``fields`` as one JSON line (nothing is built when the level is off)."""
    if not logger.isEnabledFor(level):
        return
    line = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": _NAMES.get(level, "fatal"),
        "msg": msg,
        **fields,
        "pid": os.getpid(),
    }
    logger.log(level, json.dumps(line, separators=(",", ":"), default=str))
