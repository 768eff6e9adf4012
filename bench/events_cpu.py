"""CPU per push with and without events sinks (issue 19), a figure a loaded machine keeps:
the registry process's own CPU seconds per manifest PUT, and its sender process's, measured
from /proc around ``--pushes`` pushes (as ``events.py`` makes them, once the registry has
finished starting), the variants alternated ``--rounds`` times. ``--profile DIR`` also runs
each registry under cProfile and writes ``DIR/<variant>-<round>.prof``. ``--journal N``
instead measures, in this process, the CPU that N pushes by 8 concurrent tasks spend in the
events journal and its settling (all threads), two sinks, no registry; ``--deliveries N`` the
CPU per delivery of N events to one receiver, by the lean HTTP client and by httpx;
``--two-sinks N`` the CPU per delivery of N events to two receivers.

    python bench/events_cpu.py --pushes 400 --rounds 3
    python bench/events_cpu.py --journal 2000
    python bench/events_cpu.py --deliveries 2000
    python bench/events_cpu.py --two-sinks 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from events import Receiver, push_many, settled, write_config
from procstat import _TICKS, tree
from servers import _process, _workdir, free_port

# uvicorn raises the signal it caught again once it has stopped, with the handler it found
# restored: this one writes the profile.
_PROFILED = """
import cProfile, signal, sys, time
from ocireg.cli import main
out = sys.argv[1]
profiler = cProfile.Profile(time.process_time)
def stop(*_):
    profiler.disable()
    profiler.dump_stats(out)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
profiler.enable()
main(sys.argv[2:])
"""


def _own_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children_cpu(pid: int) -> float:
    total = 0.0
    for member in tree(pid)[1:]:
        try:
            total += _own_cpu(member)
        except OSError:
            continue
    return total


@contextmanager
def registry(sinks: list[str], profile: Path | None) -> Iterator[tuple[str, int]]:
    with _workdir("bench-events-cpu-") as workdir:
        port = free_port()
        run = ["-c", _PROFILED, str(profile)] if profile else ["-m", "ocireg"]
        argv = [sys.executable, *run, "serve", str(write_config(workdir, port, sinks))]
        with _process("ocireg", argv, workdir, port) as server:
            yield server.url, server.pid


def measure(
    sinks: list[str], args: argparse.Namespace, profile: Path | None, receivers: list[int]
) -> dict[str, float]:
    """CPU per push while the pushes run: the registry's, its sender process's and the
    receivers' (pids ``receivers``: with sinks that are up, what they answer in that time)."""
    with registry(sinks, profile) as (url, pid):
        settled(pid, sinks)  # its sender process started (a one-off, not per push)
        own, children = _own_cpu(pid), _children_cpu(pid)
        answering = sum(_own_cpu(receiver) for receiver in receivers)
        started, client = time.perf_counter(), time.process_time()
        rate = asyncio.run(push_many(url, args.repos, args.pushes, args.clients))
        wall = time.perf_counter() - started
        client = time.process_time() - client  # this process: the pushing client
        own, children = _own_cpu(pid) - own, _children_cpu(pid) - children
        answering = sum(_own_cpu(receiver) for receiver in receivers) - answering
    return {
        "pushes_per_s": rate,
        "server_ms_per_push": 1000 * own / args.pushes,
        "sender_ms_per_push": 1000 * children / args.pushes,
        "receivers_ms_per_push": 1000 * answering / args.pushes,
        "client_ms_per_push": 1000 * client / args.pushes,
        "wall_s": wall,
    }


def journal_cpu(pushes: int) -> float:
    """CPU-ms per push spent writing events with their intents and settling them (the commit
    itself is a 0.5 ms sleep), 8 pushes at a time, as the registry's event loop does (the
    intents through the group writer)."""
    import tempfile
    import warnings

    warnings.simplefilter("ignore")  # the server stack's imports warn on this Starlette
    from ocireg.ext.events.production import Producer
    from ocireg.ext.events.settings import Sink
    from ocireg.ext.events.sinkset import targets
    from ocireg.ext.events.store import Outbox
    from ocireg.operations import current_request  # imported by the first event: not timed
    from ocireg.registry.journal import Change, intend_off_loop

    del current_request

    outbox = Outbox(Path(tempfile.mkdtemp(prefix="bench-events-journal-")) / "meta.db")
    sinks = [Sink(type="http", address=f"http://127.0.0.1:9/{n}") for n in range(2)]
    producer = Producer(outbox, targets(sinks), "zotregistry", None)  # type: ignore[arg-type]
    manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": "sha256:" + "a" * 64}] * 3})

    async def push(number: int, slots: asyncio.Semaphore) -> None:
        change = Change("pushed", f"r{number % 8}", "sha256:" + "b" * 64, "m", (f"t{number}",),
                        manifest.encode())  # fmt: skip
        async with slots:
            settle = await intend_off_loop([producer], change)
            await asyncio.sleep(0.0005)  # the commit
            assert settle is not None
            settle(True)

    async def run() -> None:
        slots = asyncio.Semaphore(8)
        await asyncio.gather(*(push(number, slots) for number in range(pushes)))
        for _ in range(1000):  # the last confirmations, written in a thread
            if not outbox.intents():
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("intents left unconfirmed")

    started = time.process_time()
    asyncio.run(run())
    return 1000 * (time.process_time() - started) / pushes


