"""The HTTP pieces gen-nodes' web surfaces share (MCP over HTTP, the gateway, Slack, Discord).

    key = api_key_from_headers(headers)        # X-API-Key, else Authorization: Bearer; None if neither
    cache = ClientCache(lambda key: GenClient(api_key=key), size=64)
    with cache.lease(key) as client: ...       # one GenClient per key (by SHA-256), reused
    app = RequireGenKey(app, paths=("/mcp",))  # 401 with a readable JSON body when a request has no key
    app = HostGuard(app, hosts, origins)       # DNS-rebinding guard: 421 on a foreign Host, 403 on a foreign Origin
    serve(app, host="127.0.0.1", port=0, path="/mcp")   # binds, prints {"url": ...} first, serves until Ctrl-C
    body = await read_body(request)            # at most 1 MiB, streamed; BodyTooLarge -> body_too_large() (413)

``serve`` is the one way a surface listens:

- It binds the port itself, so the FIRST line on stdout is ``{"url": "http://127.0.0.1:41234/mcp"}``
  with the real port, printed only once the server accepts connections (``--port 0`` works).
- A port in use, a bad address, or an app that fails to start raise :class:`CannotServe`
  (a :class:`~gen_nodes.errors.GenError`: the CLI prints it as JSON and exits 1), never a traceback.
- A host other than loopback is refused (:class:`~gen_nodes.errors.InvalidInput`) unless the caller
  opts in with ``allow_remote=True`` *and* names the ``allowed_hosts`` (Host header values) that
  clients will use; the :class:`HostGuard` is then built from that list, so the DNS-rebinding guard
  is never silently off. On loopback it admits only loopback names.
- Repeated identical log lines are rate-limited (:class:`RepeatFilter`): a flood of bad
  connections cannot fill the disk or drown the one useful line.

The 401 of :class:`RequireGenKey` carries ``WWW-Authenticate: ApiKey realm="gen-nodes"``, not a
``Bearer`` challenge: these servers do not do OAuth, and MCP clients read a Bearer challenge on a 401
as the start of the OAuth flow of the MCP authorization spec (discovery of
``/.well-known/oauth-protected-resource``, which these servers answer with 404). The body says how to
send the GEN key instead.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import socket
import sys
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, TextIO

from ..errors import CannotServe, InvalidInput  # CannotServe: defined in errors.py, still importable from here

log = logging.getLogger("gen_nodes.web")

#: GEN keys whose clients a server keeps (least recently used dropped first).
CLIENT_CACHE_SIZE = 64
#: Where the approval pages live: their paths hold a secret link, never written to a log.
APPROVAL_PAGE_PREFIX = "/approve/"
#: An approval page's secret link anywhere in a logged value: behind a path-prefixed proxy (uvicorn's
#: ``--root-path``) the access log shows ``/gw/approve/<secret>``, not a path starting ``/approve/``.
_APPROVAL_LINK = re.compile(r"(^|/)approve/[^/?\s]+")
#: Host header values (and Origins) admitted on a loopback bind.
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
KEY_HINT = ("Send your GEN API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`. "
            "This server does not use OAuth; configure the header in your client.")


# -- keys and clients ----------------------------------------------------------------------


def api_key_from_headers(headers: Any) -> str | None:
    """The GEN key of an HTTP request: ``X-API-Key``, else ``Authorization: Bearer``; None if neither.

    ``headers`` is any mapping with lower-case ``.get`` (Starlette's ``Headers`` or a plain dict
    with lower-case names).
    """
    key = headers.get("x-api-key")
    auth = headers.get("authorization") or ""
    if not key and auth[:7].lower() == "bearer ":
        key = auth[7:]
    key = (key or "").strip()
    return key or None


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


# -- request bodies --------------------------------------------------------------------------

#: The largest request body the chat-ops endpoints read (Slack and Discord send a few KiB).
MAX_BODY = 1024 * 1024


class BodyTooLarge(Exception):
    """A request body passed the limit; the rest of it was not read."""


async def read_body(request: Any, limit: int = MAX_BODY) -> bytes:
    """A Starlette request's body, read chunk by chunk and refused (:class:`BodyTooLarge`) as soon as
    it passes ``limit`` bytes, or when its Content-Length says it will: a huge or endless body,
    chunked or not, is never held in memory. Runs before any signature check, so it needs none."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def body_too_large(limit: int = MAX_BODY) -> Any:
    """The 413 answer to a body over ``limit`` (the connection is closed: the rest is never read)."""
    from starlette.responses import JSONResponse

    return JSONResponse({"error": f"the request body is over {limit} bytes"}, status_code=413,
                        headers={"connection": "close"})


# -- middleware ------------------------------------------------------------------------------


def request_headers(scope: Any) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


