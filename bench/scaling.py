"""Scale-out (issue 18): three ocireg instances on one S3 bucket and one PostgreSQL meta DB
against one instance, on this machine; and one instance on local disk with SQLite beside them.

Starts moto_server (the S3 endpoint, its request log kept to count S3 requests), a throwaway
PostgreSQL 15 cluster (``tests/postgres.py``'s, with ``pg_stat_statements`` loaded to count
statements), three ocireg instances sharing the bucket and the database (each with a local
directory of its own, as on three machines) and one local-disk + SQLite instance.

Manifest GET by tag, ``--clients`` wrk connections dealt round-robin over three wrk processes
(one thread each): process k on instance k (``three``), all three on instance 0 (``one``),
all three on the local instance (``local``); ``--rounds`` interleaved rounds of ``--seconds``
each, medians. The client side is the same three processes in every case. ``--put-seconds``
adds the same for manifest PUTs under new tags into one repository (every PUT of a
repository takes its lock). Then the costs of one GET and one PUT, sequentially: server CPU,
S3 requests, PostgreSQL statements by kind, and the connections each instance holds.

    python bench/scaling.py --clients 12 --seconds 10 --rounds 3 --put-seconds 5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import manifestload
from manifestload import Load
from s3 import _make_bucket, ocireg_on_s3
from s3_clients import s3_requests, start_moto
from servers import Server, ocireg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests/

from tests.postgres import Postgres, throwaway_cluster

BUCKET, DATABASE, REPO = "scaling", "registry", "bench/scale"


@contextmanager
def moto(folder: Path) -> Iterator[tuple[str, int]]:
    process, endpoint = start_moto(folder / "moto.log")
    try:
        yield endpoint, process.pid
    finally:
        process.terminate()
        process.wait()


@contextmanager
def database() -> Iterator[Postgres]:
    """The cluster, with a database for the registry and pg_stat_statements to count with."""
    import psycopg

    with throwaway_cluster("shared_preload_libraries=pg_stat_statements") as cluster:
        with psycopg.connect(cluster.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE} TEMPLATE template0")
            admin.execute("CREATE EXTENSION pg_stat_statements")
        yield cluster


def _statement_kind(query: str) -> str:
    """``insert tags``, ``select images``, ``begin``, ``advisory lock/unlock``..."""
    text = " ".join(query.split()).lower()
    if "advisory" in text:
        return "advisory lock/unlock"
    verb = text.split(" ", 1)[0]
    table = re.search(r"\b(?:into|update|from)\s+([a-z_]+)", text)
    return f"{verb} {table[1]}" if table and verb != "begin" else verb


def statement_counter(cluster: Postgres) -> Callable[[], dict[str, int]]:
    """Calls so far in the registry's database, by statement kind (select, insert, begin...)."""
    import psycopg

    query = (
        "SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
        " WHERE d.datname = %s"
    )

    def count() -> dict[str, int]:
        kinds: dict[str, int] = {}
        with psycopg.connect(cluster.url(), autocommit=True) as admin:
            for text, calls in admin.execute(query, (DATABASE,)):
                kind = _statement_kind(text)
                kinds[kind] = kinds.get(kind, 0) + calls
        return kinds

    return count


def connections(cluster: Postgres) -> dict[str, int]:
    """Connections to the registry's database now, by state (idle, active...)."""
    import psycopg

    query = "SELECT state, count(*) FROM pg_stat_activity WHERE datname = %s GROUP BY state"
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        return {str(state): n for state, n in admin.execute(query, (DATABASE,))}


@contextmanager
def instances(endpoint: str, cluster: Postgres) -> Iterator[list[Server]]:
    _make_bucket(endpoint, BUCKET)
    url = cluster.url(DATABASE)
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                ocireg_on_s3(endpoint, BUCKET, f"s3pg-{k}", postgres_url=url, make_bucket=False)
            )
            for k in range(3)
        ]


