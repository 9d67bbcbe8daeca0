"""LangChain 1.x human-in-the-loop: create_agent's own run loop, a scripted chat model, the real sandbox.

A destructive call pauses (a LangGraph interrupt) before anything is sent; approving runs it once,
rejecting runs nothing, and an edit is not accepted. Without GenHumanInTheLoop the tools still refuse.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent  # noqa: E402
from langchain.agents.middleware import HumanInTheLoopMiddleware  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.types import Command  # noqa: E402

from gen_nodes.surfaces.llm.langchain import langchain_tools  # noqa: E402
from gen_nodes.surfaces.llm.langchain_hitl import DECISIONS, GenHumanInTheLoop, interrupt_on  # noqa: E402
from gen_nodes.runtime.dispatch import Dispatcher  # noqa: E402
from hitl_support import TARGET_SHOWN, add_key, run_readme_block, seed_six, status  # noqa: E402
from hitl_support import dispatcher, target  # noqa: E402,F401  (fixtures)
from doc_support import gen_env  # noqa: E402,F401  (fixture)

CONFIG = {"configurable": {"thread_id": "t1"}}


class ScriptedModel(GenericFakeChatModel):
    """A chat model that answers with the scripted messages in order (tools bound are ignored)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ScriptedModel":
        return self


def model_calling(*calls: tuple[str, dict, str]) -> ScriptedModel:
    turns = [AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": i} for n, a, i in calls]),
             AIMessage(content="done")]
    return ScriptedModel(messages=itertools.chain(turns))


@pytest.fixture
def tools(dispatcher):
    return langchain_tools(dispatcher)


def agent_for(model, tools, middleware):
    return create_agent(model, tools, middleware=middleware, checkpointer=InMemorySaver())


def start(agent) -> Any:
    return agent.invoke({"messages": [{"role": "user", "content": "revoke the CI key"}]}, CONFIG, version="v2")


def tool_messages(result) -> list[ToolMessage]:
    return [m for m in result.value["messages"] if isinstance(m, ToolMessage)]


def test_interrupt_on_covers_exactly_the_destructive_tools_approve_or_reject(tools, dispatcher):
    config = interrupt_on(tools)
    assert set(config) == {t.name for t in dispatcher.tools if t.spec.hints.destructive}
    assert set(config) == {"gen_revoke_api_key", "gen_revoke_all_api_keys", "gen_rotate_api_key"}
    for entry in config.values():
        assert entry["allowed_decisions"] == DECISIONS == ["approve", "reject"]  # never "edit"


def test_approve_runs_the_previewed_call_once(sandbox, tools, dispatcher, target):
    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target}, "call-1")), tools,
                      [GenHumanInTheLoop(tools)])
    paused = start(agent)
    [interrupt] = paused.interrupts
    [request] = interrupt.value["action_requests"]
    assert request["name"] == "gen_revoke_api_key" and request["args"] == {"id": target}
    # The person reads which key goes, its name escaped; nothing was sent yet.
    assert f'id {target}: {TARGET_SHOWN}' in request["description"]
    assert interrupt.value["review_configs"][0]["allowed_decisions"] == ["approve", "reject"]
    assert status(sandbox, target) == "active" and dispatcher.ran == []
    assert sandbox.api_key not in repr(paused.interrupts)

    done = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), CONFIG, version="v2")
    assert not done.interrupts
    assert dispatcher.ran == [("revoke_api_key", {"id": target})]
    assert status(sandbox, target) == "revoked"
    [message] = tool_messages(done)
    assert message.status == "success" and message.artifact == {"id": target, "revoked": True}
    assert done.value["messages"][-1].content == "done"


def test_reject_runs_nothing(sandbox, tools, dispatcher, target):
    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target}, "call-1")), tools,
                      [GenHumanInTheLoop(tools)])
    start(agent)
    done = agent.invoke(Command(resume={"decisions": [{"type": "reject"}]}), CONFIG, version="v2")
    assert dispatcher.ran == [] and status(sandbox, target) == "active"
    [message] = tool_messages(done)
    assert message.status == "error" and "rejected" in message.content


def test_an_edit_is_refused_and_runs_nothing(sandbox, tools, dispatcher, target):
    other = add_key(sandbox, "other")
    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target}, "call-1")), tools,
                      [GenHumanInTheLoop(tools)])
    start(agent)
    edit = {"type": "edit", "edited_action": {"name": "gen_revoke_api_key", "args": {"id": other}}}
    with pytest.raises(ValueError, match="not allowed"):
        agent.invoke(Command(resume={"decisions": [edit]}), CONFIG, version="v2")
    assert dispatcher.ran == []
    assert status(sandbox, target) == status(sandbox, other) == "active"


def test_read_only_tools_do_not_pause_and_approval_covers_only_the_reviewed_call(sandbox, tools, dispatcher, target):
    agent = agent_for(model_calling(("gen_list_api_keys", {}, "call-1"), ("gen_revoke_api_key", {"id": target}, "call-2")),
                      tools, [GenHumanInTheLoop(tools)])
    [interrupt] = start(agent).interrupts
    assert [r["name"] for r in interrupt.value["action_requests"]] == ["gen_revoke_api_key"]
    agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), CONFIG, version="v2")
    assert sorted(action for action, _ in dispatcher.ran) == ["list_api_keys", "revoke_api_key"]
    assert status(sandbox, target) == "revoked"


