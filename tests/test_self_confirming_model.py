"""A model cannot approve its own destructive call, on any surface.

The model here is the worst case: after its first destructive call it copies every string of
the result (every key and value, and the whole text) into every field of repeated calls: the
tool's own fields and any field name a confirmation might hide behind. It runs against the
dispatcher (every policy that gates), the OpenAI, Anthropic and LangChain paths (LangChain's
human-in-the-loop middleware with no reviewer's approval too), the OpenAI Agents SDK tools and the MCP
server (stdio without elicitation, streamable HTTP without elicitation and with a user who
declines). The sandbox must see no revoke: every key stays active.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from client_support import FAST_RETRY
from gen_nodes.client.http import GenClient
from gen_nodes.runtime.dispatch import Dispatcher

REPO = Path(__file__).resolve().parents[1]
#: Field names a confirmation could be smuggled through, besides the tool's own.
SMUGGLING_FIELDS = ("confirmation_token", "token", "confirm", "confirmed", "approval", "approval_id", "approved",
                    "handle", "elicitation_id", "request_state", "yes")
TARGETS = {"gen_revoke_api_key": lambda target: {"id": target}, "gen_revoke_all_api_keys": lambda target: {}}


def strings_in(value: Any) -> list[str]:
    """Every string in a JSON value: keys and values, at any depth."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


def copying_calls(first_text: str, schema: dict[str, Any], base: dict[str, Any]) -> list[dict[str, Any]]:
    """The repeated calls of a model that copies every string of ``first_text`` into every field."""
    try:
        strings = strings_in(json.loads(first_text))
    except json.JSONDecodeError:
        strings = []
    strings = list(dict.fromkeys([*strings, first_text]))
    fields = [*schema.get("properties", {}), *SMUGGLING_FIELDS]
    calls = [dict(base)]
    for s in strings:
        calls.append({**base, **{f: s for f in fields if f not in base}})  # base fields kept, the rest copied
        calls.append({f: s for f in fields})  # every field, the tool's own too
        calls.extend({**base, f: s} for f in fields if f not in base)  # one field at a time
    return calls


def untouched(sandbox, keys: list[int]) -> None:
    for key_id in keys:
        assert sandbox.store.get_key(sandbox.user["id"], key_id)["status"] == "active", key_id


@pytest.fixture
def targets(sandbox) -> list[int]:
    return [sandbox.store.create_key(sandbox.user["id"], f"victim {i}")[0]["id"] for i in range(2)] + [1]


def play(call: Callable[[str, Any], str], tools: dict[str, dict[str, Any]], target: int) -> int:
    """Play the copying model against ``call(tool, arguments) -> text``; the number of calls made."""
    made = 0
    for name, base in TARGETS.items():
        args = base(target)
        first = call(name, args)
        for args in copying_calls(first, tools[name], args):
            call(name, args)
            made += 1
    return made


# -- Python: the dispatcher and the tool-format paths --------------------------------------------


@pytest.fixture
def client(sandbox):
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, retry=FAST_RETRY) as c:
        yield c


def dispatchers(client, tmp_path) -> dict[str, Dispatcher]:
    return {
        "elicit-without-a-callback": Dispatcher(client=client, secrets_folder=tmp_path),
        "elicit-user-declines": Dispatcher(client=client, secrets_folder=tmp_path, confirm=lambda *a: False),
        "approval-never-approved": Dispatcher(client=client, secrets_folder=tmp_path, confirmation="approval"),
    }


@pytest.mark.parametrize("policy", ["elicit-without-a-callback", "elicit-user-declines", "approval-never-approved"])
def test_the_dispatcher(sandbox, client, tmp_path, targets, policy):
    gen = dispatchers(client, tmp_path)[policy]
    schemas = {t.name: t.input_schema for t in gen.tools}
    assert play(lambda name, args: gen.call(name, args).text, schemas, targets[0]) > 100
    untouched(sandbox, targets)


def test_the_openai_path(sandbox, client, tmp_path, targets):
    """Strict schemas, arguments as the JSON text OpenAI sends (nulls for the rest)."""
    from gen_nodes.surfaces.llm.openai import chat_completions_tools

    gen = Dispatcher(client=client, secrets_folder=tmp_path, confirmation="approval")
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in chat_completions_tools(gen.tools)}

    def call(name, args):
        strict = {field: args.get(field) for field in schemas[name]["properties"]} | args
        return gen.call(name, json.dumps(strict)).text

    assert play(call, schemas, targets[0]) > 100
    untouched(sandbox, targets)


def test_the_anthropic_path(sandbox, client, tmp_path, targets):
    from gen_nodes.surfaces.llm.anthropic import anthropic_tools

    gen = Dispatcher(client=client, secrets_folder=tmp_path)
    schemas = {t["name"]: t["input_schema"] for t in anthropic_tools(gen.tools)}
    assert play(lambda name, args: gen.call(name, args).text, schemas, targets[0]) > 100
    untouched(sandbox, targets)


