"""list_api_keys' time filters (expiring_within, unused_for) through the engine, the CLI, chat and
the tool schemas; the other surfaces' tests run them too (MCP, gateway, n8n, Airflow, Temporal)."""

from __future__ import annotations

import json
import subprocess

import pytest

import gen_nodes
from gen_nodes.core.errors import InvalidInput
from gen_nodes.core.registry import default_registry
from gen_nodes.runtime.tools import build_tools
from gen_nodes.state import open_store
from gen_nodes.state.secretbox import SecretBox
from gen_nodes.surfaces.chatops.core import ChatOps
from gen_nodes.surfaces.llm import openai as oa
from cli_support import gen_nodes_cli
from key_age_support import DAY, names, seed_key_ages
from test_tools import chat_tool_violations


@pytest.fixture
def aged(sandbox):
    seed_key_ages(sandbox)
    return sandbox


def _list(sandbox, **arguments) -> list[str]:
    return names(gen_nodes.run("list_api_keys", arguments, api_key=sandbox.api_key, base_url=sandbox.base_url))


@pytest.mark.parametrize("arguments, expected", [
    ({"expiring_within": "7d"}, ["soon"]),
    ({"expiring_within": "12h"}, []),
    ({"expiring_within": "73h"}, ["soon"]),
    ({"expiring_within": 31 * DAY}, ["soon", "later"]),
    ({"unused_for": "30d"}, ["old idle"]),
    ({"unused_for": "41d"}, []),
    ({"unused_for": 3600, "expiring_within": "7d"}, []),
    ({"status": "active", "expiring_within": "31d"}, ["soon", "later"]),
])
def test_the_filters_measure_from_the_sandbox_clock(aged, arguments, expected):
    assert _list(aged, **arguments) == expected


def test_advancing_the_clock_moves_the_filters(aged):
    aged.store.advance(4 * DAY)  # "soon" has expired: no longer expiring within a span from now
    assert _list(aged, expiring_within="7d") == []
    assert _list(aged, expiring_within="31d") == ["later"]
    assert "fresh" not in _list(aged, unused_for="4d")
    aged.store.advance(1 * DAY)
    assert "fresh" in _list(aged, unused_for="4d")


@pytest.mark.parametrize("span", ["7", "7w", "0d", "-1d", "1.5d", 0, -5, True, 1.5, "7 d"])
def test_a_bad_span_is_refused_before_any_request(aged, span):
    before = aged.store.list_keys(aged.user["id"])
    with pytest.raises(InvalidInput) as caught:
        gen_nodes.run("list_api_keys", {"unused_for": span}, api_key="gen_sk_never_sent", base_url=aged.base_url)
    assert "$.unused_for" in str(caught.value)
    assert caught.value.hint
    assert aged.store.list_keys(aged.user["id"]) == before  # the bootstrap key was not even used


def test_the_cli_runs_the_filters(aged):
    env = {"GEN_API_KEY": aged.api_key, "GEN_BASE_URL": aged.base_url, "PATH": "/usr/bin:/bin"}
    done = gen_nodes_cli("run", "list_api_keys", "--input", '{"expiring_within":"7d"}', env=env)
    assert done.returncode == 0, done.stderr
    assert names(json.loads(done.stdout)) == ["soon"]
    bad = gen_nodes_cli("run", "list_api_keys", "--input", '{"expiring_within":"7w"}', env=env)
    assert bad.returncode != 0 and "$.expiring_within" in bad.stderr


@pytest.mark.parametrize("text, arguments", [
    ("keys list expiring=7d", {"expiring_within": "7d"}),
    ("keys list active unused=30d", {"status": "active", "unused_for": "30d"}),
    ("keys list expiring_within=86400", {"expiring_within": 86400}),
])
def test_chat_takes_the_short_options_from_the_spec(text, arguments):
    chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("filters-test-secret"))
    command = chat.parse(text)
    assert (command.kind, command.spec.id, dict(command.arguments)) == ("action", "list_api_keys", arguments)
    refused = chat.parse("keys list expiring=soon")
    assert refused.kind == "answer" and "$.expiring_within" in refused.reply.text


def test_the_openai_strict_tool_offers_both_filters_and_accepts_nulls():
    (exported,) = [t for t in oa.chat_completions_tools(build_tools(default_registry()))
                   if t["function"]["name"] == "gen_list_api_keys"]
    assert chat_tool_violations(exported) == []
    parameters = exported["function"]["parameters"]
    assert {"expiring_within", "unused_for"} <= set(parameters["required"])
    assert "7d" in json.dumps(parameters["properties"]["expiring_within"])


