"""Encryption at rest for what the store must keep but nobody may read there.

A created key's one-time secret held for an idempotent replay, and a chat user's
bound GEN key, are sealed with Fernet (AES-128-CBC with HMAC-SHA256, from the
well-kept ``cryptography`` package) before they reach any store. The Fernet key is
derived (HKDF-SHA256) from a secret string the operator sets, so any length works.
A comma-separated list rotates keys: the first seals, every one opens.

Which secret: the caller names an environment variable (``GEN_NODES_STATE_SECRET``
for idempotency records, ``GEN_NODES_CHATOPS_SECRET`` for chat bindings). With none
set, :func:`box_for` gives a store on one machine a key file next to it (0600; one
that is a link, another user's or readable by others is refused) and a memory store
a random key; a store shared by machines needs the variable, since every process
must open what another sealed.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path
from typing import Any

from gen_nodes.core import settings
from gen_nodes.core.paths import UnsafePath, open_state_file

STATE_SECRET_ENV = "GEN_NODES_STATE_SECRET"


class SecretBoxError(RuntimeError):
    """A sealed value could not be opened (wrong key, or tampered with), or no key is set."""


def _fernet_key(secret: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gen-nodes secretbox v1", info=b"fernet").derive(
        secret.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Seals and opens short strings. The secret itself never shows in ``repr``."""

    def __init__(self, secret: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        parts = [part.strip() for part in str(secret).split(",") if part.strip()]
        if not parts or any(len(part) < 16 for part in parts):
            raise SecretBoxError("An encryption secret must be at least 16 characters (e.g. `openssl rand -hex 32`).")
        self._fernet = MultiFernet([Fernet(_fernet_key(part)) for part in parts])

    def __repr__(self) -> str:
        return "SecretBox(…)"

    @classmethod
    def generate(cls) -> "SecretBox":
        """A box with a random key, for state that lives in this process only."""
        return cls(secrets.token_hex(32))

    @classmethod
    def from_env(cls, variable: str, *, required: bool = True) -> "SecretBox | None":
        """The box keyed by ``$variable``; without it, an error (or None if not ``required``)."""
        value = settings.current().value(variable) or ""
        if not value:
            if required:
                raise SecretBoxError(
                    f"Set {variable} to a long random secret (e.g. `openssl rand -hex 32`); it encrypts what "
                    "gen-nodes keeps at rest. Every process sharing the store needs the same value.")
            return None
        return cls(value)

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(str.__str__(text).encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError, UnicodeError):
            raise SecretBoxError(
                "A sealed value could not be opened: the encryption secret differs from the one that sealed it, "
                "or the stored value was altered.") from None


def box_for(store: Any, variable: str = STATE_SECRET_ENV) -> SecretBox:
    """The box for values kept in ``store``: ``$variable``, else a local key (see the module doc)."""
    box = SecretBox.from_env(variable, required=bool(getattr(store, "shared", False)))
    if box is not None:
        return box
    path = getattr(store, "path", None)
    if path is None:
        return SecretBox.generate()
    return SecretBox(_local_key(Path(str(path) + ".key")))


def _local_key(path: Path) -> str:
    """The key in ``path``, made (0600, never following a link) if it does not exist yet.

    An existing key file is used only if it is this user's alone (see :func:`gen_nodes.core.paths.check_state_file`):
    a key another user planted would let them open every value sealed with it.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _existing_key(path)
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def _existing_key(path: Path) -> str:
    for _ in range(50):  # another process may have made it and not written it yet
        try:
            fd = open_state_file(path, os.O_RDONLY)
        except UnsafePath as exc:
            raise SecretBoxError(str(exc)) from None
        with os.fdopen(fd) as fh:
            key = fh.read().strip()
        if key:
            return key
        time.sleep(0.02)
    raise SecretBoxError(f"The key file {path} is empty; delete it (and the records it sealed) to start over.")
