"""Chat-ops as the approver channel of a held call: the notify target DMs the person bound to the
GEN account that asked (Slack and Discord doubles on loopback record the DM), and a signed press
on the running chat-ops server decides the routed approval, without running it."""

from __future__ import annotations

import json
import logging
import time

import pytest

pytest.importorskip("slack_bolt")
pytest.importorskip("nacl")

from chat_support import (  # noqa: E402
    DiscordSigner, PlatformDouble, button_payload, discord_button, interaction_form, serve_asgi, slack_post,
    slack_served)
from gen_nodes.surfaces.chatops import discord as discord_adapter  # noqa: E402
from gen_nodes.surfaces.chatops.core import ChatOps  # noqa: E402
from gen_nodes.surfaces.chatops.messages import ChatUser  # noqa: E402
from gen_nodes.safety.approvals import Approvals  # noqa: E402
from gen_nodes.core.errors import InvalidSetting, NobodyToAsk  # noqa: E402
from gen_nodes.safety.notify import Notice, Notifier, parse_targets  # noqa: E402
from gen_nodes.core.registry import default_registry  # noqa: E402
from gen_nodes.state import open_store  # noqa: E402
from gen_nodes.state.secretbox import SecretBox  # noqa: E402

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TOKEN = "xoxb-17653672481-19874698323-approverTokenX"
DISCORD_TOKEN = "MTA5ODc2NTQzMjE.approver.discord-bot-token-x"


@pytest.fixture
def platform():
    with PlatformDouble() as double:
        yield double


@pytest.fixture
def store(tmp_path):
    """The one store the gateway and chat-ops share (``--store sqlite:///...`` on both)."""
    shared = open_store(f"sqlite:///{tmp_path}/shared.db")
    yield shared
    shared.close()


@pytest.fixture
def chat(sandbox, store):
    core = ChatOps(default_registry(), store, SecretBox("approver-test-secret"), base_url=sandbox.base_url,
                   timeout=(2.0, 10.0))
    yield core
    core.close()


