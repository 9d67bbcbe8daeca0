"""The shared HTTP pieces (``gen_nodes.net``, ``gen_nodes.client.cache``): keys from headers, the per-key client
cache, the 401 and host-guard middleware, binding and the log rate limit. Middleware runs in a
real Starlette app through httpx's ASGI transport; ``serve`` runs for real in a subprocess."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import urllib.request

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from gen_nodes.client.cache import ClientCache, key_digest
from gen_nodes.net.guard import HostGuard, guard_hosts, host_allowed, is_loopback
from gen_nodes.net.headers import api_key_from_headers
from gen_nodes.net.logs import RepeatFilter
from gen_nodes.net.middleware import RequireGenKey
from gen_nodes.net.serve import bind, url_of
from gen_nodes.core.errors import CannotServe, InvalidInput
from gen_nodes.sandbox import Sandbox


def test_api_key_from_headers():
    assert api_key_from_headers({"x-api-key": " k1 "}) == "k1"
    assert api_key_from_headers({"authorization": "Bearer k2"}) == "k2"
    assert api_key_from_headers({"authorization": "bearer k3"}) == "k3"
    assert api_key_from_headers({"x-api-key": "k1", "authorization": "Bearer k2"}) == "k1"
    for headers in ({}, {"authorization": "Basic abc"}, {"authorization": "Bearer   "}, {"x-api-key": ""}):
        assert api_key_from_headers(headers) is None


class FakeClient:
    def __init__(self, key):
        self.key, self.closed = key, 0

    def close(self):
        self.closed += 1


def test_client_cache_reuses_per_key_and_closes_an_evicted_client_only_after_its_lease():
    made = []
    cache = ClientCache(lambda key: made.append(FakeClient(key)) or made[-1], size=2)
    with cache.lease("a") as a:
        with cache.lease("a") as again:
            assert again is a
        with cache.lease("b"), cache.lease("c"):  # "a" is the least recently used: dropped
            assert len(cache) == 2
            assert a.closed == 0  # still leased: its pool stays open under the request
        assert a.closed == 0
    assert a.closed == 1  # closed once, when the last lease ended
    with cache.lease("a") as fresh:
        assert fresh is not a and fresh.key == "a"
    b = made[1]
    assert b.closed == 1  # evicted by the fresh "a" while idle: closed at once
    cache.close()
    assert all(c.closed == 1 for c in made)


def test_client_cache_keys_by_digest_not_by_the_key():
    cache = ClientCache(FakeClient, size=4)
    with cache.lease("gen_pat_secret"):
        pass
    assert "gen_pat_secret" not in repr(cache._entries)
    assert key_digest("gen_pat_secret") in cache._entries


def test_client_cache_survives_a_client_that_fails_to_close():
    class Broken(FakeClient):
        def close(self):
            raise RuntimeError("boom")

    cache = ClientCache(Broken, size=1)
    with cache.lease("a"):
        pass
    with cache.lease("b") as b:  # evicts "a", whose close fails: logged, not raised
        assert b.key == "b"


def _app(*middleware):
    async def hello(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/mcp", hello, methods=["GET", "POST"]), Route("/page", hello)])
    for cls, kwargs in middleware:
        app = cls(app, **kwargs)
    return app


async def _get(app, path, **headers):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as http:
        return await http.get(path, headers=headers)


@pytest.mark.anyio
async def test_require_gen_key_answers_401_without_an_oauth_challenge():
    app = _app((RequireGenKey, {"paths": ["/mcp"], "jsonrpc": True}))
    refused = await _get(app, "/mcp")
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert not challenge.lower().startswith("bearer")  # MCP clients read a Bearer challenge as "start OAuth"
    error = refused.json()["error"]
    assert "X-API-Key" in error["message"] and "Bearer" in error["message"] and "OAuth" in error["message"]
    assert refused.json()["jsonrpc"] == "2.0"
    assert (await _get(app, "/mcp", **{"X-API-Key": "k"})).status_code == 200
    assert (await _get(app, "/page")).status_code == 200  # only the listed paths need a key
    # OAuth discovery probes are not answered with another 401
    assert (await _get(app, "/.well-known/oauth-protected-resource/mcp")).status_code == 404

    plain = await _get(_app((RequireGenKey, {})), "/page")
    assert plain.status_code == 401 and plain.json()["error"]["type"] == "authentication"


@pytest.mark.anyio
async def test_host_guard_refuses_foreign_hosts_and_origins():
    app = _app((HostGuard, {"hosts": ["gen.example:8000", "127.0.0.1:*"]}))
    assert (await _get(app, "/page", host="gen.example:8000")).status_code == 200
    assert (await _get(app, "/page", host="127.0.0.1:1234")).status_code == 200
    assert (await _get(app, "/page", host="evil.example")).status_code == 421
    # ``name:*`` means a port of digits: a URL built from this Host would point at evil.example.
    assert (await _get(app, "/page", host="127.0.0.1:1234@evil.example")).status_code == 421
    assert (await _get(app, "/page", host="127.0.0.1:")).status_code == 421
    assert not host_allowed("127.0.0.1:80/x", ["127.0.0.1:*"]) and host_allowed("127.0.0.1:80", ["127.0.0.1:*"])
    assert (await _get(app, "/page", host="gen.example:8000", origin="http://gen.example:8000")).status_code == 200
    assert (await _get(app, "/page", host="gen.example:8000", origin="https://evil.example")).status_code == 403


def test_guard_hosts_needs_an_opt_in_and_a_list_for_a_remote_bind():
    assert "127.0.0.1:*" in guard_hosts("127.0.0.1")
    assert "localhost:*" in guard_hosts("localhost", allowed_hosts=["x:1"])
    with pytest.raises(InvalidInput) as refused:
        guard_hosts("0.0.0.0")
    assert "--allow-remote" in refused.value.hint
    with pytest.raises(InvalidInput) as unlisted:
        guard_hosts("0.0.0.0", allow_remote=True)
    assert "--allowed-host" in unlisted.value.hint
    assert guard_hosts("0.0.0.0", allow_remote=True, allowed_hosts=["gen.example:8000"]) == ["gen.example:8000"]


def test_bind_failures_are_clear_errors():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotServe) as in_use:
            bind("127.0.0.1", port)
    assert "already in use" in in_use.value.message and in_use.value.exit_code != 3
    with pytest.raises(CannotServe):
        bind("127.0.0.1", 99999)
    with pytest.raises(CannotServe):
        bind("no-such-host.invalid", 0)
    sock = bind("127.0.0.1", 0)
    try:
        assert url_of(sock, "/mcp").startswith("http://127.0.0.1:") and not url_of(sock).endswith(":0")
    finally:
        sock.close()


SERVE = """
import sys
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from gen_nodes.net.serve import serve
async def hello(request):
    return JSONResponse({"ok": True})
