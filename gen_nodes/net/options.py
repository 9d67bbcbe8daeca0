"""The command-line options every server shares, declared once: :func:`add_server_options` and
the :func:`seconds` type.

The gateway (``gen-nodes serve``), MCP over HTTP, chat-ops and the sandbox all listen the same way
(``--host``, ``--port``, ``--allow-remote``, ``--allowed-host``; see :mod:`gen_nodes.net.serve`),
so they take the same flags with the same meaning; only the port and the log level's default differ.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

#: What ``--log-level`` accepts.
LOG_LEVELS = ("debug", "info", "warning", "error")


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0 (``--timeout``, ``--deadline``, ...)."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {json.dumps(text)}; "
                                         "give a positive number such as 30")
    return number


def add_server_options(parser: argparse.ArgumentParser, *, port: int, scope: str = "",
                       log_level: str | None = "warning", log_help: str = "",
                       timeout: bool = False, timeout_default: Any = None) -> None:
    """Add ``--host``, ``--port``, ``--allow-remote``, ``--allowed-host`` and, unless ``log_level``
    is None, ``--log-level`` (default ``log_level``); with ``timeout`` also ``--timeout`` for GEN's
    reads (default ``timeout_default``, e.g. ``argparse.SUPPRESS`` when a global option may give it). ``scope`` prefixes each help text
    (``"HTTP: "`` where the server also has a transport without a port)."""
    parser.add_argument("--host", default="127.0.0.1",
                        help=f"{scope}address to listen on (default 127.0.0.1); any other than loopback needs "
                        "--allow-remote and --allowed-host")
    parser.add_argument("--port", type=int, default=port,
                        help=f"{scope}port (default {port}; 0 picks a free one)")
    parser.add_argument("--allow-remote", action="store_true",
                        help=f"{scope}allow a --host reachable from other machines (then --allowed-host is required)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME[:PORT]",
                        help=f"{scope}a Host header value clients use, e.g. the public name a reverse proxy "
                        "forwards (repeatable; NAME:* for any port); requests naming another host are refused "
                        "(DNS-rebinding guard)")
    if log_level is not None:
        parser.add_argument("--log-level", default=log_level, choices=LOG_LEVELS,
                            help=f"gen-nodes' log level on stderr (default {log_level}{log_help}); logs never "
                            "hold bodies, arguments, results or keys")
    if timeout:
        parser.add_argument("--timeout", type=seconds, default=timeout_default,
                            help="seconds to wait for each read from GEN (default 30); GEN_NODES_DEADLINE bounds "
                            "a whole call")
