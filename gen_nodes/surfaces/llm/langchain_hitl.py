"""LangChain 1.x human-in-the-loop for gen-nodes tools (``gen-nodes[langchain]``).

:func:`interrupt_on` is the ``interrupt_on=`` of LangChain's ``HumanInTheLoopMiddleware``,
derived from the actions' hints: every destructive tool pauses for a person, who may approve or
reject it, never edit it (the call that runs must be the one the person read). Read-only and
other tools run without a pause.

:class:`GenHumanInTheLoop` is that middleware, plus the one thing the stock middleware cannot do:
tell gen-nodes that a person approved the call. The tools keep their dispatcher's policy (by
default ``elicit``, which refuses a destructive call nobody can confirm), so a gen-nodes tool used
without this middleware still refuses. Only for a call the person approved in this middleware's
review does the tool run as confirmed: that one call, with the arguments shown. Nothing the model
sends (tool arguments, ids) can approve: in ``batched`` mode the approval is the reviewer's
decision recorded in private agent state with the call's id, name and arguments; in ``per_call``
mode it is the middleware letting the call through after its ``interrupt``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Awaitable, Callable, Iterable, NotRequired

from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.messages import AIMessage, ToolMessage

from gen_nodes.surfaces.llm.langchain import GenTool
from gen_nodes.runtime.review import review_text

#: The only decisions a reviewer may take on a destructive call (an edit would run other arguments).
DECISIONS = ["approve", "reject"]
# Private agent state: the calls the person approved in the last review (id, name, arguments).
_APPROVED = "gen_approved_tool_calls"


def interrupt_on(tools: Iterable[GenTool]) -> dict[str, InterruptOnConfig]:
    """``HumanInTheLoopMiddleware(interrupt_on=...)`` for ``tools``: each destructive one pauses for
    approve or reject, described with what it would affect."""
    return {tool.name: InterruptOnConfig(allowed_decisions=list(DECISIONS), description=_describer(tool))
            for tool in tools if isinstance(tool, GenTool) and _destructive(tool)}


def _destructive(tool: GenTool) -> bool:
    return tool.dispatcher.tool(tool.name).spec.hints.destructive


def _describer(tool: GenTool) -> Callable[..., str]:
    def describe(tool_call: dict[str, Any], state: Any, runtime: Any) -> str:
        return review_text(tool.dispatcher, tool.name, tool_call["args"])
    return describe


class _ApprovedCallsState(HumanInTheLoopMiddleware.state_schema):  # type: ignore[misc,name-defined]
    gen_approved_tool_calls: NotRequired[Annotated[list[dict[str, Any]], PrivateStateAttr]]


class GenHumanInTheLoop(HumanInTheLoopMiddleware):
    """``HumanInTheLoopMiddleware`` over :func:`interrupt_on`; an approved gen-nodes call runs as confirmed.

    Give the agent a checkpointer; resume with ``Command(resume={"decisions": [{"type": "approve"}]})``
    (``batched``, the default) or, with ``interrupt_mode="per_call"``, one decision per interrupt id.
    """

    state_schema = _ApprovedCallsState  # type: ignore[assignment]

    def __init__(self, tools: Iterable[GenTool], **options: Any) -> None:
        if "interrupt_on" in options:
            raise TypeError("GenHumanInTheLoop derives interrupt_on from the tools; pass only the tools")
        super().__init__(interrupt_on=interrupt_on(tools), edit_notice=None, **options)

    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        update = super().after_model(state, runtime)
        if self.interrupt_mode == "per_call":
            return update
        # Rebuilt on every model turn, so an approval never outlives the turn it was given in.
        approved = _approved_calls(update, self.interrupt_on) if update else []
        if not approved and not state.get(_APPROVED):
            return update
        return {**(update or {}), _APPROVED: approved}

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        if self.interrupt_mode == "per_call":
            # The stock middleware calls the handler for a gated call only once the person approved it.
            return super().wrap_tool_call(request, lambda approved: handler(self._confirmed(approved)))
        return super().wrap_tool_call(self._confirmed(request) if _was_approved(request) else request, handler)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        if self.interrupt_mode == "per_call":
            return await super().awrap_tool_call(request, lambda approved: handler(self._confirmed(approved)))
        return await super().awrap_tool_call(self._confirmed(request) if _was_approved(request) else request,
                                             handler)

    def _confirmed(self, request: Any) -> Any:
        """``request`` with a copy of its tool that runs as confirmed, if it is a reviewed gen-nodes tool."""
        tool = request.tool
        if not isinstance(tool, GenTool) or request.tool_call["name"] not in self.interrupt_on:
            return request
        return request.override(tool=tool.model_copy(update={"confirmed": True}))


def _approved_calls(update: dict[str, Any], reviewed: dict[str, Any]) -> list[dict[str, Any]]:
    """The reviewed calls the person approved: those the middleware kept without a rejection message."""
    messages = update.get("messages", [])
    rejected = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    asked = next((m for m in messages if isinstance(m, AIMessage)), None)
    return [{"id": call["id"], "name": call["name"], "args": _canonical(call["args"])}
            for call in (asked.tool_calls if asked else []) if call["name"] in reviewed and call["id"] not in rejected]


def _was_approved(request: Any) -> bool:
    call = request.tool_call
    wanted = {"id": call["id"], "name": call["name"], "args": _canonical(call["args"])}
    return wanted in (request.state or {}).get(_APPROVED, [])


def _canonical(args: Any) -> str:
    return json.dumps(args, sort_keys=True, default=str)
