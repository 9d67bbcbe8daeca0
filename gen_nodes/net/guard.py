"""The host/origin guard against DNS rebinding (:class:`HostGuard`), the one :func:`is_loopback` and the bind policy (:func:`guard_hosts`)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Iterable

from gen_nodes.core.errors import InvalidInput, MalformedRequest, PermissionDenied
from gen_nodes.net.errors import error_body
from gen_nodes.net.logs import APPROVAL_PAGE_PREFIX
from gen_nodes.net.middleware import request_headers, send_json

#: Host header values (and Origins) admitted on a loopback bind.
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")


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
                return await send_json(send, 421, error_body(MalformedRequest(
                    "This server does not answer to that Host name.",
                    hint="Use the address the server printed, or start it with that name in --allowed-host.")))
            origin = headers.get("origin")
            page = str(scope.get("path", "")).startswith(self.page_paths)
            if origin is not None and not page and not _matches(origin, self.origins):
                return await send_json(send, 403, error_body(PermissionDenied(
                    "Requests from that Origin are refused.",
                    hint="Browsers send an Origin from pages of other sites: call this server from a program "
                         "(without an Origin header), or list that site's host in --allowed-host.")))
        await self.app(scope, receive, send)


# -- binding ---------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True if ``host`` is a loopback address or a name that resolves only to loopback addresses.

    The one test of loopback for binds and for clients alike: ``[::1]`` (bracketed), ``::1%lo`` (with a
    zone) and ``::ffff:127.0.0.1`` (how a dual-stack socket shows an IPv4 client) are loopback too.
    """
    address = _ip(host.strip().strip("[]"))
    if address is not None:
        return _is_loopback_address(address)
    if not host.strip():
        return False
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(_is_loopback_address(ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_loopback_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Python before 3.13 calls ::ffff:127.0.0.1 not loopback; it is an IPv4 loopback client.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


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


