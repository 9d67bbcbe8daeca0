"""Confirmation tokens: a person, not the model, approves a destructive tool call.

When a client cannot ask its user directly (no MCP elicitation, a hand-written
tool loop), the first call of a destructive tool returns ``confirmation_required``
with a preview of what it would change and a token. The token is single-use,
expires within minutes, and is bound to the tool, its exact arguments and the
caller's identity: only a second call with the same arguments and that token acts.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from typing import Any, Callable

#: Seconds a confirmation token stays valid.
DEFAULT_TTL = 300.0


class ConfirmationTokens:
    """Issues and redeems single-use confirmation tokens (thread-safe, in memory)."""

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, float]] = {}  # token -> (binding, expiry)
        self._used: dict[str, float] = {}  # token -> when it stops mattering

    def issue(self, tool: str, arguments: dict[str, Any], principal: str = "") -> str:
        token = "confirm_" + secrets.token_urlsafe(12)
        with self._lock:
            self._forget_old()
            self._open[token] = (binding(tool, arguments, principal), self._clock() + self.ttl)
        return token

    def redeem(self, token: str | None, tool: str, arguments: dict[str, Any], principal: str = "") -> str | None:
        """None if ``token`` confirms this exact call (and is now spent); else why not."""
        if not token:
            return "missing"
        with self._lock:
            self._forget_old()
            if token in self._used:
                return "already used"
            entry = self._open.pop(token, None)
            if entry is None:
                return "unknown"
            self._used[token] = self._clock() + self.ttl
            bound_to, expiry = entry
            if self._clock() > expiry:
                return "expired"
            if bound_to != binding(tool, arguments, principal):
                return "issued for a different call"
        return None

    def _forget_old(self) -> None:
        now = self._clock()
        # Expired tokens are kept one extra TTL so a late call hears "expired", not "unknown".
        for token, (_, expiry) in list(self._open.items()):
            if now > expiry + self.ttl:
                del self._open[token]
        for token, until in list(self._used.items()):
            if now > until:
                del self._used[token]


def binding(tool: str, arguments: dict[str, Any], principal: str) -> str:
    """A digest naming one exact call: tool, arguments and who makes it."""
    canonical = json.dumps([tool, arguments, principal], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
