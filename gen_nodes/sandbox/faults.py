"""Fault injection: make the sandbox's next matching requests fail as a network or proxy would."""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass

from gen_nodes.sandbox.api import Response, json_response


@dataclass
class Fault:
    status: int | None
    times: int
    body: object
    headers: dict
    method: str | None
    path: str | None
    delay: float
    drop: bool
    after: bool

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)

    def response(self) -> Response:
        if isinstance(self.body, (dict, list)):
            return json_response(self.status, self.body, self.headers)
        if isinstance(self.body, str):
            headers = {"Content-Type": "text/html; charset=utf-8", **self.headers}
            return Response(self.status, self.body.encode("utf-8"), headers)
        return Response(self.status, b"", dict(self.headers))


class FaultQueue:
    """Faults waiting for matching requests, first queued first used."""

    def __init__(self):
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