def delivery_cpu(events: int) -> dict[str, float]:
    """CPU-ms per delivery of the sender (this process, all threads) delivering ``events``
    queued events of 16 repositories to one receiver (``Receiver``, in a process of its own),
    through each HTTP client: the lean one (a sink without a proxy) and httpx (with one)."""
    import tempfile
    import uuid

    from ocireg.ext.events.sender import Sender
    from ocireg.ext.events.settings import Sink
    from ocireg.ext.events.sinks import HttpDelivery, WebhookDelivery
    from ocireg.ext.events.sinkset import targets
    from ocireg.ext.events.store import Outbox, Stored

    receiver = Receiver()
    receiver.start()
    data = json.dumps({"name": "r", "reference": "t", "manifest": "m" * 500})
    found = {}
    try:
        for name, kind in (("lean", WebhookDelivery), ("httpx", HttpDelivery)):
            outbox = Outbox(Path(tempfile.mkdtemp(prefix="bench-events-send-")) / "meta.db")
            (target,) = targets([Sink(type="http", address=receiver.url)])
            for number in range(events):
                event = Stored(str(uuid.uuid4()), f"r{number % 16}", "zotregistry.image.updated",
                               "2026-01-01T00:00:00Z", data)  # fmt: skip
                outbox.record(event, [target.key])
            sender = Sender(outbox, [target], "zotregistry.dev")
            sender._deliveries[target.key] = kind(target.sink, "zotregistry.dev")

            async def drain(sender: Sender = sender) -> None:
                while await sender.round():
                    pass
                await sender.close()

            started = time.process_time()
            asyncio.run(drain())
            found[name] = 1000 * (time.process_time() - started) / events
            assert outbox.figures()[target.key].queued == 0
            outbox.close()
    finally:
        receiver.stop()
    return found


def two_sinks_cpu(events: int) -> float:
    """CPU-ms per delivery of ``events`` queued events of 16 repositories to two receivers
    (two deliveries each), by a sender as the sender process makes it (its outbox used from
    the delivery loop, where this code has that option)."""
    import inspect
    import tempfile
    import uuid

    from ocireg.ext.events.sender import Sender
    from ocireg.ext.events.settings import Sink
    from ocireg.ext.events.sinkset import targets
    from ocireg.ext.events.store import Outbox, Stored

    receivers = [Receiver(), Receiver()]
    for receiver in receivers:
        receiver.start()
    data = json.dumps({"name": "r", "reference": "t", "manifest": "m" * 500})
    outbox = Outbox(Path(tempfile.mkdtemp(prefix="bench-events-send-")) / "meta.db")
    try:
        made = targets([Sink(type="http", address=receiver.url) for receiver in receivers])
        for number in range(events):
            event = Stored(str(uuid.uuid4()), f"r{number % 16}", "zotregistry.image.updated",
                           "2026-01-01T00:00:00Z", data)  # fmt: skip
            outbox.record(event, [target.key for target in made])
        inline = {"inline": True} if "inline" in inspect.signature(Sender).parameters else {}
        sender = Sender(outbox, made, "zotregistry.dev", **inline)  # type: ignore[arg-type]

        async def drain() -> None:
            while await sender.round():
                pass
            await sender.close()

        started = time.process_time()
        asyncio.run(drain())
        return 1000 * (time.process_time() - started) / (2 * events)
    finally:
        outbox.close()
        for receiver in receivers:
            receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--journal", type=int, metavar="N")
    parser.add_argument("--deliveries", type=int, metavar="N")
    parser.add_argument("--two-sinks", type=int, metavar="N")
    args = parser.parse_args()
    if args.two_sinks:
        print(json.dumps({"sender_cpu_ms_per_delivery_two_sinks": two_sinks_cpu(args.two_sinks)}))
        return
    if args.deliveries:
        print(json.dumps({"sender_cpu_ms_per_delivery": delivery_cpu(args.deliveries)}))
        return
    if args.journal:
        print(json.dumps({"journal_cpu_ms_per_push": journal_cpu(args.journal)}))
        return
    receivers = [Receiver(), Receiver()]
    for receiver in receivers:
        receiver.start()
    down = [f"http://127.0.0.1:{free_port()}/events" for _ in range(2)]
    variants = {"none": [], "two_sinks": [r.url for r in receivers], "two_sinks_down": down}
    runs: dict[str, list[dict[str, float]]] = {key: [] for key in variants}
    try:
        for number in range(args.rounds):
            for key, sinks in variants.items():
                profile = args.profile / f"{key}-{number}.prof" if args.profile else None
                answering = [r.pid for r in receivers] if key == "two_sinks" else []
                runs[key].append(measure(sinks, args, profile, answering))
    finally:
        for receiver in receivers:
            receiver.stop()
    medians = {
        key: {figure: statistics.median(run[figure] for run in rounds) for figure in rounds[0]}
        for key, rounds in runs.items()
    }
    print(json.dumps({"runs": runs, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