async def send_json(send: Any, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
           *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class RequireGenKey:
    """Pure ASGI middleware: a request under ``paths`` (all paths if None) without a GEN key gets 401.

    The body is ``{"error": {"type": "authentication", "message", "hint"}}``; with ``jsonrpc=True``
    it is a JSON-RPC error (what MCP clients read from a non-2xx answer) holding the same words.
    """

    def __init__(self, app: Any, *, paths: Iterable[str] | None = None, jsonrpc: bool = False) -> None:
        self.app, self.jsonrpc = app, jsonrpc
        self.paths = None if paths is None else tuple(p.rstrip("/") for p in paths)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._guarded(scope.get("path", "")) and not api_key_from_headers(request_headers(scope)):
            message = "This request carries no GEN API key."
            if self.jsonrpc:
                body: dict[str, Any] = {"jsonrpc": "2.0", "id": None, "error": {
                    "code": -32001, "message": f"{message} {KEY_HINT}",
                    "data": {"type": "authentication", "hint": KEY_HINT}}}
            else:
                body = {"error": {"type": "authentication", "message": message, "hint": KEY_HINT}}
            return await send_json(send, 401, body, [("www-authenticate", 'ApiKey realm="gen-nodes"')])
        await self.app(scope, receive, send)

    def _guarded(self, path: str) -> bool:
        if self.paths is None:
            return True
        path = path.rstrip("/")
        return any(path == p or path.startswith(p + "/") for p in self.paths)


def _matches(value: str, patterns: Iterable[str]) -> bool:
    value = value.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if value == pattern:
            return True
        # ``name:*`` is that name with a port of digits only: a prefix match would also admit
        # ``127.0.0.1:1@evil.example``, which a URL built from the Host reads as the host evil.example.
        if pattern.endswith(":*") and value.startswith(pattern[:-1]) and _is_port(value[len(pattern) - 1:]):
            return True
    return False


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit()


def host_allowed(value: str, patterns: Iterable[str]) -> bool:
    """True if a Host header value (or an Origin) is one of ``patterns`` (``name:*``: any port)."""
    return _matches(value, patterns)


def origins_for(hosts: Iterable[str]) -> list[str]:
    """The Origins a browser shows for pages served under ``hosts`` (http and https)."""
    return [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]


class HostGuard:
    """Pure ASGI middleware against DNS rebinding: only the listed Host headers (421 otherwise) and,
    when a request has an ``Origin``, only the listed origins (403 otherwise). ``host:*`` matches any port.

    Under ``page_paths`` (the approval page) the Origin is left to the page, which checks it with
    its CSRF token and answers a person in HTML rather than with this JSON."""

    def __init__(self, app: Any, hosts: Iterable[str], origins: Iterable[str] | None = None,
                 page_paths: Iterable[str] = (APPROVAL_PAGE_PREFIX,)) -> None:
        self.app, self.hosts, self.page_paths = app, tuple(hosts), tuple(page_paths)
        self.origins = tuple(origins_for(self.hosts) if origins is None else origins)
        if not self.hosts:
            raise ValueError("HostGuard needs at least one allowed host")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = request_headers(scope)
            if not _matches(headers.get("host", ""), self.hosts):
                return await send_json(send, 421, {"error": {
                    "type": "invalid_input", "message": "This server does not answer to that Host name.",
                    "hint": "Use the address the server printed, or start it with that name in --allowed-host."}})
            origin = headers.get("origin")
            page = str(scope.get("path", "")).startswith(self.page_paths)
            if origin is not None and not page and not _matches(origin, self.origins):
                return await send_json(send, 403, {"error": {
                    "type": "permission", "message": "Requests from that Origin are refused.",
                    "hint": "Browsers send an Origin from pages of other sites: call this server from a program "
                            "(without an Origin header), or list that site's host in --allowed-host."}})
        await self.app(scope, receive, send)


# -- binding ---------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True if ``host`` is a loopback address or a name that resolves only to loopback addresses."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def guard_hosts(host: str, *, allow_remote: bool = False, allowed_hosts: Iterable[str] = ()) -> list[str]:
    """The Host header values a server bound to ``host`` admits; refuses a non-loopback bind without opt-in.

    On loopback: the loopback names plus any ``allowed_hosts``. Elsewhere: exactly ``allowed_hosts``,
    which must be given, and only with ``allow_remote``.
    """
    allowed = [h.strip() for h in allowed_hosts if h.strip()]
    if is_loopback(host):
        return [*LOOPBACK_HOSTS, *allowed]
    if not allow_remote:
        raise InvalidInput(
            f"Refusing to listen on {host}: that address is reachable from other machines.",
            errors=[{"path": "--host", "message": "not a loopback address"}],
            hint="Use --host 127.0.0.1 (the default), or opt in with --allow-remote and name the host names "
                 "clients will use with --allowed-host (e.g. --allowed-host gen.example.com:8000).")
    if not allowed:
        raise InvalidInput(
            f"Listening on {host} needs the list of host names clients will use (DNS-rebinding guard).",
            errors=[{"path": "--allowed-host", "message": "required with --allow-remote"}],
            hint="Add --allowed-host NAME:PORT (repeatable; NAME:* for any port) for every name clients use.")
    return allowed


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0 = any free port); :class:`CannotServe` if impossible."""
    if not 0 <= port <= 65535:
        raise CannotServe(f"Port {port} is out of range.", hint="Use a port from 1 to 65535, or 0 for any free port.")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as exc:
        raise CannotServe(f"Cannot listen on {host!r}: not an address or name of this machine "
                          f"({getattr(exc, 'strerror', None) or exc}).") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        what = "is already in use" if exc.errno == 98 else f"cannot be used ({exc.strerror or exc})"
        raise CannotServe(f"Cannot listen on {host}:{port}: the address {what}.") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, path: str = "") -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def serve(app: Any, *, host: str = "127.0.0.1", port: int = 8000, path: str = "",
          allow_remote: bool = False, allowed_hosts: Iterable[str] = (), name: str = "gen-nodes",
          stdout: TextIO | None = None, limit_concurrency: int | None = 1000) -> None:
    """Serve ``app`` with uvicorn until interrupted (see the module docstring for the contract).

    ``path`` is appended to the printed url; ``name`` goes into the stderr banner.
    """
    import uvicorn

    hosts = guard_hosts(host, allow_remote=allow_remote, allowed_hosts=allowed_hosts)
    guarded = HostGuard(app, hosts)
    sock = bind(host, port)
    url = url_of(sock, path)
    stdout = stdout or sys.stdout

    class _Announcing(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                print(json.dumps({"url": url}), file=stdout, flush=True)
                remote = "" if is_loopback(host) else (
                    f" It is reachable from other machines; it answers only to Host {', '.join(hosts)}, and "
                    "anyone who reaches it can act with the GEN key they send.")
                print(f"{name} on {url}.{remote} Ctrl-C stops it.", file=sys.stderr, flush=True)

    config = uvicorn.Config(guarded, log_level="warning", access_log=False, lifespan="on",
                            limit_concurrency=limit_concurrency, timeout_graceful_shutdown=5)
    install_repeat_filter()  # after Config, which gives uvicorn's loggers their handlers
    server = _Announcing(config)
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits 3 when the app fails to start; 3 means "authentication" here
        raise CannotServe(f"{name} failed to start on {url}; see the log lines above.",
                          hint="Fix what the log names, then start it again.") from None
    finally:
        sock.close()
    if not server.started:
        raise CannotServe(f"{name} failed to start on {url}; see the log lines above.",
                          hint="Fix what the log names, then start it again.")


# -- logs ------------------------------------------------------------------------------------


class RepeatFilter(logging.Filter):
    """Lets at most ``burst`` records with the same logger, level and message template through per
    ``window`` seconds; the next record after a quiet spell says how many were dropped."""

    def __init__(self, burst: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self._clock = burst, window, clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [window start, count, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                dropped = int(entry[2]) if entry else 0
                if len(self._seen) > 1000:  # many distinct lines: forget the old windows
                    self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
                self._seen[key] = [now, 1, 0]
                if dropped:
                    record.msg = f"{record.msg} [{dropped} similar lines suppressed]"
                return True
            entry[1] += 1
            if entry[1] <= self.burst:
                return True
            entry[2] += 1
            return False


def log_path(path: Any) -> str:
    """A request path as a log may show it: escaped to one line, an approval page's secret link hidden."""
    return one_line(_APPROVAL_LINK.sub(r"\1approve/<link>", str(path or "")))


