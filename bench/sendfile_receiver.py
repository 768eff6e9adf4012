"""A loopback receiver's CPU for a file sent by ``sendfile`` against one sent by ``write``
(issue 15: why a client pulling through ocireg, which sends blobs by ``sendfile``, spends more
CPU than one pulling from docker-registry, which writes them). A forked sender sends a
``--mib`` file in ``BENCH_TMPDIR`` (tmpfs: /dev/shm) either way; the receiver reads it with
64 KiB ``recv_into``, as httpx does. Prints each round's receiver and sender CPU seconds.

    BENCH_TMPDIR=/dev/shm python bench/sendfile_receiver.py --rounds 4
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time

MiB = 1 << 20


def send(mode: str, listener: socket.socket, path: str, size: int) -> None:
    connection, _ = listener.accept()
    fd = os.open(path, os.O_RDONLY)
    if mode == "sendfile":
        offset = 0
        while offset < size:
            offset += os.sendfile(connection.fileno(), fd, offset, size - offset)
    else:
        block = bytearray(4 * MiB)
        while (got := os.readv(fd, [block])) > 0:
            connection.sendall(memoryview(block)[:got])
    connection.close()
    os.close(fd)


def receive(mode: str, path: str, size: int) -> dict[str, float]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    child = os.fork()
    if child == 0:
        send(mode, listener, path, size)
        os._exit(0)
    sock = socket.create_connection(listener.getsockname())
    buffer = bytearray(64 * 1024)
    before, started = os.times(), time.perf_counter()
    while sock.recv_into(buffer):
        pass
    after = os.times()
    _, _, usage = os.wait4(child, 0)
    sock.close()
    listener.close()
    return {
        "receiver_cpu_s": round(after.user + after.system - before.user - before.system, 3),
        "sender_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "s": round(time.perf_counter() - started, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    size = args.mib * MiB
    with tempfile.NamedTemporaryFile(dir=os.environ.get("BENCH_TMPDIR")) as file:
        file.write(os.urandom(size))
        file.flush()
        for round_ in range(args.rounds):
            for mode in ("sendfile", "write"):
                print(round_, mode, receive(mode, file.name, size), flush=True)


if __name__ == "__main__":
    main()
