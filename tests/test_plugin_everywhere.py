"""An out-of-tree plugin appears on every surface, with no change to gen-nodes (issue 16 §2).

``tests/plugin_example`` (the ``gen-nodes-plugin-example`` distribution, which adds
``get_me_again``: GET /me) is built by pip with its own build backend (hatchling, in pip's
isolated build environment) and installed with ``pip install --target`` into a temporary
folder. Every check below runs in a fresh subprocess of this interpreter (gen-nodes installed
from this checkout) whose ``PYTHONPATH`` holds that folder, against one loopback sandbox:

- the CLI: ``gen-nodes actions`` and ``gen-nodes --sandbox run get_me_again``;
- the tool exports and MCP: ``gen-nodes tools --format openai`` and an MCP ``tools/list`` +
  ``tools/call`` by the official SDK's client over stdio;
- the gateway: ``gen-nodes serve``'s ``/openapi.json`` and a POST to ``/actions/get_me_again``;
- the n8n export: ``gen-nodes export n8n``;
- chat-ops: ``/gen help`` and ``/gen get-me-again`` through the ChatOps core;
- Airflow: the generated ``GenGetMeAgainOperator`` from ``gen_nodes.airflow``;
- Temporal: the ``gen.get_me_again`` activity from ``gen_nodes.temporal``, run by temporalio's
  ``ActivityEnvironment``.

Marked ``deployment``; ``.ci/run`` runs it with the rest of ``pytest -q``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from mcp import ClientSession, StdioServerParameters, stdio_client

from gateway_support import GatewayProcess

pytestmark = pytest.mark.deployment

PLUGIN_SRC = Path(__file__).resolve().parent / "plugin_example"
CLI = [sys.executable, "-m", "gen_nodes.surfaces.cli"]  # the real `gen-nodes` command


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory, sb) -> dict[str, str]:
    """Environment of a process that has the plugin pip-installed, pointed at the module's sandbox."""
    site = tmp_path_factory.mktemp("plugin-site")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--disable-pip-version-check", "--target", str(site), str(PLUGIN_SRC)],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    record = next(site.glob("gen_nodes_plugin_example-*.dist-info")) / "RECORD"
    assert "gen_nodes_plugin_example/__init__.py" in record.read_text()  # a wheel install, not a copy
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEN_", "AIRFLOW"))}
    state = tmp_path_factory.mktemp("state")
    env.update(PYTHONPATH=str(site), GEN_API_KEY=sb.api_key, GEN_BASE_URL=sb.base_url,
               GEN_NODES_SANDBOX_DIR=str(state), GEN_NODES_STATE_DIR=str(state),
               AIRFLOW_HOME=str(tmp_path_factory.mktemp("airflow")), PYTHONWARNINGS="ignore")
    return env


def run(env: dict[str, str], *args: str, timeout: float = 90) -> str:
    done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["GEN_NODES_SANDBOX_DIR"])
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def python(env: dict[str, str], code: str) -> dict:
    return json.loads(run(env, sys.executable, "-c", code).strip().splitlines()[-1])


def test_cli_lists_the_plugin_action_and_runs_it_against_the_sandbox(plugin_env, sb):
    rows = {row["id"]: row for row in json.loads(run(plugin_env, *CLI, "actions", "--json"))}
    assert rows["get_me_again"]["title"] == "Get current user (plugin)"
    # --sandbox: the CLI's own file-backed sandbox, so this is the whole `gen-nodes` path, key included
    out = json.loads(run(plugin_env, *CLI, "--sandbox", "run", "get_me_again"))
    assert out["id"] and "email" in out
    assert json.loads(run(plugin_env, *CLI, "run", "get_me_again")) == sb.user


def test_tool_export_holds_the_plugin_action(plugin_env):
    tools = {tool["function"]["name"]: tool["function"]
             for tool in json.loads(run(plugin_env, *CLI, "tools", "--format", "openai"))}
    assert tools["gen_get_me_again"]["description"].startswith("Return the GEN user the API key belongs to")
    assert tools["gen_get_me_again"]["parameters"]["additionalProperties"] is False


