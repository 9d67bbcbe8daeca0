"""The SQLite store: processes on one machine share one file.

Each method is one transaction: a single statement (``add``, ``set``, ``get``) or a
``BEGIN IMMEDIATE`` one (``replace``, ``pop``, ``delete``), so a compare-and-swap or a
set-if-absent is atomic across threads and processes. WAL mode lets readers run
beside a writer.

Durability: WAL with ``synchronous=NORMAL``, the setting SQLite documents as the right one
for WAL. A commit is durable across a crash of the application (the gateway killed, a bug):
what was committed is read back by the next process. Only a crash of the machine itself
(power loss, kernel panic) may roll back the last transactions before the next checkpoint;
the file stays consistent either way. After such a crash a record may so be missing: a retry
with its ``Idempotency-Key`` then runs again instead of being refused as lost.
``synchronous=FULL`` would fsync the log on every commit (about 0.9 ms on this project's
machine), twice per idempotent create (the record opened, then completed).

The file is created readable only by its owner (0600), in a folder created 0700, since
approvals and idempotency records name who asked for what. A file (or SQLite's ``-wal``,
``-shm`` or ``-journal`` beside it) that is a link, is another user's, or others may read or
write, is refused (see :mod:`gen_nodes.core.paths`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from gen_nodes.core.paths import UnsafePath, check_state_file, check_state_folder, open_state_file, private_folder
from gen_nodes.state import StoreError, canonical, check_ttl

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires);
"""


#: Set in one statement: updates the entry in place (its key's index untouched), or inserts it.
_SET = """
INSERT INTO entries (key, value, expires) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires
"""
#: Set-if-absent in one statement: inserts, or replaces an entry whose time is up (the last
#: parameter is now); a live entry is left as it is and no row changes.
_ADD = _SET + "WHERE entries.expires <= ?"


def _patiently(step: Callable[[], Any], seconds: float = 30.0) -> Any:
    """Run ``step``, again while SQLite says the file is locked, for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def default_path() -> Path:
    """``$GEN_NODES_STATE_DIR/state.db`` (default ``~/.local/state/gen-nodes/state/state.db``)."""
    from gen_nodes.core.paths import state_dir

    return state_dir("state", "GEN_NODES_STATE_DIR") / "state.db"


def path_from_url(url: str) -> Path:
    """``sqlite:///abs/path.db`` (or ``sqlite:////abs/path.db``) -> ``/abs/path.db``;
    ``sqlite://`` -> :func:`default_path`. Paths are absolute."""
    parts = urlsplit(url)
    path = unquote(parts.netloc + parts.path)
    return Path("/" + path.lstrip("/")) if path else default_path()


#: Files SQLite keeps beside the database, and reads as part of it.
_COMPANIONS = ("-wal", "-shm", "-journal")


def _check_companions(path: Path) -> None:
    for companion in _COMPANIONS:
        check_state_file(path.with_name(path.name + companion))


def _trusted_file(path: Path) -> None:
    """Make ``path`` (0600, in a 0700 folder) or check the one there; refuse what others could have planted."""
    check_state_folder(private_folder(path.parent))
    _check_companions(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        os.close(open_state_file(path, os.O_RDONLY))


class _Transaction:
    """``with _Transaction(db) as db:`` one ``BEGIN IMMEDIATE`` transaction, rolled back on an error."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


class SqliteStore:
    """Entries in one SQLite file; ``clock`` is injectable for expiry tests."""

    shared = False

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            _trusted_file(self.path)
            _patiently(lambda: self._db().executescript(_SCHEMA))
            # Again once SQLite made its own files: one planted after the first look is caught now,
            # before any entry is written.
            _check_companions(self.path)
        except UnsafePath as exc:
            self.close()
            raise StoreError(str(exc)) from None
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the state file {self.path}: {exc}") from None

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # Autocommit mode: transactions are opened explicitly below.
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=30000")
            # Switching to WAL needs a moment alone with the file, and SQLite answers "locked" at
            # once (no busy wait) while another process opens it too: try again for a while.
            _patiently(lambda: db.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA synchronous=NORMAL")  # see the module docstring: durability
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db())

    def _live(self, db: sqlite3.Connection, key: str) -> tuple[str, float] | None:
        row = db.execute("SELECT value, expires FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] <= self._clock():
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
            return None
        return row

    def add(self, key: str, value: dict[str, Any], *, ttl: float) -> bool:
        check_ttl(ttl)
        text, now = canonical(value), self._clock()
        # One statement, so one transaction that takes the write lock before it reads: a live entry
        # stays (nothing changes), an expired one is replaced as if it were absent.
        added = self._db().execute(_ADD, (key, text, now + ttl, now)).rowcount == 1
        if added and os.urandom(1)[0] < 4:  # now and then, sweep expired entries
            self._db().execute("DELETE FROM entries WHERE expires <= ?", (now,))
        return added

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT value, expires FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None or row[1] <= self._clock():
            return None
        return json.loads(row[0])

    def set(self, key: str, value: dict[str, Any], *, ttl: float) -> None:
        check_ttl(ttl)
        self._db().execute(_SET, (key, canonical(value), self._clock() + ttl))  # one statement: atomic alone

    def replace(self, key: str, expected: dict[str, Any], value: dict[str, Any], *,
                ttl: float | None = None) -> bool:
        check_ttl(ttl, optional=True)
        want, text = canonical(expected), canonical(value)
        with self._transaction() as db:
            row = self._live(db, key)
            if row is None or row[0] != want:
                return False
            expires = row[1] if ttl is None else self._clock() + ttl
            db.execute("UPDATE entries SET value = ?, expires = ? WHERE key = ?", (text, expires, key))
            return True

    def pop(self, key: str) -> dict[str, Any] | None:
        with self._transaction() as db:
            row = self._live(db, key)
            if row is None:
                return None
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
        return json.loads(row[0])

    def delete(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM entries WHERE key = ?", (key,))

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
