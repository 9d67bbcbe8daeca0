"""MCP streamable HTTP sessions: each belongs to the GEN key that opened it, and they are bounded.

:class:`SessionGate` is pure ASGI middleware in front of the SDK's ``/mcp`` endpoint:

- **Bound to a key.** Each request carries its GEN key's digest into the SDK as the
  authenticated principal (``scope["user"]``), so the SDK serves a session only to the key
  that opened it; the gate also refuses, with 404 as for an unknown session, any request
  whose key is not the session's. Nobody holding another user's ``Mcp-Session-Id`` can
  answer its elicitation, delete it, or collide with its request ids.
- **Bounded.** At most ``per_key`` sessions per key: a key at its limit loses its own least
  recently used idle session, never someone else's (429 if all are busy). At most ``total``
  sessions: when full, the least recently used idle session of a key that never made a
  successful call goes first (503 with ``Retry-After`` if none can), and such unproven keys
  may fill at most half the table, so made-up bearers cannot crowd out real users.
- **Known keys only.** With a ``key_check`` (``key_check.KeyCheck``), a session is opened for a
  key that never made a successful call only once GEN has accepted it (``get_me``, cached); a key
  GEN refuses gets 401 and never holds a session, so made-up bearers cannot evict a real user's
  session, even one that has not made a call yet. When GEN cannot say (unreachable, failing), the
  key is admitted as unproven, within the limits above.
- **Idle expiry.** A session of a key that never made a successful call (``prove``) is closed
  after ``unproven_idle`` seconds without a request; others after ``idle`` seconds.
- **Clients that hang up.** A client that disconnects mid-call leaves a debug line: what the SDK
  still sends for it (even a second answer, after an error) is dropped here, not raised by the server.

Sessions are closed through the SDK itself (a DELETE of the session, as its client would send).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from gen_nodes.surfaces.mcp.key_check import ACCEPTED, BUSY, REJECTED
from gen_nodes.surfaces.mcp.options import IDLE, PER_KEY, TOTAL, UNPROVEN_IDLE
from gen_nodes.client.cache import key_digest
from gen_nodes.net.headers import api_key_from_headers
from gen_nodes.net.middleware import request_headers, send_json

log = logging.getLogger("gen_nodes.mcp.sessions")

SESSION_HEADER = "mcp-session-id"
REJECTED_KEY = ("GEN does not accept this API key (it may be mistyped, revoked or expired); no MCP session "
                "was opened.")
REJECTED_KEY_HINT = ("Check the key, or create a new one in the GEN dashboard, and send it as "
                     "`Authorization: Bearer <key>` or `X-API-Key: <key>`.")
#: A refusal: HTTP status, JSON-RPC error, extra headers.
Refusal = tuple[int, dict[str, Any], list[tuple[str, str]]]


@dataclass
class _Session:
    owner: str
    last_seen: float
    in_flight: int = 0


def principal(digest: str) -> AuthenticatedUser:
    """The SDK's authenticated user for a GEN key digest (sessions are bound to it)."""
    return AuthenticatedUser(AccessToken(token="", client_id=digest, scopes=[], subject=digest))