@pytest.mark.parametrize("decision, revoked", [("approve", True), ("reject", False)])
def test_per_call_mode(sandbox, tools, dispatcher, target, decision, revoked):
    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target}, "call-1")), tools,
                      [GenHumanInTheLoop(tools, interrupt_mode="per_call")])
    [interrupt] = start(agent).interrupts
    assert interrupt.value["type"] == "tool_approval" and interrupt.value["args"] == {"id": target}
    assert dispatcher.ran == []
    agent.invoke(Command(resume={interrupt.id: {"type": decision}}), CONFIG, version="v2")
    assert dispatcher.ran == ([("revoke_api_key", {"id": target})] if revoked else [])
    assert status(sandbox, target) == ("revoked" if revoked else "active")


def test_without_gen_middleware_the_tool_still_refuses(sandbox, tools, dispatcher, target):
    """The stock middleware's approval is not gen-nodes' to trust: no confirmed call, nothing sent."""
    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target}, "call-1")), tools,
                      [HumanInTheLoopMiddleware(interrupt_on=interrupt_on(tools))])
    start(agent)
    done = agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), CONFIG, version="v2")
    [message] = tool_messages(done)
    assert message.status == "error" and "confirmation_required" in message.content
    assert dispatcher.ran == [] and status(sandbox, target) == "active"


def test_no_middleware_refuses(sandbox, tools, dispatcher, target):
    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target}, "call-1")), tools, [])
    done = start(agent)
    [message] = tool_messages(done)
    assert message.status == "error" and "confirmation_required" in message.content
    assert dispatcher.ran == [] and status(sandbox, target) == "active"


def test_a_model_argument_named_confirmed_does_not_approve(sandbox, tools, dispatcher, target):
    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target, "confirmed": True}, "call-1")), tools, [])
    [message] = tool_messages(start(agent))
    assert message.status == "error"
    assert dispatcher.ran == [] and status(sandbox, target) == "active"


def _tool_node_handler(request) -> ToolMessage:
    """What create_agent's tool node does with a request: invoke its tool with the call."""
    return request.tool.invoke({**request.tool_call, "type": "tool_call"})


@pytest.mark.parametrize("approved", [
    [],
    [{"id": "call-1", "name": "gen_revoke_api_key", "args": '{"id": 1}'}],  # another key
    [{"id": "call-0", "name": "gen_revoke_api_key", "args": "TARGET"}],  # another call
], ids=["nothing-approved", "other-arguments", "other-call-id"])
def test_a_call_reaching_the_tool_without_its_own_approval_is_refused(sandbox, tools, dispatcher, target, approved):
    """Batched mode confirms only the call recorded as approved (id, name, arguments), whatever routes it."""
    from langgraph.prebuilt.tool_node import ToolCallRequest

    for entry in approved:
        entry["args"] = entry["args"].replace("TARGET", f'{{"id": {target}}}')
    tool = next(t for t in tools if t.name == "gen_revoke_api_key")
    call = {"name": tool.name, "args": {"id": target}, "id": "call-1"}
    request = ToolCallRequest(tool_call=call, tool=tool, state={"messages": [], "gen_approved_tool_calls": approved},
                              runtime=None)
    message = GenHumanInTheLoop(tools).wrap_tool_call(request, _tool_node_handler)
    assert message.status == "error" and "confirmation_required" in message.content
    assert dispatcher.ran == [] and status(sandbox, target) == "active"
    # The same request with its own approval recorded runs.
    own = {"id": "call-1", "name": tool.name, "args": f'{{"id": {target}}}'}
    approved_request = request.override(state={"messages": [], "gen_approved_tool_calls": [own]})
    assert GenHumanInTheLoop(tools).wrap_tool_call(approved_request, _tool_node_handler).status == "success"
    assert status(sandbox, target) == "revoked"


@pytest.mark.parametrize("answer, outcome", [("yes", "revoked"), ("no", "active")])
def test_readme_snippet(gen_env, monkeypatch, capsys, answer, outcome):
    """The README's loop with a scripted model: the person reads key 6's name, and their answer decides."""
    sandbox = gen_env
    seed_six(sandbox)
    monkeypatch.setattr("builtins.input", lambda prompt="": answer)
    namespace = run_readme_block("LangChain: a person reviews destructive calls",
                                 model=model_calling(("gen_revoke_api_key", {"id": 6}, "call-1")))
    namespace["tools"][0].dispatcher.close()
    assert 'id 6: "old ci" (active)' in capsys.readouterr().out
    assert status(sandbox, 6) == outcome
    assert not namespace["result"].interrupts


def test_async_run_approve_runs_once(sandbox, tools, dispatcher, target):
    import asyncio

    agent = agent_for(model_calling(("gen_revoke_api_key", {"id": target}, "call-1")), tools,
                      [GenHumanInTheLoop(tools)])

    async def paused_then_approved():
        start = {"messages": [{"role": "user", "content": "revoke the CI key"}]}
        paused = await agent.ainvoke(start, CONFIG, version="v2")
        assert paused.interrupts and dispatcher.ran == []
        return await agent.ainvoke(Command(resume={"decisions": [{"type": "approve"}]}), CONFIG, version="v2")

    done = asyncio.run(paused_then_approved())
    assert dispatcher.ran == [("revoke_api_key", {"id": target})] and status(sandbox, target) == "revoked"
    assert [m.status for m in tool_messages(done)] == ["success"]


def test_review_text_when_the_preview_cannot_be_read(sandbox, client, target):
    """GEN unreachable while asking: the person still reads the call, and that its effect is unknown."""
    from gen_nodes.runtime.review import review_text
    from gen_nodes.client.http import GenClient

    with GenClient(api_key=sandbox.api_key, base_url="http://127.0.0.1:9", retry=None, timeout=(0.5, 0.5)) as down:
        text = review_text(Dispatcher(client=down), "gen_revoke_api_key", {"id": target})
    assert "Revoke API key (gen_revoke_api_key): this cannot be undone." in text
    assert f'Arguments: {{"id": {target}}}' in text and "could not be read" in text
    assert sandbox.api_key not in text
