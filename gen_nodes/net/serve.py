"""How a surface listens: :func:`bind`, :func:`url_of` and :func:`serve` (the first stdout line is ``{\"url\": ...}``)."""

from __future__ import annotations

import json
import socket
import sys
from typing import Any, Iterable, TextIO

from gen_nodes.core.errors import CannotServe  # re-exported: the sandbox imports only net
from gen_nodes.net.guard import HostGuard, guard_hosts, is_loopback
from gen_nodes.net.logs import install_repeat_filter

__all__ = ["CannotServe", "bind", "serve", "url_of"]

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
    # An app that brings its own guard (built from the same hosts) is not wrapped twice.
    guarded = app if isinstance(app, HostGuard) else HostGuard(app, hosts)
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


