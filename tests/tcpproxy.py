"""A TCP proxy on loopback that can go silent: while paused it reads what either side sends
and holds it, so a server behind it (PostgreSQL, say) looks alive but answers nothing, as one
that stalls does; resumed, it passes on what it held, in order.

    with PausableProxy("127.0.0.1", 5432) as proxy:
        ...connect to 127.0.0.1:proxy.port...
        proxy.pause(); ...; proxy.resume()
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

from tests.liveserver import free_port


class PausableProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self._open = threading.Event()
        self._open.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))

    def pause(self) -> None:
        """Hold every byte from now on, both ways."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def __enter__(self) -> PausableProxy:
        threading.Thread(target=self._accept, name="tcpproxy-accept", daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._open.set()  # (pumps waiting to pass bytes on end)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="tcpproxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                self._open.wait()  # paused: held here, passed on once resumed
                if not data or self._closed.is_set():
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
