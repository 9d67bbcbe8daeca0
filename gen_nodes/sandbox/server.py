"""A local, faithful fake of GEN's API-key REST endpoints, served over real HTTP.

``Sandbox`` runs a ThreadingHTTPServer on loopback with the routes of GEN's
"API Keys" reference under ``/v1``, backed by ``Store``. Two response variants
cover where GEN's documents disagree ("reference" and "openapi"), a control
endpoint ``POST /_sandbox/users`` creates more users, and ``inject_fault`` makes
the next matching requests fail the way a network or a proxy would.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import socket
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable
from urllib.parse import urlsplit

from gen_nodes.net.guard import guard_hosts, host_allowed
from gen_nodes.net.serve import CannotServe, bind
from gen_nodes.sandbox.api import API_PREFIX, VARIANTS, Api, Request, Response, Route, error
from gen_nodes.sandbox.faults import Fault, FaultQueue
from gen_nodes.sandbox.store import Store

logger = logging.getLogger("gen_nodes.sandbox")

BOOTSTRAP_KEY_NAME = "sandbox bootstrap"
MAX_BODY = 1 << 20
# A chunk size line: hex digits only (no sign, no 0x), and not a novel.
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_CHUNK_LINE = 1024
# How often serve_forever checks for shutdown; the default 0.5 s makes stop() slow.
POLL_INTERVAL = 0.05



# -- HTTP transport -------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gen-sandbox/0.1"
    sys_version = ""
    # Idle keep-alive connections give up after this many seconds.
    timeout = 300
    # Headers and body go out in two writes; with Nagle on, a kept-alive
    # client would wait for a delayed ACK (~40 ms) on every answer.
    disable_nagle_algorithm = True

    server: "_Server"

    def setup(self):
        super().setup()
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def date_time_string(self, timestamp=None) -> str:
        # The Date header follows the store's clock, as GEN's follows GEN's: filters such as
        # list_api_keys' expiring_within measure from it, so store.advance() moves them too.
        if timestamp is None:
            timestamp = self.server.api.store.now().timestamp()
        return super().date_time_string(timestamp)

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        # Only the request line and status reach here, never headers.
        logger.debug("%s - " + format, self.client_address[0], *args)

    def _serve(self):
        body = self._read_body()
        if body is None:
            return
        if not host_allowed(self.headers.get("Host", ""), self.server.allowed_hosts):
            # DNS rebinding: a web page on another name must not reach the sandbox through a browser.
            return self._send(error(421, "misdirected_request", "This sandbox does not answer to that Host name"))
        path = urlsplit(self.path).path
        api = self.server.api
        resolved = api.resolve(self.command, path)
        if isinstance(resolved, Response):
            return self._send(resolved)
        route, params = resolved
        if route.authenticated:
            self.server.seen.append((self.command, path[len(API_PREFIX):]))
        request = Request(self.command, path, self.headers, body, self.client_address[0], params)
        fault = self._fault_for(route, path)
        if fault is None:
            return self._send(self._execute(route, request))
        self._apply_fault(fault, lambda: self._execute(route, request))

    def _execute(self, route: Route, request: Request) -> Response:
        try:
            return self.server.api.execute(route, request)
        except Exception:
            logger.exception("sandbox endpoint failed: %s %s", request.method, request.path)
            return error(500, "internal_error", "Internal server error")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _fault_for(self, route: Route, path: str) -> Fault | None:
        if not route.authenticated:
            return None
        return self.server.faults.take(self.command, path[len(API_PREFIX):])

    def _apply_fault(self, fault: Fault, execute: Callable[[], Response]) -> None:
        response = execute() if fault.after else None
        # A sandbox stopping mid-delay answers nothing, like a server going away.
        stopping = bool(fault.delay) and self.server.stopping.wait(fault.delay)
        if fault.drop or stopping:
            self.close_connection = True  # the server then closes the socket unanswered
            return
        if fault.status is not None:
            response = fault.response()
        self._send(response if response is not None else execute())

    def _read_body(self) -> bytes | None:
        """The whole request body (so keep-alive stays in sync), or None after an error answer."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(error(400, "bad_request", "Invalid Content-Length"))
            return None
        if length > MAX_BODY:
            self.close_connection = True
            self._send(error(413, "payload_too_large", "Request body is too large"))
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks, total = [], 0
        while True:
            digits = self.rfile.readline(_MAX_CHUNK_LINE).split(b";")[0].strip()
            if not _HEX.fullmatch(digits):  # int(b"-1", 16) is -1: it would have lowered the total
                self.close_connection = True
                self._send(error(400, "bad_request", "Invalid chunk size"))
                return None
            size = int(digits, 16)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self._send(error(413, "payload_too_large", "Request body is too large"))
                return None
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, str(value))
        # RFC 9110: a 204 carries no Content-Length; clients know it has no body.
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.status != 204:
            self.wfile.write(response.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # listen() backlog; the default 5 makes bursts of parallel clients wait on SYN retries.
    request_queue_size = 128

    def __init__(self, sock: socket.socket, api: Api, faults: FaultQueue, allowed_hosts: list[str]):
        self.api = api
        self.faults = faults
        self.allowed_hosts = allowed_hosts
        self.stopping = threading.Event()
        self.seen: list[tuple[str, str]] = []
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # The socket comes bound and listening (web.bind: one way to bind, one set of clear errors).
        super().__init__(sock.getsockname(), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # Mostly clients hanging up mid-answer; keep it off stderr.
        logger.debug("connection from %s failed", client_address[0], exc_info=True)

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        """End kept-alive connections so a stopped sandbox really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# -- public entry point --------------------------------------------------------------


class Sandbox:
    """A running fake GEN API; use as a context manager or start()/stop().

    Each start mints a new bootstrap key (``api_key``) for the first user,
    unless ``api_key`` names a key of the store that still works: then that one
    is reused (for a file DB whose key was kept between runs).
    """

    def __init__(self, db_path: str = ":memory:", host: str = "127.0.0.1", port: int = 0,
                 variant: str = "reference", clock=None, api_key: str | None = None, *,
                 allow_remote: bool = False, allowed_hosts: Iterable[str] = ()):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.host, self.port, self.variant = host, port, variant
        # A host other than loopback only with allow_remote and the Host names clients use.
        self.allowed_hosts = guard_hosts(host, allow_remote=allow_remote, allowed_hosts=allowed_hosts)
        try:
            self.store = Store(db_path, clock=clock)
        except sqlite3.Error as exc:
            raise CannotServe(f"Cannot open the sandbox database {db_path}: {exc}.",
                              hint="Give --db a file in a folder that exists and you can write to "
                                   "(or leave it out for an in-memory sandbox).") from None
        self.faults = FaultQueue()
        # Every /v1 request as it arrives (before any fault's delay): (method, path without "/v1").
        self.seen: list[tuple[str, str]] = []
        self.base_url: str | None = None
        self.api_key: str | None = None
        self.user: dict | None = None
        # A bootstrap key kept from an earlier run (file DB), reused while it still works.
        self._reuse_key = api_key
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving = False
        self._lock = threading.Lock()

    def create_user(self, email: str | None = None, name: str | None = None) -> tuple[dict, str]:
        """A new user and the plain text of its first key."""
        user = self.store.create_user(email, name)
        return user, self._new_bootstrap_key(user["id"])

    def _new_bootstrap_key(self, user_id: int) -> str:
        return self.store.create_key(user_id, BOOTSTRAP_KEY_NAME)[1]

    def bind(self) -> "Sandbox":
        """Open the listening socket and mint api_key, without serving yet."""
        with self._lock:
            if self._server is not None:
                return self
            api = Api(self.store, self.variant, self._new_bootstrap_key)
            self._server = _Server(bind(self.host, self.port), api, self.faults, self.allowed_hosts)
            self._server.seen = self.seen
            self.port = self._server.server_address[1]
            self.base_url = f"http://{self.host}:{self.port}{API_PREFIX}"
            self.user, self.api_key = self._bootstrap()
        return self

    def _bootstrap(self) -> tuple[dict, str]:
        """The user to sign in as and its key: the kept key if still usable, else a new one."""
        owner = self.store.authenticate(self._reuse_key, touch=False) if self._reuse_key else None
        if owner is not None:
            return self.store.get_user(owner[0]), self._reuse_key
        user = self.store.first_user() or self.store.create_user()
        return user, self._new_bootstrap_key(user["id"])

    def start(self) -> "Sandbox":
        """Bind and serve in a daemon thread."""
        self.bind()
        with self._lock:
            if not self._serving:
                self._serving = True
                self._thread = threading.Thread(
                    target=self._server.serve_forever, args=(POLL_INTERVAL,),
                    name="gen-sandbox", daemon=True,
                )
                self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve in the foreground until Ctrl-C or stop()."""
        self.bind()
        with self._lock:
            self._serving = True
            server = self._server
        try:
            server.serve_forever(POLL_INTERVAL)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving and close the socket; the store stays open. Idempotent."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
            serving, self._serving = self._serving, False
        if server is None:
            return
        server.stopping.set()
        # shutdown() waits for serve_forever, so it would hang if it never ran.
        if serving:
            server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def requests_seen(self, method: str | None = None, path: str | None = None) -> list[tuple[str, str]]:
        """The /v1 requests that reached the sandbox, in order, as (method, path without "/v1"):
        a request counts when it arrives, before a fault delays or drops it. ``method`` and ``path``
        (shell wildcards, as in :meth:`inject_fault`) filter them."""
        return [(m, p) for m, p in list(self.seen) if (method is None or m == method.upper())
                and (path is None or fnmatch.fnmatchcase(p, path))]

    def inject_fault(self, status: int | None = None, *, times: int = 1, body: object = None,
                     headers: dict | None = None, method: str | None = None, path: str | None = None,
                     delay: float = 0.0, drop: bool = False, after: bool = False) -> None:
        """Make the next `times` matching /v1 requests misbehave.

        method/path filter the requests (path without "/v1", shell wildcards
        allowed, e.g. "/persisted_tokens/*/revoke"). With `status` the sandbox
        answers that status, `body` (dict/list -> JSON, str -> HTML, None ->
        empty) and extra `headers` instead of handling the request. `delay`
        sleeps first; `drop` closes the connection without an answer. With
        `after` the request is really handled first (a create does happen),
        then the fault replaces or drops the answer.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        if status is not None and not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        if drop and status is not None:
            raise ValueError("a dropped connection has no status")
        if body is not None and not isinstance(body, (dict, list, str)):
            raise TypeError("body must be a dict or list (JSON), a str (HTML) or None")
        self.faults.add(Fault(status, times, body, dict(headers or {}), method, path,
                              delay, drop, after))
