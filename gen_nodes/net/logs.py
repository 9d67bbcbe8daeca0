"""Log hygiene for the servers: :class:`RepeatFilter` (rate limit), :class:`SafeLines` (escaped one-line values, no approval links)."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from typing import Any, Callable, Mapping

#: Where the approval pages live: their paths hold a secret link, never written to a log.
APPROVAL_PAGE_PREFIX = "/approve/"
#: An approval page's secret link anywhere in a logged value: behind a path-prefixed proxy (uvicorn's
#: ``--root-path``) the access log shows ``/gw/approve/<secret>``, not a path starting ``/approve/``.
_APPROVAL_LINK = re.compile(r"(^|/)approve/[^/?\s]+")


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
        elif isinstance(record.args, Mapping):
            if isinstance(record.msg, str) and "%(" in record.msg:  # named placeholders: each value
                record.args = {name: _safe_value(arg) for name, arg in record.args.items()}
            else:  # ``log.debug("%s", mapping)``: the mapping is ONE value, shown by its own (masked) repr
                record.args = (_safe_value(record.args),)
        if isinstance(record.msg, str):
            record.msg = one_line(record.msg)
        return True


def _safe_value(value: Any) -> Any:
    if isinstance(value, (int, float)) or value is None:
        return value
    return log_path(value)


_installed: RepeatFilter | None = None
_safe_lines = SafeLines()


#: How every gen-nodes server writes a log line on stderr.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The most a library may log whatever --log-level says: their DEBUG/INFO lines dump whole messages
#: and bodies (the MCP SDK, Bolt and slack_sdk through gen-nodes' chat-ops Slack logger).
_CAPPED = {"mcp": logging.WARNING, "sse_starlette": logging.WARNING, "client": logging.ERROR}
_AT_MOST_INFO = ("gen_nodes.chatops.slack",)


def configure_logging(level: str = "warning") -> None:
    """The one logging set-up of every server and CLI entry point: gen-nodes' lines on stderr at
    ``level`` (debug, info, warning or error), other libraries' at WARNING, the chatty ones capped."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format=LOG_FORMAT)
    chosen = logging.getLevelName(level.upper())
    logging.getLogger("gen_nodes").setLevel(chosen)
    for name, most in _CAPPED.items():
        logging.getLogger(name).setLevel(most)
    for name in _AT_MOST_INFO:
        logging.getLogger(name).setLevel(max(logging.INFO, chosen))


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
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format=LOG_FORMAT)
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            for wanted in (_installed, _safe_lines):
                if wanted not in handler.filters:
                    handler.addFilter(wanted)
    access = logging.getLogger("uvicorn.access")
    if _safe_lines not in access.filters:  # before any handler, whoever configured them
        access.addFilter(_safe_lines)
    return _installed
