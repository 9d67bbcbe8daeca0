"""OpenAI tool definitions (Chat Completions and Responses API) with strict-mode schemas.

Strict mode accepts only a subset of JSON Schema: every object closed with
``additionalProperties: false``, every property listed in ``required``, optional
ones made nullable. :func:`strict_schema` rewrites a tool's schema that way,
keeping only the keywords OpenAI documents as supported; constraints it drops
(such as ``minLength``) are still enforced by gen-nodes when the call runs, and
the descriptions already state them. A ``null`` the model sends for an optional
field is dropped by the dispatcher, so it runs exactly as if omitted.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

from gen_nodes.runtime.tools import Tool

#: Keywords OpenAI strict mode supports (Structured Outputs, "Supported schemas").
SUPPORTED = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf",
    "description", "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minItems", "maxItems", "$defs", "$ref",
})
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
SUPPORTED_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` rewritten for OpenAI strict mode (the input is not changed)."""
    if schema.get("type") != "object" or "anyOf" in schema or "oneOf" in schema:
        raise ValueError("a strict tool schema needs a plain object at its root")
    return _strict(copy.deepcopy(schema))


def _strict(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf") + node.get("anyOf", [])
    if node.get("format") not in SUPPORTED_FORMATS:
        node.pop("format", None)
    node = {k: v for k, v in node.items() if k in SUPPORTED}
    if "enum" in node and "type" not in node:  # strict mode wants a type on every schema
        kinds = {_JSON_TYPES.get(type(v)) for v in node["enum"]}
        if len(kinds) == 1 and None not in kinds:
            node["type"] = kinds.pop()
    if "anyOf" in node:
        node["anyOf"] = [_strict(branch) for branch in node["anyOf"]]
    if "items" in node:
        node["items"] = _strict(node["items"])
    if "$defs" in node:
        node["$defs"] = {name: _strict(d) for name, d in node["$defs"].items()}
    if node.get("type") == "object" or "properties" in node:
        required = set(node.get("required", ()))
        props = {name: _strict(sub) for name, sub in node.get("properties", {}).items()}
        node["properties"] = {n: (s if n in required else _nullable(s)) for n, s in props.items()}
        node["required"] = list(props)
        node["additionalProperties"] = False
    return node


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    kind = node.get("type")
    if isinstance(kind, str):
        node["type"] = [kind, "null"] if kind != "null" else kind
        if "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        return node
    if isinstance(kind, list):
        if "null" not in kind:
            node["type"] = [*kind, "null"]
        return node
    if "anyOf" in node:
        if not any(b.get("type") == "null" for b in node["anyOf"]):
            node["anyOf"] = [*node["anyOf"], {"type": "null"}]
        return node
    if "enum" in node:
        node["enum"] = [*node["enum"], None] if None not in node["enum"] else node["enum"]
        return node
    description = node.pop("description", None)
    wrapped = {"anyOf": [node, {"type": "null"}]}
    if description:
        wrapped["description"] = description
    return wrapped


def _function(tool: Tool, strict: bool) -> dict[str, Any]:
    parameters = strict_schema(tool.input_schema) if strict else tool.input_schema
    return {"name": tool.name, "description": tool.description, "parameters": parameters, "strict": strict}


def chat_completions_tools(tools: Iterable[Tool], strict: bool = True) -> list[dict[str, Any]]:
    """``tools=`` for ``client.chat.completions.create``."""
    return [{"type": "function", "function": _function(tool, strict)} for tool in tools]


def responses_tools(tools: Iterable[Tool], strict: bool = True) -> list[dict[str, Any]]:
    """``tools=`` for ``client.responses.create`` (flat form; ``strict`` always sent explicitly)."""
    return [{"type": "function", **_function(tool, strict)} for tool in tools]
