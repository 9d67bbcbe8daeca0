"""The options of ``gen-nodes mcp``, importable without the ``mcp`` extra so that
``gen-nodes mcp --help`` prints the help on any install."""

from __future__ import annotations

import argparse
from pathlib import Path

from gen_nodes.core.spec import ELICIT, HOST, NONE
from gen_nodes.net.options import add_server_options, seconds
from gen_nodes.safety.secret_delivery import DEFAULT_POLICY, POLICIES
from gen_nodes.runtime.tools import DEFAULT_PREFIX

#: Who approves a destructive tool call over MCP.
MCP_POLICIES = (ELICIT, HOST, NONE)
#: --elicitation: how the user is asked (a form in the client, or a page of this server).
ELICITATION_MODES = ("auto", "form", "url")
#: Defaults: sessions per key, sessions in all, idle seconds for unproven and proven keys.
PER_KEY, TOTAL, UNPROVEN_IDLE, IDLE = 16, 1000, 60.0, 1800.0
#: What to do without the extra.
INSTALL = "pip install 'gen-nodes[mcp]'"


def parser() -> argparse.ArgumentParser:
    """The parser of ``gen-nodes mcp``."""
    made = argparse.ArgumentParser(prog="gen-nodes mcp", description="Serve the GEN tools over MCP.")
    add_arguments(made)
    return made


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``gen-nodes mcp`` (``--base-url`` may come from the global options)."""
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                        help="stdio (default) or streamable HTTP at /mcp")
    add_server_options(parser, port=8000, scope="HTTP: ", timeout=True, timeout_default=argparse.SUPPRESS)
    parser.add_argument("--sessions-per-key", type=_count, default=PER_KEY, metavar="N",
                        help=f"HTTP: open MCP sessions per GEN key (default {PER_KEY}; the least recently used idle "
                        "one is closed for a new one)")
    parser.add_argument("--sessions-total", type=_count, default=TOTAL, metavar="N",
                        help=f"HTTP: open MCP sessions in all (default {TOTAL})")
    parser.add_argument("--unproven-session-idle", type=seconds, default=UNPROVEN_IDLE, metavar="SECONDS",
                        help="HTTP: idle seconds before a session of a key that never made a successful call is "
                        f"closed (default {UNPROVEN_IDLE:g}; other sessions: {IDLE:g})")
    parser.add_argument("--confirmation", choices=MCP_POLICIES, default=ELICIT,
                        help="who approves a destructive tool call: the user, asked by this server through the "
                        "client (elicit, default; a client without elicitation is refused), the client itself "
                        "before every destructive call (host), or nobody (none)")
    parser.add_argument("--elicitation", choices=ELICITATION_MODES, default="auto",
                        help="how --confirmation elicit asks: a form in the client, or (HTTP) a page of this server "
                        "the client opens (url); auto (default): form if the client has it, else url")
    parser.add_argument("--approval-ttl", type=seconds, default=300.0, metavar="SECONDS",
                        help="HTTP, url elicitation: seconds the user has to decide on the page (default 300)")
    parser.add_argument("--approval-notify", action="append", default=[], metavar="TARGET",
                        help="HTTP, url elicitation: who else is sent the approval page's link (repeatable): stderr "
                        "(default), an http(s):// webhook URL (signed with $GEN_NODES_NOTIFY_SECRET), slack or discord")
    parser.add_argument("--store", default="memory://", metavar="URL",
                        help="HTTP, url elicitation: where held calls wait for a decision: memory:// (default), "
                        "sqlite:///path.db or redis://host:port/db; give gen-nodes chatops the same one for "
                        "--approval-notify slack or discord, so a press in chat decides the held call")
    parser.add_argument("--secrets", choices=POLICIES, default=DEFAULT_POLICY,
                        help="how a created key's secret is returned: written to a 0600 file (file, default), "
                        "masked only (mask), or in the result (reveal)")
    parser.add_argument("--secrets-dir", type=Path, default=None,
                        help="folder for --secrets file (default $GEN_NODES_SECRETS_DIR or ~/.local/state/gen-nodes/secrets)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"tool name prefix (default {DEFAULT_PREFIX})")
    parser.add_argument("--base-url", default=argparse.SUPPRESS,
                        help="GEN API base URL (default: $GEN_BASE_URL or https://api.gen.pro/v1)")
    parser.add_argument("--api-key", default=argparse.SUPPRESS,
                        help="stdio: the GEN API key (prefer $GEN_API_KEY; over HTTP each request brings its own)")


def _count(text: str) -> int:
    """An argparse type: a whole number above 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


