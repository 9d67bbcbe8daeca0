"""The in-memory store: one process, the default. A lock makes each method atomic."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

from gen_nodes.state import canonical, check_ttl


class MemoryStore:
    """A dict of ``key -> (canonical JSON, expiry)`` behind a lock. ``clock`` is injectable."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._data: dict[str, tuple[str, float]] = {}
        self._writes = 0

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._data)} entries)"

    def _live(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._data[key]
            return None
        return entry[0]

    def _put(self, key: str, text: str, expiry: float) -> None:
        self._data[key] = (text, expiry)
        self._writes += 1
        if self._writes % 1024 == 0:  # sweep now and then so expired entries do not pile up
            now = self._clock()
            for old in [k for k, (_, until) in self._data.items() if until <= now]:
                del self._data[old]

    def add(self, key: str, value: dict[str, Any], *, ttl: float) -> bool:
        check_ttl(ttl)
        text = canonical(value)
        with self._lock:
            if self._live(key) is not None:
                return False
            self._put(key, text, self._clock() + ttl)
            return True

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            text = self._live(key)
        return None if text is None else json.loads(text)

    def set(self, key: str, value: dict[str, Any], *, ttl: float) -> None:
        check_ttl(ttl)
        text = canonical(value)
        with self._lock:
            self._put(key, text, self._clock() + ttl)

    def replace(self, key: str, expected: dict[str, Any], value: dict[str, Any], *,
                ttl: float | None = None) -> bool:
        check_ttl(ttl, optional=True)
        want, text = canonical(expected), canonical(value)
        with self._lock:
            if self._live(key) != want:
                return False
            expiry = self._data[key][1] if ttl is None else self._clock() + ttl
            self._put(key, text, expiry)
            return True

    def pop(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            text = self._live(key)
            if text is not None:
                del self._data[key]
        return None if text is None else json.loads(text)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def close(self) -> None:
        with self._lock:
            self._data.clear()
