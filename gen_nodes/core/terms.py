"""The caller's vocabulary (:class:`Terms`): how each surface names actions and settings in a hint.

Every error's hint is a template (``${list_api_keys}``, ``${API_KEY}``); a surface renders it
with its own ``Terms`` through ``GenError.to_dict(terms)``. Every surface's terms are here, one
named instance each (Python, the CLI, a model's tools, HTTP MCP, the gateway, n8n, Temporal), or
one function where the words depend on the surface's configuration (an Airflow connection, the
chat commands): no surface defines its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from string import Template
from typing import Mapping


@dataclass(frozen=True)
class Terms:
    """The caller's vocabulary: how a surface names the actions and the settings a hint mentions.

    Hints are templates: ``${list_api_keys}`` stands for an action, named as the caller calls
    it (``gen_list_api_keys`` for a model), and ``${API_KEY}``, ``${BASE_URL}``, ``${TIMEOUT}``,
    ``${DEADLINE}``, ``${MAX_RESPONSE_BYTES}`` for how the caller supplies that setting. Each
    surface renders hints with its own ``Terms`` (``GenError.to_dict(terms)``); ``exc.hint``
    reads them in Python's terms.
    """

    #: Put before an action id: "" for Python and the CLI, the tool prefix for a model.
    action_prefix: str = ""
    #: How to give an active API key, as an instruction.
    API_KEY: str = "set GEN_API_KEY (or pass api_key=) to an active key"
    #: Where the base URL is set.
    BASE_URL: str = "GEN_BASE_URL (or base_url=)"
    #: Where the per-read timeout is set.
    TIMEOUT: str = "timeout="
    #: Where the overall deadline of a call is set.
    DEADLINE: str = "deadline= or GEN_NODES_DEADLINE"
    #: Where the cap on an answer's size is set.
    MAX_RESPONSE_BYTES: str = "max_response_bytes= or GEN_NODES_MAX_RESPONSE_BYTES"

    def render(self, template: str) -> str:
        return _Hint(template).safe_substitute(_Words(self))

    def action(self, action_id: str) -> str:
        """How the caller names an action (chat names it as its command)."""
        return self.action_prefix + action_id

    def for_tools(self, prefix: str) -> "Terms":
        """The same words with actions named as tools."""
        return replace(self, action_prefix=prefix)


class _Hint(Template):
    braceidpattern = r"[A-Za-z_][A-Za-z0-9_]*"
    idpattern = r"(?!)"  # only ${name}: a bare $ in a hint stays as it is


class _Words(dict):
    def __init__(self, terms: Terms) -> None:
        super().__init__()
        self.terms = terms

    def __missing__(self, name: str) -> str:
        if name.isupper() and hasattr(self.terms, name):
            return getattr(self.terms, name)
        if name.islower():
            return self.terms.action(name)
        raise KeyError(name)


#: Python: ``exc.hint`` and ``str(exc)``.
PYTHON_TERMS = Terms()
#: The ``gen-nodes`` command line.
CLI_TERMS = Terms(
    API_KEY="set GEN_API_KEY (or --api-key) to an active key",
    BASE_URL="GEN_BASE_URL (or --base-url)",
    TIMEOUT="--timeout",
    DEADLINE="--deadline or GEN_NODES_DEADLINE",
    MAX_RESPONSE_BYTES="GEN_NODES_MAX_RESPONSE_BYTES",
)
#: A model calling tools of a server configured by the user (stdio MCP, a tool loop).
TOOL_TERMS = Terms(
    action_prefix="gen_",
    API_KEY="ask the user to set GEN_API_KEY to an active key in this tool server's configuration",
    BASE_URL="GEN_BASE_URL in this tool server's configuration",
    TIMEOUT="the tool server's timeout setting",
    DEADLINE="the tool server's GEN_NODES_DEADLINE",
    MAX_RESPONSE_BYTES="the tool server's GEN_NODES_MAX_RESPONSE_BYTES",
)
#: A client of the HTTP MCP server, whose every request brings its own key.
HTTP_TOOL_TERMS = replace(
    TOOL_TERMS,
    API_KEY="send an active GEN API key with each request as `Authorization: Bearer <key>` or `X-API-Key`",
)
#: A caller of the HTTP gateway: every request brings its own key; the other settings are the operator's.
GATEWAY_TERMS = Terms(
    API_KEY="send an active GEN API key with each request as `X-API-Key` or `Authorization: Bearer <key>`",
    BASE_URL="the gateway's --base-url (ask its operator)",
    TIMEOUT="the gateway's --timeout (ask its operator)",
    DEADLINE="the gateway's GEN_NODES_DEADLINE (ask its operator)",
    MAX_RESPONSE_BYTES="the gateway's GEN_NODES_MAX_RESPONSE_BYTES (ask its operator)",
)
#: An n8n user: the operations by their values, settings as the node and credential show them.
N8N_TERMS = Terms(
    API_KEY="put an active key in the node's GEN API credential",
    BASE_URL="the GEN API credential's Base URL",
    TIMEOUT="the n8n node's settings",
    DEADLINE="the n8n node's settings",
    MAX_RESPONSE_BYTES="the n8n node's settings",
)
#: A Temporal worker's operator: the settings they name are the worker's.
TEMPORAL_TERMS = Terms(
    API_KEY="set GEN_API_KEY in the worker's environment (or activities(api_key=...)) to an active key",
    BASE_URL="GEN_BASE_URL in the worker's environment (or activities(base_url=...))",
    TIMEOUT="the activity's start_to_close_timeout",
    DEADLINE="GEN_NODES_DEADLINE in the worker's environment",
    MAX_RESPONSE_BYTES="GEN_NODES_MAX_RESPONSE_BYTES in the worker's environment",
)


def airflow_terms(conn_id: str) -> Terms:
    """An Airflow user: the settings a hint names are the fields of the connection ``conn_id``."""
    where = f"Airflow connection {conn_id!r}"
    return Terms(
        API_KEY=f"set the API key field of {where} to an active key",
        BASE_URL=f"the Base URL field of {where}",
        TIMEOUT="the operator's execution_timeout",
        DEADLINE="GEN_NODES_DEADLINE on the worker",
        MAX_RESPONSE_BYTES="GEN_NODES_MAX_RESPONSE_BYTES on the worker",
    )


@dataclass(frozen=True)
class ChatTerms(Terms):
    """A chat user: actions named as their commands (``commands``: action id -> command), settings as the operator's."""

    commands: Mapping[str, str] = field(default_factory=dict)
    API_KEY: str = "bind an active key of yours with `/gen login`"
    BASE_URL: str = "the chat-ops server's GEN_BASE_URL (ask its operator)"
    TIMEOUT: str = "the chat-ops server's --timeout (ask its operator)"
    DEADLINE: str = "the chat-ops server's GEN_NODES_DEADLINE (ask its operator)"
    MAX_RESPONSE_BYTES: str = "the chat-ops server's GEN_NODES_MAX_RESPONSE_BYTES (ask its operator)"

    def action(self, action_id: str) -> str:
        return self.commands.get(action_id, action_id)


def chat_terms(commands: Mapping[str, str], prefix: str = "/gen") -> ChatTerms:
    """A chat user's terms for a bot whose commands start with ``prefix``."""
    return ChatTerms(commands=commands, API_KEY=f"bind an active key of yours with `{prefix} login`")
