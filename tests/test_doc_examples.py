"""The code blocks of README.md and docs/*.md: every one checked, the examples run as written.

Every fenced block of every page is checked by its language: Python compiles, JSON and TOML
parse, shell passes ``bash -n`` and each ``gen-nodes`` command it shows names a real
subcommand. The examples are then run unchanged, found by the heading they sit under (so a
change to a page's shape fails here), against a real sandbox. The OpenAI and Anthropic loops
use the real SDKs, pointed by their usual environment variables at a scripted fake model
server on 127.0.0.1 that checks every request it gets (the exported tools, the tool results
holding the sandbox's real data) and answers in the API's documented JSON shape.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import tomllib
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from doc_support import all_blocks, gen_env, module, public, run_snippet, section, snippet  # noqa: F401 (gen_env: fixture)

LLM = "gen_nodes.surfaces.llm"
TOOL_NAMES = {"gen_get_me", "gen_list_api_keys", "gen_create_api_key", "gen_update_api_key",
              "gen_revoke_api_key", "gen_revoke_all_api_keys", "gen_rotate_api_key"}
MODEL_KEY = "test-model-key"


def Dispatcher(**options):  # noqa: N802 - stands for the class the docs import
    return public("Dispatcher")(**options)


def chat_completions_tools(tools):
    return module(f"{LLM}.openai").chat_completions_tools(tools)


def responses_tools(tools):
    return module(f"{LLM}.openai").responses_tools(tools)


def anthropic_tools(tools, **options):
    return module(f"{LLM}.anthropic").anthropic_tools(tools, **options)


# -- sandbox state ---------------------------------------------------------------------


def keys(sandbox, status: str | None = None) -> list[dict]:
    """The first user's keys, straight from the sandbox's store."""
    return [k for k in sandbox.store.list_keys(sandbox.user["id"]) if status in (None, k["status"])]


def seed(sandbox, *names: str, revoked: tuple[str, ...] = ()) -> None:
    """Add keys after the bootstrap key (id 1), ids 2, 3, ... in order; revoke those named in ``revoked``."""
    for name in names:
        key, _ = sandbox.store.create_key(sandbox.user["id"], name)
        if name in revoked:
            sandbox.store.revoke_key(sandbox.user["id"], key["id"])


def close_clients(namespace: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in namespace:
            namespace[name].close()


# -- a scripted model server -----------------------------------------------------------


class FakeModel:
    """A model API on 127.0.0.1 answering POST ``path`` with ``turns`` in order.

    Each turn gets the request (headers with lower-case names, JSON body), asserts what it
    must hold, and returns the JSON answer. A failed assertion is kept (and answered with a
    400, which the SDKs do not retry) so the test can raise it: ``check()``.
    """

    def __init__(self, path: str, turns: list[Callable[[dict, dict], dict]]):
        self.path, self.turns, self.failures = path, list(turns), []
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            timeout = 5

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    assert self.path == model.path, f"unexpected request POST {self.path}"
                    assert model.turns, "more requests than the script has answers"
                    status, answer = 200, model.turns.pop(0)(headers, body)
                except Exception as exc:  # noqa: BLE001 - reported by check()
                    model.failures.append(exc)
                    status, answer = 400, {"error": {"type": "invalid_request_error", "message": repr(exc)}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def check(self) -> None:
        """Raise the first failed assertion of the server; fail if the script was not played out."""
        if self.failures:
            raise self.failures[0]
        assert not self.turns, f"{len(self.turns)} scripted answer(s) never requested"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_against(model: FakeModel, heading: str) -> dict[str, Any]:
    """Run a snippet; a failure seen by the fake model server is reported first (it is the cause)."""
    try:
        namespace = run_snippet(heading)
    except Exception:
        model.check()
        raise
    model.check()
    return namespace


@pytest.fixture
def fake_model():
    models = []

    def start(path, turns):
        models.append(FakeModel(path, turns))
        return models[-1]

    yield start
    for model in models:
        model.close()


# -- Python ----------------------------------------------------------------------------


@pytest.mark.parametrize("key_6_exists", [True, False], ids=["key-6-revoked", "key-6-missing"])
def test_python_snippet(gen_env, capsys, key_6_exists):
    sandbox = gen_env
    if key_6_exists:
        seed(sandbox, "laptop", "deploy", "backup", "staging", "old ci")  # ids 2..6
    run_snippet("Python")
    lines = capsys.readouterr().out.splitlines()

    ci = [k for k in keys(sandbox) if k["name"] == "ci"]
    assert len(ci) == 1, "the snippet creates one key named ci"
    ci = ci[0]
    assert ci["id"] == (7 if key_6_exists else 2)
    created = datetime.fromisoformat(ci["created_at"])
    assert datetime.fromisoformat(ci["expires_at"]) - created == timedelta(days=30)

    # First line: the new key's id and its secret, which really signs in as that key.
    key_id, token = lines[0].split()
    assert int(key_id) == ci["id"]
    assert sandbox.store.authenticate(token, touch=False) == (sandbox.user["id"], ci["id"])

    # Then every key that was active, listed before the revoke.
    if key_6_exists:
        assert lines[1:] == ["1 sandbox bootstrap", "2 laptop", "3 deploy", "4 backup", "5 staging",
                             "6 old ci", "7 ci"]
        assert sandbox.store.get_key(sandbox.user["id"], 6)["status"] == "revoked"
        assert [k["id"] for k in keys(sandbox, "active")] == [1, 2, 3, 4, 5, 7]
    else:  # no key 6: the revoke fails and the snippet prints the typed error
        assert lines[1:3] == ["1 sandbox bootstrap", "2 ci"]
        assert len(lines) == 4 and lines[3].startswith("not_found 404 ")
        assert [k["id"] for k in keys(sandbox, "active")] == [1, 2]


# -- OpenAI Chat Completions -----------------------------------------------------------


def chat_completion(message: dict, finish_reason: str) -> dict:
    return {
        "id": "chatcmpl-readme", "object": "chat.completion", "created": 1767225600, "model": "gpt-4.1",
        "choices": [{"index": 0, "message": {"role": "assistant", "refusal": None, "annotations": [], **message},
                     "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def test_openai_tool_loop(gen_env, fake_model, monkeypatch, capsys):
    pytest.importorskip("openai", reason="needs the openai SDK: pip install '.[test]'")
    sandbox = gen_env
    seed(sandbox, "deploy", "old laptop", revoked=("old laptop",))
    exported = json.loads(json.dumps(chat_completions_tools(Dispatcher().tools)))
    call = {"id": "call_1", "type": "function",
            "function": {"name": "gen_list_api_keys", "arguments": json.dumps({"status": "active"})}}
    final = "Two keys are active: sandbox bootstrap (1) and deploy (2)."

    def check_request(headers, body):
        assert headers["authorization"] == f"Bearer {MODEL_KEY}"
        assert body["tools"] == exported
        assert {t["function"]["name"] for t in body["tools"]} == TOOL_NAMES
        assert all(t["type"] == "function" and t["function"]["strict"] is True for t in body["tools"])
        assert body["messages"][0]["role"] == "user"

    def ask_for_the_list(headers, body):
        check_request(headers, body)
        assert len(body["messages"]) == 1
        return chat_completion({"content": None, "tool_calls": [call]}, "tool_calls")

    def answer(headers, body):
        check_request(headers, body)
        assistant, result = body["messages"][1:]
        assert assistant["role"] == "assistant" and assistant["tool_calls"] == [call]
        assert result["role"] == "tool" and result["tool_call_id"] == "call_1"
        active = keys(sandbox, "active")
        assert [k["name"] for k in active] == ["sandbox bootstrap", "deploy"]
        assert json.loads(result["content"]) == {"api_keys": active}
        return chat_completion({"content": final}, "stop")

    model = fake_model("/v1/chat/completions", [ask_for_the_list, answer])
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", MODEL_KEY)
    namespace = run_against(model, "An OpenAI tool loop")
    close_clients(namespace, "gen", "client")
    assert capsys.readouterr().out == final + "\n"


def test_openai_responses_note(gen_env, fake_model):
    """The note under the OpenAI loop: its tools expression and its answer to a function_call item."""
    openai = pytest.importorskip("openai", reason="needs the openai SDK: pip install '.[test]'")
    sandbox = gen_env
    seed(sandbox, "deploy", "old laptop", revoked=("old laptop",))
    spans = re.findall(r"`([^`]+)`", " ".join(section("An OpenAI tool loop").prose))
    tools_expr = next(s for s in spans if s.startswith("responses_tools("))
    output_expr = next(s for s in spans if s.startswith('{"type": "function_call_output"'))
    exported = json.loads(json.dumps(responses_tools(Dispatcher().tools)))
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "gen_list_api_keys",
            "arguments": json.dumps({"status": None}), "status": "completed"}  # strict mode's null
    final = "You have three keys; two are active."

    def response(output):
        return {"id": "resp_readme", "object": "response", "created_at": 1767225600, "model": "gpt-4.1",
                "status": "completed", "output": output, "parallel_tool_calls": True,
                "tool_choice": "auto", "tools": []}

    def ask_for_the_list(headers, body):
        assert body["tools"] == exported and all(t["strict"] is True for t in body["tools"])
        assert {t["name"] for t in body["tools"]} == TOOL_NAMES
        return response([call])

    def answer(headers, body):
        assert body["input"][1] == call
        assert body["input"][2]["type"] == "function_call_output" and body["input"][2]["call_id"] == "call_1"
        assert json.loads(body["input"][2]["output"]) == {"api_keys": keys(sandbox)}  # null: no filter
        return response([{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                          "content": [{"type": "output_text", "text": final, "annotations": []}]}])

    model = fake_model("/v1/responses", [ask_for_the_list, answer])
    gen = Dispatcher()
    client = openai.OpenAI(base_url=model.base_url + "/v1", api_key=MODEL_KEY)
    tools = eval(tools_expr, {"responses_tools": responses_tools, "gen": gen})  # noqa: S307 - the page's text
    inputs: list[Any] = [{"role": "user", "content": "Which of my GEN API keys are still active?"}]
    try:
        while True:
            reply = client.responses.create(model="gpt-4.1", input=inputs, tools=tools)
            calls = [item for item in reply.output if item.type == "function_call"]
            if not calls:
                break
            inputs += reply.output
            inputs += [eval(output_expr, {"item": item, "gen": gen}) for item in calls]  # noqa: S307
    finally:
        model.check()
        gen.close()
        client.close()
    assert reply.output_text == final


# -- Anthropic -------------------------------------------------------------------------


def test_anthropic_tool_loop(gen_env, fake_model, monkeypatch, capsys):
    pytest.importorskip("anthropic", reason="needs the anthropic SDK: pip install '.[test]'")
    sandbox = gen_env
    seed(sandbox, "laptop", "deploy", "backup", "staging", "n8n")  # the prompt's key 6 is "n8n"
    assert sandbox.store.get_key(sandbox.user["id"], 6)["name"] == "n8n"
    exported = json.loads(json.dumps(anthropic_tools(Dispatcher().tools)))
    said = [{"type": "text", "text": "I'll rename key 6."},
            {"type": "tool_use", "id": "toolu_1", "name": "gen_update_api_key",
             "input": {"id": 6, "name": "n8n staging"}}]
    final = "Key 6 is now called 'n8n staging'."

    def message(content, stop_reason):
        return {"id": "msg_readme", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 5}}

    def check_request(headers, body):
        # anthropic 2.x sends the API key as a bearer token; older SDKs sent X-Api-Key
        assert MODEL_KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
        assert headers.get("anthropic-version")
        assert body["max_tokens"] == 1024
        assert body["tools"] == exported
        assert {t["name"] for t in body["tools"]} == TOOL_NAMES
        assert not any("strict" in t for t in body["tools"])  # anthropic_tools(strict=False)
        assert body["messages"][0]["role"] == "user"

    def ask_for_the_rename(headers, body):
        check_request(headers, body)
        assert len(body["messages"]) == 1
        return message(said, "tool_use")

    def answer(headers, body):
        check_request(headers, body)
        assistant, results = body["messages"][1:]
        assert assistant == {"role": "assistant", "content": said}
        assert results["role"] == "user"
        [result] = results["content"]
        assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
        assert result.get("is_error", False) is False
        renamed = sandbox.store.get_key(sandbox.user["id"], 6)
        assert renamed["name"] == "n8n staging"
        assert json.loads(result["content"]) == renamed
        return message([{"type": "text", "text": final}], "end_turn")

    model = fake_model("/v1/messages", [ask_for_the_rename, answer])
    monkeypatch.setenv("ANTHROPIC_BASE_URL", model.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", MODEL_KEY)
    for name in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE", "ANTHROPIC_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    namespace = run_against(model, "An Anthropic tool loop")
    close_clients(namespace, "gen", "client")
    assert capsys.readouterr().out == final + "\n"
    assert [k["name"] for k in keys(sandbox)] == ["sandbox bootstrap", "laptop", "deploy", "backup",
                                                   "staging", "n8n staging"]


# -- LangChain -------------------------------------------------------------------------


def test_langchain_snippet(gen_env, capsys):
    pytest.importorskip("langchain_core", reason="needs langchain-core: pip install '.[langchain]'")
    sandbox = gen_env
    seed(sandbox, "deploy", "old laptop", revoked=("old laptop",))
    namespace = run_snippet("LangChain")
    namespace["tools"][0].dispatcher.close()
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"api_keys": keys(sandbox, "active")}
    assert [k["name"] for k in printed["api_keys"]] == ["sandbox bootstrap", "deploy"]


# -- MCP client configuration ----------------------------------------------------------


def cli_parser():
    return module("gen_nodes.surfaces.cli")._parser()


def mcp_configs() -> list[tuple[str, str]]:
    """(page, JSON) of every block configuring an MCP client: the MCP page's and the README's."""
    return [(page, code) for page, _, language, code in all_blocks() if language == "json" and "mcpServers" in code]


def test_mcp_config_blocks():
    from importlib.metadata import entry_points

    configs = mcp_configs()
    assert {page for page, _ in configs} == {"README.md", "mcp.md"}
    assert snippet("MCP: Claude Desktop, Claude Code and other clients", "json") in [code for _, code in configs]
    for page, code in configs:
        server = json.loads(code)["mcpServers"]["gen"]
        assert server["command"] == "gen-nodes" and server["args"] == ["mcp"], page
        assert set(server["env"]) == {"GEN_API_KEY"}, page
        # The command it names exists and runs the MCP server.
        [script] = entry_points(group="console_scripts", name=server["command"])
        assert script.load() is module("gen_nodes.surfaces.cli").main
        assert cli_parser().parse_args(server["args"]).command == "mcp"


# -- Confirmation ----------------------------------------------------------------------


def test_confirmation_snippet(gen_env, capsys, monkeypatch):
    """The approval example: the first call holds, only the host's approve() revokes key 6, once."""
    sandbox = gen_env
    seed(sandbox, "laptop", "deploy", "backup", "staging", "old ci")  # ids 2..6
    monkeypatch.setattr("builtins.input", lambda prompt="": pytest.fail("the snippet asked on the terminal"))
    namespace = run_snippet("Confirmation of destructive tools")
    assert capsys.readouterr().out == "{'id': 6, 'revoked': True}\n"
    result, handle = namespace["result"], namespace["handle"]
    assert "waiting for the user's approval" in result.text and handle not in result.text
    assert sandbox.store.get_key(sandbox.user["id"], 6)["status"] == "revoked"
    assert namespace["gen"].approve(handle).content["error"]["type"] == "approval"  # once
    namespace["gen"].close()


