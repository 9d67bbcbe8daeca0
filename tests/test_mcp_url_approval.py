"""URL-mode elicitation over streamable HTTP: the person approves on gen-nodes' own page.

A real ``gen-nodes mcp --transport http --elicitation url`` server and the SDK's ClientSession
(which declares URL elicitation). The elicitation callback plays the person: it opens the
page it was sent to, reads it, and clicks Approve or Deny, as a browser would.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

pytest.importorskip("mcp")

import httpx2  # noqa: E402
import mcp_types as types  # noqa: E402
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from approval_support import Receiver  # noqa: E402
from gen_nodes.safety.notify import SIGNATURE_HEADER, verify  # noqa: E402


REPO = Path(__file__).resolve().parents[1]
NOTIFY_SECRET = "mcp-notify-" + "k" * 24


@pytest.fixture(scope="module")
def hook():
    """The operator's webhook (``--approval-notify``): the notify target besides the client's own channel."""
    made = Receiver()
    yield made
    made.close()


@contextmanager
def mcp_server(sb, secrets_dir, *options: str):
    """``gen-nodes mcp --transport http --elicitation url`` on a free port in front of ``sb``; its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    env["GEN_NODES_NOTIFY_SECRET"] = NOTIFY_SECRET
    proc = subprocess.Popen([sys.executable, "-m", "gen_nodes.surfaces.cli", "mcp", "--transport", "http", "--port", "0",
                             "--elicitation", "url", "--base-url", sb.base_url, "--secrets-dir", str(secrets_dir),
                             *options], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, env=env, text=True)
    try:
        assert select.select([proc.stdout], [], [], 60)[0], "the server printed no url"
        yield json.loads(proc.stdout.readline())["url"]
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def url(sb, tmp_path_factory, hook):
    with mcp_server(sb, tmp_path_factory.mktemp("s"), "--approval-notify", hook.url) as served:
        yield served


class Person:
    """Opens the page of a URL elicitation and clicks ``decision`` (None: does not open it)."""

    def __init__(self, decision: str | None) -> None:
        self.decision, self.seen, self.pages = decision, [], []

    async def __call__(self, context, params):
        self.seen.append(params)
        if self.decision is None:
            return types.ElicitResult(action="decline")
        assert params.mode == "url"
        async with httpx.AsyncClient() as browser:
            page = await browser.get(params.url)
            self.pages.append(page)
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
            clicked = await browser.post(params.url, data={"csrf": token, "decision": self.decision},
                                         headers={"Origin": params.url.split("/approve/")[0]})
            assert clicked.status_code == 303, clicked.text
        return types.ElicitResult(action="accept")


async def revoke(url: str, key: str, person: Person, target: int) -> types.CallToolResult:
    async with httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, elicitation_callback=person) as session:
                await session.initialize()
                return await session.call_tool("gen_revoke_api_key", {"id": target})


@pytest.mark.anyio
async def test_approve_on_the_page_runs_the_call_once(sb, url, hook):
    user, key = sb.create_user()
    target = sb.store.create_key(user["id"], "victim \x1b[31m")[0]["id"]
    person = Person("approve")
    result = await revoke(url, key, person, target)
    assert not result.is_error, result.content[0].text
    assert result.structured_content == {"id": target, "revoked": True}
    assert sb.store.get_key(user["id"], target)["status"] == "revoked"
    (params,) = person.seen
    assert params.url.startswith(url.removesuffix("/mcp") + "/approve/")
    handle = params.url.rsplit("/", 1)[1]
    assert handle not in result.content[0].text  # the model never sees the link
    page = person.pages[0]
    assert "victim \\x1b[31m" in page.text and "\x1b" not in page.text
    assert "it runs now" in page.text and "Asked through the MCP server by the MCP client" in page.text
    assert user["email"] in page.text
    # The operator's webhook got the same link, signed, naming the MCP client.
    raw, headers = hook.received[-1]
    notice = json.loads(raw)["approval"]
    assert verify(raw, headers[SIGNATURE_HEADER.lower()], NOTIFY_SECRET) and notice["url"] == params.url
    assert notice["requested"]["surface"] == "mcp" and notice["requested"]["client"]
    assert notice["account"]["email"] == user["email"]
    # Only the link opens the page: the approval id is a 404 there.
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(params.url.replace(handle, notice["id"]))).status_code == 404
    assert page.headers["x-frame-options"] == "DENY"
    # The link is spent: opening it again shows the outcome, with nothing to click.
    async with httpx.AsyncClient() as browser:
        again = await browser.get(params.url)
    assert "<form" not in again.text and "done" in again.text.lower()


