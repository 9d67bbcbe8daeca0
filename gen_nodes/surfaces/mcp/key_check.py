"""Does GEN know this API key? A cached check with bounded concurrency, for servers that let
anyone with a bearer open state (MCP sessions) before making a call.

    check = KeyCheck(ask_gen)        # ask_gen(key) calls get_me; raises AuthenticationError if GEN refuses
    verdict = await check(key)       # ACCEPTED, REJECTED, UNKNOWN (GEN could not say) or BUSY

- At most ``concurrency`` questions reach GEN at once (in worker threads) and at most ``waiting``
  more queue behind them; past that the answer is BUSY at once, and nothing is sent.
- Concurrent checks of one key share one question.
- GEN's answers are remembered by key digest for ``ttl`` seconds (at most ``size`` of them), so a
  made-up key reaches GEN once per ``ttl`` however often it is sent. UNKNOWN (GEN unreachable,
  failing or rate limiting) is not remembered.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable

import anyio

from gen_nodes.core.errors import AuthenticationError, GenError
from gen_nodes.client.cache import key_digest

log = logging.getLogger("gen_nodes.key_check")

ACCEPTED, REJECTED, UNKNOWN, BUSY = "accepted", "rejected", "unknown", "busy"


class KeyCheck:
    """See the module docstring. ``ask_gen(key)`` returns if GEN accepts the key (a 403 counts:
    GEN knew the key), raises :class:`AuthenticationError` if it does not, any other error if it cannot say."""

    def __init__(self, ask_gen: Callable[[str], object], *, concurrency: int = 4, waiting: int = 64,
                 ttl: float = 300.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._ask_gen, self.concurrency, self.waiting = ask_gen, concurrency, waiting
        self.ttl, self.size, self._clock = ttl, size, clock
        self._limiter: anyio.CapacityLimiter | None = None  # made in the event loop, on first use
        self._answers: OrderedDict[str, tuple[str, float]] = OrderedDict()  # digest -> (verdict, expiry)
        self._asking: dict[str, anyio.Event] = {}
        self._queued = 0

    async def __call__(self, key: str) -> str:
        digest = key_digest(key)
        known = self._remembered(digest)
        if known is not None:
            return known
        asked = self._asking.get(digest)
        if asked is not None:
            await asked.wait()
            return self._remembered(digest) or UNKNOWN
        if self._queued >= self.concurrency + self.waiting:
            return BUSY
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        done = self._asking[digest] = anyio.Event()
        self._queued += 1
        try:
            verdict = await anyio.to_thread.run_sync(self._ask, key, limiter=self._limiter)
            if verdict != UNKNOWN:
                self._remember(digest, verdict)
            return verdict
        finally:
            self._queued -= 1
            del self._asking[digest]
            done.set()

    def _ask(self, key: str) -> str:
        try:
            self._ask_gen(key)
        except AuthenticationError:
            return REJECTED
        except GenError as exc:
            if exc.status == 403:
                return ACCEPTED
            log.info("could not check a key with GEN (%s)", exc.type)
            return UNKNOWN
        except Exception as exc:  # a bug here must not turn into a refusal of a real user
            log.warning("checking a key with GEN failed: %s", type(exc).__name__)
            return UNKNOWN
        return ACCEPTED

    def _remembered(self, digest: str) -> str | None:
        answer = self._answers.get(digest)
        if answer is None:
            return None
        if answer[1] <= self._clock():
            del self._answers[digest]
            return None
        return answer[0]

    def _remember(self, digest: str, verdict: str) -> None:
        self._answers[digest] = (verdict, self._clock() + self.ttl)
        self._answers.move_to_end(digest)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)
