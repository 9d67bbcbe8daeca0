"""MCP streamable HTTP sessions: bound to the key that opened them, bounded, expired when idle.

The binding is checked against the real server (the SDK behind ``gen-nodes mcp --transport
http``) with raw HTTP requests, as an attacker would send them. The limits and expiry are
checked on :class:`SessionGate` in-process, in front of a small stand-in for the SDK's
endpoint, with a clock the test moves.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest

pytest.importorskip("mcp")

import httpx2  # noqa: E402  (the HTTP client the mcp SDK uses)

from gen_nodes.surfaces.mcp.sessions import SessionGate  # noqa: E402
from gen_nodes.client.cache import key_digest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "t", "version": "1"}}}


# -- the real server: a session belongs to its key ------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from gen_nodes.sandbox import Sandbox

    with Sandbox() as sb:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
        proc = subprocess.Popen([sys.executable, "-m", "gen_nodes.surfaces.cli", "mcp", "--transport", "http", "--port", "0",
                                 "--base-url", sb.base_url, "--secrets-dir", str(tmp_path_factory.mktemp("s"))],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, env=env, text=True)
        try:
            assert select.select([proc.stdout], [], [], 60)[0], "the server printed no url"
            yield sb, json.loads(proc.stdout.readline())["url"]
        finally:
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()


def post(url: str, key: str, body: dict, session: str | None = None, method: str = "POST") -> tuple[int, dict, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "X-API-Key": key, "MCP-Protocol-Version": "2025-06-18"}
    if session:
        headers["Mcp-Session-Id"] = session
    data = json.dumps(body).encode() if method == "POST" else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def open_session(url: str, key: str) -> str:
    status, headers, _ = post(url, key, INIT)
    assert status == 200, status
    session = {k.lower(): v for k, v in headers.items()}["mcp-session-id"]
    assert post(url, key, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)[0] == 202
    return session


def test_another_key_cannot_use_answer_or_delete_a_session(server):
    sb, url = server
    _, a_key = sb.create_user()
    _, b_key = sb.create_user()
    session = open_session(url, a_key)
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    # B holds A's session id and a valid key of its own: refused as if the session did not exist.
    assert post(url, b_key, listing, session)[0] == 404
    assert post(url, "junk", listing, session)[0] == 404
    answer = {"jsonrpc": "2.0", "id": 0, "result": {"action": "accept", "content": {"confirm": True}}}
    assert post(url, b_key, answer, session)[0] == 404  # an elicitation answer from someone else
    assert post(url, b_key, {}, session, method="DELETE")[0] == 404
    # A's session is untouched and still A's.
    status, _, body = post(url, a_key, listing, session)
    assert status == 200 and "gen_revoke_api_key" in body
    assert post(url, a_key, {}, session, method="DELETE")[0] == 200
    assert post(url, a_key, listing, session)[0] == 404


def start_server(sb, secrets_dir, *extra, stderr=subprocess.DEVNULL):
    """`gen-nodes mcp --transport http --port 0` in front of ``sb``; returns (process, url)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    proc = subprocess.Popen([sys.executable, "-m", "gen_nodes.surfaces.cli", "mcp", "--transport", "http", "--port", "0",
                             "--base-url", sb.base_url, "--secrets-dir", str(secrets_dir), *extra],
                            stdout=subprocess.PIPE, stderr=stderr, cwd=REPO, env=env, text=True)
    if not select.select([proc.stdout], [], [], 60)[0]:
        stop(proc)
        raise AssertionError("the server printed no url")
    return proc, json.loads(proc.stdout.readline())["url"]


def stop(proc):
    proc.terminate()
    proc.wait(10)
    proc.stdout.close()


class KeysSeen:
    """Counts, per key, the requests the sandbox authenticated (what reached "GEN")."""

    def __init__(self, sb):
        self.counts, self._authenticate = Counter(), sb.store.authenticate
        sb.store.authenticate = self

    def __call__(self, plain, **options):
        self.counts[plain] += 1
        return self._authenticate(plain, **options)


