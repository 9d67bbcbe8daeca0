"""Every environment variable gen-nodes reads, declared once and read once.

:data:`VARIABLES` names each one with its type, default and meaning; :func:`current` builds a
frozen :class:`Settings` from ``os.environ`` on first use and keeps it, so no call reads the
environment again (:func:`reload` forgets it, e.g. after a test changes a variable). Code that
takes an ``env`` mapping builds its own with :meth:`Settings.from_env`. ``docs/gen_config.py``
renders :func:`markdown` into ``docs/configuration.md``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Mapping

from gen_nodes.core.errors import InvalidSetting


def _text(name: str, raw: str) -> str:
    return raw


def _positive(name: str, raw: str) -> float:
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise InvalidSetting(f"{name} must be a finite number above 0, not {raw!r}.",
                             hint=f"Set {name} to a number of the unit it names, or unset it.")
    return number


def _names(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, how its text is read, its default and what it does."""

    name: str
    attribute: str  # the Settings field that holds it
    kind: str  # the type as the docs show it
    parse: Callable[[str, str], Any]
    default: Any
    shown_default: str
    meaning: str
    page: str = ""  # the docs page (and anchor) that says more


_STATE = "deployment.md#shared-state-approvals-idempotency-records-chat-bindings"
_GATEWAY = "deployment.md#the-gateway-one-machine-or-many"
_APPROVAL = "approvals.md#the-gateways-approval-mode"
_CHATOPS = "chatops.md#chat-ops-configuration"
_CLIENT = "errors.md#the-clients-settings"

VARIABLES: tuple[Variable, ...] = (
    Variable("GEN_API_KEY", "api_key", "secret", _text, None, "none",
             "The GEN API key every call acts with (CLI, Python, stdio MCP, Temporal workers). Prefer it to "
             "`--api-key`, which other users of the machine can see.", "getting-started.md#python"),
    Variable("GEN_BASE_URL", "base_url", "URL", _text, None, "`https://api.gen.pro/v1`",
             "GEN's API; point it at a sandbox to try things without an account.", "getting-started.md#the-sandbox"),
    Variable("GEN_NODES_DEADLINE", "deadline", "seconds", _positive, None, "60 (seconds)",
             "The most one call may take: every attempt, the waits between them and reading the answer.", _CLIENT),
    Variable("GEN_NODES_MAX_RESPONSE_BYTES", "max_response_bytes", "bytes", _positive, None, "67108864 (64 MiB)",
             "The largest answer accepted, counted after decompression; a larger one is `response_too_large`.",
             _CLIENT),
    Variable("GEN_NODES_CHECK_OUTPUT", "check_output", "`always`, `first` or `never`", _text, "", "every answer",
             "Which answers are checked against the output schema: `always`, `first` (the first of each action "
             "in a process), `never`.", _CLIENT),
    Variable("GEN_NODES_STORE", "store", "store URL", _text, None, "`sqlite://` for the servers, `memory://` in Python",
             "Where approvals, idempotency records and chat bindings live: `memory://`, `sqlite:///path.db`, "
             "`redis://host:6379/0`.", _STATE),
    Variable("GEN_NODES_STATE_DIR", "state_dir", "folder", _text, None, "`~/.local/state/gen-nodes/state`",
             "The folder of the default SQLite store (`sqlite://`).", _STATE),
    Variable("GEN_NODES_STATE_SECRET", "state_secret", "secret", _text, None,
             "a random key (SQLite: in a 0600 file; memory: per process); required with Redis",
             "Encrypts what the store keeps secret at rest (a replayed `token`) and keys the approval page's "
             "forms; a comma-separated list rotates keys. The same value on every process that shares a store.",
             _STATE),
    Variable("GEN_NODES_SECRETS_DIR", "secrets_dir", "folder", _text, None, "`~/.local/state/gen-nodes/secrets`",
             "Where the `file` secret policy writes a created key's secret (0600 files).",
             "approvals.md#the-secret-of-a-created-key"),
    Variable("GEN_NODES_SANDBOX_DIR", "sandbox_dir", "folder", _text, None, "`$XDG_STATE_HOME/gen-nodes/sandbox`",
             "The persistent sandbox of `--sandbox`: its SQLite file and `bootstrap-key`.",
             "getting-started.md#command-line"),
    Variable("GEN_NODES_CONFIRMATION", "confirmation", "`none` or `approval`", _text, None, "`none`",
             "Who approves the gateway's destructive actions (`app_from_env`): nobody (`none`; the old name "
             "`direct` still works) or a person (`approval`).", _APPROVAL),
    Variable("GEN_NODES_APPROVAL_NOTIFY", "approval_notify", "comma-separated list", _names, (), "`stderr`",
             "Who is sent approval links (`app_from_env`): comma-separated targets, `stderr`, `https://...` "
             "webhooks, `slack`, `discord`.", _APPROVAL),
    Variable("GEN_NODES_NOTIFY_SECRET", "notify_secret", "secret", _text, None, "none; required by a webhook target",
             "Signs each webhook notice (`X-Gen-Nodes-Signature`, HMAC-SHA256 of the body).", _APPROVAL),
    Variable("GEN_NODES_PUBLIC_URL", "public_url", "URL", _text, None, "the bound address",
             "The address clients use (`app_from_env`): the OpenAPI document's `servers` entry and approval links.",
             _GATEWAY),
    Variable("GEN_NODES_ALLOWED_HOSTS", "allowed_hosts", "comma-separated list", _names, (), "any Host",
             "The Host names the gateway answers to (`app_from_env`), comma-separated.", _GATEWAY),
    Variable("GEN_NODES_CHATOPS_SECRET", "chatops_secret", "secret", _text, None, "none; required",
             "Seals the GEN keys chat users bind; the same value on every chat-ops process.", _CHATOPS),
    Variable("GEN_NODES_CHATOPS_STORE", "chatops_store", "store URL", _text, None, "`sqlite://`",
             "Where chat bindings, pending approvals and recent requests (against replay) live.", _CHATOPS),
    Variable("GEN_NODES_CHATOPS_DIGEST_AT", "chatops_digest_at", "UTC time (`HH:MM`)", _text, None, "no digest",
             "When chat-ops sends the daily expiry digest to people who ran `/gen alerts on` (`--digest-at`).",
             "chatops.md#expiry-alerts"),
    Variable("GEN_NODES_TEMPORAL_SECRET", "temporal_secret", "secret", _text, None, "none",
             "Keys the Temporal payload codec (Fernet) that encrypts every payload.", "temporal.md#activities"),
    Variable("SLACK_BOT_TOKEN", "slack_bot_token", "secret", _text, None, "none",
             "The chat-ops Slack app's Bot User OAuth Token (`xoxb-...`); also the `slack` approval target's.",
             _CHATOPS),
    Variable("SLACK_SIGNING_SECRET", "slack_signing_secret", "secret", _text, None, "none",
             "The chat-ops Slack app's signing secret: every request from Slack is checked with it.", _CHATOPS),
    Variable("SLACK_API_URL", "slack_api_url", "URL", _text, None, "Slack's",
             "Another Slack Web API address (a test double).", _CHATOPS),
    Variable("DISCORD_PUBLIC_KEY", "discord_public_key", "hex key", _text, None, "none",
             "The Discord application's public key: every interaction is checked with it.", _CHATOPS),
    Variable("DISCORD_BOT_TOKEN", "discord_bot_token", "secret", _text, None, "none",
             "The bot token the `discord` approval target sends DMs with.", _CHATOPS),
    Variable("DISCORD_API_URL", "discord_api_url", "URL", _text, None, "Discord's",
             "Another Discord API address (a test double).", _CHATOPS),
    Variable("XDG_STATE_HOME", "xdg_state_home", "folder", _text, None, "`~/.local/state`",
             "The standard base of gen-nodes' state folders (`gen-nodes/<name>` inside it)."),
)

