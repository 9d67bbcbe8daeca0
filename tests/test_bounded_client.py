"""Bounded work per call: an overall deadline (attempts and waits included), a cap on the
decoded size of an answer (gzip bombs included), and a connection pool sized by the caller.

Real loopback servers only: the sandbox, and ``raw_http.RawServer`` for answers no
well-behaved server gives (a trickled body, an oversized or compressed one).
"""

from __future__ import annotations

import gzip
import logging
import math
import socket
import threading
import time

import pytest

from gen_nodes.client.http import DEFAULT_DEADLINE, DEFAULT_MAX_RESPONSE_BYTES, GenClient, RetryPolicy
from gen_nodes.core.errors import OutcomeUnknown, RateLimited, RequestTimeout, ResponseTooLarge

from raw_http import raw_server

KEY = "gen_pat_" + "k" * 40
RETRY = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.005, max_retry_after=120)


def trickle(sock: socket.socket, status: str = "200 OK") -> None:
    """Announce a 1,000-byte body, then send one byte every 50 ms for up to a minute."""
    sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode())
    for _ in range(1200):
        sock.sendall(b" ")
        time.sleep(0.05)


@pytest.mark.parametrize("method, safe, expected", [("GET", True, RequestTimeout), ("POST", False, OutcomeUnknown)])
def test_a_trickled_body_ends_at_the_deadline(method, safe, expected):
    # Each byte comes well within the 2 s read timeout, so only an overall clock can stop it.
    with raw_server(trickle) as server:
        client = GenClient(api_key=KEY, base_url=server.url, timeout=(2, 2), deadline=0.5, retry=RETRY)
        started = time.monotonic()
        with pytest.raises(expected) as caught:
            client.request(method, "/me", safe_to_retry=safe)
        took = time.monotonic() - started
    assert took < 10, "an endless trickle must end at the deadline, not run on"
    assert "0.5" in caught.value.message
    assert server.requests == 1  # the deadline is spent: no second attempt


