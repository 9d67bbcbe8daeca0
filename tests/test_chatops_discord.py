"""Discord chat-ops over real HTTP: interactions signed with a fresh Ed25519 key pair, posted
to the running app; GEN in the sandbox; Discord's interaction webhook as a recording double."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import requests

pytest.importorskip("nacl")

from chat_support import (  # noqa: E402
    DiscordSigner, Recorder, discord_button, discord_command, discord_modal, post_unending, serve_asgi)
from gen_nodes.surfaces.chatops.grammar import Grammar  # noqa: E402
from gen_nodes.surfaces.chatops.discord import application_commands, build_app  # noqa: E402
from gen_nodes.core.registry import Registry  # noqa: E402

EPHEMERAL = 64


@pytest.fixture
def signer():
    return DiscordSigner()


@pytest.fixture
def webhook():
    with Recorder() as recorder:
        yield recorder


@pytest.fixture
def interactions(chat, signer, webhook):
    with serve_asgi(build_app(chat, public_key=signer.public_key, api_url=webhook.url + "/api/v10")) as url:
        yield url + "/interactions"


_TOKENS = iter(range(1, 10_000))


class Person:
    """Someone using /gen in a Discord guild: signed interactions, follow-ups read from the double."""

    def __init__(self, url: str, signer: DiscordSigner, webhook: Recorder, user: str = "111") -> None:
        self.url, self.signer, self.webhook, self.user = url, signer, webhook, user

    def command(self, words: list[str], options: dict | None = None):
        token = f"tok{next(_TOKENS)}"
        ack = self.signer.post(self.url, discord_command(words, options, user=self.user, token=token))
        assert ack.status_code == 200, ack.text
        return ack.json(), f"/api/v10/webhooks/APP1/{token}"

    def answer(self, words: list[str], options: dict | None = None) -> dict:
        ack, hook = self.command(words, options)
        assert ack["type"] == 5, ack
        return self.webhook.wait_for(hook)[0].body

    def press(self, custom_id: str):
        token = f"tok{next(_TOKENS)}"
        ack = self.signer.post(self.url, discord_button(custom_id, user=self.user, token=token))
        assert ack.status_code == 200 and ack.json() == {"type": 6}, ack.text
        return self.webhook.wait_for(f"/api/v10/webhooks/APP1/{token}")[0]


def _approve_id(message: dict) -> str:
    button = message["components"][0]["components"][0]
    assert button["style"] == 4 and button["custom_id"].startswith("gen_approve:")
    return button["custom_id"]


def _deletes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gen_nodes.sandbox" and '"DELETE ' in r.getMessage()]


def test_ping_gets_pong_and_bad_signatures_401(interactions, signer):
    assert signer.post(interactions, {"type": 1}).json() == {"type": 1}
    assert signer.post(interactions, {"type": 1}, tamper=True).status_code == 401
    assert DiscordSigner().post(interactions, {"type": 1}).status_code == 401  # another key pair
    assert signer.post(interactions, {"type": 1}, timestamp=int(time.time()) - 600).status_code == 401
    import requests

    assert requests.post(interactions, json={"type": 1}, timeout=5).status_code == 401  # unsigned


def test_every_command_against_the_sandbox(interactions, signer, webhook, chat, sandbox, gen_log):
    chat.bind("discord", "111", sandbox.api_key)
    person = Person(interactions, signer, webhook)

    ack, _ = person.command(["help"])
    assert ack["type"] == 4 and ack["data"]["flags"] == EPHEMERAL and "/gen keys revoke ID" in ack["data"]["content"]

    me = person.answer(["me"])
    assert "user1@sandbox.local" in me["content"] and me["flags"] == EPHEMERAL
    assert me["allowed_mentions"] == {"parse": []}

    made = person.answer(["keys", "create"], {"name": "discord bot", "expires": "30d"})
    assert made["flags"] == EPHEMERAL and "gen_pat_" in made["content"]
    new_id = next(line.split(": ")[1] for line in made["content"].splitlines() if line.startswith("id: "))

    ack, hook = person.command(["keys", "list"], {"status": "active", "share": True})
    assert ack == {"type": 5, "data": {}}  # shared: the deferral is public
    shared = webhook.wait_for(hook)[0].body
    assert "flags" not in shared and "discord bot" in shared["content"]

    renamed = person.answer(["keys", "rename"], {"id": new_id, "name": "renamed bot"})
    assert '"renamed bot"' in renamed["content"]

    asked = person.answer(["keys", "revoke"], {"id": new_id})
    assert asked["flags"] == EPHEMERAL and '"renamed bot"' in asked["content"]
    edited = person.press(_approve_id(asked))
    assert edited.method == "PATCH" and edited.path.endswith("/messages/@original")
    assert "revoked: yes" in edited.body["content"] and edited.body["components"] == []

    everything = person.answer(["keys", "revoke-all"])
    assert "sandbox bootstrap" in everything["content"]
    done = person.press(_approve_id(everything))
    assert "revoked_all: yes" in done.body["content"]
    assert len(_deletes(gen_log)) == 2

    assert "refused your bound key" in person.answer(["me"])["content"]
    assert "forgotten" in person.answer(["logout"])["content"]
    audit = [json.loads(r.getMessage()) for r in gen_log.records if r.name == "gen_nodes.chatops.audit"]
    assert all(a["platform"] == "discord" and a["workspace"] == "G1" and a["user"] == "111" for a in audit)
    assert ("revoke_api_key", "ok") in [(a["action"], a["outcome"]) for a in audit]


def test_usage_errors_are_answered_at_once(interactions, signer, webhook):
    person = Person(interactions, signer, webhook)
    ack, _ = person.command(["keys", "revoke"], {"id": "six"})
    assert ack["type"] == 4 and "Usage: `/gen keys revoke ID`" in ack["data"]["content"]
    assert ack["data"]["flags"] == EPHEMERAL
    assert webhook.requests == []


def test_login_through_the_modal(interactions, signer, webhook, sandbox, gen_log):
    person = Person(interactions, signer, webhook)
    ack, _ = person.command(["login"])
    assert ack["type"] == 9 and ack["data"]["custom_id"] == "gen_login"
    assert ack["data"]["components"][0]["components"][0]["custom_id"] == "api_key"
    submitted = signer.post(interactions, discord_modal(sandbox.api_key, token="login1"))
    assert submitted.json() == {"type": 5, "data": {"flags": EPHEMERAL}}
    bound = webhook.wait_for("/api/v10/webhooks/APP1/login1")[0].body
    assert "you now act as" in bound["content"] and bound["flags"] == EPHEMERAL
    assert "user1@sandbox.local" in person.answer(["me"])["content"]
    assert sandbox.api_key not in gen_log.text and sandbox.api_key not in webhook.all_text()


def test_a_key_typed_into_an_option_is_refused(interactions, signer, webhook, chat, sandbox):
    chat.bind("discord", "111", sandbox.api_key)
    ack, _ = Person(interactions, signer, webhook).command(["keys", "create"], {"name": sandbox.api_key})
    assert ack["type"] == 4 and "leaked" in ack["data"]["content"]
    assert sandbox.api_key not in json.dumps(ack)


def test_an_unbound_user_is_told_to_log_in(interactions, signer, webhook):
    said = Person(interactions, signer, webhook, user="999").answer(["keys", "list"])
    assert "run `/gen login`" in said["content"] and said["flags"] == EPHEMERAL


def test_only_the_requester_can_press_and_a_double_click_revokes_once(
        interactions, signer, webhook, chat, sandbox, gen_log):
    chat.bind("discord", "111", sandbox.api_key)
    asked = Person(interactions, signer, webhook).answer(["keys", "revoke"], {"id": "1"})
    custom_id = _approve_id(asked)
    refused = Person(interactions, signer, webhook, user="222").press(custom_id)
    assert refused.method == "POST" and refused.body["flags"] == EPHEMERAL
    assert "Only the person who typed this command" in refused.body["content"]
    assert _deletes(gen_log) == []

    answers: list = []
    presses = [threading.Thread(target=lambda: answers.append(
        Person(interactions, signer, webhook).press(custom_id))) for _ in range(3)]
    for t in presses:
        t.start()
    for t in presses:
        t.join()
    assert sum("revoked: yes" in a.body["content"] for a in answers) == 1
    # the others: "already used" once it ran, or that it is running (press again only if no answer comes)
    assert sum("already used" in a.body["content"] or "running" in a.body["content"] for a in answers) == 2
    assert len(_deletes(gen_log)) == 1


def test_a_created_secret_reaches_only_the_creator(interactions, signer, webhook, chat, sandbox, gen_log):
    chat.bind("discord", "111", sandbox.api_key)
    person = Person(interactions, signer, webhook)
    ack, _ = person.command(["keys", "create"], {"name": "x", "share": True})
    assert ack["type"] == 4 and "stays private" in ack["data"]["content"]
    made = person.answer(["keys", "create"], {"name": "the secret one"})
    token = next(w.strip("`") for w in made["content"].split() if w.strip("`").startswith("gen_pat_"))
    person.answer(["keys", "list"], {"share": True})
    sent = webhook.requests
    assert sum(token in r.raw for r in sent) == 1
    assert all(r.body.get("flags") == EPHEMERAL for r in sent if token in r.raw)
    for secret in (token, sandbox.api_key):
        assert secret not in gen_log.text


def test_a_slow_gen_answers_through_the_follow_up(interactions, signer, webhook, chat, sandbox):
    chat.bind("discord", "111", sandbox.api_key)
    sandbox.inject_fault(delay=3.5, method="GET", path="/me")
    ack, hook = Person(interactions, signer, webhook).command(["me"])
    assert ack == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert webhook.matching(hook) == []  # deferred while GEN was still thinking
    assert "user1@sandbox.local" in webhook.wait_for(hook)[0].body["content"]


def test_application_commands_come_from_the_registry_plugins_included():
    from gen_nodes.core.actions import LIST_API_KEYS, REVOKE_API_KEY
    from gen_nodes.core.spec import ActionSpec, Hints

    plugin = ActionSpec(
        id="get_balance", title="Get balance", description="The account's credit balance.", method="GET",
        path="/balance", hints=Hints(read_only=True, idempotent=True),
        input_schema={"type": "object", "properties": {"currency": {"type": "string", "enum": ["usd", "eur"]},
                                                       "days": {"type": "integer", "minimum": 1}},
                      "required": ["currency"], "additionalProperties": False},
        output_schema={"type": "object"})
    [command] = application_commands(Grammar(Registry([LIST_API_KEYS, REVOKE_API_KEY, plugin])))
    top = {o["name"]: o for o in command["options"]}
    assert set(top) == {"keys", "get-balance", "login", "logout", "help", "alerts"}  # alerts: the list action is there
    balance = {o["name"]: o for o in top["get-balance"]["options"]}
    assert balance["currency"]["type"] == 3 and balance["currency"]["required"] is True
    assert [c["value"] for c in balance["currency"]["choices"]] == ["usd", "eur"]
    assert balance["days"]["type"] == 4 and balance["share"]["type"] == 5
    revoke = next(o for o in top["keys"]["options"] if o["name"] == "revoke")
    assert revoke["options"] == [{"name": "id", "description": "The id of the key to revoke (see list_api_keys).",
                                  "required": True, "type": 3}]
    for option in top["keys"]["options"]:
        assert len(option["description"]) <= 100


# -- hardening: bodies, replays, keys inside words ------------------------------------------


def test_a_body_over_one_mib_gets_413_before_it_is_read(interactions, signer):
    status, sent = post_unending(interactions, {"Content-Type": "application/json"})
    assert status == 413 and sent <= 2 * 1024 * 1024  # a server reading it all would never answer
    body, headers = signer.signed({"type": 1, "pad": "x" * (1024 * 1024)})
    assert requests.post(interactions, data=body, headers=headers, timeout=15).status_code == 413


def test_a_replayed_interaction_does_not_act_again(interactions, signer, webhook, chat, sandbox, gen_log):
    chat.bind("discord", "111", sandbox.api_key)
    before = len(sandbox.store.list_keys(sandbox.user["id"]))
    body, headers = signer.signed(discord_command(["keys", "create"], {"name": "twice"}, token="replay"))
    first = requests.post(interactions, data=body, headers=headers, timeout=15)
    assert first.json()["type"] == 5
    webhook.wait_for("/api/v10/webhooks/APP1/replay")
    again = requests.post(interactions, data=body, headers=headers, timeout=15)
    assert again.status_code == 200 and "already handled" in again.json()["data"]["content"]
    assert again.json()["data"]["flags"] == EPHEMERAL
    time.sleep(0.5)  # a wrongly started second run would show itself here
    assert len(webhook.matching("/api/v10/webhooks/APP1/replay")) == 1
    assert len(sandbox.store.list_keys(sandbox.user["id"])) == before + 1


@pytest.mark.parametrize("field, template", [
    ("name", "name={key}"), ("name", "({key})"), ("name", "key:{key}"), ("name", "{key},"), ("name", "<<{key}>>"),
    ("name", "{upper}"), ("expires", "{key}"), ("name", "{key}."),
])
def test_a_key_inside_an_option_never_reaches_gen(interactions, signer, webhook, chat, sandbox, field, template):
    chat.bind("discord", "111", sandbox.api_key)
    before = sandbox.store.list_keys(sandbox.user["id"])
    value = template.format(key=sandbox.api_key, upper=sandbox.api_key.upper())
    ack, _ = Person(interactions, signer, webhook).command(["keys", "create"], {field: value})
    assert ack["type"] == 4 and "leaked" in ack["data"]["content"] and sandbox.api_key not in json.dumps(ack)
    assert sandbox.store.list_keys(sandbox.user["id"]) == before
