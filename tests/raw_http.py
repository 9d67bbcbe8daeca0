"""A loopback TCP server that answers HTTP requests with whatever bytes a test scripts.

For answers no well-behaved server gives: a body trickled a byte at a time, a body far
larger than announced limits, a gzip bomb. ``answer(sock)`` is called once per request
after the request head is read; it writes what it likes and returns when done.
"""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from typing import Callable, Iterator


class RawServer:
    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.answer = answer
        self.requests = 0
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.requests += 1
            try:
                self.answer(conn)
            except OSError:
                pass  # the client hung up: what the bounded client is expected to do

    def __enter__(self) -> "RawServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._listener.close()


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[RawServer]:
    with RawServer(answer) as server:
        yield server