def _n8n_list_step(parameters: dict, response: dict) -> dict:
    """Run the n8n node's list_api_keys `set` step (the expression n8n evaluates) in Node.js."""
    from gen_nodes.surfaces.n8n.node import node_description

    operation = node_description(default_registry())["properties"][0]
    (option,) = [o for o in operation["options"] if o["value"] == "list_api_keys"]
    step = next(s for s in option["routing"]["output"]["postReceive"] if isinstance(s, dict) and s.get("type") == "set")
    expression = step["properties"]["value"].removeprefix("={{").removesuffix("}}")
    script = ("const [p, r] = JSON.parse(process.argv[1]);"
              f"process.stdout.write(JSON.stringify((($parameter, $response) => ({expression}))(p, r)));")
    done = subprocess.run(["node", "-e", script, json.dumps([parameters, response])],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("parameters, expected", [
    ({"status": "", "expiring_within": "7d", "unused_for": ""}, ["soon"]),
    ({"status": "", "expiring_within": "", "unused_for": "30d"}, ["old idle"]),
    ({"status": "active", "expiring_within": "2592060", "unused_for": ""}, ["soon", "later"]),
    ({"status": "", "expiring_within": "12h", "unused_for": ""}, []),
])
def test_the_n8n_node_filters_as_the_engine_does(aged, parameters, expected):
    import requests

    answer = requests.get(aged.base_url + "/persisted_tokens", headers={"X-API-Key": aged.api_key}, timeout=5)
    response = {"body": answer.json(), "headers": {k.lower(): v for k, v in answer.headers.items()}, "statusCode": 200}
    assert names(_n8n_list_step(parameters, response)) == expected
    engine_arguments = {k: (int(v) if v.isdigit() else v) for k, v in parameters.items() if v}
    assert _list(aged, **engine_arguments) == expected


@pytest.mark.parametrize("typed, refused", [("86400", False), ("7d", False), ("12h", False), ("7w", True),
                                            ("0", True), ("1.5", True)])
def test_the_n8n_node_checks_a_typed_span_before_sending(tmp_path, typed, refused):
    """n8n's text field gives "86400" as text: the node's check takes it as seconds, as the engine does."""
    from gen_nodes.surfaces.n8n.node import write_package

    package = write_package(default_registry(), tmp_path / "package")
    stub = tmp_path / "node_modules" / "n8n-workflow"
    stub.mkdir(parents=True)
    (stub / "index.js").write_text("class E extends Error { constructor(node, message) { super(message); } }\n"
                                   "module.exports = { NodeApiError: E, NodeOperationError: E };\n")
    script = (
        "const { genValidate } = require(process.argv[1]);"
        "const params = { operation: 'list_api_keys', status: '', expiring_within: '', unused_for: process.argv[2] };"
        "const context = { getNodeParameter: (n, d) => (n in params ? params[n] : d), getNode: () => ({}) };"
        "genValidate.call(context, {}).then(() => console.log('sent'), (e) => console.log('refused: ' + e.message));"
    )
    done = subprocess.run(["node", "-e", script, str(package / "nodes/Gen/GenericFunctions.js"), typed],
                          capture_output=True, text=True, timeout=30, check=True,
                          env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(tmp_path / "node_modules")})
    assert done.stdout.startswith("refused: " if refused else "sent"), done.stdout + done.stderr
    if refused:
        assert "$.unused_for" in done.stdout


def test_without_a_date_header_the_filters_measure_from_the_local_clock():
    """A proxy may drop GEN's Date header: "now" is then this machine's clock."""
    import threading
    from datetime import datetime, timedelta, timezone
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def stamp(days: float) -> str:
        return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    keys = [{"id": n, "name": name, "status": "active", "created_at": stamp(-1), "expires_at": expires,
             "last_used_at": None, "revoked_at": None}
            for n, (name, expires) in enumerate([("soon", stamp(2)), ("later", stamp(20)), ("never", None)], 1)]
    body = json.dumps(keys).encode()

    class NoDate(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response_only(200)  # no Date header
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NoDate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        listed = gen_nodes.run("list_api_keys", {"expiring_within": "7d"}, api_key="gen_pat_" + "x" * 32,
                               base_url=f"http://127.0.0.1:{server.server_port}/v1")
    finally:
        server.shutdown()
        server.server_close()
    assert names(listed) == ["soon"]


@pytest.mark.parametrize("span", [288230376151711744, "99999999999999d", "99999999999999999h"])
def test_a_huge_span_selects_like_a_century_instead_of_overflowing(client, span):
    """schemathesis found ``{"unused_for": 288230376151711744}`` made a 500: the date arithmetic overflowed."""
    from gen_nodes.core.registry import default_registry

    registry = default_registry()
    for name in ("unused_for", "expiring_within"):
        out = registry.run("list_api_keys", {name: span}, client=client)
        assert isinstance(out["api_keys"] if isinstance(out, dict) else out, list)
