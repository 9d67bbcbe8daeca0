"""Anthropic tool definitions: ``name``, ``description``, ``input_schema`` (optionally strict).

With ``strict=True`` the schema is closed and made fully required the same way as
for OpenAI (see ``surfaces/llm/openai.py``), which Anthropic's strict tool use expects.
"""

from __future__ import annotations

from typing import Any, Iterable

from gen_nodes.runtime.tools import Tool
from gen_nodes.surfaces.llm.openai import strict_schema


def anthropic_tools(tools: Iterable[Tool], strict: bool = False) -> list[dict[str, Any]]:
    """``tools=`` for ``client.messages.create``."""
    out = []
    for tool in tools:
        definition = {
            "name": tool.name,
            "description": tool.description,
            "input_schema": strict_schema(tool.input_schema) if strict else tool.input_schema,
        }
        if strict:
            definition["strict"] = True
        out.append(definition)
    return out
