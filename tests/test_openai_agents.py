"""OpenAI Agents SDK: Runner's own loop, a scripted Model, needs_approval on destructive tools, the real sandbox.

The run stops with the revoke in ``result.interruptions`` before anything is sent; approving resumes it
and the key is revoked once; rejecting runs nothing; nothing the model sends approves.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Model, ModelResponse, RunConfig, Runner, Usage, set_tracing_disabled  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from gen_nodes.surfaces.llm.openai_agents import agents_tools, review  # noqa: E402
from hitl_support import TARGET_SHOWN, add_key, run_readme_block, seed_six, status  # noqa: E402
from hitl_support import dispatcher, target  # noqa: E402,F401  (fixtures)
from doc_support import gen_env  # noqa: E402,F401  (fixture)

NO_TRACING = RunConfig(tracing_disabled=True)
# No trace export to OpenAI from any run here (the README snippet's runs included).
set_tracing_disabled(True)


class ScriptedModel(Model):
    """Answers each model call with the next scripted turn, in the Responses API's item types."""

    def __init__(self, *turns: list[Any]) -> None:
        self.turns = list(turns)
        self.inputs: list[Any] = []

    async def get_response(self, system_instructions, input, *args: Any, **kwargs: Any) -> ModelResponse:
        self.inputs.append(input)
        return ModelResponse(output=self.turns.pop(0), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any):
        raise NotImplementedError("the tests run without streaming")


def call(name: str, arguments: dict, call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(type="function_call", id=f"fc_{call_id}", call_id=call_id, name=name,
                                    arguments=json.dumps(arguments))


def said(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(type="message", id="msg_1", role="assistant", status="completed",
                                 content=[ResponseOutputText(type="output_text", text=text, annotations=[])])


def agent_with(dispatcher, model) -> Agent:
    return Agent(name="keys", instructions="Manage GEN API keys.", model=model, tools=agents_tools(dispatcher))


def run(agent, start) -> Any:
    return asyncio.run(Runner.run(agent, start, run_config=NO_TRACING))


def test_needs_approval_exactly_on_the_destructive_tools(dispatcher):
    tools = agents_tools(dispatcher)
    assert [t.name for t in tools] == [t.name for t in dispatcher.tools]
    assert {t.name for t in tools if t.needs_approval} == {t.name for t in dispatcher.tools if t.spec.hints.destructive}
    assert {t.name for t in tools if t.needs_approval} == {"gen_revoke_api_key", "gen_revoke_all_api_keys", "gen_rotate_api_key"}
    assert all(t.strict_json_schema and t.params_json_schema["additionalProperties"] is False for t in tools)


def test_interruption_then_approval_resumes_once(sandbox, dispatcher, target):
    model = ScriptedModel([call("gen_revoke_api_key", {"id": target}, "call_1")], [said("revoked")])
    agent = agent_with(dispatcher, model)
    paused = run(agent, "revoke the CI key")
    [item] = paused.interruptions
    assert item.tool_name == "gen_revoke_api_key" and json.loads(item.arguments) == {"id": target}
    assert f'id {target}: {TARGET_SHOWN}' in review(dispatcher, item)
    assert dispatcher.ran == [] and status(sandbox, target) == "active"

    state = paused.to_state()
    state.approve(item)
    done = run(agent, state)
    assert not done.interruptions and done.final_output == "revoked"
    assert dispatcher.ran == [("revoke_api_key", {"id": target})]
    assert status(sandbox, target) == "revoked"
    outputs = [i.output for i in done.new_items if i.type == "tool_call_output_item"]
    assert [json.loads(o) for o in outputs] == [{"id": target, "revoked": True}]


def test_rejection_runs_nothing(sandbox, dispatcher, target):
    model = ScriptedModel([call("gen_revoke_api_key", {"id": target}, "call_1")], [said("not revoked")])
    agent = agent_with(dispatcher, model)
    paused = run(agent, "revoke the CI key")
    state = paused.to_state()
    state.reject(paused.interruptions[0])
    done = run(agent, state)
    assert done.final_output == "not revoked"
    assert dispatcher.ran == [] and status(sandbox, target) == "active"


def test_read_only_tools_run_without_a_pause(sandbox, dispatcher):
    model = ScriptedModel([call("gen_list_api_keys", {"status": None}, "call_1")], [said("listed")])
    done = run(agent_with(dispatcher, model), "list my keys")
    assert not done.interruptions and done.final_output == "listed"
    assert dispatcher.ran == [("list_api_keys", {})]


def test_an_approved_call_id_sent_again_is_not_approved(sandbox, dispatcher, target):
    """The model repeats the approved call id in a later turn, for another key: that call never runs."""
    from agents.exceptions import ModelBehaviorError

    other = add_key(sandbox, "other")
    model = ScriptedModel([call("gen_revoke_api_key", {"id": target}, "call_1")],
                          [call("gen_revoke_api_key", {"id": other}, "call_1")], [said("done")])
    agent = agent_with(dispatcher, model)
    paused = run(agent, "revoke the CI key")
    state = paused.to_state()
    state.approve(paused.interruptions[0])
    with pytest.raises(ModelBehaviorError, match="reused a completed tool call ID"):
        run(agent, state)
    assert status(sandbox, other) == "active"
    assert dispatcher.ran == [("revoke_api_key", {"id": target})]


def test_a_tool_called_outside_the_sdk_approval_refuses(sandbox, dispatcher, target):
    """Invoked without the SDK's approval (here: straight, as a custom runner might), nothing is sent."""
    from agents.tool_context import ToolContext

    tool = next(t for t in agents_tools(dispatcher) if t.name == "gen_revoke_api_key")
    arguments = json.dumps({"id": target, "confirmed": True})
    context = ToolContext(context=None, tool_name=tool.name, tool_call_id="call_1", tool_arguments=arguments)
    text = asyncio.run(tool.on_invoke_tool(context, json.dumps({"id": target})))
    assert json.loads(text)["error"]["type"] == "confirmation_required"
    assert dispatcher.ran == [] and status(sandbox, target) == "active"


@pytest.mark.parametrize("answer, outcome", [("yes", "revoked"), ("no", "active")])
def test_readme_snippet(gen_env, monkeypatch, capsys, answer, outcome):
    """The README's loop with a scripted model: the person reads key 6's name, and their answer decides."""
    sandbox = gen_env
    seed_six(sandbox)
    monkeypatch.setattr("builtins.input", lambda prompt="": answer)
    model = ScriptedModel([call("gen_revoke_api_key", {"id": 6}, "call_1")], [said("finished")])
    namespace = run_readme_block("OpenAI Agents SDK: approvals", model=model)
    namespace["gen"].close()
    out = capsys.readouterr().out
    assert 'id 6: "old ci" (active)' in out and out.endswith("finished\n")
    assert status(sandbox, 6) == outcome


def test_review_of_an_invalid_call_says_it_will_be_refused(dispatcher):
    from agents import ToolApprovalItem

    raw = call("gen_revoke_api_key", {"id": "six\u202e"}, "call_1")
    text = review(dispatcher, ToolApprovalItem(agent=None, raw_item=raw, tool_name="gen_revoke_api_key"))
    assert text.startswith('"gen_revoke_api_key": this call is invalid and will be refused')
    assert "\u202e" not in text and dispatcher.ran == []
