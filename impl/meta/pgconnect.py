"""How ocireg opens its connections to PostgreSQL (the meta DB, its repository locks and
round claims, search's reader).

A query waits for its answer with no timeout of its own, and a server that went away without a
word (its machine down, a network partition: no reset comes back) would leave it waiting for
good, holding its connection's lock and, with it, every later query. TCP keepalives end such
a connection: after 10 s without traffic the kernel probes the server every 5 s, and after 3
probes unanswered the query fails (``psycopg.OperationalError``: a 5xx for the request that
waited), and the next query connects again. A server that is merely slow answers the probes,
so a long query is never cut short. A setting the operator's URL gives wins over these.
"""

from __future__ import annotations

from typing import Any

DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}


def connect(url: str, **options: Any) -> Any:
    """``psycopg.connect(url, ...)`` with ocireg's defaults for what ``url`` leaves out."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(url)
    defaults: dict[str, Any] = {k: v for k, v in DEFAULTS.items() if k not in given}
    return psycopg.connect(url, **defaults, **options)
