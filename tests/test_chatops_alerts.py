"""Expiry alerts in chat (issue 17 §3): ``/gen alerts on|off`` typed on the running Slack and Discord
apps, the daily digest driven by an injected clock (``DailyRound.tick``) and sent as a bot DM to the
platform doubles, keys made to expire with the sandbox's clock, the Rotate button pressed back."""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("slack_bolt")
pytest.importorskip("nacl")

from chat_support import (  # noqa: E402
    DiscordSigner, PlatformDouble, button_payload, chatops_on, chatops_server, discord_button, discord_command,
    interaction_form, serve_asgi, slack_post, slack_served, slash_form, wait_until)
from cli_support import gen_nodes_cli  # noqa: E402
from gen_nodes.core.actions import REVOKE_API_KEY  # noqa: E402
from gen_nodes.core.errors import InvalidInput  # noqa: E402
from gen_nodes.core.registry import Registry, default_registry  # noqa: E402
from gen_nodes.state import open_store  # noqa: E402
from gen_nodes.state.secretbox import SecretBox  # noqa: E402
from gen_nodes.surfaces.chatops import discord as discord_adapter  # noqa: E402
from gen_nodes.surfaces.chatops.alerts import OptIns, digest_round  # noqa: E402
from gen_nodes.surfaces.chatops.approver import discord_sender, slack_sender  # noqa: E402
from gen_nodes.surfaces.chatops.core import ChatOps  # noqa: E402
from gen_nodes.surfaces.chatops.grammar import Grammar  # noqa: E402
from gen_nodes.surfaces.chatops.messages import ChatUser  # noqa: E402
from gen_nodes.surfaces.chatops.schedule import DailyRound, describe, round_for, time_of_day  # noqa: E402

SIGNING_SECRET = "alerts-signing-secret-0123456789"
SLACK_TOKEN = "xoxb-1111-2222-alertsDigestToken"
DISCORD_TOKEN = "MTA5ODc2NTQzMjE.alerts.discord-bot-token"
NINE = 9 * 3600
DAY = 86400
_URLS = itertools.count(1)


def at(day: int, seconds: int) -> float:
    """Epoch seconds of 2026-12-<day> plus ``seconds``, UTC: the scheduler's injected clock."""
    return datetime(2026, 12, day, tzinfo=timezone.utc).timestamp() + seconds


@pytest.fixture
def platform(monkeypatch):
    """Slack's Web API and Discord's API on loopback, with the bot tokens pointing at them."""
    with PlatformDouble() as double:
        monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
        monkeypatch.setenv("SLACK_API_URL", double.url + "/api/")
        monkeypatch.setenv("DISCORD_BOT_TOKEN", DISCORD_TOKEN)
        monkeypatch.setenv("DISCORD_API_URL", double.url + "/discord/v10")
        yield double


@pytest.fixture
def slack_events(chat, platform):
    with slack_served(chat, platform.url + "/api/", signing_secret=SIGNING_SECRET, token=SLACK_TOKEN) as url:
        yield url


@pytest.fixture
def signer():
    return DiscordSigner()


@pytest.fixture
def interactions(chat, signer, platform):
    app = discord_adapter.build_app(chat, public_key=signer.public_key, api_url=platform.url + "/discord/v10")
    with serve_asgi(app) as url:
        yield url + "/interactions"


def slack_says(events: str, platform: PlatformDouble, text: str, user: str = "U1") -> str:
    """Type ``/gen text`` in Slack; the answer's text, from the ack or the response_url."""
    path = f"/response/{user}/{next(_URLS)}/"
    ack = slack_post(events, SIGNING_SECRET, slash_form(text, platform.url + path, user=user))
    assert ack.status_code == 200, ack.text
    if ack.text:
        return ack.json()["text"]
    return platform.wait_for(path)[0].body["text"]


def slack_button(events: str, platform: PlatformDouble, action_id: str, value: str, user: str = "U1") -> dict:
    """Press a button of a Slack message; the answer that came back through its response_url."""
    path = f"/response/{user}/{next(_URLS)}/"
    form = interaction_form(button_payload(action_id, value, platform.url + path, user=user))
    assert slack_post(events, SIGNING_SECRET, form).status_code == 200
    return platform.wait_for(path)[0].body