def one_line(text: str) -> str:
    """``text`` with every control character (newlines, escapes) written as a visible escape."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class SafeLines(logging.Filter):
    """Writes each value of a record as one escaped line (a path holding a newline cannot forge a
    line of its own) and hides approval links (uvicorn's access log passes the request path as an
    argument). The message template stays, so :class:`RepeatFilter` still counts by it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _safe_value(arg) for name, arg in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = one_line(record.msg)
        return True


def _safe_value(value: Any) -> Any:
    if isinstance(value, (int, float)) or value is None:
        return value
    return log_path(value)


_installed: RepeatFilter | None = None
_safe_lines = SafeLines()


def install_log_filters() -> None:
    """:class:`SafeLines` on uvicorn's access logger and, with :class:`RepeatFilter`, on the handlers
    of the root and uvicorn loggers: for ``serve`` and for an app a uvicorn of its own runs."""
    install_repeat_filter()


def install_repeat_filter() -> RepeatFilter:
    """Put one :class:`RepeatFilter` (per process) on the handlers of the root logger and of uvicorn's
    loggers (uvicorn gives them handlers of their own), adding a stderr handler if there is none."""
    global _installed
    if _installed is None:
        _installed = RepeatFilter()
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            for wanted in (_installed, _safe_lines):
                if wanted not in handler.filters:
                    handler.addFilter(wanted)
    access = logging.getLogger("uvicorn.access")
    if _safe_lines not in access.filters:  # before any handler, whoever configured them
        access.addFilter(_safe_lines)
    return _installed