@pytest.mark.anyio
@pytest.mark.parametrize("decision", ["deny", None], ids=["denied-on-the-page", "page-not-opened"])
async def test_deny_or_not_opening_the_page_changes_nothing(sb, url, decision):
    user, key = sb.create_user()
    target = sb.store.create_key(user["id"], "victim")[0]["id"]
    result = await revoke(url, key, Person(decision), target)
    assert result.is_error
    error = json.loads(result.content[0].text)["error"]
    assert error["type"] == "confirmation_required" and error["declined"] is True
    assert sb.store.get_key(user["id"], target)["status"] == "active"


@pytest.mark.anyio
async def test_the_2026_era_gets_the_page_through_an_input_required_round(sb, url):
    """On 2026-07-28 connections the question is an InputRequiredResult; the answer comes in a second round."""
    from mcp.client.session import ClientRequestContext

    user, key = sb.create_user()
    target = sb.store.create_key(user["id"], "victim")[0]["id"]
    person = Person("approve")
    async with httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=60) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, elicitation_callback=person) as session:
                await session.discover()
                assert session.protocol_version == "2026-07-28"
                first = await session.call_tool("gen_revoke_api_key", {"id": target}, allow_input_required=True)
                assert isinstance(first, types.InputRequiredResult)
                assert sb.store.get_key(user["id"], target)["status"] == "active"
                answers = {name: await session.dispatch_input_request(
                    ClientRequestContext(session=session, request_id="r1"), req)
                    for name, req in first.input_requests.items()}
                done = await session.call_tool("gen_revoke_api_key", {"id": target}, input_responses=answers,
                                               request_state=first.request_state, allow_input_required=True)
                assert done.structured_content == {"id": target, "revoked": True}
                assert "/approve/" not in done.model_dump_json() + first.request_state
                # Replaying the same round runs nothing again.
                again = await session.call_tool("gen_revoke_api_key", {"id": target}, input_responses=answers,
                                                request_state=first.request_state, allow_input_required=True)
                assert again.is_error and "already used" in again.content[0].text
    assert person.seen[0].mode == "url" and sb.store.get_key(user["id"], target)["status"] == "revoked"


@pytest.mark.anyio
async def test_a_host_with_a_userinfo_trick_gets_no_link(sb, url, hook):
    """``Host: 127.0.0.1:<port>@evil.example`` passed the SDK's ``127.0.0.1:*`` check and made the link
    ``http://127.0.0.1:<port>@evil.example/approve/<secret>``: now the Host guard refuses it first."""
    _, key = sb.create_user()
    port = url.split(":")[2].split("/")[0]
    sent = len(hook.received)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "clientInfo": {"name": "attacker", "version": "1"},
        "capabilities": {"elicitation": {"url": {}}}}}
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, json=initialize, headers={
            "Host": f"127.0.0.1:{port}@evil.example", "X-API-Key": key,
            "Accept": "application/json, text/event-stream"})
    assert answer.status_code == 421, answer.text
    assert len(hook.received) == sent and "evil.example" not in str(hook.received)


@pytest.mark.anyio
async def test_a_key_with_ten_calls_waiting_is_refused_before_anyone_is_asked(sb, tmp_path):
    """The cap lives in the store: 10 calls of this key held elsewhere (another server on the same
    ``--store``) leave no place, and the client is not even sent a page."""
    import hashlib

    from gen_nodes.safety.approvals import MAX_PENDING, Approvals
    from gen_nodes.state import open_store

    user, key = sb.create_user()
    target = sb.store.create_key(user["id"], "victim")[0]["id"]
    store_url = f"sqlite:///{tmp_path}/approvals.db"
    shared = open_store(store_url)
    try:
        elsewhere = Approvals(shared)
        for _ in range(MAX_PENDING):
            elsewhere.request(action="revoke_api_key", arguments={"id": target},
                              principal=hashlib.sha256(key.encode()).hexdigest(), context={"surface": "mcp"})
        with mcp_server(sb, tmp_path / "s", "--store", store_url) as served:
            person = Person("approve")
            result = await revoke(served, key, person, target)
    finally:
        shared.close()
    assert result.is_error and json.loads(result.content[0].text)["error"]["type"] == "too_many_approvals"
    assert person.seen == [] and sb.store.get_key(user["id"], target)["status"] == "active"