def expiring_keys(sandbox) -> dict[str, int]:
    """Keys of GEN user 1, and the sandbox's clock moved so that, at GEN's "now": "soon" expires in
    44 hours, "gone" expired an hour ago, "ancient" 29 hours ago, "later" in about 30 days, and
    "dropped" would expire in 44 hours but is revoked."""
    made = {"ancient": sandbox.store.create_key(1, "ancient", 3600)[0]["id"]}
    sandbox.store.advance(26 * 3600)
    for name, expires_in in (("soon", "2d"), ("gone", 3 * 3600), ("later", "30d"), ("dropped", "2d")):
        made[name] = sandbox.store.create_key(1, name, expires_in)[0]["id"]
    sandbox.store.revoke_key(1, made["dropped"])
    sandbox.store.advance(4 * 3600)
    return made


def dm_blocks(posted) -> list[dict]:
    blocks = posted.body["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def rotate_values(posted) -> list[str]:
    [row] = [b for b in dm_blocks(posted) if b.get("block_id") == "gen_commands"]
    return [button["value"] for button in row["elements"]]


def _audit(caplog) -> list[tuple[str, str]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gen_nodes.chatops.audit"]
    return [(a["action"], a["outcome"]) for a in lines]


# -- the commands -----------------------------------------------------------------------------


def test_alerts_on_and_off_on_slack_for_a_bound_person_only(chat, sandbox, slack_events, platform, gen_log):
    said = slack_says(slack_events, platform, "alerts on")
    assert "`/gen login` first" in said
    assert OptIns(chat.store).users("slack") == []

    chat.bind("slack", "U1", sandbox.api_key)
    for bad, shown in (("within=7w", '"7w"'), ("within=0", "0"), ("within=-3d", '"-3d"')):
        said = slack_says(slack_events, platform, f"alerts on {bad}")
        assert f"`within` must be a span such as `7d`" in said and shown in said and "Nothing was changed" in said
    for wrong in ("alerts", "alerts maybe", "alerts off within=3d", "alerts on 3d"):
        assert "Usage: `/gen alerts on [within=7d]` or `/gen alerts off`" in slack_says(slack_events, platform, wrong)
    assert OptIns(chat.store).users("slack") == []

    assert "Expiry alerts are on" in slack_says(slack_events, platform, "alerts on")
    assert OptIns(chat.store).get("slack", "U1")["within"] == "7d"
    said = slack_says(slack_events, platform, "alerts on within=3d")
    assert "within 3d" in said and "--digest-at" in said  # this server was started without a digest time
    assert OptIns(chat.store).get("slack", "U1")["within"] == "3d" and OptIns(chat.store).users("slack") == ["U1"]
    chat.digest_at = "08:30"
    assert "each day at 08:30 UTC" in slack_says(slack_events, platform, "alerts on within=3600")
    assert OptIns(chat.store).get("slack", "U1")["within"] == 3600  # seconds, as the list filter takes them

    assert slack_says(slack_events, platform, "alerts off") == "Expiry alerts are off."
    assert OptIns(chat.store).users("slack") == [] and OptIns(chat.store).get("slack", "U1") is None
    assert "were not on" in slack_says(slack_events, platform, "alerts off")
    assert ("alerts", "not_bound") in _audit(gen_log) and ("alerts", "off") in _audit(gen_log)
    assert "/gen alerts on [within=7d]" in chat.grammar.help()
    assert sandbox.api_key not in gen_log.text + platform.all_text()


def test_alerts_on_and_off_on_discord(chat, sandbox, signer, interactions, platform):
    chat.bind("discord", "111", sandbox.api_key)

    def says(words, options=None) -> str:
        token = f"al{next(_URLS)}"
        ack = signer.post(interactions, discord_command(words, options, token=token)).json()
        if ack["type"] == 4:
            return ack["data"]["content"]
        return platform.wait_for(f"/discord/v10/webhooks/APP1/{token}")[0].body["content"]

    assert "must be a span" in says(["alerts", "on"], {"within": "2w"})
    assert "Usage:" in says(["alerts", "on"], {"span": "2d"})
    assert "within 2d" in says(["alerts", "on"], {"within": "2d"})
    optin = OptIns(chat.store).get("discord", "111")
    assert (optin["within"], optin["team"]) == ("2d", "G1")
    assert "within 7d" in says(["alerts", "on"])
    assert says(["alerts", "off"]) == "Expiry alerts are off."
    [command] = discord_adapter.application_commands(Grammar(chat.registry))
    alerts = next(o for o in command["options"] if o["name"] == "alerts")
    assert [(o["name"], [p["name"] for p in o["options"]]) for o in alerts["options"]] == [("on", ["within"]),
                                                                                           ("off", [])]
    without_list = Grammar(Registry([REVOKE_API_KEY]))  # a digest needs the list action
    [command] = discord_adapter.application_commands(without_list)
    assert "alerts" not in {o["name"] for o in command["options"]} and "alerts" not in without_list.help()


# -- the digest, on Slack ---------------------------------------------------------------------


def test_the_slack_digest_goes_once_a_day_lists_expiring_and_just_expired_keys(chat, sandbox, slack_events,
                                                                              platform, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    assert "Expiry alerts are on" in slack_says(slack_events, platform, "alerts on within=3d")
    made = expiring_keys(sandbox)
    daily = DailyRound(round_for(chat, "slack", slack_sender()), NINE)

    assert daily.tick(at(6, NINE - 60)) == at(6, NINE)  # not yet: wake at 09:00
    assert platform.matching("/api/chat.postMessage") == []
    assert daily.tick(at(6, NINE)) == at(7, NINE)
    [posted] = platform.wait_for("/api/chat.postMessage")
    assert platform.matching("/api/conversations.open")[0].body["users"] == "U1"
    text = posted.body["text"]
    assert "Expiring within 3d:" in text and '"soon"' in text and "Expired in the last day:" in text
    assert '"gone"' in text and '"ancient"' not in text and '"later"' not in text and '"dropped"' not in text
    assert rotate_values(posted) == [f"keys rotate {made['soon']}", f"keys rotate {made['gone']}"]

    assert daily.tick(at(6, NINE + 3600)) == at(7, NINE)  # later that day: nothing more
    other_process = ChatOps(chat.registry, chat.store, chat.bindings.box, base_url=sandbox.base_url)
    try:  # another process sharing the store runs its own round that day: the claim stops it
        other = DailyRound(round_for(other_process, "slack", slack_sender()), NINE)
        other.tick(at(6, NINE + 5))
    finally:
        other_process.close()
    assert len(platform.matching("/api/chat.postMessage")) == 1

    daily.tick(at(7, NINE))  # the next day: again
    assert len(platform.wait_for("/api/chat.postMessage", 2)) == 2
    assert [o for a, o in _audit(gen_log) if a == "digest"] == ["sent", "sent"]
    assert sandbox.api_key not in gen_log.text + platform.all_text() and "token" not in text


def test_nothing_is_sent_without_a_binding_or_a_matching_key(chat, sandbox, platform):
    _, other_key = sandbox.create_user()
    for user, key in (("U1", sandbox.api_key), ("U2", other_key)):
        chat.bind("slack", user, key)
        chat.run(ChatUser("slack", "T1", user), chat.parse("alerts on within=3d"))
    expiring_keys(sandbox)  # all of them GEN user 1's, U1's
    chat.bindings.unbind("slack", "U1")  # opted in, then logged out

    outcome = digest_round(chat, "slack", datetime(2026, 12, 6).date(), slack_sender())
    assert (outcome.sent, outcome.unbound, outcome.nothing) == ([], ["U1"], ["U2"])
    assert platform.matching("/api/") == []


def test_a_refused_dm_releases_the_claim_and_the_round_is_tried_again(chat, sandbox, platform, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    chat.run(ChatUser("slack", "T1", "U1"), chat.parse("alerts on within=3d"))
    expiring_keys(sandbox)
    platform.refuse = True
    daily = DailyRound(round_for(chat, "slack", slack_sender()), NINE, retry_after=60)

    assert daily.tick(at(6, NINE)) == at(6, NINE + 60)  # failed: again in a minute
    assert ("digest", "send_failed") in _audit(gen_log)
    platform.refuse = False
    assert daily.tick(at(6, NINE + 60)) == at(7, NINE)
    posts = platform.wait_for("/api/chat.postMessage", 2)  # the refused one, then this one
    assert len(posts) == 2 and posts[-1].body["text"].startswith("*Your GEN keys that need attention*")
    assert daily.tick(at(6, NINE + 120)) == at(7, NINE) and len(platform.matching("/api/chat.postMessage")) == 2


def test_a_revoked_login_key_is_told_once_a_day_not_retried(chat, sandbox, platform, gen_log):
    """The key a person logged in with was revoked (rotated, say): one DM says to log in again, and the
    day's claim is kept, so GEN is not asked with the dead key again that day."""
    key = sandbox.store.create_key(1, "chat login")[1]
    chat.bind("slack", "U1", key)
    chat.run(ChatUser("slack", "T1", "U1"), chat.parse("alerts on"))
    sandbox.store.revoke_key(1, sandbox.store.list_keys(1)[-1]["id"])
    daily = DailyRound(round_for(chat, "slack", slack_sender()), NINE, retry_after=60)
    assert daily.tick(at(6, NINE)) == at(7, NINE)  # not failed: nothing to retry today
    [posted] = platform.wait_for("/api/chat.postMessage")
    assert "no longer accepts the key you logged in with" in posted.body["text"] and "/gen login" in posted.body["text"]
    assert ("digest", "key_invalid") in _audit(gen_log)
    assert daily.tick(at(6, NINE + 120)) == at(7, NINE) and len(platform.matching("/api/chat.postMessage")) == 1


def test_an_unexpected_failure_for_one_person_releases_only_their_claim(chat, sandbox, platform):
    for user in ("U1", "U2"):
        chat.bind("slack", user, sandbox.api_key)
        chat.run(ChatUser("slack", "T1", user), chat.parse("alerts on within=3d"))
    expiring_keys(sandbox)
    calls = []

    def send(user, reply):
        calls.append(user)
        if len(calls) == 1:
            raise ConnectionResetError("the platform hung up")
        return True

    day = datetime(2026, 12, 6).date()
    first = digest_round(chat, "slack", day, send)
    assert len(first.failed) == 1 and len(first.sent) == 1  # the other person still got theirs
    again = digest_round(chat, "slack", day, send)
    assert again.sent == first.failed and again.already == first.sent


def test_without_a_rotation_action_the_digest_has_no_rotate_buttons(sandbox, platform):
    from gen_nodes.core.actions import GET_ME, LIST_API_KEYS

    with chatops_on(sandbox, registry=Registry([GET_ME, LIST_API_KEYS, REVOKE_API_KEY])) as chat:
        chat.bind("slack", "U1", sandbox.api_key)
        chat.run(ChatUser("slack", "T1", "U1"), chat.parse("alerts on within=3d"))
        expiring_keys(sandbox)
        assert digest_round(chat, "slack", datetime(2026, 12, 6).date(), slack_sender()).sent == ["U1"]
    [posted] = platform.wait_for("/api/chat.postMessage")
    assert [b for b in dm_blocks(posted) if b.get("block_id") == "gen_commands"] == []
    assert "rotate" not in posted.body["text"].lower()


def test_the_rotate_button_starts_what_typing_the_command_starts(chat, sandbox, slack_events, platform):
    chat.bind("slack", "U1", sandbox.api_key)
    chat.run(ChatUser("slack", "T1", "U1"), chat.parse("alerts on within=3d"))
    made = expiring_keys(sandbox)
    digest_round(chat, "slack", datetime(2026, 12, 6).date(), slack_sender())
    [posted] = platform.wait_for("/api/chat.postMessage")
    [soon, _] = [b for b in dm_blocks(posted) if b.get("block_id") == "gen_commands"][0]["elements"]

    pressed = slack_button(slack_events, platform, soon["action_id"], soon["value"])
    typed = slack_says(slack_events, platform, f"keys rotate {made['soon']}")
    assert pressed["text"] == typed and pressed["response_type"] == "ephemeral"
    approve = _approve_button(pressed)
    assert approve["action_id"] == "gen_approve" and '"soon"' in pressed["text"]

    done = slack_button(slack_events, platform, "gen_approve", approve["value"])
    assert done["response_type"] == "ephemeral" and "Secret `token`" in done["text"]  # only to the requester
    keys = {k["id"]: k for k in chat.registry.run("list_api_keys", {}, api_key=sandbox.api_key,
                                                   base_url=sandbox.base_url)["api_keys"]}
    assert keys[made["soon"]]["status"] == "revoked"
    assert len(keys) == len(made) + 2  # the bootstrap key, the ones made here, and one new key


def _approve_button(message: dict) -> dict:
    actions = [b for b in message["blocks"] if b.get("block_id") == "gen_approval"]
    assert actions, message["text"]
    return actions[0]["elements"][0]


# -- the digest, on Discord -------------------------------------------------------------------


def test_the_discord_digest_is_a_dm_whose_rotate_button_asks_for_approval(chat, sandbox, signer, interactions,
                                                                          platform):
    chat.allow = frozenset({"G1"})  # the DM has no guild: the person opted in from G1
    chat.bind("discord", "111", sandbox.api_key)
    token = f"al{next(_URLS)}"
    opted_in = signer.post(interactions, discord_command(["alerts", "on"], {"within": "3d"}, token=token))
    assert opted_in.json()["type"] == 5
    platform.wait_for(f"/discord/v10/webhooks/APP1/{token}")
    made = expiring_keys(sandbox)

    DailyRound(round_for(chat, "discord", discord_sender()), NINE).tick(at(6, NINE))
    assert platform.wait_for("/discord/v10/users/@me/channels")[0].body == {"recipient_id": "111"}
    sent = platform.wait_for("/discord/v10/channels/DM1/messages")[0]
    assert sent.headers["Authorization"] == f"Bot {DISCORD_TOKEN}" and "flags" not in sent.body
    assert '"soon"' in sent.body["content"] and '"gone"' in sent.body["content"]
    buttons = [c for row in sent.body["components"] for c in row["components"]]
    assert [b["custom_id"] for b in buttons] == [f"gen_run:keys rotate {made['soon']}",
                                                 f"gen_run:keys rotate {made['gone']}"]

    token = f"dm{next(_URLS)}"
    press = discord_button(buttons[0]["custom_id"], token=token)
    del press["member"], press["guild_id"]  # pressed in the DM
    press["user"] = {"id": "111"}
    assert signer.post(interactions, press).json() == {"type": 6}
    answer = platform.wait_for(f"/discord/v10/webhooks/APP1/{token}")[0]
    assert answer.method == "POST" and answer.body.get("flags") == 64  # a new private message, not an edit
    approve = answer.body["components"][0]["components"][0]
    assert approve["custom_id"].startswith("gen_approve:") and approve["style"] == 4

    token = f"dm{next(_URLS)}"
    press = discord_button(approve["custom_id"], token=token)
    del press["member"], press["guild_id"]  # approved in the DM too: counts as from G1, where it was asked
    press["user"] = {"id": "111"}
    assert signer.post(interactions, press).json() == {"type": 6}
    done = platform.wait_for(f"/discord/v10/webhooks/APP1/{token}")[0]
    assert done.method == "PATCH" and "Secret `token`" in done.body["content"]
    assert sandbox.api_key not in platform.all_text()


# -- the scheduler and --digest-at ------------------------------------------------------------


def test_the_scheduler_catches_up_after_a_late_start_and_bounds_its_retries():
    rounds: list[tuple[str, bool]] = []
    results = iter([False, False, False, False, True])

    def run(day) -> bool:
        ok = next(results, True)
        rounds.append((day.isoformat(), ok))
        return ok

    daily = DailyRound(run, NINE, retry_after=30, retries=2)
    assert daily.tick(at(6, NINE + 7200)) == at(6, NINE + 7230)  # started at 11:00: today's round at once
    assert daily.tick(at(6, NINE + 7230)) == at(6, NINE + 7260)
    assert daily.tick(at(6, NINE + 7260)) == at(7, NINE)  # a third failure: no more tries that day
    assert rounds == [("2026-12-06", False)] * 3
    assert daily.tick(at(7, NINE)) == at(7, NINE + 30)  # the next day starts afresh (and fails once more)
    assert daily.tick(at(7, NINE + 30)) == at(8, NINE)
    assert rounds[-1] == ("2026-12-07", True)

    broken = DailyRound(lambda day: 1 / 0, NINE, retry_after=30)
    assert broken.tick(at(6, NINE)) == at(6, NINE + 30)  # an exception is a failed round, not a dead thread


def test_digest_at_takes_hh_mm_or_hh_mm_ss_utc():
    assert time_of_day("08:30") == 8 * 3600 + 30 * 60 and time_of_day("23:59:59") == DAY - 1
    assert describe(time_of_day("08:30")) == "08:30" and describe(time_of_day("07:05:09")) == "07:05:09"
    for wrong in ("8:30", "24:00", "12:60", "12:00:60", "noon", "", "12:00:00:00"):
        with pytest.raises(InvalidInput) as refused:
            time_of_day(wrong)
        assert "HH:MM" in refused.value.message and "08:30" in refused.value.hint


def test_a_bad_digest_time_or_a_missing_discord_bot_token_stops_the_start(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "GEN_NODES_CHATOPS"))},
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_BOT_TOKEN": SLACK_TOKEN,
           "GEN_NODES_CHATOPS_SECRET": "alerts-chatops-secret-0123456789", "DISCORD_PUBLIC_KEY": "00" * 32}
    store = ("--store", f"sqlite:///{tmp_path / 'c.db'}")
    done = gen_nodes_cli("chatops", "slack", *store, "--digest-at", "9am", env=env)
    error = json.loads(done.stderr)["error"]
    assert done.returncode == 2 and "--digest-at must be a UTC time of day" in error["message"]
    assert "08:30" in error["hint"]
    done = gen_nodes_cli("chatops", "discord", *store, "--digest-at", "09:00", env=env)
    assert done.returncode == 2 and "DISCORD_BOT_TOKEN" in json.loads(done.stderr)["error"]["message"]


# -- done when: two chat-ops processes on one Redis ---------------------------------------------


def _rounds(log, day: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if f"slack digest round of {day}:" in line]


@pytest.mark.deployment
def test_two_slack_processes_on_one_redis_send_one_digest_per_person_a_day(redis_db, sandbox, tmp_path):
    secret = "alerts-chatops-secret-0123456789"
    store = open_store(redis_db)
    core = ChatOps(default_registry(), store, SecretBox(secret), base_url=sandbox.base_url)
    _, other_key = sandbox.create_user()
    try:
        for user, key in (("U1", sandbox.api_key), ("U2", other_key)):  # GEN users 1 and 2
            core.bind("slack", user, key)
            assert "are on" in core.run(ChatUser("slack", "T1", user), core.parse("alerts on within=3d")).text
    finally:
        core.close()
        store.close()
    expiring_keys(sandbox)  # user 1's
    sandbox.store.create_key(2, "user two's", "1d")
    digest_at = datetime.now(timezone.utc) + timedelta(seconds=8)  # about to come: both processes are up by then
    day = digest_at.date().isoformat()
    with PlatformDouble() as platform:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_", "GEN_NODES_CHATOPS"))},
               "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_BOT_TOKEN": SLACK_TOKEN,
               "SLACK_API_URL": platform.url + "/api/", "GEN_NODES_CHATOPS_SECRET": secret}
        common = ("slack", "--store", redis_db, "--base-url", sandbox.base_url, "--digest-at",
                  digest_at.strftime("%H:%M:%S"))
        logs = [tmp_path / name for name in ("a.log", "b.log", "a2.log", "b2.log")]
        with chatops_server(*common, env=env, log=logs[0]), chatops_server(*common, env=env, log=logs[1]):
            # Both are up before the time, unless the machine is very loaded (then they catch up at start).
            if datetime.now(timezone.utc) < digest_at - timedelta(seconds=1):
                assert not _rounds(logs[0], day) and not _rounds(logs[1], day)  # nothing before the time
            wait_until(lambda: _rounds(logs[0], day) and _rounds(logs[1], day), timeout=40)
        assert sorted(r.body["users"] for r in platform.matching("/api/conversations.open")) == ["U1", "U2"]
        assert len(platform.matching("/api/chat.postMessage")) == 2

        with chatops_server(*common, env=env, log=logs[2]), chatops_server(*common, env=env, log=logs[3]):
            # Restarted after the time: each catches up on today's round at once, and finds both claimed.
            wait_until(lambda: _rounds(logs[2], day) and _rounds(logs[3], day), timeout=40)
        assert "0 sent" in _rounds(logs[2], day)[0] and "2 already" in _rounds(logs[3], day)[0]
        assert len(platform.matching("/api/chat.postMessage")) == 2
        for log in logs:
            assert sandbox.api_key not in log.read_text() and other_key not in log.read_text()
