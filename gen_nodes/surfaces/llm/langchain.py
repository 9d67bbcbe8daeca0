"""LangChain tools: every registered action as a LangChain ``StructuredTool`` (``gen-nodes[langchain]``).

Each tool takes the action's JSON Schema, in OpenAI strict form (optional fields
nullable, so ``bind_tools(..., strict=True)`` keeps them optional), as its
``args_schema``; nulls are dropped again before the call. Every call runs through
the :class:`~gen_nodes.runtime.dispatch.Dispatcher`, so input is validated, destructive
tools wait for a person's approval and secrets follow the secret policy exactly as for the
other formats. A failure is raised as ``ToolException`` and, with
``handle_tool_error``, comes back to the model as the tool's output (the error
JSON with its hint) instead of stopping the agent loop. For LangChain's own pause for a
person (``HumanInTheLoopMiddleware``), see :mod:`.langchain_hitl`.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import StructuredTool, ToolException

from gen_nodes.runtime.dispatch import Dispatcher
from gen_nodes.surfaces.llm.openai import strict_schema


class GenTool(StructuredTool):
    """One gen-nodes action as a LangChain ``StructuredTool``. The output is JSON text; the artifact,
    the dict (or, for a call held for a person's approval, the :class:`~gen_nodes.safety.approvals.Approval`)."""

    dispatcher: Any
    #: A person already approved this one call (set by :mod:`.langchain_hitl` on a one-call copy
    #: after the framework's review; never from the tool's arguments).
    confirmed: bool = False
    handle_tool_error: Any = True
    response_format: str = "content_and_artifact"

    # The first parameter is not called `self` and there are no injected parameters, so an
    # input field named `self`, `config` or `run_manager` reaches the action unchanged.
    def _run(_tool, **kwargs: Any) -> tuple[str, Any]:
        result = _tool.dispatcher.call(_tool.name, kwargs, confirmed=_tool.confirmed)
        if result.approval is not None:
            # Held for a person (policy "approval"): the model reads that it waits; the host finds
            # the handle in the artifact, which LangChain never sends to the model.
            return result.text, result.approval
        if result.is_error:
            raise ToolException(result.text)
        return result.text, result.content

    async def _arun(_tool, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        from langchain_core.runnables.config import run_in_executor

        return await run_in_executor(None, _tool._run, **kwargs)


def langchain_tools(dispatcher: Dispatcher | None = None, **dispatcher_options: Any) -> list[GenTool]:
    """LangChain tools for every action; ``dispatcher_options`` go to :class:`Dispatcher` if none is given."""
    dispatcher = dispatcher or Dispatcher(**dispatcher_options)
    return [
        GenTool(name=tool.name, description=tool.description, args_schema=strict_schema(tool.input_schema), dispatcher=dispatcher)
        for tool in dispatcher.tools
    ]