@pytest.mark.anyio
async def test_made_up_bearers_cannot_evict_a_new_users_session_nor_flood_gen(tmp_path):
    """520 sessions opened with made-up bearers (some sent again and again) against the real server:
    each is refused with 401 and reaches the sandbox at most once, and a real user who has initialised
    but not yet made a call keeps a working session. (That user speaks raw HTTP: the SDK client's
    standing GET stream would keep its session busy, and a busy session was never evicted.)"""
    from gen_nodes.sandbox import Sandbox

    with Sandbox() as sb:
        seen = KeysSeen(sb)
        proc, url = start_server(sb, tmp_path, "--sessions-total", "8", "--sessions-per-key", "4")
        try:
            _, real_key = sb.create_user()
            session = await anyio.to_thread.run_sync(open_session, url, real_key)
            junk = [f"gen_pat_made-up-{i}" for i in range(500)] + ["gen_pat_again"] * 20
            statuses = await open_many(url, junk)
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
            status, _, body = await anyio.to_thread.run_sync(post, url, real_key, listing, session)
            assert status == 200 and "gen_get_me" in body, (status, body)
            me = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "gen_get_me", "arguments": {}}}
            status, _, body = await anyio.to_thread.run_sync(post, url, real_key, me, session)
            assert status == 200 and '"isError":false' in body.replace(" ", ""), body
        finally:
            stop(proc)
    assert statuses == Counter({401: 520}), statuses
    assert max(seen.counts[key] for key in set(junk)) == 1  # each made-up bearer reached GEN once at most


async def open_many(url, keys, at_once=32):
    """Open a session with each key (raw HTTP, ``at_once`` at a time); a Counter of the statuses."""
    statuses, limiter = Counter(), anyio.CapacityLimiter(at_once)

    async def open_one(http, key):
        async with limiter:
            answer = await http.post(url, json=INIT, headers={
                "Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-06-18"})
            statuses[answer.status_code] += 1
            if answer.status_code == 401:
                error = answer.json()["error"]
                assert "GEN does not accept this API key" in error["message"] and error["data"]["hint"]
                assert not answer.headers["www-authenticate"].lower().startswith("bearer")

    async with httpx2.AsyncClient(timeout=60) as http, anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(open_one, http, key)
    return statuses


# -- the gate's limits, with a stand-in for the SDK endpoint ----------------------------------------


class FakeSessions:
    """Answers an opening POST with a new Mcp-Session-Id, a known session's request with 200,
    DELETE by ending it, anything else with 404; records who it saw."""

    def __init__(self):
        self.open, self.deleted, self.users, self.count = set(), [], [], 0

    async def __call__(self, scope, receive, send):
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.users.append(scope.get("user"))
        sid = headers.get("mcp-session-id")
        extra = []
        if sid is None:
            self.count += 1
            sid = f"s{self.count}"
            self.open.add(sid)
            status, extra = 200, [(b"mcp-session-id", sid.encode())]
        elif sid not in self.open:
            status = 404
        elif scope["method"] == "DELETE":
            self.open.discard(sid)
            self.deleted.append(sid)
            status = 200
        else:
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b"{}"})


class Gate:
    def __init__(self, **limits):
        self.now = [0.0]
        self.inner = FakeSessions()
        self.gate = SessionGate(self.inner, clock=lambda: self.now[0], **limits)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.gate), base_url="http://127.0.0.1:1")

    async def open(self, key):
        answer = await self.http.post("/mcp", headers={"X-API-Key": key}, json=INIT)
        return answer.status_code, answer.headers.get("mcp-session-id")

    async def use(self, key, sid):
        return (await self.http.post("/mcp", headers={"X-API-Key": key, "Mcp-Session-Id": sid}, json={})).status_code


@pytest.mark.anyio
async def test_the_sdk_sees_the_key_as_the_sessions_principal():
    g = Gate()
    await g.open("k1")
    assert g.inner.users[-1].access_token.client_id == key_digest("k1") and "k1" not in repr(g.inner.users[-1])


@pytest.mark.anyio
async def test_a_key_at_its_limit_closes_its_own_oldest_idle_session_not_others():
    g = Gate(per_key=2, total=100)
    other = (await g.open("other"))[1]
    first, second = [(await g.open("a"))[1] for _ in range(2)]
    status, third = await g.open("a")
    assert status == 200 and g.inner.deleted == [first]
    assert await g.use("a", first) == 404 and await g.use("a", second) == 200 and await g.use("a", third) == 200
    assert await g.use("other", other) == 200