serve(Starlette(routes=[Route("/x", hello)]), host="127.0.0.1", port=int(sys.argv[1]), path="/x")
"""


def test_serve_prints_the_real_url_first_once_bound():
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["url"].startswith("http://127.0.0.1:") and not first["url"].startswith("http://127.0.0.1:0/")
        with urllib.request.urlopen(first["url"], timeout=10) as answer:  # listening when it said so
            assert json.loads(answer.read()) == {"ok": True}
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_repeat_filter_rate_limits_identical_lines():
    now = [0.0]
    limit = RepeatFilter(burst=3, window=10, clock=lambda: now[0])

    def record(msg):
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, msg, None, None)

    passed = [limit.filter(record("Invalid HTTP request received.")) for _ in range(1000)]
    assert passed.count(True) == 3
    assert limit.filter(record("another line"))
    now[0] = 11
    late = record("Invalid HTTP request received.")
    assert limit.filter(late) and "997 similar lines suppressed" in late.getMessage()


def test_client_cache_is_thread_safe():
    cache = ClientCache(FakeClient, size=3)
    errors = []

    def worker(n):
        try:
            for i in range(200):
                with cache.lease(f"k{(n + i) % 5}") as client:
                    assert client.closed == 0
        except AssertionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) == 3


# -- one is_loopback, one host guard ------------------------------------------------------


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
    # Where the sandbox's own test (a bare IP only) said no and the bind policy's said yes:
    ("[::1]", True), ("localhost", True),
    # A dual-stack socket shows an IPv4 client so; Python 3.11 calls it not loopback.
    ("::ffff:127.0.0.1", True), ("::1%lo", True),
    ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("0.0.0.0", False), ("::", False), ("", False), ("  ", False),
])
def test_is_loopback_edge_cases(host, loopback):
    assert is_loopback(host) is loopback


def test_the_sandbox_control_endpoint_answers_an_ipv4_client_of_a_dual_stack_bind():
    """Bound to ``::``, the sandbox sees 127.0.0.1 as ``::ffff:127.0.0.1``: still a loopback client."""
    with Sandbox(host="::", allow_remote=True, allowed_hosts=["127.0.0.1:*"]) as sandbox:
        port = sandbox.base_url.rsplit(":", 1)[1].split("/")[0]
        answer = httpx.post(f"http://127.0.0.1:{port}/_sandbox/users", json={"email": "d@example.com"}, timeout=10)
    assert answer.status_code == 201, answer.text


@pytest.mark.anyio
async def test_the_mcp_http_app_has_the_one_host_guard():
    """A foreign Host meets net.guard.HostGuard (its JSON and hint), not a second guard of the SDK's."""
    pytest.importorskip("mcp")
    from gen_nodes.runtime.dispatch import Dispatcher
    from gen_nodes.surfaces.mcp.server import build_http_app

    app = build_http_app(Dispatcher(), allowed_hosts=["127.0.0.1:*"])
    assert isinstance(app, HostGuard)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as http:
        answer = await http.post("/mcp", json={}, headers={"Host": "evil.example", "X-API-Key": "gen_pat_x" * 3})
    assert answer.status_code == 421
    assert answer.json()["error"]["type"] == "invalid_input" and "--allowed-host" in answer.json()["error"]["hint"]