class SessionGate:
    """See the module docstring. ``prove(key)`` marks a key that made a successful call;
    ``key_check(key)`` (async) says whether GEN accepts a key (a ``key_check.KeyCheck``)."""

    def __init__(self, app: Any, *, path: str = "/mcp", per_key: int = PER_KEY, total: int = TOTAL,
                 unproven_idle: float = UNPROVEN_IDLE, idle: float = IDLE,
                 key_check: Callable[[str], Awaitable[str]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.path, self.key_check = app, path.rstrip("/"), key_check
        self.per_key, self.total, self.unproven_idle, self.idle = per_key, total, unproven_idle, idle
        self._clock = clock
        self.sessions: OrderedDict[str, _Session] = OrderedDict()  # least recently used first
        self._proven: OrderedDict[str, None] = OrderedDict()
        self._last_sweep = float("-inf")

    def prove(self, key: str) -> None:
        self._prove_digest(key_digest(key))

    def _prove_digest(self, digest: str) -> None:
        self._proven[digest] = None
        self._proven.move_to_end(digest)
        while len(self._proven) > 10 * self.total:
            self._proven.popitem(last=False)

    def proven(self, digest: str) -> bool:
        return digest in self._proven

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path", "").rstrip("/") != self.path:
            return await self.app(scope, receive, send)
        exchange = _Exchange(receive, send)
        headers = request_headers(scope)
        key = api_key_from_headers(headers)
        if not key:
            return await self._run(scope, exchange)
        digest = key_digest(key)
        scope = {**scope, "user": principal(digest)}
        await self._sweep(headers)
        sid = headers.get(SESSION_HEADER)
        version = headers.get("mcp-protocol-version")
        if sid is None and scope["method"] == "POST" and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS):
            return await self._open(key, digest, headers, scope, exchange)
        if sid is None:  # 2026-era requests have no sessions; anything else the SDK refuses itself
            return await self._run(scope, exchange)
        session = self.sessions.get(sid)
        if session is not None and session.owner != digest:
            log.warning("refused a request for a session opened by another key")
            return await send_json(send, 404, _rpc_error(-32600, "Session not found"))
        if session is None:
            return await self._run(scope, exchange)
        session.in_flight += 1
        session.last_seen = self._clock()
        self.sessions.move_to_end(sid)
        try:
            await self._run(scope, exchange)
        finally:
            session.in_flight -= 1
            session.last_seen = self._clock()
            status = exchange.status
            if status == 404 or (scope["method"] == "DELETE" and status is not None and status < 300):
                self.sessions.pop(sid, None)

    async def _open(self, key: str, digest: str, headers: dict[str, str], scope: Any, exchange: "_Exchange") -> None:
        # Vetted before making room: a key GEN refuses must never push out anyone's session.
        refusal = await self._vet(key, digest) or await self._make_room(digest, headers)
        if refusal is not None:
            status, error, extra = refusal
            log.warning("refused a new session: %s", error["error"]["message"])
            return await send_json(exchange.send, status, error, extra)
        await self._run(scope, exchange)
        opened = exchange.header(SESSION_HEADER) if (exchange.status or 500) < 400 else None
        if opened is not None:
            self.sessions[opened] = _Session(owner=digest, last_seen=self._clock())

    async def _vet(self, key: str, digest: str) -> Refusal | None:
        """Ask GEN about a key not yet proven: refuse one it rejects; one it accepts is proven."""
        if self.key_check is None or self.proven(digest):
            return None
        verdict = await self.key_check(key)
        if verdict == ACCEPTED:
            self._prove_digest(digest)
        elif verdict == REJECTED:
            return 401, _rpc_error(-32001, f"{REJECTED_KEY} {REJECTED_KEY_HINT}", REJECTED_KEY_HINT), [
                ("www-authenticate", 'ApiKey realm="gen-nodes"')]
        elif verdict == BUSY:
            return 503, _rpc_error(-32000, "The server is checking too many new GEN keys; try again shortly."), [
                ("retry-after", "5")]
        return None  # GEN could not say: admitted as an unproven key, within their share

    async def _make_room(self, digest: str, headers: dict[str, str]) -> Refusal | None:
        mine = [sid for sid, s in self.sessions.items() if s.owner == digest]
        if len(mine) >= self.per_key:
            idle = [sid for sid in mine if self.sessions[sid].in_flight == 0]
            if not idle:
                return 429, _rpc_error(-32000, f"This GEN key has {len(mine)} MCP sessions open, all busy; "
                                       f"the limit is {self.per_key}. Close sessions you no longer use."), [
                    ("retry-after", "5")]
            await self._close(idle[0], headers)
        unproven = not self.proven(digest)
        crowded = len(self.sessions) >= self.total or (
            unproven and sum(not self.proven(s.owner) for s in self.sessions.values()) >= self.total // 2)
        if crowded:
            victims = [sid for sid, s in self.sessions.items() if s.in_flight == 0 and not self.proven(s.owner)]
            if not victims:
                return 503, _rpc_error(-32000, "The server has too many MCP sessions open; try again shortly."), [
                    ("retry-after", "30")]
            await self._close(victims[0], headers)
        return None

    async def _sweep(self, headers: dict[str, str]) -> None:
        now = self._clock()
        if now - self._last_sweep < 1.0:
            return
        self._last_sweep = now
        for sid, s in list(self.sessions.items()):
            limit = self.idle if self.proven(s.owner) else self.unproven_idle
            if s.in_flight == 0 and now - s.last_seen > limit:
                await self._close(sid, headers)

    async def _close(self, sid: str, headers: dict[str, str]) -> None:
        """End a session through the SDK, with the DELETE its own client would send."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "DELETE",
                 "scheme": "http", "path": self.path, "raw_path": self.path.encode(), "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
                 "headers": [(b"host", headers.get("host", "127.0.0.1").encode("latin-1")),
                             (SESSION_HEADER.encode(), sid.encode("latin-1"))],
                 "user": principal(session.owner)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Any) -> None:
            pass

        try:
            await self.app(scope, receive, discard)
        except Exception as exc:  # the session is forgotten either way; the SDK expires it later
            log.warning("closing an MCP session failed: %s", type(exc).__name__)

    async def _run(self, scope: Any, exchange: "_Exchange") -> None:
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            if not exchange.gone:
                raise
            # Nobody is left to answer: what failed is the answer to a client that went away.
            log.debug("a request whose client went away ended with %s", type(exc).__name__)


class _Exchange:
    """One request's receive and send, as the client sees them. Once the client has gone, or the
    answer is complete, what the app still sends is dropped with a debug line: the server would
    raise on it (``Unexpected ASGI message ... after response already completed``) and log a traceback."""

    def __init__(self, receive: Any, send: Any) -> None:
        self._receive, self._send = receive, send
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = self.gone = self._dropped = False

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.decode("latin-1").lower() == name:
                return value.decode("latin-1")
        return None

    async def receive(self) -> Any:
        message = await self._receive()
        if message["type"] == "http.disconnect" and not (self.complete or self.gone):
            self.gone = True
            log.debug("the client went away before the answer to its request was complete")
        return message

    async def send(self, message: Any) -> None:
        started = self.status is not None
        if self.gone or self.complete or (started and message["type"] == "http.response.start"):
            if not self._dropped:  # once: a stream may go on sending for a while
                log.debug("dropped an ASGI %s sent after the answer was complete or its client had gone",
                          message["type"])
            self._dropped = True
            return
        if message["type"] == "http.response.start":
            self.status, self.headers = message["status"], list(message.get("headers", ()))
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self._send(message)


def _rpc_error(code: int, message: str, auth_hint: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if auth_hint:
        error["data"] = {"type": "authentication", "hint": auth_hint}
    return {"jsonrpc": "2.0", "id": None, "error": error}