@pytest.mark.anyio
async def test_made_up_bearers_cannot_crowd_out_a_real_user():
    g = Gate(per_key=4, total=6)
    real = (await g.open("real"))[1]
    g.gate.prove("real")  # it made a successful call
    statuses = [(await g.open(f"junk-{i}"))[0] for i in range(1000)]
    assert statuses.count(200) == 1000  # each junk session pushes out an older junk one...
    unproven = [s for s in g.gate.sessions.values() if s.owner != key_digest("real")]
    assert len(unproven) <= 3 and len(g.gate.sessions) <= 6  # ...and they hold at most half the table
    assert await g.use("real", real) == 200  # the real user's session survives
    assert (await g.open("real"))[0] == 200  # and it can open more
    assert len(g.inner.open) <= 6  # the SDK holds no more than the gate admits


@pytest.mark.anyio
async def test_a_full_table_of_proven_busy_keys_answers_503_with_retry_after():
    g = Gate(per_key=1, total=2)
    for key in ("a", "b"):
        await g.open(key)
        g.gate.prove(key)
    answer = await g.http.post("/mcp", headers={"X-API-Key": "c"}, json=INIT)
    assert answer.status_code == 503 and answer.headers["retry-after"]
    assert "too many MCP sessions" in answer.json()["error"]["message"]


@pytest.mark.anyio
async def test_idle_sessions_of_unproven_keys_expire_quickly_others_later():
    g = Gate(unproven_idle=60, idle=1800)
    junk = (await g.open("junk"))[1]
    real = (await g.open("real"))[1]
    g.gate.prove("real")
    g.now[0] = 61
    await g.open("someone")  # any request sweeps
    assert await g.use("junk", junk) == 404 and await g.use("real", real) == 200
    g.now[0] = 61 + 1801
    await g.open("someone else")
    assert await g.use("real", real) == 404


def test_repeated_refusals_log_a_few_lines_not_a_flood(tmp_path):
    """100 requests for another key's session: refused every time, logged about five times."""
    from gen_nodes.sandbox import Sandbox

    log = tmp_path / "server.log"
    with Sandbox() as sb, open(log, "w") as err:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
        proc = subprocess.Popen([sys.executable, "-m", "gen_nodes.surfaces.cli", "mcp", "--transport", "http", "--port", "0",
                                 "--base-url", sb.base_url, "--secrets-dir", str(tmp_path)],
                                stdout=subprocess.PIPE, stderr=err, cwd=REPO, env=env, text=True)
        try:
            assert select.select([proc.stdout], [], [], 60)[0], "the server printed no url"
            url = json.loads(proc.stdout.readline())["url"]
            session = open_session(url, sb.api_key)
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
            assert all(post(url, f"junk-{i}", listing, session)[0] == 404 for i in range(100))
        finally:
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()
    lines = [line for line in log.read_text().splitlines() if "opened by another key" in line]
    assert 1 <= len(lines) <= 5, lines


# -- the key check: shared, bounded, remembered -----------------------------------------------------


@pytest.mark.anyio
async def test_key_checks_are_shared_bounded_and_remembered():
    from gen_nodes.surfaces.mcp.key_check import ACCEPTED, BUSY, REJECTED, UNKNOWN, KeyCheck
    from gen_nodes.core.errors import AuthenticationError, ServerError

    now, release, lock = [0.0], threading.Event(), threading.Lock()
    asked, running = [], {"now": 0, "most": 0}

    def ask_gen(key):
        with lock:
            asked.append(key)
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        release.wait(10)
        with lock:
            running["now"] -= 1
        if key.startswith("junk"):
            raise AuthenticationError("Invalid, revoked or expired API key", status=401)
        if key == "gen-down":
            raise ServerError("GEN failed", status=503)

    check = KeyCheck(ask_gen, concurrency=2, waiting=3, ttl=60, clock=lambda: now[0])
    verdicts = {}

    async def one(key, i):
        verdicts[key, i] = await check(key)

    async with anyio.create_task_group() as group:
        for i in range(10):
            group.start_soon(one, "junk-same", i)  # one question for all ten
        await anyio.sleep(0.05)
        for i in range(8):
            group.start_soon(one, f"junk-{i}", 0)
        await anyio.sleep(0.3)
        release.set()
    assert sorted(asked) == ["junk-0", "junk-1", "junk-2", "junk-3", "junk-same"] and running["most"] == 2
    assert {verdicts["junk-same", i] for i in range(10)} == {REJECTED}
    assert [verdicts[f"junk-{i}", 0] for i in range(8)] == [REJECTED] * 4 + [BUSY] * 4  # 2 asking + 3 waiting
    assert await check("junk-same") == REJECTED and len(asked) == 5  # remembered...
    now[0] = 61
    assert await check("junk-same") == REJECTED and len(asked) == 6  # ...for ttl seconds
    assert await check("real") == ACCEPTED and await check("real") == ACCEPTED and asked.count("real") == 1
    assert await check("gen-down") == UNKNOWN and await check("gen-down") == UNKNOWN
    assert asked.count("gen-down") == 2  # "GEN could not say" is not remembered


