"""How ocireg opens its connections to PostgreSQL (the meta DB, its repository locks and
round claims, search's reader).

A query waits for its answer with no timeout of its own, and a server that went away without a
word (its machine down, a network partition: no reset comes back) would leave it waiting for
good, holding its connection's lock and, with it, every later query. Two TCP settings end
such a connection: data sent and not acknowledged for 30 s (``tcp_user_timeout``: a query
sent into the silence), and a connection idle while it waits for an answer whose keepalive
probes go unanswered (after 10 s, every 5 s, 3 probes: a query sent before the silence). The
query then fails (``psycopg.OperationalError``: a 5xx for the request that waited), and the
next one connects again. A server that is merely slow acknowledges the data and answers the
probes, so a long query is never cut short.

What the operator says wins: a setting the URL gives, ``PGCONNECT_TIMEOUT`` for the connect
timeout, and a connection service (``service=`` or ``PGSERVICE``) takes none of these
defaults, its file being the operator's statement.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # milliseconds
}


def defaults_for(url: str) -> dict[str, Any]:
    """The settings of ``DEFAULTS`` that ``url`` and the environment leave to ocireg."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(url)
    if "service" in given or os.environ.get("PGSERVICE"):
        return {}
    if os.environ.get("PGCONNECT_TIMEOUT"):
        given["connect_timeout"] = os.environ["PGCONNECT_TIMEOUT"]
    return {key: value for key, value in DEFAULTS.items() if key not in given}


def connect(url: str, **options: Any) -> Any:
    """``psycopg.connect(url, ...)`` with ocireg's defaults for what ``url`` leaves out
    (``options`` win over them too)."""
    import psycopg

    return psycopg.connect(url, **{**defaults_for(url), **options})