@pytest.fixture
def env(platform, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("SLACK_API_URL", platform.url + "/api/")
    monkeypatch.setenv("DISCORD_BOT_TOKEN", DISCORD_TOKEN)
    monkeypatch.setenv("DISCORD_API_URL", platform.url + "/discord/v10")


def _held_by_gateway(store, action="revoke_api_key", arguments=None) -> Notice:
    """A call held by the gateway (as its approval mode opens it), and the notice it sends."""
    approval = Approvals(store).request(action=action, arguments=arguments or {"id": 1}, principal="digest-of-key",
                                        preview=[{"id": 1, "name": "sandbox bootstrap", "status": "active"}],
                                        context={"surface": "gateway"})
    return Notice(approval_id=approval.id, action=action, title="Revoke API key", preview=approval.preview,
                  account={"id": 1, "name": "User One", "email": "user1@sandbox.local"},
                  requested={"surface": "gateway", "at": "2026-12-06T07:00:00Z", "client": None},
                  expires_at="2026-12-06T07:05:00Z")


def _audit(caplog) -> list[tuple[str, str, str]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gen_nodes.chatops.audit"]
    return [(a["user"], a["action"], a["outcome"]) for a in lines]


def _deletes(caplog) -> int:
    return sum('"DELETE ' in r.getMessage() for r in caplog.records if r.name == "gen_nodes.sandbox")


# -- Slack --------------------------------------------------------------------------------------


@pytest.fixture
def slack_events(chat, platform):
    with slack_served(chat, platform.url + "/api/", signing_secret=SIGNING_SECRET, token=SLACK_TOKEN) as url:
        yield url


_PRESSES = iter(range(1, 10_000))


def _slack_press(events, platform, user, action_id, approval) -> dict:
    """A signed button press from ``user``'s DM; the answer that came back through response_url."""
    path = f"/response/{user}/{next(_PRESSES)}/"
    form = interaction_form(button_payload(action_id, approval, platform.url + path, user=user))
    assert slack_post(events, SIGNING_SECRET, form).status_code == 200
    return platform.wait_for(path)[0].body


def test_slack_dm_reaches_the_bound_user_and_only_their_press_decides(
        env, platform, store, chat, sandbox, slack_events, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)  # GEN user 1
    _, other_key = sandbox.create_user()
    chat.bind("slack", "U2", other_key)
    notice = _held_by_gateway(store)

    assert Notifier(parse_targets(["slack"], store=store)).notify(notice) == ["slack"]
    assert platform.wait_for("/api/conversations.open")[0].body["users"] == "U1"
    posted = platform.wait_for("/api/chat.postMessage")[0]
    assert posted.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert posted.body["channel"] == "D0DM"
    blocks = json.loads(posted.body["blocks"]) if isinstance(posted.body["blocks"], str) else posted.body["blocks"]
    assert '"sandbox bootstrap"' in blocks[0]["text"]["text"] and "user1@sandbox.local" in blocks[0]["text"]["text"]
    approve, deny = [b for b in blocks if b["type"] == "actions"][0]["elements"]
    assert (approve["action_id"], approve["style"], approve["value"]) == ("gen_approve", "danger", notice.approval_id)
    assert "confirm" in approve and (deny["action_id"], deny["value"]) == ("gen_deny", notice.approval_id)
    assert Approvals(store).routed_to(notice.approval_id, "slack") == "U1"

    refused = _slack_press(slack_events, platform, "U2", "gen_approve", notice.approval_id)
    assert "not sent to you" in refused["text"] and refused["replace_original"] is False
    assert Approvals(store).get(notice.approval_id).state == "pending"

    approved = _slack_press(slack_events, platform, "U1", "gen_approve", notice.approval_id)
    assert approved["text"].startswith("Approved: the gateway runs it when the workflow next checks")
    assert approved["replace_original"] is True
    decided = Approvals(store).get(notice.approval_id)
    assert (decided.state, decided.decided_by) == ("approved", "slack:U1")  # decided, not run
    again = _slack_press(slack_events, platform, "U1", "gen_deny", notice.approval_id)
    assert "already approved" in again["text"] and Approvals(store).get(notice.approval_id).state == "approved"
    assert _deletes(gen_log) == 0

    elsewhere = _held_by_gateway(store)  # never routed to anyone
    said = _slack_press(slack_events, platform, "U1", "gen_approve", elsewhere.approval_id)
    assert "not sent to you" in said["text"] and Approvals(store).get(elsewhere.approval_id).state == "pending"
    assert _audit(gen_log)[-4:] == [("U2", "revoke_api_key", "refused_not_routed"),
                                    ("U1", "revoke_api_key", "approved"), ("U1", "revoke_api_key", "decided"),
                                    ("U1", "revoke_api_key", "refused_not_routed")]
    assert SLACK_TOKEN not in gen_log.text and sandbox.api_key not in platform.all_text()


def test_slack_deny_decides_once(env, platform, store, chat, sandbox, slack_events):
    chat.bind("slack", "U1", sandbox.api_key)
    notice = _held_by_gateway(store)
    # A server that opens its store in its lifespan passes a function returning it.
    assert parse_targets(["slack"], store=lambda: store)[0].deliver(notice) is True
    denied = _slack_press(slack_events, platform, "U1", "gen_deny", notice.approval_id)
    assert denied["text"].startswith("Denied") and Approvals(store).get(notice.approval_id).state == "denied"


def test_nobody_bound_or_a_refusing_platform_means_nobody_to_ask(env, platform, store, chat, sandbox):
    notice = _held_by_gateway(store)
    for kind in ("slack", "discord"):
        [target] = parse_targets([kind], store=store)
        assert target.deliver(notice) is False  # GEN user 1 has no chat binding yet
        with pytest.raises(NobodyToAsk):
            Notifier([target]).notify(notice)
    assert platform.requests == []  # no DM was even attempted
    chat.bind("slack", "U1", sandbox.api_key)
    chat.bind("discord", "111", sandbox.api_key)
    chat.bindings.unbind("slack", "U1")
    assert parse_targets(["slack"], store=store)[0].deliver(notice) is False  # unbound since: nobody
    platform.refuse = True
    assert parse_targets(["discord"], store=store)[0].deliver(notice) is False
    with pytest.raises(NobodyToAsk):
        Notifier(parse_targets(["discord"], store=store)).notify(notice)


def test_the_dm_goes_to_whoever_is_bound_to_that_gen_account_now(env, platform, store, chat, sandbox):
    _, other_key = sandbox.create_user()
    chat.bind("slack", "U1", sandbox.api_key)
    chat.bind("slack", "U1", other_key)  # U1 now acts as another GEN user
    notice = _held_by_gateway(store)
    assert parse_targets(["slack"], store=store)[0].deliver(notice) is False
    chat.bind("slack", "U7", sandbox.api_key)
    assert parse_targets(["slack"], store=store)[0].deliver(notice) is True
    assert platform.wait_for("/api/conversations.open")[0].body["users"] == "U7"


def test_a_missing_token_or_a_store_chat_ops_cannot_see_refuses_to_start(monkeypatch, store):
    for name in ("SLACK_BOT_TOKEN", "DISCORD_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for kind, name in (("slack", "SLACK_BOT_TOKEN"), ("discord", "DISCORD_BOT_TOKEN")):
        with pytest.raises(InvalidSetting) as refused:
            parse_targets([kind], store=store)
        assert name in refused.value.message and "\n" not in refused.value.message
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
    with pytest.raises(InvalidSetting, match="memory://"):
        parse_targets(["slack"], store=open_store("memory://"))
    with pytest.raises(InvalidSetting, match="store"):
        parse_targets(["slack"])
    assert SLACK_TOKEN not in repr(parse_targets(["slack"], store=store))


def test_a_chat_approval_has_no_page_link_and_a_gateway_route_cannot_decide_it(
        env, platform, store, chat, sandbox, slack_events, monkeypatch):
    linked = []
    monkeypatch.setattr(Approvals, "link", lambda self, approval_id: linked.append(approval_id) or "x" * 32)
    chat.bind("slack", "U1", sandbox.api_key)
    asked = chat.run(ChatUser("slack", "T1", "U1"), chat.parse("keys revoke 1"))
    approval_id = asked.buttons.approval
    assert Approvals(store).by_link(approval_id) is None and linked == []
    # A Discord user with the same id is not the Slack requester: chat-ops' own rule still holds.
    assert "Only the person who typed" in chat.press(ChatUser("discord", "", "U1"), approval_id, True).text
    said = _slack_press(slack_events, platform, "U1", "gen_deny", approval_id)
    assert said["text"].startswith("Cancelled") and linked == []


# -- Discord ------------------------------------------------------------------------------------


@pytest.fixture
def signer():
    return DiscordSigner()


@pytest.fixture
def interactions(chat, signer, platform):
    with serve_asgi(discord_adapter.build_app(chat, public_key=signer.public_key,
                                              api_url=platform.url + "/discord/v10")) as url:
        yield url + "/interactions"


def _discord_press(url, signer, platform, user, custom_id):
    """A signed press in a DM (no guild, ``user`` instead of ``member``); the follow-up it got."""
    token = f"dm{next(_PRESSES)}"
    payload = discord_button(custom_id, user=user, token=token)
    del payload["member"], payload["guild_id"]
    payload["user"] = {"id": user, "username": "u" + user}
    ack = signer.post(url, payload)
    assert ack.status_code == 200 and ack.json() == {"type": 6}, ack.text
    return platform.wait_for(f"/discord/v10/webhooks/APP1/{token}")[0]


def test_discord_dm_reaches_the_bound_user_and_only_their_press_decides(
        env, platform, store, chat, sandbox, signer, interactions, gen_log):
    chat.allow = frozenset({"G1"})  # a DM has no guild: the route admits the press
    chat.bind("discord", "111", sandbox.api_key)
    _, other_key = sandbox.create_user()
    chat.bind("discord", "222", other_key)
    notice = _held_by_gateway(store)

    assert Notifier(parse_targets(["discord"], store=store)).notify(notice) == ["discord"]
    opened = platform.wait_for("/discord/v10/users/@me/channels")[0]
    assert opened.body == {"recipient_id": "111"} and opened.headers["Authorization"] == f"Bot {DISCORD_TOKEN}"
    sent = platform.wait_for("/discord/v10/channels/DM1/messages")[0].body
    assert "flags" not in sent and sent["allowed_mentions"] == {"parse": []}
    assert '"sandbox bootstrap"' in sent["content"]
    approve, deny = sent["components"][0]["components"]
    assert (approve["style"], approve["custom_id"]) == (4, f"gen_approve:{notice.approval_id}")
    assert deny["custom_id"] == f"gen_deny:{notice.approval_id}"

    refused = _discord_press(interactions, signer, platform, "222", approve["custom_id"])
    assert refused.method == "POST" and "not sent to you" in refused.body["content"]
    assert Approvals(store).get(notice.approval_id).state == "pending"
    approved = _discord_press(interactions, signer, platform, "111", approve["custom_id"])
    assert approved.method == "PATCH" and approved.body["components"] == []  # the buttons are gone
    assert approved.body["content"].startswith("Approved: the gateway runs it")
    assert Approvals(store).get(notice.approval_id).state == "approved"
    again = _discord_press(interactions, signer, platform, "111", deny["custom_id"])
    assert "already approved" in again.body["content"]

    elsewhere = _held_by_gateway(store)
    said = _discord_press(interactions, signer, platform, "111", f"gen_approve:{elsewhere.approval_id}")
    assert "not sent to you" in said.body["content"] and Approvals(store).get(elsewhere.approval_id).state == "pending"
    assert ("111", "revoke_api_key", "refused_not_routed") in _audit(gen_log)
    assert ("111", "use", "refused_workspace") not in _audit(gen_log)  # the DM's press was admitted by its route
    assert _deletes(gen_log) == 0 and DISCORD_TOKEN not in gen_log.text


def test_an_mcp_held_call_is_answered_for_the_mcp_server(env, platform, store, chat, sandbox):
    chat.bind("discord", "111", sandbox.api_key)
    approval = Approvals(store).request(action="revoke_all_api_keys", arguments={}, principal="p",
                                        context={"surface": "mcp", "tool": "revoke_all_api_keys"})
    notice = Notice(approval_id=approval.id, action=approval.action, title="Revoke all API keys", preview=None,
                    account={"id": 1}, requested={"surface": "mcp", "client": "claude"}, expires_at="soon")
    assert parse_targets(["discord"], store=store)[0].deliver(notice) is True
    assert "client \"claude\"" in platform.wait_for("/discord/v10/channels/DM1/messages")[0].body["content"]
    said = chat.press(ChatUser("discord", "", "111"), approval.id, approve=True)
    assert said.text.startswith("Approved: the MCP server runs it") and said.replace


def test_a_press_after_the_person_rebound_or_after_expiry_changes_nothing(env, platform, store, chat, sandbox,
                                                                          gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    notice = _held_by_gateway(store)
    assert parse_targets(["slack"], store=store)[0].deliver(notice) is True
    _, other_key = sandbox.create_user()
    chat.bind("slack", "U1", other_key)  # U1 acts as another GEN account now
    said = chat.press(ChatUser("slack", "T1", "U1"), notice.approval_id, approve=True)
    assert "no longer bound to the GEN account" in said.text
    assert Approvals(store).get(notice.approval_id).state == "pending"
    assert _audit(gen_log)[-1] == ("U1", "revoke_api_key", "key_changed")

    chat.bind("slack", "U1", sandbox.api_key)
    short = Approvals(store, ttl=0.3).request(action="revoke_api_key", arguments={"id": 1}, principal="p",
                                             context={"surface": "gateway"})
    assert parse_targets(["slack"], store=store)[0].deliver(
        Notice(short.id, short.action, "Revoke API key", None, {"id": 1}, {"surface": "gateway"}, "soon")) is True
    time.sleep(0.4)
    said = chat.press(ChatUser("slack", "T1", "U1"), short.id, approve=True)
    assert "expired" in said.text and Approvals(store).get(short.id).state == "expired"
    no_account = Notice(short.id, short.action, "Revoke API key", None, None, {"surface": "gateway"}, "soon")
    assert parse_targets(["slack"], store=store)[0].deliver(no_account) is False


def test_discord_presses_from_a_guild_off_the_allow_list_are_still_refused(
        env, platform, store, chat, sandbox, signer, interactions):
    chat.allow = frozenset({"G1"})
    chat.bind("discord", "111", sandbox.api_key)
    asked = chat.run(ChatUser("discord", "G1", "111"), chat.parse("keys revoke 1"))
    token = f"g9{next(_PRESSES)}"
    ack = signer.post(interactions, discord_button(f"gen_approve:{asked.buttons.approval}", guild="G9", token=token))
    assert ack.json() == {"type": 6}
    said = platform.wait_for(f"/discord/v10/webhooks/APP1/{token}")[0].body
    assert "not enabled for this workspace" in said["content"]
    assert Approvals(store).get(asked.buttons.approval).state == "pending"


# -- the MCP server's held call, decided in chat ------------------------------------------------


def _mcp_server(sandbox, store_url: str, secrets_dir) -> "subprocess.Popen[str]":
    """``gen-nodes mcp --transport http --elicitation url --approval-notify slack --store <store_url>``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.Popen(
        [sys.executable, "-m", "gen_nodes.surfaces.cli", "mcp", "--transport", "http", "--port", "0", "--elicitation", "url",
         "--base-url", sandbox.base_url, "--approval-notify", "slack", "--store", store_url,
         "--secrets-dir", str(secrets_dir)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1], env={k: v for k, v in os.environ.items() if not k.startswith("GEN_")},
        text=True)


@pytest.mark.anyio
async def test_a_press_in_slack_decides_a_call_the_mcp_server_holds_and_it_runs_once(
        env, platform, store, chat, sandbox, slack_events, tmp_path, gen_log):
    """``gen-nodes mcp --approval-notify slack --store <the chat-ops store>``: the call is held, the
    bound user's signed press on the chat-ops server approves it, and the MCP call then runs, once."""
    pytest.importorskip("mcp")
    import select

    import anyio
    import httpx2
    import mcp_types as types
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    user, key = sandbox.create_user()
    target = sandbox.store.create_key(user["id"], "victim")[0]["id"]
    chat.bind("slack", "U1", key)
    presses = []

    async def person(context, params):  # reads the DM and presses Approve in Slack, not on the page
        posted = (await anyio.to_thread.run_sync(platform.wait_for, "/api/chat.postMessage"))[0]
        blocks = posted.body["blocks"]
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        approve = [b for b in blocks if b["type"] == "actions"][0]["elements"][0]
        presses.append(await anyio.to_thread.run_sync(
            _slack_press, slack_events, platform, "U1", "gen_approve", approve["value"]))
        return types.ElicitResult(action="accept")

    proc = _mcp_server(sandbox, f"sqlite:///{tmp_path}/shared.db", tmp_path / "s")
    try:
        assert select.select([proc.stdout], [], [], 60)[0], "the server printed no url"
        url = json.loads(proc.stdout.readline())["url"]
        async with httpx2.AsyncClient(headers={"X-API-Key": key}, timeout=60) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write, elicitation_callback=person) as session:
                    await session.initialize()
                    result = await session.call_tool("gen_revoke_api_key", {"id": target})
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
    assert not result.is_error, result.content[0].text
    assert result.structured_content == {"id": target, "revoked": True}
    assert presses[0]["text"].startswith("Approved: the MCP server runs it now")
    assert sandbox.store.get_key(user["id"], target)["status"] == "revoked" and _deletes(gen_log) == 1
    assert platform.wait_for("/api/conversations.open")[0].body["users"] == "U1"
    assert key not in platform.all_text()