def _rate(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _summary(loads: list[Load]) -> str:
    rates = [load.rate for load in loads]
    per_server: dict[str, list[float]] = {}
    for load in loads:
        for name, rate in load.per_server().items():
            per_server.setdefault(name, []).append(rate)
    spread = ", ".join(f"{n} {_rate(statistics.median(r))}" for n, r in per_server.items())
    return (
        f"{_rate(statistics.median(rates)):>8} {_rate(min(rates)):>6} {_rate(max(rates)):>6}"
        f" {statistics.median(x.median_p50() for x in loads):7.1f}"
        f" {statistics.median(x.worst_p99() for x in loads):7.1f}"
        f"   {spread}; errors: {manifestload.error_text(loads)}"
    )


def compare(
    cases: dict[str, list[Server]],
    args: argparse.Namespace,
    run: Callable[[list[manifestload.Slot]], Load],
    title: str,
) -> None:
    loads: dict[str, list[Load]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, servers in cases.items():
            slots = manifestload.spread(args.clients, servers, args.processes)
            loads[name].append(run(slots))
    print(f"\n{title}")
    print(
        f"{'case':6} {'req/s':>8} {'min':>6} {'max':>6} {'p50 ms':>7} {'p99 ms':>7} "
        "   per instance (req/s, medians); errors (all rounds)"
    )
    for name, results in loads.items():
        print(f"{name:6} {_summary(results)}")


def print_costs(
    server: Server,
    body: bytes,
    count: int,
    s3_count: Callable[[], int] | None,
    pg_count: Callable[[], dict[str, int]] | None,
    endpoint_pid: int | None = None,
) -> None:
    work = {
        "GET": manifestload.sequential_gets(REPO, "v1", count),
        "PUT": manifestload.sequential_puts(REPO, body, count, f"cost-{server.name}-"),
    }
    for op, requests in work.items():
        costs = manifestload.measure_costs(
            server, requests, count, s3_count, pg_count, endpoint_pid=endpoint_pid
        )
        s3 = "-" if costs.s3_requests is None else f"{costs.s3_requests:.2f}"
        moto = "-" if costs.endpoint_cpu_ms is None else f"{costs.endpoint_cpu_ms:.2f}"
        pg = "-" if costs.pg_statements is None else f"{costs.pg_statements:.2f}"
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(costs.pg_detail.items()))
        print(
            f"{server.name:8} {op:4} {costs.wall_ms:7.1f} {costs.cpu_ms:7.2f} {moto:>7} {s3:>6}"
            f" {pg:>6}"
            f"   {kinds}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=12, help="wrk connections in all")
    parser.add_argument("--processes", type=int, default=3, help="wrk processes")
    parser.add_argument("--seconds", type=int, default=10, help="each GET run")
    parser.add_argument("--put-seconds", type=int, default=0, help="each PUT run; 0: skip")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cost-requests", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    try:
        with (
            moto(folder) as (endpoint, moto_pid),
            database() as cluster,
            instances(endpoint, cluster) as shared,
            ocireg() as local,
        ):
            local.name = "local"
            body = manifestload.prepare(shared[0], REPO, "v1", folder)
            manifestload.prepare(local, REPO, "v1", folder)
            for server in shared[1:]:  # each instance sees the push through the first
                manifestload.get_load([manifestload.Slot(server, 1)], 1, REPO, "v1")
            print(f"costs per request, {args.cost_requests} sequential requests")
            print(
                f"{'instance':8} {'op':4} {'wall ms':>7} {'CPU ms':>7} {'moto ms':>7} {'S3':>6}"
                f" {'PG':>6}"
                "   PostgreSQL statements by kind"
            )
            raw = body.read_bytes()
            s3_count = lambda: s3_requests(folder / "moto.log", BUCKET)  # noqa: E731
            counter = statement_counter(cluster)
            print_costs(shared[0], raw, args.cost_requests, s3_count, counter, moto_pid)
            print_costs(local, raw, args.cost_requests, None, None)
            cases = {"three": shared, "one": shared[:1], "local": [local]}

            def gets(slots: list[manifestload.Slot]) -> Load:
                return manifestload.get_load(slots, args.seconds, REPO, "v1")

            compare(
                cases,
                args,
                gets,
                f"manifest GET by tag: {args.clients} wrk connections over {args.processes} "
                f"processes, {args.seconds} s, {args.rounds} interleaved rounds "
                "(req/s: median, min, max of the aggregate)",
            )
            if args.put_seconds:

                def puts(slots: list[manifestload.Slot]) -> Load:
                    return manifestload.put_load(slots, args.put_seconds, REPO, body)

                compare(
                    cases,
                    args,
                    puts,
                    f"manifest PUT by new tag into one repository: {args.clients} connections, "
                    f"{args.put_seconds} s, {args.rounds} interleaved rounds",
                )
            print(f"\nconnections to the meta DB (3 instances), by state: {connections(cluster)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    main()
