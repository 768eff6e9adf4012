"""The open-file limit, raised at start: every connection is a file descriptor, and with the
usual soft limit of 1,024 one client holding idle connections locked every other client out
(issue 21). The hard limit is the operator's (``LimitNOFILE=``, ``ulimit -Hn``); the soft
limit goes up to it, or to :data:`TARGET` when the hard limit is higher. Worker processes
inherit the raised limit.
"""

from __future__ import annotations

import logging
import resource

log = logging.getLogger("ocireg.openfiles")

TARGET = 65536  # enough for thousands of clients; more costs kernel memory for nothing
_LOW = 4096  # below this, a few busy clients can use up every descriptor


def raise_open_file_limit(target: int = TARGET) -> int:
    """Raise the soft RLIMIT_NOFILE to min(hard, target), never lower it; log the outcome
    once. Returns the soft limit in effect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:  # e.g. a container that forbids it
            log.warning(
                "open files: could not raise the soft limit %d to %d: %s", soft, wanted, exc
            )
            return soft
        log.info(
            "open files: soft limit raised from %d to %d (hard limit %s)",
            soft,
            wanted,
            _shown(hard),
        )
        soft = wanted
    else:
        log.info("open files: soft limit %s (hard limit %s)", _shown(soft), _shown(hard))
    if soft != resource.RLIM_INFINITY and soft < _LOW:
        log.warning(
            "open files: a limit of %d leaves few connections per worker; raise the hard "
            "limit (ulimit -Hn, systemd LimitNOFILE=) to at least %d",
            soft,
            _LOW,
        )
    return soft


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)