@pytest.mark.anyio
async def test_mcp_lists_and_calls_the_plugin_tool_over_stdio(plugin_env, sb):
    params = StdioServerParameters(command=sys.executable, args=[*CLI[1:], "mcp"], env=plugin_env,
                                   cwd=plugin_env["GEN_NODES_SANDBOX_DIR"])
    with open(Path(plugin_env["GEN_NODES_STATE_DIR"]) / "mcp.log", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                assert tools["gen_get_me_again"].annotations.read_only_hint is True
                result = await session.call_tool("gen_get_me_again", {})
    assert not result.is_error and result.structured_content == sb.user


def test_gateway_documents_and_serves_the_plugin_route(plugin_env, sb, tmp_path):
    gateway = GatewayProcess("--base-url", sb.base_url, "--store", "memory://", log=tmp_path / "gateway.log",
                             env=plugin_env, command=[*CLI, "serve"])
    try:
        document = requests.get(gateway.url + "/openapi.json", timeout=30).json()
        operation = document["paths"]["/actions/get_me_again"]["post"]
        assert operation["operationId"] == "get_me_again"
        answer = requests.post(gateway.url + "/actions/get_me_again", json={}, timeout=30,
                            headers={"Authorization": f"Bearer {sb.api_key}"})
    finally:
        gateway.stop()
    assert answer.status_code == 200, answer.text
    assert answer.json() == sb.user


def test_n8n_export_holds_the_plugin_operation(plugin_env, tmp_path):
    run(plugin_env, *CLI, "export", "n8n", "--out", str(tmp_path / "n8n"))
    node = (tmp_path / "n8n" / "nodes" / "Gen" / "Gen.node.js").read_text()
    functions = (tmp_path / "n8n" / "nodes" / "Gen" / "GenericFunctions.js").read_text()
    assert '"get_me_again"' in node and "Get current user (plugin)" in node
    assert '"get_me_again": {' in functions and '"/me"' in functions


CHATOPS = """
import json, os
from gen_nodes import default_registry
from gen_nodes.state import open_store
from gen_nodes.state.secretbox import SecretBox
from gen_nodes.surfaces.chatops.core import ChatOps
from gen_nodes.surfaces.chatops.messages import ChatUser
chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("plugin-test-secret"),
               base_url=os.environ["GEN_BASE_URL"])
who = ChatUser("slack", "T1", "U1", "C1")
chat.bind("slack", "U1", os.environ["GEN_API_KEY"])
command = chat.parse("get-me-again")
reply = chat.run(who, command)
print(json.dumps({"help": chat.parse("help").reply.text, "action": command.spec.id, "reply": reply.text}))
"""


def test_chatops_grammar_offers_and_runs_the_plugin_command(plugin_env, sb):
    out = python(plugin_env, CHATOPS)
    assert "/gen get-me-again" in out["help"] and out["action"] == "get_me_again"
    assert sb.user["email"] in out["reply"]


AIRFLOW = """
import json
from gen_nodes.airflow import GenActionOperator, GenGetMeAgainOperator
task = GenGetMeAgainOperator(task_id="who")
print(json.dumps({"base": issubclass(GenGetMeAgainOperator, GenActionOperator), "action": task.action,
                  "arguments": task.arguments()}))
"""


def test_airflow_has_an_operator_class_for_the_plugin_action(plugin_env):
    assert python(plugin_env, AIRFLOW) == {"base": True, "action": "get_me_again", "arguments": {}}


TEMPORAL = """
import asyncio, json, os
from temporalio import activity
from temporalio.testing import ActivityEnvironment
from gen_nodes.temporal import activities
found = {activity._Definition.from_callable(fn).name: fn for fn in activities()}
out = asyncio.run(ActivityEnvironment().run(found["gen.get_me_again"], {}))
print(json.dumps({"names": sorted(found), "out": out}))
"""


def test_temporal_has_an_activity_for_the_plugin_action(plugin_env, sb):
    out = python(plugin_env, TEMPORAL)
    assert "gen.get_me_again" in out["names"] and "gen.get_me" in out["names"]
    assert out["out"] == sb.user
