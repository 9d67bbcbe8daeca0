"""The MCP server (``gen_nodes.surfaces.mcp.server``) driven by the real ``mcp`` SDK ``ClientSession``.

Everything runs against a real sandbox on loopback. stdio: one server subprocess per
session (``python -m gen_nodes.surfaces.mcp.server``, the GEN key in its environment). HTTP: one
server subprocess for the module; each session authenticates as a sandbox user with a
bearer key. Every server logs at debug level into files that the last test searches
for secrets.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

import httpx2  # noqa: E402  (the HTTP client the mcp SDK uses)
import jsonschema  # noqa: E402
import mcp_types as types  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.session import ClientRequestContext  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from cli_support import stop_process as stop  # noqa: E402
from gen_nodes.sandbox import Sandbox  # noqa: E402
from key_age_support import names, seed_key_ages  # noqa: E402
from gen_nodes.sandbox.store import TOKEN_ALPHABET, TOKEN_LENGTH, TOKEN_PREFIX  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-m", "gen_nodes.surfaces.cli", "mcp"]  # the real `gen-nodes mcp` command
#: Any full sandbox key or secret; a masked form ("gen_pat_…abcd") does not match.
FULL_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + f"[{TOKEN_ALPHABET}]{{{TOKEN_LENGTH}}}")

#: name -> (title, readOnlyHint, destructiveHint, idempotentHint, openWorldHint)
EXPECTED_TOOLS = {
    "gen_get_me": ("Get current user", True, False, True, True),
    "gen_list_api_keys": ("List API keys", True, False, True, True),
    "gen_create_api_key": ("Create API key", False, False, False, True),
    "gen_update_api_key": ("Rename API key", False, False, True, True),
    "gen_revoke_api_key": ("Revoke API key", False, True, True, True),
    "gen_revoke_all_api_keys": ("Revoke all API keys", False, True, True, True),
}


# -- servers, sessions ------------------------------------------------------------------


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp("mcp-logs")


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mcp-secrets")


def start_http(*args: str, log, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start `gen-nodes mcp --transport http --port 0 ...`; its first stdout line is {"url": ...}."""
    env = env or {k: v for k, v in os.environ.items() if k not in ("GEN_API_KEY", "GEN_BASE_URL")}
    proc = subprocess.Popen([*SERVER, "--transport", "http", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=log, cwd=REPO, env=env, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    if not line:
        stop(proc)
        raise AssertionError("the server printed no first line with its url")
    return proc, json.loads(line)["url"]


@pytest.fixture(scope="module")
def http_url(sb, logs, secrets_dir):
    """One HTTP server for the module; it has no GEN key of its own (each request brings one)."""
    with open(logs / "http.log", "w") as log:
        proc, url = start_http("--base-url", sb.base_url, "--secrets-dir", str(secrets_dir), "--log-level", "debug",
                               log=log)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", url) and ":0/" not in url
        yield url
    finally:
        stop(proc)


class Asker:
    """An elicitation callback that answers as told and remembers what it was asked."""

    def __init__(self, action: str = "accept", confirm: bool | None = True) -> None:
        self.action, self.confirm, self.messages = action, confirm, []

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams):
        self.messages.append(params.message)
        content = {"confirm": self.confirm} if self.action == "accept" else None
        return types.ElicitResult(action=self.action, content=content)


class Connect:
    """Opens ClientSessions on one transport: ``async with connect(key, ...) as session``."""

    def __init__(self, kind: str, sb: Sandbox, logs: Path, secrets_dir: Path, url: str | None) -> None:
        self.kind, self.sb, self.logs, self.secrets_dir, self.url = kind, sb, logs, secrets_dir, url

    @asynccontextmanager
    async def __call__(self, key: str | None, *server_args: str, asker: Asker | None = None, modern: bool = False,
                       header: str = "Authorization"):
        if self.kind == "stdio":
            params = StdioServerParameters(
                command=sys.executable,
                args=[*SERVER[1:], "--log-level", "debug", "--secrets-dir", str(self.secrets_dir), *server_args],
                env={"GEN_API_KEY": key or "", "GEN_BASE_URL": self.sb.base_url}, cwd=str(REPO))
            with open(self.logs / "stdio.log", "a") as errlog:
                async with stdio_client(params, errlog=errlog) as (read, write):
                    async with _session(read, write, asker, modern) as session:
                        yield session
        else:
            assert not server_args, "the module's HTTP server has fixed options"
            headers = {header: f"Bearer {key}" if header == "Authorization" else key} if key else {}
            async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
                async with streamable_http_client(self.url, http_client=http) as (read, write):
                    async with _session(read, write, asker, modern) as session:
                        yield session


@asynccontextmanager
async def _session(read, write, asker, modern):
    async with ClientSession(read, write, elicitation_callback=asker) as session:
        await (session.discover() if modern else session.initialize())
        session.modern = modern
        yield session


@pytest.fixture(params=["stdio", "http"])
def connect(request, sb, logs, secrets_dir):
    url = request.getfixturevalue("http_url") if request.param == "http" else None
    return Connect(request.param, sb, logs, secrets_dir, url)


@pytest.fixture
def stdio(sb, logs, secrets_dir):
    return Connect("stdio", sb, logs, secrets_dir, None)


# -- helpers ------------------------------------------------------------------------------


async def call(session: ClientSession, name: str, args: dict[str, Any] | None = None) -> types.CallToolResult:
    """tools/call; on the 2026-07-28 era, drives the input-required rounds as a host would."""
    if not getattr(session, "modern", False):
        return await session.call_tool(name, args or {})
    result = await session.call_tool(name, args or {}, allow_input_required=True)
    for _ in range(5):
        if not isinstance(result, types.InputRequiredResult):
            return result
        answers = {}
        for key, req in (result.input_requests or {}).items():
            answers[key] = await session.dispatch_input_request(
                ClientRequestContext(session=session, request_id=f"mrtr-{key}"), req)
        result = await session.call_tool(name, args or {}, input_responses=answers,
                                         request_state=result.request_state, allow_input_required=True)
    raise AssertionError("too many input-required rounds")


def ok(result: types.CallToolResult, output_schema: dict[str, Any]) -> dict[str, Any]:
    """The structured content of a successful call, checked against its outputSchema and its text twin."""
    assert not result.is_error, result.content[0].text
    jsonschema.validate(result.structured_content, output_schema)
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def failed(result: types.CallToolResult, error_type: str) -> dict[str, Any]:
    """The error of a call that must fail with ``error_type``; it says what to do next."""
    assert result.is_error, result.structured_content
    error = json.loads(result.content[0].text)["error"]
    assert error["type"] == error_type, error
    assert error["message"] and error["hint"]
    return error


async def schemas(session: ClientSession) -> dict[str, dict[str, Any]]:
    return {t.name: t.output_schema for t in (await session.list_tools()).tools}


def new_user(sb: Sandbox) -> tuple[int, str]:
    user, key = sb.create_user()
    return user["id"], key


def status(sb: Sandbox, user_id: int, key_id: int) -> str:
    return sb.store.get_key(user_id, key_id)["status"]


def no_full_secret(*texts: str) -> None:
    for text in texts:
        assert not FULL_TOKEN.search(text), "a secret or API key leaked"


# -- tools/list ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_tools_names_titles_annotations_and_schemas(connect, sb):
    async with connect(sb.api_key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(EXPECTED_TOOLS) <= set(tools)
    for name, tool in tools.items():
        assert re.fullmatch(r"gen_[a-zA-Z0-9_-]{1,60}", name)
        a = tool.annotations
        assert None not in (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint), name
        assert tool.description and tool.title
        for schema in (tool.input_schema, tool.output_schema):
            assert schema["type"] == "object" and "$ref" not in json.dumps(schema), name
            jsonschema.Draft202012Validator.check_schema(schema)
    for name, (title, read_only, destructive, idempotent, open_world) in EXPECTED_TOOLS.items():
        a = tools[name].annotations
        assert (tools[name].title, a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (
            title, read_only, destructive, idempotent, open_world), name
        assert "confirm" not in json.dumps(tools[name].input_schema)  # nothing a model could send approves


# -- tools/call ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_every_tool_runs_and_matches_its_output_schema(connect, sb):
    user_id, key = new_user(sb)
    asker = Asker("accept", True)
    async with connect(key, asker=asker) as session:
        out = await schemas(session)
        assert ok(await call(session, "gen_get_me"), out["gen_get_me"])["id"] == user_id
        listed = ok(await call(session, "gen_list_api_keys", {"status": "active"}), out["gen_list_api_keys"])
        assert [k["status"] for k in listed["api_keys"]] == ["active"]

        created_result = await call(session, "gen_create_api_key", {"name": "mcp-every-tool"})
        created = ok(created_result, out["gen_create_api_key"])  # default secret policy: file
        path = Path(created["token_file"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert FULL_TOKEN.fullmatch(secret) and created["token"].endswith(secret[-4:])
        assert secret not in created_result.content[0].text
        no_full_secret(created_result.content[0].text)

        renamed = ok(await call(session, "gen_update_api_key", {"id": created["id"], "name": "renamed"}),
                     out["gen_update_api_key"])
        assert renamed["name"] == "renamed" and "token" not in renamed
        revoked = ok(await call(session, "gen_revoke_api_key", {"id": created["id"]}), out["gen_revoke_api_key"])
        assert revoked["revoked"] is True and status(sb, user_id, created["id"]) == "revoked"
        assert "renamed" in asker.messages[-1] and str(created["id"]) in asker.messages[-1]

        bad = failed(await call(session, "gen_update_api_key", {"id": created["id"]}), "invalid_input")
        assert bad["errors"]
        failed(await call(session, "gen_no_such_tool", {}), "invalid_input")

        everything = ok(await call(session, "gen_revoke_all_api_keys"), out["gen_revoke_all_api_keys"])
        assert everything["revoked_all"] is True
        assert all(k["status"] == "revoked" for k in sb.store.list_keys(user_id))
        assert len(asker.messages) == 2
        failed(await call(session, "gen_get_me"), "authentication")  # its own key is gone too


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["", TOKEN_PREFIX + "x" * TOKEN_LENGTH], ids=["missing", "invalid"])
async def test_a_missing_or_invalid_key_is_a_tool_error(stdio, key):
    async with stdio(key) as session:
        error = failed(await call(session, "gen_get_me"), "authentication")
    assert "GEN_API_KEY" in error["hint"]


# -- HTTP: per-request keys ------------------------------------------------------------------


@pytest.mark.anyio
async def test_http_invalid_bearer_key_opens_no_session(sb, http_url, logs, secrets_dir):
    """A key GEN refuses gets no session (401), with words saying so, and no OAuth challenge."""
    connect = Connect("http", sb, logs, secrets_dir, http_url)
    with pytest.raises(BaseException) as refused:
        async with connect(TOKEN_PREFIX + "y" * TOKEN_LENGTH) as session:
            await session.list_tools()
    messages = [str(e) for e in _leaves(refused.value)]
    assert any("GEN does not accept this API key" in m and "X-API-Key" in m for m in messages), messages


@pytest.mark.anyio
async def test_http_invalid_bearer_key_is_a_tool_error_without_sessions(sb, http_url, logs, secrets_dir):
    """2026-era requests open no session: there a key GEN refuses is the tool call's error."""
    connect = Connect("http", sb, logs, secrets_dir, http_url)
    async with connect(TOKEN_PREFIX + "y" * TOKEN_LENGTH, modern=True) as session:
        error = failed(await call(session, "gen_list_api_keys"), "authentication")
        missing = failed(await call(session, "gen_revoke_api_key", {"id": 999999}), "confirmation_required")
    # Hints in the caller's terms: over HTTP the key comes with each request, not from GEN_API_KEY.
    assert "X-API-Key" in error["hint"] and "GEN_API_KEY" not in error["hint"]
    assert "GEN_API_KEY" not in json.dumps(missing)


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


@pytest.mark.anyio
async def test_http_request_without_a_key_is_refused(sb, http_url, logs, secrets_dir):
    request = urllib.request.Request(http_url, data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(request, timeout=10)
    assert raw.value.code == 401
    # Not a Bearer challenge: MCP clients would take it for OAuth and start a login flow.
    assert not raw.value.headers["WWW-Authenticate"].lower().startswith("bearer")
    error = json.loads(raw.value.read())["error"]
    assert "X-API-Key" in error["message"] and "Bearer" in error["message"]

    connect = Connect("http", sb, logs, secrets_dir, http_url)
    with pytest.raises(BaseException) as refused:
        async with connect(None) as session:
            await session.list_tools()
    messages = [str(e) for e in _leaves(refused.value)]
    assert any("X-API-Key" in m for m in messages), messages  # the SDK client shows the body's words


def test_http_refuses_a_foreign_host_header(http_url, sb):
    """DNS-rebinding guard: a page on another origin cannot drive the loopback server."""
    request = urllib.request.Request(http_url, data=b"{}", method="POST", headers={
        "Content-Type": "application/json", "X-API-Key": sb.api_key, "Host": "evil.example:80"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 421


def test_http_port_in_use_is_a_clear_error_not_exit_3(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*SERVER, "--transport", "http", "--port", str(port)], capture_output=True,
                              text=True, cwd=REPO, timeout=60)
    assert done.returncode not in (0, 3), done  # 3 means "authentication" for gen-nodes
    assert done.stdout == "" and "Traceback" not in done.stderr
    error = json.loads(done.stderr[done.stderr.index("{"):])["error"]
    assert "already in use" in error["message"] and error["hint"]


@pytest.mark.parametrize("extra", [[], ["--allow-remote"]], ids=["no-opt-in", "no-host-list"])
def test_http_non_loopback_host_needs_opt_in_and_allowed_hosts(extra):
    done = subprocess.run([*SERVER, "--transport", "http", "--host", "0.0.0.0", "--port", "0", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=30)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    error = json.loads(done.stderr[done.stderr.index("{"):])["error"]
    assert error["type"] == "invalid_input"
    assert ("--allowed-host" if extra else "--allow-remote") in error["hint"]


def test_http_remote_bind_keeps_the_dns_rebinding_guard(sb, logs):
    with open(logs / "http-remote.log", "w") as log:
        proc, url = start_http("--host", "0.0.0.0", "--allow-remote", "--allowed-host", "gen.example:*",
                               "--base-url", sb.base_url, log=log)
    try:
        port = url.rsplit(":", 1)[1].split("/")[0]
        local = f"http://127.0.0.1:{port}/mcp"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).encode()

        def post(host: str, origin: str | None = None) -> int:
            headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                       "X-API-Key": sb.api_key, "Host": host}
            if origin:
                headers["Origin"] = origin
            try:
                with urllib.request.urlopen(urllib.request.Request(local, data=body, headers=headers), timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert post("evil.example") == 421
        assert post(f"127.0.0.1:{port}") == 421  # only the listed names
        assert post(f"gen.example:{port}", origin="http://evil.example") == 403
        assert post(f"gen.example:{port}") == 200
    finally:
        stop(proc)
    assert "reachable from other machines" in (logs / "http-remote.log").read_text()


@pytest.mark.anyio
async def test_http_two_users_each_see_and_touch_only_their_own_keys(sb, http_url, logs, secrets_dir):
    connect = Connect("http", sb, logs, secrets_dir, http_url)
    a_id, a_key = new_user(sb)
    b_id, b_key = new_user(sb)
    a_target = sb.store.create_key(a_id, "a-only")[0]["id"]
    a_ids = {k["id"] for k in sb.store.list_keys(a_id)}

    async with connect(a_key) as a:  # no elicitation: refused, nothing sent
        listed = ok(await call(a, "gen_list_api_keys"), (await schemas(a))["gen_list_api_keys"])
        assert {k["id"] for k in listed["api_keys"]} == a_ids
        failed(await call(a, "gen_revoke_api_key", {"id": a_target}), "confirmation_required")

    asker = Asker("accept", True)
    async with connect(b_key, asker=asker, header="X-API-Key") as b:
        assert ok(await call(b, "gen_get_me"), (await schemas(b))["gen_get_me"])["id"] == b_id
        listed = (await call(b, "gen_list_api_keys")).structured_content
        assert {k["id"] for k in listed["api_keys"]}.isdisjoint(a_ids)
        failed(await call(b, "gen_update_api_key", {"id": a_target, "name": "stolen"}), "not_found")
        failed(await call(b, "gen_revoke_api_key", {"id": a_target}), "not_found")
        assert "No matching key" in asker.messages[-1]
    assert status(sb, a_id, a_target) == "active" and sb.store.get_key(a_id, a_target)["name"] == "a-only"


# -- confirmation: elicitation ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era", "2026-era"])
async def test_elicitation_decline_keeps_the_key_and_accept_revokes_it(connect, sb, modern):
    user_id, key = new_user(sb)
    target = sb.store.create_key(user_id, "victim")[0]["id"]
    asker = Asker("decline", None)
    async with connect(key, asker=asker, modern=modern) as session:
        assert (session.protocol_version == "2026-07-28") is modern
        for action, confirm in [("decline", None), ("cancel", None), ("accept", False)]:
            asker.action, asker.confirm = action, confirm
            error = failed(await call(session, "gen_revoke_api_key", {"id": target}), "confirmation_required")
            assert error["declined"] is True
            assert status(sb, user_id, target) == "active"
        asker.action, asker.confirm = "accept", True
        done = ok(await call(session, "gen_revoke_api_key", {"id": target}),
                  (await schemas(session))["gen_revoke_api_key"])
    assert done == {"id": target, "revoked": True} and status(sb, user_id, target) == "revoked"
    assert len(asker.messages) == 4
    assert all(f'id {target}: "victim" (active)' in m for m in asker.messages)
    no_full_secret(*asker.messages)


@pytest.mark.anyio
@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era", "2026-era"])
async def test_gen_rotate_api_key_asks_the_person_then_rotates(connect, sb, modern, secrets_dir):
    """The composite rotation through the official SDK: elicitation shows the old key and the new one
    it would make; accepted, it answers status succeeded, the secret in a file, never in the result."""
    user_id, key = new_user(sb)
    old = sb.store.create_key(user_id, "n8n production", "90d")[0]["id"]
    asker = Asker("decline", None)
    async with connect(key, asker=asker, modern=modern) as session:
        failed(await call(session, "gen_rotate_api_key", {"id": old}), "confirmation_required")
        assert status(sb, user_id, old) == "active" and len(sb.store.list_keys(user_id)) == 2
        asker.action, asker.confirm = "accept", True
        done = ok(await call(session, "gen_rotate_api_key", {"id": old}),
                  (await schemas(session))["gen_rotate_api_key"])
    assert done["status"] == "succeeded" and status(sb, user_id, old) == "revoked"
    assert 'Create API key: a new key, name "n8n production", expires_in "90d"' in asker.messages[0]
    assert f'Revoke API key: id {old}: "n8n production" (active)' in asker.messages[0]
    new = done["new_key"]
    assert Path(new["token_file"]).read_text().startswith(TOKEN_PREFIX)
    no_full_secret(json.dumps(done), *asker.messages)


@pytest.mark.anyio
@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era", "2026-era"])
async def test_a_model_cannot_get_past_a_declining_user_with_extra_fields(connect, sb, modern):
    """No argument approves anything: a made-up approval field is invalid input, and the user is
    asked again on every plain call."""
    user_id, key = new_user(sb)
    target = sb.store.create_key(user_id, "victim")[0]["id"]
    asker = Asker("decline", None)
    async with connect(key, asker=asker, modern=modern) as session:
        for extra in ({"confirmation_token": "junk"}, {"confirm": True}, {"approved": "yes"}):
            failed(await call(session, "gen_revoke_api_key", {"id": target, **extra}), "invalid_input")
        for _ in range(2):
            error = failed(await call(session, "gen_revoke_api_key", {"id": target}), "confirmation_required")
            assert error["declined"] is True
    assert len(asker.messages) == 2
    assert status(sb, user_id, target) == "active"


@pytest.mark.anyio
async def test_a_client_that_cannot_ask_is_refused_naming_the_options(sb, http_url, logs, secrets_dir):
    user_id, key = new_user(sb)
    target = sb.store.create_key(user_id, "victim")[0]["id"]

    async def unsupported(context, params):
        return types.ErrorData(code=-32601, message="elicitation/create is not supported")

    async with Connect("http", sb, logs, secrets_dir, http_url)(key, asker=unsupported) as session:
        error = failed(await call(session, "gen_revoke_api_key", {"id": target}), "confirmation_required")
    assert "--confirmation host" in error["hint"] and "nothing was sent" in error["message"]
    assert status(sb, user_id, target) == "active"


@pytest.mark.anyio
async def test_an_error_answer_from_the_user_is_a_no(sb, http_url, logs, secrets_dir):
    """Some hosts answer a refused question with an error: that is a no, each time, and nothing runs."""
    user_id, key = new_user(sb)
    target = sb.store.create_key(user_id, "victim")[0]["id"]
    asked = []

    async def refuses_with_an_error(context, params):
        asked.append(params.message)
        return types.ErrorData(code=-1, message="the user closed the dialog")

    async with Connect("http", sb, logs, secrets_dir, http_url)(key, asker=refuses_with_an_error) as session:
        for _ in range(2):
            error = failed(await call(session, "gen_revoke_api_key", {"id": target}), "confirmation_required")
            assert error["declined"] is True
    assert len(asked) == 2 and status(sb, user_id, target) == "active"


# -- confirmation: clients that cannot ask, the host policy ---------------------------------


@pytest.mark.anyio
async def test_a_stdio_client_without_elicitation_is_refused_and_nothing_is_sent(stdio, sb):
    user_id, key = new_user(sb)
    target = sb.store.create_key(user_id, "victim")[0]["id"]
    async with stdio(key) as session:  # no elicitation callback
        error = failed(await call(session, "gen_revoke_api_key", {"id": target}), "confirmation_required")
        assert "elicitation" in error["message"] and "--confirmation host" in error["hint"]
        assert "preview" not in error
    assert status(sb, user_id, target) == "active"
    assert all(k["last_used_at"] is None for k in sb.store.list_keys(user_id))  # not even a preview was asked


@pytest.mark.anyio
async def test_host_policy_acts_without_asking_and_says_the_client_must(stdio, sb):
    user_id, key = new_user(sb)
    target = sb.store.create_key(user_id, "victim")[0]["id"]
    asker = Asker("decline", None)
    async with stdio(key, "--confirmation", "host", asker=asker) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        revoke = tools["gen_revoke_api_key"]
        assert revoke.annotations.destructive_hint is True and "ask the user" in revoke.description
        ok(await call(session, "gen_revoke_api_key", {"id": target}), revoke.output_schema)
    assert asker.messages == [] and status(sb, user_id, target) == "revoked"


@pytest.mark.anyio
async def test_none_policy_acts_without_asking(stdio, sb):
    user_id, key = new_user(sb)
    target = sb.store.create_key(user_id, "victim")[0]["id"]
    asker = Asker("decline", None)
    async with stdio(key, "--confirmation", "none", asker=asker) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        ok(await call(session, "gen_revoke_api_key", {"id": target}), tools["gen_revoke_api_key"].output_schema)
    assert asker.messages == [] and status(sb, user_id, target) == "revoked"


# -- secret policies, logs ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("policy", ["file", "mask", "reveal"])
async def test_secret_policies(stdio, sb, policy):
    user_id, key = new_user(sb)
    async with stdio(key, "--secrets", policy) as session:
        result = await call(session, "gen_create_api_key", {"name": f"policy-{policy}"})
        created = ok(result, (await schemas(session))["gen_create_api_key"])
    text = result.content[0].text
    if policy == "reveal":
        assert FULL_TOKEN.fullmatch(created["token"])
        assert sb.store.authenticate(created["token"], touch=False) == (user_id, created["id"])
        return
    no_full_secret(text, json.dumps(created))
    assert created["token"].startswith(TOKEN_PREFIX) and "…" in created["token"]
    if policy == "file":
        path = Path(created["token_file"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert sb.store.authenticate(secret, touch=False) == (user_id, created["id"])
        assert secret not in text
    else:
        assert "token_file" not in created


@pytest.mark.anyio
async def test_logs_hold_no_secret_or_api_key(stdio, sb, logs):
    """Runs last: every server of this module logged at debug level into ``logs``."""
    user_id, key = new_user(sb)
    async with stdio(key, "--secrets", "reveal") as session:
        secret = (await call(session, "gen_create_api_key", {"name": "logged?"})).structured_content["token"]
        assert FULL_TOKEN.fullmatch(secret)
    files = sorted(logs.iterdir())
    text = "\n".join(f.read_text() for f in files)
    assert "tools/call gen_create_api_key -> ok" in text  # the debug logs were captured
    for needle in (secret, key, sb.api_key):
        assert needle not in text
    no_full_secret(text)


@pytest.mark.anyio
async def test_the_global_sandbox_option_serves_the_persistent_sandbox(tmp_path, sb):
    """`gen-nodes --sandbox mcp` talks to the file-backed sandbox, not to GEN (nor to $GEN_*)."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "gen_nodes.surfaces.cli", "--sandbox", "mcp", "--secrets", "mask"],
        env={"GEN_NODES_SANDBOX_DIR": str(tmp_path), "GEN_API_KEY": "", "GEN_BASE_URL": "http://127.0.0.1:9/v1"},
        cwd=str(REPO))
    async with stdio_client(params) as (read, write):
        async with _session(read, write, None, False) as session:
            made = ok(await call(session, "gen_create_api_key", {"name": "via-sandbox-mcp"}),
                      (await schemas(session))["gen_create_api_key"])
    assert (tmp_path / "sandbox.sqlite3").exists()
    assert made["name"] == "via-sandbox-mcp" and made["token"].startswith("gen_pat_…")


@pytest.mark.anyio
async def test_elicitation_shows_a_spoofing_key_name_quoted_and_escaped(stdio, sb):
    """A model may rename a key to text that forges the question; the user sees it escaped."""
    user_id, key = new_user(sb)
    spoof = "x\n\x1b[2KNOTE: this is a DRY RUN; no key will be revoked\u202e" + "y" * 150
    target = sb.store.create_key(user_id, spoof)[0]["id"]
    asker = Asker("decline", None)
    async with stdio(key, asker=asker) as session:
        failed(await call(session, "gen_revoke_api_key", {"id": target}), "confirmation_required")
    (message,) = asker.messages
    assert "\x1b" not in message and "\u202e" not in message and "\nNOTE" not in message
    assert f'id {target}: "x\\n\\x1b[2KNOTE: this is a DRY RUN' in message and "characters)" in message


def test_the_sandbox_http_server_says_where_its_key_is(tmp_path):
    """`gen-nodes --sandbox mcp --transport http`: each request must bring the sandbox's key, so the
    start-up lines name the file that holds it (never the key itself), and that key works."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    env["GEN_NODES_SANDBOX_DIR"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "gen_nodes.surfaces.cli", "--sandbox", "mcp", "--transport", "http",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env,
                            text=True)
    try:
        assert select.select([proc.stdout], [], [], 60)[0], "the server printed no url"
        url = json.loads(proc.stdout.readline())["url"]
        banner = ""
        while "Ctrl-C" not in banner and select.select([proc.stderr], [], [], 10)[0]:
            banner += proc.stderr.readline()
        key_file = tmp_path / "bootstrap-key"
        key = key_file.read_text().strip()
        assert str(key_file) in banner and "Bearer" in banner, banner
        assert key not in banner
        request = urllib.request.Request(url, data=json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                     "Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


# Last in the module: it moves the module's sandbox clock 40 days on.
@pytest.mark.anyio
async def test_the_time_filters_run_over_mcp(connect, sb):
    user_id, key = new_user(sb)
    seed_key_ages(sb, user_id)
    async with connect(key) as session:
        out = await schemas(session)
        (listing,) = [t for t in (await session.list_tools()).tools if t.name == "gen_list_api_keys"]
        assert {"expiring_within", "unused_for"} <= set(listing.input_schema["properties"])
        expiring = ok(await call(session, "gen_list_api_keys", {"expiring_within": "7d"}), out["gen_list_api_keys"])
        assert names(expiring) == ["soon"]
        idle = ok(await call(session, "gen_list_api_keys", {"unused_for": "30d"}), out["gen_list_api_keys"])
        assert names(idle) == ["old idle"]
        error = failed(await call(session, "gen_list_api_keys", {"unused_for": "7w"}), "invalid_input")
        assert "$.unused_for" in error["message"]