class Clock:
    """A sleep that records the waits and moves a clock instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.offset = 0.0

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.offset += seconds

    def now(self) -> float:
        return time.monotonic() + self.offset


def test_a_retry_after_longer_than_the_time_left_gives_up_at_once(sandbox):
    sandbox.inject_fault(429, times=3, headers={"Retry-After": "60"})
    clock = Clock()
    client = GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, retry=RETRY,
                       deadline=30, sleep=clock.sleep, clock=clock.now)
    with pytest.raises(RateLimited) as caught:
        client.request("GET", "/me")
    assert clock.waits == []
    assert caught.value.retry_after == 60 and caught.value.details["attempts"] == 1


def test_waits_count_against_the_deadline(sandbox):
    sandbox.inject_fault(429, times=5, headers={"Retry-After": "4"})
    clock = Clock()
    client = GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, deadline=10,
                       retry=RetryPolicy(attempts=5, max_retry_after=120), sleep=clock.sleep, clock=clock.now)
    with pytest.raises(RateLimited):
        client.request("GET", "/me")
    assert clock.waits == [4.0, 4.0]  # a third wait of 4 s would end past the 10 s deadline


def big_body(size: int, chunked: bool = False, gzipped: bytes | None = None):
    sent = {"bytes": 0}

    def answer(sock: socket.socket) -> None:
        if gzipped is not None:
            head = f"Content-Encoding: gzip\r\nContent-Length: {len(gzipped)}"
        elif chunked:
            head = "Transfer-Encoding: chunked"
        else:
            head = f"Content-Length: {size}"
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{head}\r\n\r\n".encode())
        if gzipped is not None:
            sock.sendall(gzipped)
            sent["bytes"] += len(gzipped)
            return
        piece = b"[" + b" " * 65534 + b"]" if not chunked else b"10000\r\n" + b" " * 65536 + b"\r\n"
        while sent["bytes"] < size:
            sock.sendall(piece)
            sent["bytes"] += 65536
        if chunked:
            sock.sendall(b"0\r\n\r\n")

    return answer, sent


@pytest.mark.parametrize("chunked", [False, True])
def test_an_answer_larger_than_the_cap_is_refused_and_not_read_to_the_end(chunked):
    answer, sent = big_body(256 << 20, chunked=chunked)
    with raw_server(answer) as server:
        client = GenClient(api_key=KEY, base_url=server.url, retry=RETRY, max_response_bytes=1 << 20)
        with pytest.raises(ResponseTooLarge) as caught:
            client.request("GET", "/persisted_tokens")
    assert "1,048,576 bytes" in caught.value.message
    assert sent["bytes"] < 64 << 20  # the client stopped reading; the rest was never sent
    assert server.requests == 1  # refused, not retried


def test_a_gzip_bomb_is_refused_by_its_decoded_size():
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=9)  # 64 MiB of JSON whitespace in ~64 KB
    answer, _ = big_body(0, gzipped=bomb)
    with raw_server(answer) as server:
        client = GenClient(api_key=KEY, base_url=server.url, retry=RETRY, max_response_bytes=1 << 20)
        with pytest.raises(ResponseTooLarge) as caught:
            client.request("GET", "/persisted_tokens")
    assert "decoded" in caught.value.message
    assert "max_response_bytes=" in caught.value.hint


def test_an_oversized_answer_to_a_create_is_outcome_unknown():
    answer, _ = big_body(8 << 20)
    with raw_server(answer) as server:
        client = GenClient(api_key=KEY, base_url=server.url, retry=RETRY, max_response_bytes=1 << 20)
        with pytest.raises(OutcomeUnknown) as caught:
            client.request("POST", "/persisted_tokens", json={}, safe_to_retry=False)
    assert caught.value.status == 200 and server.requests == 1


def test_answers_within_the_cap_still_read_and_reuse_the_connection(sandbox):
    client = GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, max_response_bytes=4096)
    for _ in range(3):
        assert client.request("GET", "/me").data["id"]
    assert len(client.session.get_adapter(sandbox.base_url).poolmanager.pools) == 1


def test_defaults_and_the_environment(monkeypatch):
    monkeypatch.delenv("GEN_NODES_DEADLINE", raising=False)
    monkeypatch.delenv("GEN_NODES_MAX_RESPONSE_BYTES", raising=False)
    client = GenClient(api_key=KEY)
    assert (client.deadline, client.max_response_bytes) == (DEFAULT_DEADLINE, DEFAULT_MAX_RESPONSE_BYTES)
    assert DEFAULT_MAX_RESPONSE_BYTES == 64 << 20
    monkeypatch.setenv("GEN_NODES_DEADLINE", "12.5")
    monkeypatch.setenv("GEN_NODES_MAX_RESPONSE_BYTES", "1000")
    client = GenClient(api_key=KEY)
    assert (client.deadline, client.max_response_bytes) == (12.5, 1000)


@pytest.mark.parametrize("option, value", [
    ("deadline", 0), ("deadline", -1), ("deadline", math.nan), ("deadline", math.inf),
    ("timeout", -5), ("timeout", 0), ("timeout", (5, math.nan)), ("timeout", math.inf),
    ("max_response_bytes", 0), ("pool_size", 0),
])
def test_nonsense_limits_are_refused_with_a_clear_message(option, value):
    with pytest.raises(ValueError) as caught:
        GenClient(api_key=KEY, **{option: value})
    assert option in str(caught.value)


def test_nonsense_limits_from_the_environment_are_refused(monkeypatch):
    monkeypatch.setenv("GEN_NODES_DEADLINE", "soon")
    with pytest.raises(ValueError, match="GEN_NODES_DEADLINE"):
        GenClient(api_key=KEY)


def test_the_pool_is_sized_for_the_callers_concurrency(sandbox, caplog):
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    client = GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, pool_size=20)
    assert client.pool_size == 20
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                client.request("GET", "/persisted_tokens")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_the_http_mcp_server_sizes_each_keys_pool_for_its_concurrent_calls():
    pytest.importorskip("mcp")
    import anyio

    from gen_nodes.surfaces.mcp.server import _KeyedClients

    async def worker_threads() -> int:
        return int(anyio.to_thread.current_default_thread_limiter().total_tokens)

    clients = _KeyedClients(base_url="http://127.0.0.1:9/v1")
    with clients.cache.lease(KEY) as client:
        assert client.pool_size >= anyio.run(worker_threads)


def test_the_account_cache_reads_each_key_once_and_stays_bounded():
    """Servers remember the GEN account of each key for approval notices: read once, never unbounded."""
    from gen_nodes.client.cache import AccountCache
    from gen_nodes.core.errors import AuthenticationError

    cache, reads = AccountCache(size=3), []

    def read(n):
        def me():
            reads.append(n)
            return {"id": n, "name": f"user {n}", "email": None, "extra": "not kept"}
        return me

    assert cache.get("a", read(1)) == {"id": 1, "name": "user 1", "email": None, "username": None}
    assert cache.get("a", read(99))["id"] == 1 and reads == [1]
    for n, principal in enumerate("bcde", 2):
        cache.get(principal, read(n))
    assert len(cache) == 3 and cache.get("a", read(7))["id"] == 7  # "a" was dropped, read again

    def refused():
        raise AuthenticationError("no")

    with pytest.raises(AuthenticationError):
        cache.get("f", refused)
    assert cache.get("f", read(8))["id"] == 8  # a failed read is not kept
