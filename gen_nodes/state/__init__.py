"""Shared state below every surface: one small key-value store interface, three backends.

Approvals waiting for a person, idempotency records and chat bindings must outlive a
request, and often a process. They all go through :class:`Store`:

    open_store("memory://")                  # one process (the default for libraries)
    open_store("sqlite:///var/lib/x.db")     # processes on one machine; "sqlite://" = the state dir's file
    open_store("redis://127.0.0.1:6379/0")   # many machines (pip install 'gen-nodes[redis]')

Values are JSON objects; every entry has a time to live. Each method is atomic inside
the backend (a lock, a SQLite transaction, a Redis command or script), never a read
followed by a write in Python, so single use holds across threads and processes.
Values are stored as canonical JSON text, which is also what ``replace`` compares.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

__all__ = ["Store", "StoreError", "open_store", "canonical"]


class StoreError(RuntimeError):
    """The store cannot be opened or reached."""


@runtime_checkable
class Store(Protocol):
    """A key-value store of JSON objects with expiry. ``ttl`` is in seconds."""

    #: True when several machines may share it (then secrets need a shared encryption key).
    shared: bool

    def add(self, key: str, value: dict[str, Any], *, ttl: float) -> bool:
        """Store ``value`` only if ``key`` holds nothing; True if it was stored."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The value under ``key``, or None if there is none (or it expired)."""

    def set(self, key: str, value: dict[str, Any], *, ttl: float) -> None:
        """Store ``value`` under ``key``, replacing whatever was there."""

    def replace(self, key: str, expected: dict[str, Any], value: dict[str, Any], *,
                ttl: float | None = None) -> bool:
        """Compare-and-swap: store ``value`` only if ``key`` still holds ``expected``.

        ``ttl=None`` keeps the entry's current expiry. True if it was replaced.
        """

    def pop(self, key: str) -> dict[str, Any] | None:
        """Remove and return the value under ``key`` (None if there was none)."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def close(self) -> None:
        """Release connections and files."""


def canonical(value: dict[str, Any]) -> str:
    """The one text form of a value: what is stored, and what ``replace`` compares."""
    if not isinstance(value, dict):
        raise TypeError(f"store values are JSON objects, not {type(value).__name__}")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_ttl(ttl: float | None, *, optional: bool = False) -> None:
    if ttl is None and optional:
        return
    if not isinstance(ttl, (int, float)) or not ttl > 0 or ttl != ttl or ttl == float("inf"):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")


def open_store(url: str | None = None, **options: Any) -> Store:
    """The store named by ``url``: ``memory://``, ``sqlite://[/path]`` or ``redis://...``.

    ``None`` or ``""`` means ``$GEN_NODES_STORE``, else ``memory://``. ``options`` go to
    the backend (``clock=`` for memory and SQLite, ``prefix=`` for Redis).
    """
    from gen_nodes.core import settings

    url = url or settings.current().store or "memory://"
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from gen_nodes.state.memory import MemoryStore

        return MemoryStore(**options)
    if scheme == "sqlite":
        from gen_nodes.state.sqlite import SqliteStore, path_from_url

        return SqliteStore(path_from_url(url), **options)
    if scheme in ("redis", "rediss", "unix"):
        from gen_nodes.state.redis import RedisStore

        return RedisStore(url, **options)
    raise StoreError(
        f"Unknown store {url.split('://', 1)[0]!r}: use memory://, sqlite:///path/to/file.db or redis://host:port/db."
    )