_BY_NAME = {variable.name: variable for variable in VARIABLES}
_SECRET_KINDS = ("secret",)


@dataclass(frozen=True)
class Settings:
    """The values of :data:`VARIABLES` (None or the default when unset or blank). Secrets never show in the repr.

    A value that makes no sense is kept as its :class:`InvalidSetting`, raised when that setting is
    read: a bad ``GEN_NODES_DEADLINE`` stops the client, not a command that never makes one."""

    values: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        """The settings ``env`` names."""
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            raw = (env.get(variable.name) or "").strip()
            try:
                values[variable.attribute] = variable.parse(variable.name, raw) if raw else variable.default
            except InvalidSetting as exc:
                values[variable.attribute] = exc
        return cls(values)

    def __getattr__(self, attribute: str) -> Any:
        try:
            value = self.__dict__["values"][attribute]
        except KeyError:
            raise AttributeError(attribute) from None
        if isinstance(value, InvalidSetting):
            raise value
        return value

    def value(self, name: str) -> Any:
        """The value of the variable called ``name`` (for code that is handed a variable's name)."""
        return getattr(self, _BY_NAME[name].attribute)

    def __repr__(self) -> str:
        shown = {v.attribute: ("…" if v.kind in _SECRET_KINDS and self.values.get(v.attribute) else
                               self.values.get(v.attribute)) for v in VARIABLES}
        return f"Settings({shown})"


@lru_cache(maxsize=1)
def current() -> Settings:
    """The settings of this process's environment, read on first use and kept."""
    return Settings.from_env(os.environ)


def reload() -> Settings:
    """Forget the kept settings and read the environment again."""
    current.cache_clear()
    return current()


def of(env: Mapping[str, str] | None) -> Settings:
    """``env``'s settings, or this process's when ``env`` is None."""
    return current() if env is None else Settings.from_env(env)


def markdown() -> str:
    """The table of every variable, for docs/configuration.md."""
    rows = ["| variable | type | default | what it does |", "|---|---|---|---|"]
    for variable in VARIABLES:
        more = f" [More]({variable.page})." if variable.page else ""
        rows.append(f"| `{variable.name}` | {variable.kind} | {variable.shown_default} | {variable.meaning}{more} |")
    return "\n".join(rows) + "\n"
