"""A TCP forwarder on 127.0.0.1 that can hang up on the next connections before answering anything.

It stands between kbchat and a fake server to play a network or server that drops a connection: a dropped
connection has its first bytes read and is then closed, so the client sees the connection end without a
response, as it does when a server closes a kept-alive connection just as a request is sent.
"""

from __future__ import annotations

import socket
import threading
from typing import Self


class FlakyProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.dropped = 0
        self._to_drop = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False

    def drop_next(self, count: int) -> None:
        with self._lock:
            self._to_drop = count

    def __enter__(self) -> Self:
        self._listener.listen(64)
        threading.Thread(target=self._accept, name="flaky-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                drop = self._to_drop > 0
                self._to_drop -= drop
            if drop:
                client.recv(65536)
                client.close()
                self.dropped += 1
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
