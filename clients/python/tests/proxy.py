"""A TCP proxy on loopback whose open connections a test can cut, to break an event stream
in the middle the way a load balancer or a flaky network does."""

from __future__ import annotations

import socket
import threading
from typing import List, Tuple


class CuttingProxy:
    """Forwards every connection to ``upstream``; ``cut()`` drops the open ones."""

    def __init__(self, upstream: Tuple[str, int]) -> None:
        self._upstream = upstream
        self._open: List[socket.socket] = []
        self._lock = threading.Lock()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            with self._lock:
                self.connections += 1
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Drops every open connection at once (new ones are still accepted)."""
        with self._lock:
            doomed, self._open = self._open, []
        for s in doomed:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.cut()
        self._listener.close()
