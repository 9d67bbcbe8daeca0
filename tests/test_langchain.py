"""LangChain tools against the sandbox: results, errors as tool output, confirmation, odd field names."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import ToolMessage  # noqa: E402
from langchain_core.tools import BaseTool  # noqa: E402
from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402

from client_support import FAST_RETRY  # noqa: E402
from gen_nodes.surfaces.llm.langchain import GenTool, langchain_tools  # noqa: E402
from gen_nodes.surfaces.llm.openai import strict_schema  # noqa: E402
from gen_nodes.client.http import GenClient  # noqa: E402
from gen_nodes.runtime.dispatch import Dispatcher  # noqa: E402
from gen_nodes.core.registry import Registry  # noqa: E402
from gen_nodes.core.validation import load_schema  # noqa: E402
from gen_nodes.core.spec import ActionSpec, Hints  # noqa: E402


@pytest.fixture
def dispatcher(client, tmp_path):
    return Dispatcher(client=client, secrets_folder=tmp_path / "secrets")


@pytest.fixture
def tools(dispatcher):
    return {tool.name: tool for tool in langchain_tools(dispatcher)}


def _call(tool: BaseTool, args: dict, call_id: str = "c1") -> ToolMessage:
    message = tool.invoke({"type": "tool_call", "id": call_id, "name": tool.name, "args": args})
    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == call_id and message.name == tool.name
    return message


def test_one_tool_per_dispatcher_tool(dispatcher, tools):
    assert list(tools) == [t.name for t in dispatcher.tools]
    for tool in dispatcher.tools:
        lc = tools[tool.name]
        assert isinstance(lc, BaseTool)
        assert lc.description == tool.description
        assert list(lc.args) == list(tool.input_schema["properties"])
        for field, sub in lc.args.items():
            assert sub.get("description") == tool.input_schema["properties"][field].get("description")
        assert lc.dispatcher is dispatcher


def test_list_returns_json_text(tools, sandbox):
    text = tools["gen_list_api_keys"].invoke({})
    assert isinstance(text, str)
    data = json.loads(text)
    assert [(k["id"], k["name"], k["status"]) for k in data["api_keys"]] == [(1, "sandbox bootstrap", "active")]
    assert sandbox.api_key not in text


def test_tool_call_returns_a_tool_message_with_the_artifact(tools, sandbox):
    sandbox.store.create_key(sandbox.user["id"], "second")
    message = _call(tools["gen_list_api_keys"], {"status": "active"})
    assert message.status == "success"
    assert isinstance(message.artifact, dict)
    assert json.loads(message.content) == message.artifact
    assert [k["name"] for k in message.artifact["api_keys"]] == ["sandbox bootstrap", "second"]


def test_create_through_langchain_follows_the_secret_policy(tools, tmp_path):
    message = _call(tools["gen_create_api_key"], {"name": "from langchain", "expires_in": None})
    assert message.status == "success"
    created = message.artifact
    assert created["name"] == "from langchain" and created["expires_at"] is None
    secret = open(created["token_file"]).read().strip()
    assert secret not in message.content and secret not in json.dumps(created)
    assert created["token"].endswith(secret[-4:])


def test_bad_input_comes_back_as_an_error_tool_message(tools):
    message = _call(tools["gen_create_api_key"], {"expires_in": "abc"})
    assert message.status == "error"
    error = json.loads(message.content)["error"]
    assert error["type"] == "invalid_input"
    assert [e["path"] for e in error["errors"]] == ["$.expires_in"]
    assert "30d" in error["errors"][0]["message"]
    assert error["hint"]


def test_bad_input_without_a_tool_call_returns_the_error_text(tools):
    text = tools["gen_update_api_key"].invoke({"id": "not-a-number", "name": ""})
    error = json.loads(text)["error"]
    assert error["type"] == "invalid_input"
    assert sorted(e["path"] for e in error["errors"]) == ["$.id", "$.name"]


def test_gen_errors_come_back_as_tool_output(sandbox, tmp_path):
    with GenClient(api_key="gen_pat_wrong", base_url=sandbox.base_url, retry=FAST_RETRY, timeout=(2.0, 5.0)) as bad:
        tools = {t.name: t for t in langchain_tools(Dispatcher(client=bad, secrets_folder=tmp_path))}
        message = _call(tools["gen_get_me"], {})
    assert message.status == "error"
    error = json.loads(message.content)["error"]
    assert error["type"] == "authentication" and error["status"] == 401 and error["hint"]


def test_revoke_is_refused_when_no_one_can_be_asked(tools, sandbox):
    key, _ = sandbox.store.create_key(sandbox.user["id"], "victim")
    message = _call(tools["gen_revoke_api_key"], {"id": key["id"]})
    assert message.status == "error"
    error = json.loads(message.content)["error"]
    assert error["type"] == "confirmation_required" and "nothing was sent" in error["message"]
    assert sandbox.store.get_key(sandbox.user["id"], key["id"])["status"] == "active"


def test_revoke_waits_for_the_host_and_the_handle_is_only_in_the_artifact(client, sandbox, tmp_path):
    dispatcher = Dispatcher(client=client, secrets_folder=tmp_path, confirmation="approval")
    tools = {tool.name: tool for tool in langchain_tools(dispatcher)}
    key, _ = sandbox.store.create_key(sandbox.user["id"], "victim")
    message = _call(tools["gen_revoke_api_key"], {"id": key["id"]})
    error = json.loads(message.content)["error"]
    assert error["awaiting_approval"] is True and [k["id"] for k in error["preview"]] == [key["id"]]
    approval = message.artifact  # the host's part: LangChain never sends the artifact to the model
    assert approval.id not in message.content
    assert sandbox.store.get_key(sandbox.user["id"], key["id"])["status"] == "active"
    done = dispatcher.approve(approval.id, by="the user")
    assert done.content == {"id": key["id"], "revoked": True}
    assert sandbox.store.get_key(sandbox.user["id"], key["id"])["status"] == "revoked"


def test_a_rotation_waits_for_the_host_and_its_secret_goes_to_a_file(client, sandbox, tmp_path):
    """rotate_api_key through LangChain: held like a revoke (the preview names both keys), then run once;
    the new secret goes to a file, never into the message the model reads."""
    dispatcher = Dispatcher(client=client, secrets_folder=tmp_path, confirmation="approval")
    tools = {tool.name: tool for tool in langchain_tools(dispatcher)}
    key, _ = sandbox.store.create_key(sandbox.user["id"], "ci", "30d")
    message = _call(tools["gen_rotate_api_key"], {"id": key["id"]})
    error = json.loads(message.content)["error"]
    assert error["awaiting_approval"] is True
    assert [item["change"] for item in error["preview"]] == ["Create API key", "Revoke API key"]
    done = dispatcher.approve(message.artifact.id, by="the user")
    assert done.content["status"] == "succeeded" and done.content["old_key"]["id"] == key["id"]
    secret = open(done.content["new_key"]["token_file"]).read()
    assert secret not in done.text and secret not in message.content
    assert sandbox.store.get_key(sandbox.user["id"], key["id"])["status"] == "revoked"


def test_ainvoke(tools, sandbox):
    async def both():
        text = await tools["gen_get_me"].ainvoke({})
        message = await tools["gen_list_api_keys"].ainvoke(
            {"type": "tool_call", "id": "a1", "name": "gen_list_api_keys", "args": {"status": "gone"}})
        return text, message

    text, message = asyncio.run(both())
    assert json.loads(text)["id"] == sandbox.user["id"]
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert json.loads(message.content)["error"]["errors"][0]["path"] == "$.status"


def test_unexpected_failure_does_not_escape(client, tmp_path):
    from gen_nodes.core.registry import Registry, default_registry

    class Exploding(Registry):
        def run(self, *args, **kwargs):
            raise KeyError("boom")

    dispatcher = Dispatcher(Exploding(default_registry()), client=client, secrets_folder=tmp_path)
    tools = {t.name: t for t in langchain_tools(dispatcher)}
    message = _call(tools["gen_get_me"], {})
    assert message.status == "error"
    assert json.loads(message.content)["error"]["type"] == "api_error"
    assert "boom" not in message.content


RESERVED = ("config", "run_manager", "callbacks", "self")


@pytest.fixture
def reserved_names_tool(sandbox):
    """A plugin action whose input fields carry names LangChain itself uses."""
    spec = ActionSpec(
        id="whoami_with_config",
        title="Who am I",
        description="GET /me with a few query fields.",
        method="GET",
        path="/me",
        input_schema={"type": "object", "properties": {n: {"type": "string"} for n in RESERVED},
                      "required": list(RESERVED), "additionalProperties": False},
        output_schema=load_schema("get_me.output"),
        hints=Hints(read_only=True, idempotent=True),
        inputs={n: "query" for n in RESERVED},
    )
    sent = []

    class Recording(GenClient):
        def request(self, method, path, **kwargs):
            sent.append((method, path, kwargs.get("params")))
            return super().request(method, path, **kwargs)

    with Recording(api_key=sandbox.api_key, base_url=sandbox.base_url, retry=FAST_RETRY, timeout=(2.0, 5.0)) as c:
        (tool,) = langchain_tools(Dispatcher(Registry([spec]), client=c))
        yield tool, sent


def test_input_field_named_config_reaches_the_action(reserved_names_tool, sandbox):
    tool, sent = reserved_names_tool
    assert tool.name == "gen_whoami_with_config"
    assert set(tool.args) == set(RESERVED)
    args = {"config": "c-value", "run_manager": "r-value", "callbacks": "cb-value", "self": "s-value"}
    message = _call(tool, args)
    assert message.status == "success", message.content
    assert message.artifact["id"] == sandbox.user["id"]
    assert sent == [("GET", "/me", args)]
    # Plain invoke too; a missing `config` is reported, not silently filled in.
    assert json.loads(tool.invoke(args))["id"] == sandbox.user["id"]
    error = json.loads(tool.invoke({k: v for k, v in args.items() if k != "config"}))["error"]
    assert error["type"] == "invalid_input" and 'missing required field "config"' in error["message"]


def test_convert_to_openai_tool_strict_works_on_our_tools(tools):
    for name, tool in tools.items():
        converted = convert_to_openai_tool(tool, strict=True)
        fn = converted["function"]
        assert converted["type"] == "function"
        assert fn["name"] == name and fn["strict"] is True
        assert fn["description"] == tool.description
        params = fn["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert sorted(params.get("required", [])) == sorted(params["properties"]) == sorted(tool.args)
        assert "confirm" not in json.dumps(params)


def test_langchain_strict_export_keeps_optional_fields_optional(tools):
    from test_tools import accepts_null, schema_violations

    params = convert_to_openai_tool(tools["gen_create_api_key"], strict=True)["function"]["parameters"]
    assert accepts_null(params["properties"]["name"]) and accepts_null(params["properties"]["expires_in"])
    assert schema_violations(params) == []


def test_a_tool_over_the_strict_schema_would_round_trip(dispatcher):
    """The suggested fix: LangChain's strict rewrite leaves our strict schema as it is."""
    for tool in dispatcher.tools:
        ours = strict_schema(tool.input_schema)
        lc = GenTool(name=tool.name, description=tool.description, args_schema=ours, dispatcher=dispatcher)
        params = convert_to_openai_tool(lc, strict=True)["function"]["parameters"]
        ours_without_doc = {k: v for k, v in ours.items() if k != "description"}
        assert params == ours_without_doc, tool.name