# -- every block of every page ---------------------------------------------------------

CHECKED_LANGUAGES = {"python", "json", "toml", "sh", "text"}


def block_id(block: tuple[str, str, str, str]) -> str:
    page, heading, language, _ = block
    return f"{page}:{heading or '(top)'}:{language}"


def test_every_block_names_a_language_that_is_checked():
    for block in all_blocks():
        assert block[2] in CHECKED_LANGUAGES, f"{block_id(block)}: tag the block with one of {sorted(CHECKED_LANGUAGES)}"


@pytest.mark.parametrize("block", [b for b in all_blocks() if b[2] == "python"], ids=block_id)
def test_python_blocks_compile(block):
    page, heading, _, code = block
    compile(code, f"{page}: {heading}", "exec")


@pytest.mark.parametrize("block", [b for b in all_blocks() if b[2] == "json"], ids=block_id)
def test_json_blocks_parse(block):
    json.loads(block[3])


@pytest.mark.parametrize("block", [b for b in all_blocks() if b[2] == "toml"], ids=block_id)
def test_toml_blocks_parse(block):
    tomllib.loads(block[3])


def shell_commands(code: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and blank lines dropped."""
    return [line.strip() for line in code.replace("\\\n", " ").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("block", [b for b in all_blocks() if b[2] == "sh"], ids=block_id)
def test_shell_blocks_are_valid_and_name_real_subcommands(block):
    page, heading, _, code = block
    checked = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"{page}: {heading}: {checked.stderr}"
    commands = cli_parser()._subparsers._group_actions[0].choices
    for command in shell_commands(code):
        for words in re.findall(r"(?:^|&&|;|\|)\s*(?:[A-Z_]+=\S+\s+)*gen-nodes\s+((?:--\S+\s+)*)(\S+)", command):
            assert words[1].split("|")[0] in commands, f"{page}: {heading}: no gen-nodes subcommand {words[1]!r}"
