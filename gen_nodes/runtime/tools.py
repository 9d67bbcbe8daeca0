"""LLM tools: every registered action as a named tool with self-contained schemas.

A :class:`Tool` is an action seen by a model: a name (the action id with a prefix,
``gen_`` by default, as GEN's own MCP server named them), a description, and
schemas with no outside ``$ref``. The format adapters (``surfaces/llm/openai.py``,
``surfaces/llm/anthropic.py``, ``surfaces/mcp/server.py``, ``surfaces/llm/langchain.py``) only
reshape these; none has per-action code, so a plugin's actions appear everywhere.

No tool has an input that approves it: a destructive tool is approved by a person
through a channel the host controls (see ``dispatch.py`` and ``approvals.py``), never
by anything the model sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from gen_nodes.core.validation import DATA_KEYWORDS, SUBSCHEMA_MAPS, bundled
from gen_nodes.core.spec import APPROVAL, CONFIRMATIONS, ELICIT, HOST, ActionSpec

DEFAULT_PREFIX = "gen_"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: How a destructive call gets a person's yes: the one vocabulary of :mod:`gen_nodes.core.spec`.
CONFIRMATION_POLICIES = CONFIRMATIONS
#: Policies under which gen-nodes itself holds a destructive call until a person agrees.
GATED_POLICIES = (ELICIT, APPROVAL)
# Root keywords that only document a schema; the tool's own description says what it needs.
_DOC_ONLY = ("$schema", "$id", "examples", "title", "description")
# Keywords that only pad a subschema (the bundled key object brings a whole example along);
# each property keeps its description, which is what a model reads.
_NESTED_DOC_ONLY = ("$schema", "$id", "examples", "title")


@dataclass(frozen=True)
class Tool:
    name: str
    spec: ActionSpec
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    #: gen-nodes holds the call until a person agrees (a destructive tool under a gated policy).
    needs_approval: bool = False


def tool_name(action_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    name = prefix + action_id
    if not NAME_PATTERN.match(name):
        raise ValueError(f"tool name {name!r} does not match {NAME_PATTERN.pattern}; choose another prefix")
    return name


def build_tools(specs: Iterable[ActionSpec], prefix: str = DEFAULT_PREFIX,
                confirmation: str = ELICIT) -> list[Tool]:
    """One :class:`Tool` per action. ``confirmation`` is a policy of :data:`CONFIRMATION_POLICIES`."""
    if confirmation not in CONFIRMATION_POLICIES:
        raise ValueError(f"confirmation must be one of {CONFIRMATION_POLICIES}, not {confirmation!r}")
    tools = []
    for spec in specs:
        schema = _for_model(bundled(spec.input_schema))
        description = spec.description
        gated = spec.hints.destructive and confirmation in GATED_POLICIES
        if gated:
            description += " Irreversible: it acts only after the user approves it outside this conversation."
        elif spec.hints.destructive and confirmation == HOST:
            description += " Irreversible: ask the user before calling it."
        tools.append(Tool(tool_name(spec.id, prefix), spec, description, schema,
                          _for_model(bundled(spec.output_schema)), needs_approval=gated))
    return tools


def mcp_definition(tool: Tool) -> dict[str, Any]:
    """The tool as MCP's ``tools/list`` describes it (wire form), hints set explicitly."""
    hints = tool.spec.hints
    return {
        "name": tool.name,
        "title": tool.spec.title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
        "annotations": {
            "title": tool.spec.title,
            "readOnlyHint": hints.read_only,
            "destructiveHint": hints.destructive,
            "idempotentHint": hints.idempotent,
            "openWorldHint": hints.open_world,
        },
    }


def _for_model(schema: dict[str, Any]) -> dict[str, Any]:
    for key in _DOC_ONLY:
        schema.pop(key, None)
    schema = _without_padding(schema)
    schema.setdefault("properties", {})
    return schema


def _without_padding(node: Any) -> Any:
    """``node`` without :data:`_NESTED_DOC_ONLY` in any subschema (property names are left alone)."""
    if isinstance(node, list):
        return [_without_padding(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _NESTED_DOC_ONLY:
            continue
        if key in DATA_KEYWORDS:
            out[key] = value
        elif key in SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _without_padding(sub) for name, sub in value.items()}
        else:
            out[key] = _without_padding(value)
    return out
