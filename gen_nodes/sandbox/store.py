"""State of the GEN sandbox: users and API keys in SQLite.

The store owns every rule about keys (validation, hashing, expiry, status) so the
HTTP layer only maps results and ``ValidationError`` to responses. Plain-text
keys are never stored: only their sha256 hex digest is. Time comes from an
injectable clock that ``advance()`` can shift forward, so expiry is testable.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import string
import threading
from datetime import datetime, timedelta, timezone
from typing import Callable

TOKEN_PREFIX = "gen_pat_"
TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 40
TOKEN_TYPE = "personal_access_token"
NAME_MAX = 255
# SQLite integers are signed 64-bit; larger ids cannot exist.
MAX_ID = 2**63 - 1

_DAYS = re.compile(r"[1-9][0-9]*d")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT UNIQUE,
    name TEXT,
    username TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS keys_by_user ON keys(user_id, id);
"""

_KEY_COLUMNS = "id, name, created_at, expires_at, last_used_at, revoked_at"
_USER_COLUMNS = "id, email, name, username, created_at"


class ValidationError(ValueError):
    """Input the real API would answer with 422 validation_error."""


def format_time(moment: datetime) -> str:
    """GEN's timestamp format: UTC with milliseconds, e.g. 2026-03-01T12:00:00.000Z."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hash_token(plain: str) -> str:
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def parse_expires_in(value: object) -> int | None:
    """Seconds until expiry (None = never) from "<N>d" or a JSON integer >= 1."""
    if value is None:
        return None
    # bool is a subclass of int, but JSON true is not a number of seconds.
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 1:
            return value
        raise ValidationError("expires_in must be a positive number of seconds")
    if isinstance(value, str) and _DAYS.fullmatch(value):
        return int(value[:-1]) * 86400
    raise ValidationError(
        'expires_in must be a duration such as "30d" or a positive integer number of seconds'
    )


def check_name(name: object, *, required: bool) -> str | None:
    if name is None and not required:
        return None
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX:
        raise ValidationError(f"name must be a non-empty string of at most {NAME_MAX} characters")
    return name


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Store:
    """Users and keys in one SQLite connection shared by all server threads."""

    def __init__(self, db_path: str = ":memory:", clock: Callable[[], datetime] | None = None):
        self.db_path = db_path
        self._clock = clock or _utc_now
        self._offset = timedelta(0)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(db_path, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._lock, self._conn:
            self._conn.executescript(_SCHEMA)

    # -- time ---------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Shift the clock forward, e.g. past a key's expiry."""
        self._offset += timedelta(seconds=seconds)

    def _now_text(self) -> str:
        return format_time(self.now())

    def _expiry(self, expires_in: object, now: datetime) -> str | None:
        seconds = parse_expires_in(expires_in)
        if seconds is None:
            return None
        try:
            return format_time(now + timedelta(seconds=seconds))
        except OverflowError:
            raise ValidationError("expires_in is too large") from None

    # -- users --------------------------------------------------------------

    def create_user(self, email: str | None = None, name: str | None = None) -> dict:
        if email is not None and (not isinstance(email, str) or "@" not in email or len(email) > NAME_MAX):
            raise ValidationError("email must be an address such as dev@example.com")
        name = check_name(name, required=False)
        with self._lock, self._conn:
            if email is not None and self._conn.execute(
                "SELECT 1 FROM users WHERE email = ?", (email,)
            ).fetchone():
                raise ValidationError("email is already taken")
            cur = self._conn.execute(
                "INSERT INTO users (email, name, created_at) VALUES (?, ?, ?)",
                (email, name, self._now_text()),
            )
            user_id = cur.lastrowid
            email = email or f"user{user_id}@sandbox.local"
            self._conn.execute(
                "UPDATE users SET email = ?, name = ?, username = ? WHERE id = ?",
                (email, name or f"Sandbox User {user_id}", email.split("@")[0], user_id),
            )
            return self._user(user_id)

    def get_user(self, user_id: int) -> dict | None:
        with self._lock:
            return self._user(user_id)

    def first_user(self) -> dict | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY id LIMIT 1").fetchone()
        return dict(row) if row else None

    def _user(self, user_id: int) -> dict | None:
        row = self._conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return dict(row) if row else None

    # -- keys ---------------------------------------------------------------

    def create_key(self, user_id: int, name: str | None = None, expires_in: object = None) -> tuple[dict, str]:
        """Return (key object, plain token); the plain token is not kept anywhere."""
        name = check_name(name, required=False)
        now = self.now()  # one instant, so expires_at - created_at is exactly expires_in
        expires_at = self._expiry(expires_in, now)
        plain = new_token()
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO keys (hash, user_id, name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (hash_token(plain), user_id, name, format_time(now), expires_at),
            )
            return self._key(user_id, cur.lastrowid), plain

    def seed_keys(self, user_id: int, n: int, name_prefix: str = "seed") -> list[int]:
        """Insert n unusable keys (no plain text ever exists) in one transaction; return their ids."""
        now = self._now_text()
        rows = (
            (hashlib.sha256(secrets.token_bytes(32)).hexdigest(), user_id, f"{name_prefix}-{i}", now)
            for i in range(1, n + 1)
        )
        with self._lock, self._conn:
            self._conn.executemany(
                "INSERT INTO keys (hash, user_id, name, created_at) VALUES (?, ?, ?, ?)", rows
            )
            ids = self._conn.execute(
                "SELECT id FROM keys WHERE user_id = ? ORDER BY id DESC LIMIT ?", (user_id, n)
            ).fetchall()
        return [row[0] for row in reversed(ids)]

    def authenticate(self, plain: str | None, *, touch: bool = True) -> tuple[int, int] | None:
        """(user_id, key_id) for a usable key, recording its use unless touch=False; None otherwise."""
        if not plain:
            return None
        with self._lock, self._conn:
            row = self._conn.execute(
                "SELECT id, user_id, expires_at, revoked_at FROM keys WHERE hash = ?",
                (hash_token(plain),),
            ).fetchone()
            now = self._now_text()
            if row is None or self._status(row, now) != "active":
                return None
            if touch:
                self._conn.execute("UPDATE keys SET last_used_at = ? WHERE id = ?", (now, row["id"]))
            return row["user_id"], row["id"]

    def list_keys(self, user_id: int) -> list[dict]:
        now = self._now_text()
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM keys WHERE user_id = ? ORDER BY id", (user_id,)
            ).fetchall()
        return [self._key_object(row, now) for row in rows]

    def get_key(self, user_id: int, key_id: int) -> dict | None:
        with self._lock:
            return self._key(user_id, key_id)

    def rename_key(self, user_id: int, key_id: int, name: str) -> dict | None:
        name = check_name(name, required=True)
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE keys SET name = ? WHERE id = ? AND user_id = ?", (name, key_id, user_id)
            )
            return self._key(user_id, key_id)

    def revoke_key(self, user_id: int, key_id: int) -> dict | None:
        """Revoke one key; an already revoked key keeps its original revoked_at."""
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                (self._now_text(), key_id, user_id),
            )
            return self._key(user_id, key_id)

    def revoke_all(self, user_id: int) -> int:
        """Revoke every not yet revoked key of the user; return how many."""
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                (self._now_text(), user_id),
            )
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _key(self, user_id: int, key_id: int) -> dict | None:
        if not 0 < key_id <= MAX_ID:
            return None
        row = self._conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM keys WHERE id = ? AND user_id = ?", (key_id, user_id)
        ).fetchone()
        return self._key_object(row, self._now_text()) if row else None

    @staticmethod
    def _status(row: sqlite3.Row, now: str) -> str:
        # Fixed-width timestamps compare correctly as strings.
        if row["revoked_at"]:
            return "revoked"
        if row["expires_at"] and row["expires_at"] <= now:
            return "expired"
        return "active"

    @classmethod
    def _key_object(cls, row: sqlite3.Row, now: str) -> dict:
        return {
            "id": row["id"],
            "name": row["name"],
            "token_type": TOKEN_TYPE,
            "created_at": row["created_at"],
            "expires_at": row["expires_at"],
            "last_used_at": row["last_used_at"],
            "revoked_at": row["revoked_at"],
            "status": cls._status(row, now),
        }
