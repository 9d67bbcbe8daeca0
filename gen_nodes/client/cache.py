"""One GenClient per GEN key (by SHA-256), reused and closed when evicted: :class:`ClientCache`, :func:`key_digest`."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

log = logging.getLogger("gen_nodes.client")

#: GEN keys whose clients a server keeps (least recently used dropped first).
CLIENT_CACHE_SIZE = 64


def key_digest(key: str) -> str:
    """The SHA-256 of a GEN key (hex): what servers key their tables by, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


class ClientCache:
    """A client per GEN key, made by ``make_client(key)``, kept for reuse (at most ``size``).

    Clients are leased, not handed out: ``with cache.lease(key) as client``. When the least
    recently used client is dropped to make room, it is closed as soon as its last lease ends,
    so a request in flight never sees its connection pool closed under it.
    """

    def __init__(self, make_client: Callable[[str], Any], size: int = CLIENT_CACHE_SIZE) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.make_client, self.size = make_client, size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def lease(self, key: str) -> Iterator[Any]:
        digest = key_digest(key)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                entry = self._entries[digest] = _Entry(self.make_client(key))
                while len(self._entries) > self.size:
                    _, dropped = self._entries.popitem(last=False)
                    dropped.evicted = True
                    self._close_if_idle(dropped)
            self._entries.move_to_end(digest)
            entry.leases += 1
        try:
            yield entry.client
        finally:
            with self._lock:
                entry.leases -= 1
                self._close_if_idle(entry)

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        """Close every idle client now, and every leased one when its lease ends."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), OrderedDict()
            for entry in entries:
                entry.evicted = True
                self._close_if_idle(entry)

    @staticmethod
    def _close_if_idle(entry: "_Entry") -> None:  # called with the lock held
        if entry.evicted and entry.leases == 0 and not entry.closed:
            entry.closed = True
            try:
                entry.client.close()
            except Exception as exc:  # a client that fails to close must not break the request
                log.warning("closing an evicted client failed: %s", type(exc).__name__)


class _Entry:
    __slots__ = ("client", "leases", "evicted", "closed")

    def __init__(self, client: Any) -> None:
        self.client, self.leases, self.evicted, self.closed = client, 0, False, False



#: GEN accounts a server remembers for its notices (least recently used dropped first).
ACCOUNT_CACHE_SIZE = 1024
#: The fields of ``get_me``'s user shown to a person deciding an approval.
ACCOUNT_FIELDS = ("id", "name", "email", "username")


class AccountCache:
    """The GEN user behind each key digest, read once with ``get_me`` and kept (at most ``size``):
    what approval notices and pages show as "the account". A failed read is not kept."""

    def __init__(self, size: int = ACCOUNT_CACHE_SIZE) -> None:
        self.size = size
        self._accounts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, principal: str, read_me: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The account of ``principal``; ``read_me()`` (a ``get_me`` call) when it is not known yet.
        Raises what ``read_me`` raises."""
        with self._lock:
            if principal in self._accounts:
                self._accounts.move_to_end(principal)
                return self._accounts[principal]
        me = read_me()
        account = {field: me.get(field) for field in ACCOUNT_FIELDS}
        with self._lock:
            self._accounts[principal] = account
            while len(self._accounts) > self.size:
                self._accounts.popitem(last=False)
        return account

    def __len__(self) -> int:
        return len(self._accounts)
