"""Writes docs/configuration.md: every environment variable gen-nodes reads, with what it does.

The set of variables comes from the package itself: every ``GEN_*`` / ``GEN_NODES_*`` name
found in ``gen_nodes/`` (see :func:`read_variables`). Each needs an entry in
:data:`DESCRIPTIONS`; a variable the package reads without one, or an entry for a variable it
no longer reads, stops the script with a message naming it. When a ``settings`` module
declares the variables, replace :func:`read_variables` with a walk of its declarations: the
rest of the script (rendering, ``--check``) stays as it is.

    python docs/gen_config.py           # rewrite docs/configuration.md
    python docs/gen_config.py --check   # exit 1 if the page is out of date (the tests run this)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gen_nodes"
PAGE = ROOT / "docs" / "configuration.md"
VARIABLE = re.compile(r"\bGEN(?:_NODES)?_[A-Z][A-Z0-9_]*[A-Z0-9]\b")


class Variable(NamedTuple):
    default: str
    meaning: str
    page: str  # the docs page (and anchor) that says more


DESCRIPTIONS: dict[str, Variable] = {
    "GEN_API_KEY": Variable("none", "The GEN API key every call acts with (CLI, Python, stdio MCP, Temporal workers). Prefer it to `--api-key`, which other users of the machine can see.", "getting-started.md#python"),
    "GEN_BASE_URL": Variable("`https://api.gen.pro/v1`", "GEN's API; point it at a sandbox to try things without an account.", "getting-started.md#the-sandbox"),
    "GEN_NODES_DEADLINE": Variable("60 (seconds)", "The most one call may take: every attempt, the waits between them and reading the answer.", "errors.md#the-clients-settings"),
    "GEN_NODES_MAX_RESPONSE_BYTES": Variable("67108864 (64 MiB)", "The largest answer accepted, counted after decompression; a larger one is `response_too_large`.", "errors.md#the-clients-settings"),
    "GEN_NODES_CHECK_OUTPUT": Variable("every answer", "Which answers are checked against the output schema: `always`, `first` (the first of each action in a process), `never`.", "errors.md#the-clients-settings"),
    "GEN_NODES_STORE": Variable("`sqlite://` for the servers, `memory://` in Python", "Where approvals, idempotency records and chat bindings live: `memory://`, `sqlite:///path.db`, `redis://host:6379/0`.", "deployment.md#shared-state-approvals-idempotency-records-chat-bindings"),
    "GEN_NODES_STATE_DIR": Variable("`~/.local/state/gen-nodes/state`", "The folder of the default SQLite store (`sqlite://`).", "deployment.md#shared-state-approvals-idempotency-records-chat-bindings"),
    "GEN_NODES_STATE_SECRET": Variable("a random key (SQLite: in a 0600 file; memory: per process); required with Redis", "Encrypts what the store keeps secret at rest (a replayed `token`) and keys the approval page's forms; a comma-separated list rotates keys. The same value on every process that shares a store.", "deployment.md#shared-state-approvals-idempotency-records-chat-bindings"),
    "GEN_NODES_SECRETS_DIR": Variable("`~/.local/state/gen-nodes/secrets`", "Where the `file` secret policy writes a created key's secret (0600 files).", "approvals.md#the-secret-of-a-created-key"),
    "GEN_NODES_SANDBOX_DIR": Variable("`$XDG_STATE_HOME/gen-nodes/sandbox`", "The persistent sandbox of `--sandbox`: its SQLite file and `bootstrap-key`.", "getting-started.md#command-line"),
    "GEN_NODES_CONFIRMATION": Variable("`direct`", "The gateway's confirmation for destructive actions (`app_from_env`): `direct` or `approval`.", "approvals.md#the-gateways-approval-mode"),
    "GEN_NODES_APPROVAL_NOTIFY": Variable("`stderr`", "Who is sent approval links (`app_from_env`): comma-separated targets, `stderr`, `https://...` webhooks, `slack`, `discord`.", "approvals.md#the-gateways-approval-mode"),
    "GEN_NODES_NOTIFY_SECRET": Variable("none; required by a webhook target", "Signs each webhook notice (`X-Gen-Nodes-Signature`, HMAC-SHA256 of the body).", "approvals.md#the-gateways-approval-mode"),
    "GEN_NODES_PUBLIC_URL": Variable("the bound address", "The address clients use (`app_from_env`): the OpenAPI document's `servers` entry and approval links.", "deployment.md#the-gateway-one-machine-or-many"),
    "GEN_NODES_ALLOWED_HOSTS": Variable("any Host", "The Host names the gateway answers to (`app_from_env`), comma-separated.", "deployment.md#the-gateway-one-machine-or-many"),
    "GEN_NODES_CHATOPS_SECRET": Variable("none; required", "Seals the GEN keys chat users bind; the same value on every chat-ops process.", "chatops.md#chat-ops-configuration"),
    "GEN_NODES_CHATOPS_STORE": Variable("`sqlite://`", "Where chat bindings, pending approvals and recent requests (against replay) live.", "chatops.md#chat-ops-configuration"),
    "GEN_NODES_TEMPORAL_SECRET": Variable("none", "Keys the Temporal payload codec (Fernet) that encrypts every payload.", "temporal.md#activities"),
}

HEADER = """\
# Configuration

<!-- Generated by docs/gen_config.py from the variables gen_nodes/ reads: do not edit. -->

Every environment variable gen-nodes reads. Command-line options and Python arguments
override them where both exist; the client's own settings (timeouts, retries, pool size)
are in [Errors, retries and limits](errors.md#the-clients-settings), the chat platforms'
variables (`SLACK_*`, `DISCORD_*`) in [Chat-ops](chatops.md#chat-ops-configuration), and
Airflow's connection in [Airflow](airflow.md#the-provider).

| variable | default | what it does |
|---|---|---|
"""


def read_variables(package: Path = PACKAGE) -> set[str]:
    """Every GEN_* / GEN_NODES_* name in the package's Python files."""
    found: set[str] = set()
    for source in package.rglob("*.py"):
        found.update(VARIABLE.findall(source.read_text(encoding="utf-8")))
    return found


def render(variables: set[str]) -> str:
    undocumented = sorted(variables - DESCRIPTIONS.keys())
    if undocumented:
        raise SystemExit(f"docs/gen_config.py: describe {', '.join(undocumented)} in DESCRIPTIONS")
    stale = sorted(DESCRIPTIONS.keys() - variables)
    if stale:
        raise SystemExit(f"docs/gen_config.py: gen_nodes/ no longer reads {', '.join(stale)}: remove it from DESCRIPTIONS")
    rows = [f"| `{name}` | {DESCRIPTIONS[name].default} | {DESCRIPTIONS[name].meaning} "
            f"[More]({DESCRIPTIONS[name].page}). |" for name in DESCRIPTIONS]
    return HEADER + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    page = render(read_variables())
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != page:
            print("docs/configuration.md is out of date: run python docs/gen_config.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
