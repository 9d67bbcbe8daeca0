"""OpenAI Agents SDK function tools with the SDK's own human approval (``gen-nodes[openai-agents]``).

Every action becomes a ``FunctionTool`` with its strict-mode schema; a destructive one has
``needs_approval=True``, so ``Runner.run`` stops with the call in ``result.interruptions`` before
anything is sent. The host shows the call to a person (:func:`review` says what it would affect),
then ``state.approve(item)`` or ``state.reject(item)`` and runs again from that state.

The tool runs a destructive call as confirmed only if the SDK's run context records a person's
approval of that very call id (``RunContextWrapper.is_tool_approved``); nothing the model sends can
approve it (the SDK refuses a model that reuses a completed call id for another call). The SDK does not let anyone edit the arguments of a
pending call, so the call that runs is the one the person was shown. Other results and errors
reach the model as the dispatcher's JSON, as for every other tool format.
"""

from __future__ import annotations

import asyncio

from typing import Any

from agents import FunctionTool, RunContextWrapper, ToolApprovalItem
from agents.tool_context import ToolContext

from gen_nodes.runtime.dispatch import Dispatcher
from gen_nodes.runtime.tools import Tool
from gen_nodes.surfaces.llm.openai import strict_schema
from gen_nodes.runtime.review import review_text


def agents_tools(dispatcher: Dispatcher | None = None, **dispatcher_options: Any) -> list[FunctionTool]:
    """Agents SDK tools for every action; ``dispatcher_options`` go to :class:`Dispatcher` if none is given."""
    dispatcher = dispatcher or Dispatcher(**dispatcher_options)
    return [_function_tool(dispatcher, tool) for tool in dispatcher.tools]


def review(dispatcher: Dispatcher, item: ToolApprovalItem) -> str:
    """What the person reads before deciding on the interruption ``item`` (masked, names escaped)."""
    return review_text(dispatcher, item.tool_name or item.name or "", item.arguments)


def _function_tool(dispatcher: Dispatcher, tool: Tool) -> FunctionTool:
    destructive = tool.spec.hints.destructive

    async def invoke(context: ToolContext[Any], arguments: str) -> str:
        confirmed = destructive and _approved(context, tool.name)
        result = await asyncio.to_thread(dispatcher.call, tool.name, arguments, confirmed=confirmed)
        return result.text

    return FunctionTool(name=tool.name, description=tool.description,
                        params_json_schema=strict_schema(tool.input_schema), on_invoke_tool=invoke,
                        strict_json_schema=True, needs_approval=destructive)


def _approved(context: RunContextWrapper[Any], tool_name: str) -> bool:
    """A person approved this very call: the SDK's run context records it for the call's id."""
    call_id = getattr(context, "tool_call_id", "")
    return bool(call_id) and context.is_tool_approved(tool_name, call_id) is True