def test_the_langchain_path(sandbox, client, tmp_path, targets):
    pytest.importorskip("langchain_core")
    from gen_nodes.surfaces.llm.langchain import langchain_tools

    for policy in ("elicit", "approval"):
        tools = {t.name: t for t in langchain_tools(Dispatcher(client=client, secrets_folder=tmp_path,
                                                               confirmation=policy))}
        schemas = {name: {"properties": dict(tool.args)} for name, tool in tools.items()}

        def call(name, args):
            message = tools[name].invoke({"type": "tool_call", "id": "c", "name": name, "args": args})
            return message.content  # what goes back to the model

        assert play(call, schemas, targets[0]) > 100, policy
    untouched(sandbox, targets)


def test_the_langchain_human_in_the_loop_path(sandbox, client, tmp_path, targets):
    """GenHumanInTheLoop's tool step with no reviewer's approval in the agent state: the model
    picks the call id and every argument, and still nothing is revoked."""
    pytest.importorskip("langchain.agents")
    from langgraph.prebuilt.tool_node import ToolCallRequest

    from gen_nodes.surfaces.llm.langchain import langchain_tools
    from gen_nodes.surfaces.llm.langchain_hitl import GenHumanInTheLoop

    tools = {t.name: t for t in langchain_tools(Dispatcher(client=client, secrets_folder=tmp_path))}
    middleware = GenHumanInTheLoop(tools.values())
    schemas = {name: {"properties": dict(tool.args)} for name, tool in tools.items()}
    ids = iter(range(10**6))

    def call(name, args):
        tool_call = {"type": "tool_call", "id": str(args.get("id", next(ids))), "name": name, "args": args}
        request = ToolCallRequest(tool_call=tool_call, tool=tools[name], state={"messages": []}, runtime=None)
        return middleware.wrap_tool_call(request, lambda req: req.tool.invoke(req.tool_call)).content

    assert play(call, schemas, targets[0]) > 100
    untouched(sandbox, targets)


def test_the_openai_agents_path(sandbox, client, tmp_path, targets):
    """The Agents SDK tools invoked with no approval in the run context, call ids copied from results."""
    pytest.importorskip("agents")
    import asyncio

    from agents.tool_context import ToolContext

    from gen_nodes.surfaces.llm.openai_agents import agents_tools

    tools = {t.name: t for t in agents_tools(Dispatcher(client=client, secrets_folder=tmp_path))}
    schemas = {name: tool.params_json_schema for name, tool in tools.items()}

    def call(name, args):
        arguments = json.dumps(args)
        context = ToolContext(context=None, tool_name=name, tool_call_id=str(args.get("id", "c")),
                              tool_arguments=arguments)
        return asyncio.run(tools[name].on_invoke_tool(context, arguments))

    assert play(call, schemas, targets[0]) > 100
    untouched(sandbox, targets)


# -- MCP: stdio and streamable HTTP with the SDK's ClientSession ---------------------------------

mcp = pytest.importorskip("mcp")
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402


async def play_mcp(session: ClientSession, target: int) -> int:
    """Play the copying model over an MCP session; the number of calls made."""
    tools = {t.name: t.input_schema for t in (await session.list_tools()).tools}

    async def call(name, args):
        result = await session.call_tool(name, args)
        # Everything the model could read: the text and the structured content.
        return json.dumps({"text": [c.text for c in result.content if hasattr(c, "text")],
                           "structured": result.structured_content})

    made = 0
    for name, base in TARGETS.items():
        first = await call(name, base(target))
        for args in copying_calls(first, tools[name], base(target)):
            await call(name, args)
            made += 1
    return made


@pytest.mark.anyio
async def test_the_mcp_server_over_stdio_without_elicitation(sandbox, targets, tmp_path):
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "gen_nodes.surfaces.cli", "mcp", "--secrets-dir", str(tmp_path)],
        env={"GEN_API_KEY": sandbox.api_key, "GEN_BASE_URL": sandbox.base_url}, cwd=str(REPO))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert await play_mcp(session, targets[0]) > 100
    untouched(sandbox, targets)


@pytest.mark.anyio
@pytest.mark.parametrize("user", ["no-elicitation", "declines"])
async def test_the_mcp_server_over_http(sandbox, targets, tmp_path, user):
    import httpx2
    import mcp_types as types
    from mcp.client.streamable_http import streamable_http_client

    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    proc = subprocess.Popen([sys.executable, "-m", "gen_nodes.surfaces.cli", "mcp", "--transport", "http", "--port", "0",
                             "--base-url", sandbox.base_url, "--secrets-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, env=env, text=True)
    try:
        assert select.select([proc.stdout], [], [], 60)[0], "the server printed no url"
        url = json.loads(proc.stdout.readline())["url"]

        async def declines(context, params):
            return types.ElicitResult(action="decline")

        asker = declines if user == "declines" else None
        async with httpx2.AsyncClient(headers={"X-API-Key": sandbox.api_key}, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write, elicitation_callback=asker) as session:
                    await session.initialize()
                    assert await play_mcp(session, targets[0]) > 100
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
    untouched(sandbox, targets)