# -- a client that goes away mid-call -----------------------------------------------------------------


CALL_GET_ME = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "gen_get_me", "arguments": {}}}
#: The same call in the 2026-07-28 era: no session, the client's details in ``_meta`` of each request.
MODERN_GET_ME = {**CALL_GET_ME, "params": {**CALL_GET_ME["params"], "_meta": {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}}}


@pytest.mark.anyio
@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era", "2026-era"])
async def test_a_client_that_disconnects_mid_call_leaves_a_debug_line_not_a_traceback(tmp_path, modern):
    """A client (the SDK's HTTP client) hangs up on a call the sandbox answers slowly; the server
    finishes the call for nobody and logs one debug line about it, no traceback, no ERROR."""
    from gen_nodes.sandbox import Sandbox

    log = tmp_path / "server.log"
    with Sandbox() as sb, open(log, "w") as err:
        proc, url = start_server(sb, tmp_path, "--log-level", "debug", stderr=err)
        try:
            headers = {"X-API-Key": sb.api_key, "Accept": "application/json, text/event-stream"}
            if modern:
                body = MODERN_GET_ME
                headers.update({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                                "Mcp-Name": "gen_get_me"})
            else:
                body = CALL_GET_ME
                session = await anyio.to_thread.run_sync(open_session, url, sb.api_key)
                headers.update({"MCP-Protocol-Version": "2025-06-18", "Mcp-Session-Id": session})
            sb.inject_fault(delay=1.5, method="GET", path="/me")
            async with httpx2.AsyncClient(timeout=30) as http:
                with anyio.move_on_after(0.5) as gave_up:
                    async with http.stream("POST", url, json=body, headers=headers) as answer:
                        await answer.aread()
            assert gave_up.cancelled_caught  # the connection was closed mid-call
            with anyio.move_on_after(30):  # the sandbox answers; the server finishes the call for nobody
                while "tools/call gen_get_me" not in log.read_text():
                    await anyio.sleep(0.1)
            await anyio.sleep(0.3)
        finally:
            stop(proc)
    text = log.read_text()
    assert "tools/call gen_get_me -> ok" in text, text
    assert "Traceback" not in text and " ERROR " not in text and "Unexpected ASGI message" not in text, text
    assert "the client went away before the answer to its request was complete" in text, text


def test_an_answer_sent_after_the_response_completed_is_dropped_quietly(caplog):
    """What the SDK does when a request fails after its answer went out (it sends a 500 too), behind
    the gate on a real uvicorn server: dropped with a debug line, not uvicorn's RuntimeError traceback."""
    import socket as sockets

    import uvicorn

    async def late_error(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        await send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    listener = sockets.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(SessionGate(late_error), lifespan="off", log_config=None))
    runner = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    caplog.set_level(logging.DEBUG)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        port = listener.getsockname()[1]
        answer = httpx.post(f"http://127.0.0.1:{port}/mcp", headers={"X-API-Key": "k", "MCP-Protocol-Version": "2026-07-28"},
                            json={})
        assert answer.status_code == 202
        time.sleep(0.2)
    finally:
        server.should_exit = True
        runner.join(10)
        listener.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert any("dropped an ASGI http.response.start" in r.getMessage() for r in caplog.records)
