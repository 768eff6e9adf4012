"""Who opened each upload session, in PostgreSQL (ocireg.registry.sharedsessions): two
instances' ledgers on one database admit a client's sessions up to its cap in all."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ocireg.registry.sharedlocks import AdvisoryLocks
from ocireg.registry.sharedsessions import SharedUploadSessions
from tests.postgres import Postgres, postgres

__all__ = ["postgres"]  # the session fixture, used here by name

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"


def test_concurrent_starts_on_two_instances_never_pass_the_cap(postgres: Postgres) -> None:
    url = postgres.new_database()
    pools = AdvisoryLocks(url), AdvisoryLocks(url)
    ledgers = [SharedUploadSessions(pool) for pool in pools]
    try:
        with ThreadPoolExecutor(8) as workers:
            admitted = list(
                workers.map(lambda n: ledgers[n % 2].admit("repo", f"s{n}", "ann", 5), range(40))
            )
        assert admitted.count(True) == 5
        later = time.time() + 1
        mine = ledgers[1].of_client("ann", later)
        assert len(mine) == 5 and ledgers[0].of_client("bob", later) == set()
        assert ledgers[1].of_client("ann", time.time() - 60) == set()  # none that old
        assert ledgers[1].admit("repo", "bob-1", "bob", 5)  # another client's own cap
        ledgers[0].forget(sorted(mine)[:2])  # ended on the other instance
        assert len(ledgers[1].of_client("ann", later)) == 3
        assert ledgers[1].admit("repo", "again", "ann", 5)
    finally:
        for pool in pools:
            pool.close()


def test_a_ledger_connects_only_when_used_and_forgetting_never_fails() -> None:
    pool = AdvisoryLocks(UNREACHABLE)
    ledger = SharedUploadSessions(pool)  # building a registry needs no database
    ledger.forget([("repo", "session")])  # the upload it follows has succeeded: no error
    pool.close()
