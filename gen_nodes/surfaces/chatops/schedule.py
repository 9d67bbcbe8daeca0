"""When the daily expiry digest runs: ``--digest-at HH:MM`` (or ``HH:MM:SS``), UTC, in each chat-ops process.

:class:`DailyRound` is a small clock-driven loop: :meth:`DailyRound.tick` runs the day's round
if its time has come and it has not run in this process that UTC day, and says when to wake
next; :meth:`DailyRound.start` runs ``tick`` in a daemon thread. Tests drive ``tick`` with
their own clock. Which person is sent what is decided by the round itself (``alerts.py``): its
claims in the shared store make each digest go out once per person per day, whichever process
runs, so every process runs the round and a restarted one simply catches up.

- A process that starts after the day's time runs that day's round at once (a restart catches
  up; the claims stop a second digest).
- A round in which some digest failed (GEN or the platform unreachable; the claim was released)
  is run again :data:`RETRY_AFTER` seconds later, at most :data:`RETRIES` times that day.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import date, datetime, timezone
from typing import Any, Callable

from gen_nodes.core.errors import InvalidInput
from gen_nodes.surfaces.chatops.alerts import digest_round

log = logging.getLogger("gen_nodes.chatops.alerts")

#: Seconds between a round with failures and its next try, and how many tries a day gets.
RETRY_AFTER = 300.0
RETRIES = 6
_TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?$")


def time_of_day(text: str) -> int:
    """Seconds after midnight UTC of ``HH:MM`` or ``HH:MM:SS`` (24-hour clock); InvalidInput otherwise."""
    match = _TIME_OF_DAY.match((text or "").strip())
    if match is None:
        raise InvalidInput(f"--digest-at must be a UTC time of day as HH:MM or HH:MM:SS, not {text!r}.",
                           errors=[{"path": "--digest-at", "message": "not HH:MM"}],
                           hint="Give a 24-hour UTC time such as 08:30 (or 08:30:15).")
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + secs


class DailyRound:
    """Runs ``run_round(day)`` once a day at ``at`` seconds after midnight UTC (see the module docstring).

    ``run_round`` returns True when every digest of the round went out or needed none, False when
    some failed and the round should be tried again."""

    def __init__(self, run_round: Callable[[date], bool], at: int, *, clock: Callable[[], float] = time.time,
                 retry_after: float = RETRY_AFTER, retries: int = RETRIES) -> None:
        self.run_round, self.at, self.clock = run_round, at, clock
        self.retry_after, self.retries = retry_after, retries
        self._done: date | None = None
        self._tries: tuple[date | None, int] = (None, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: float) -> float:
        """Run the round if it is due at ``now`` (epoch seconds); the time to call ``tick`` again."""
        day = datetime.fromtimestamp(now, timezone.utc).date()
        due = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() + self.at
        if now >= due and self._done != day:
            tries = self._tries[1] + 1 if self._tries[0] == day else 1
            self._tries = (day, tries)
            if self._run(day) or tries > self.retries:
                self._done = day
            else:
                return now + self.retry_after
        return due if now < due else due + 86400

    def _run(self, day: date) -> bool:
        try:
            return bool(self.run_round(day))
        except Exception:  # a store or programming error: logged, tried again later, never the thread's end
            log.exception("the %s digest round failed", day.isoformat())
            return False

    def start(self) -> "DailyRound":
        """Run in a daemon thread until :meth:`stop` (or the process ends)."""
        self._thread = threading.Thread(target=self._loop, name="gen-nodes-digest", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            wake = self.tick(self.clock())
            self._stop.wait(max(0.05, min(wake - self.clock(), 3600.0)))  # re-read the clock at least hourly

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __repr__(self) -> str:
        return f"DailyRound(at={self.at}s after 00:00 UTC)"


def describe(at: int) -> str:
    """``at`` seconds after midnight as HH:MM (HH:MM:SS when it has seconds)."""
    text = f"{at // 3600:02d}:{at % 3600 // 60:02d}"
    return text + (f":{at % 60:02d}" if at % 60 else "")


def round_for(chat: Any, platform: str, send: Callable[[str, Any], bool]) -> Callable[[date], bool]:
    """The round a chat-ops process runs each day: the digests of ``platform``'s opted-in people."""
    return lambda day: not digest_round(chat, platform, day, send).failed
