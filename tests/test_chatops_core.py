"""The platform-free chat core: grammar from the specs (plugins included), parsing, help,
safe names, replies, bindings sealed at rest. Platform wiring is tested in
test_chatops_slack.py and test_chatops_discord.py."""

from __future__ import annotations

import json

import pytest

from gen_nodes.core.actions import GET_ME, LIST_API_KEYS, REVOKE_API_KEY
from gen_nodes.surfaces.chatops.coercion import coerce
from gen_nodes.surfaces.chatops.core import ChatOps
from gen_nodes.surfaces.chatops.grammar import Grammar
from gen_nodes.surfaces.chatops.messages import ChatUser
from gen_nodes.surfaces.chatops.render import render
from gen_nodes.safety.display import quoted
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.core.spec import ActionSpec, Chat, Hints
from gen_nodes.state import open_store
from gen_nodes.state.secretbox import SecretBox

PLUGIN = ActionSpec(
    id="get_balance", title="Get balance", description="The account's credit balance.", method="GET",
    path="/balance", hints=Hints(read_only=True, idempotent=True),
    input_schema={"type": "object", "required": ["currency"], "additionalProperties": False,
                  "properties": {"currency": {"type": "string", "enum": ["usd", "eur"]},
                                 "days": {"type": "integer", "minimum": 1}}},
    output_schema={"type": "object"})


@pytest.fixture
def chat():
    return ChatOps(default_registry(), open_store("memory://"), SecretBox("core-test-secret"))


def test_the_issue_grammar_comes_from_the_specs(chat):
    usage = {" ".join(words): chat.grammar.usage(e) for words, e in chat.grammar.entries.items()}
    assert usage == {
        "me": "/gen me [--share]",
        "keys list": "/gen keys list [active|expired|revoked] [expiring=7d] [unused=30d] [--share]",
        "keys create": "/gen keys create [NAME...] [expires=30d]",
        "keys rename": "/gen keys rename ID NEW NAME...",
        "keys revoke-all": "/gen keys revoke-all",
        "keys revoke": "/gen keys revoke ID",
        "keys rotate": "/gen keys rotate ID [NEW NAME...] [expires=90d]",
    }
    for spec in default_registry():
        assert spec.chat is not None, spec.id


@pytest.mark.parametrize("text, action, arguments", [
    ("me", "get_me", {}),
    ("keys list", "list_api_keys", {}),
    ("KEYS List revoked", "list_api_keys", {"status": "revoked"}),
    ("keys create my ci key", "create_api_key", {"name": "my ci key"}),
    ("keys create  \u201cquoted   name\u201d  expires=30d", "create_api_key", {"name": "quoted name", "expires_in": "30d"}),
    ("keys create x expires_in=2592000", "create_api_key", {"name": "x", "expires_in": 2592000}),
    ("keys rename 6 new name here", "update_api_key", {"id": 6, "name": "new name here"}),
    ("keys revoke 6", "revoke_api_key", {"id": 6}),
    ("keys revoke-all", "revoke_all_api_keys", {}),
])
def test_parsing(chat, text, action, arguments):
    command = chat.parse(text)
    assert (command.kind, command.spec.id, dict(command.arguments)) == ("action", action, arguments)


@pytest.mark.parametrize("text, expected", [
    ("keys revoke", '$: missing required field "id"'),
    ("keys revoke 0", "$.id: 0 is not valid here"),
    ("keys revoke 6 7", "Too many words"),
    ("keys list sideways", '$.status: "sideways" is not one of ["active", "expired", "revoked"]'),
    ("keys create x expires=soon", '$.expires_in: "soon" is not valid'),
    ("keys rename 6", '$: missing required field "name"'),
    ("keys revoke-all --share", "works only for read-only commands"),
])
def test_bad_arguments_get_the_schema_message_and_the_usage_line(chat, text, expected):
    command = chat.parse(text)
    assert command.kind == "answer"
    assert expected in command.reply.text
    assert command.reply.text.splitlines()[-1].startswith("Usage: `/gen keys ")


def test_unknown_commands_suggest_and_list_everything(chat):
    text = chat.parse("keys lst").reply.text
    assert "Unknown command \"keys lst\". Did you mean `/gen keys list`?" in text and "/gen keys revoke ID" in text
    assert chat.parse("").reply.text == chat.parse("help").reply.text == chat.grammar.help()


def test_a_typed_key_is_refused_wherever_it_appears(chat):
    for text in ("login gen_pat_AbCdEf0123456789xyz", "keys create gen_pat_AbCdEf0123456789xyz",
                 "login anything-at-all", "keys rename 6 `ref_0123456789abcdef0`"):
        command = chat.parse(text)
        assert command.kind == "answer" and command.audit == "refused_inline_key", text
        assert "leaked" in command.reply.text and "gen_pat_AbC" not in command.reply.text
    assert chat.parse("login").kind == "login" and chat.parse("logout").kind == "logout"
    # a name that merely starts like a prefix is fine
    assert chat.parse("keys create gen_ci").kind == "action"


KEY = "gen_pat_AbCdEf0123456789xyzAbCdEf0123456789xy"


@pytest.mark.parametrize("text", [
    f"keys create name={KEY}", f"keys create ({KEY})", f"keys create key:{KEY}", f"keys create {KEY},",
    f"keys create <<{KEY}>>", f"keys create {KEY.upper()}", f"keys create x expires={KEY}", f"keys rename 1 {KEY}.",
    f"keys create my{KEY}", "keys create (gen_0123456789abcdef)", "keys create REF_0123456789ABCDEF!",
])
def test_a_key_inside_a_word_is_refused_before_parsing(chat, text):
    command = chat.parse(text)
    assert (command.kind, command.audit) == ("answer", "refused_inline_key")
    words, value = ("keys", "create"), text.split(" ", 2)[2]
    assert chat.parse_fields(words, {"name": value}).audit == "refused_inline_key"
    assert chat.parse_fields(words, {"name": "ok", "expires": value}).audit == "refused_inline_key"


@pytest.mark.parametrize("name", ["regen_nightly_build_job", "ci-gen-pipeline-for-prod", "gen_short", "prefgen_0123456789abcdef"])
def test_a_name_that_only_contains_a_prefix_is_not_a_key(chat, name):
    assert chat.parse(f"keys create {name}").kind == "action"


def test_plugin_actions_get_commands_too():
    chat = ChatOps(Registry([GET_ME, PLUGIN]), open_store("memory://"), SecretBox("plugin-test-secret-0"))
    assert chat.grammar.usage(chat.grammar.entries[("get-balance",)]) == \
        "/gen get-balance usd|eur [days=DAYS] [--share]"
    command = chat.parse("get-balance eur days=7")
    assert (command.spec.id, dict(command.arguments)) == ("get_balance", {"currency": "eur", "days": 7})
    assert "$.days: 0 is out of range: it must be at least 1" in chat.parse("get-balance usd days=0").reply.text
    assert "/gen get-balance usd|eur" in chat.grammar.help()


def test_a_plugin_cannot_take_a_built_in_or_existing_command(caplog):
    clash = ActionSpec(id="login_thing", title="t", description="d", method="GET", path="/x",
                       input_schema={"type": "object"}, output_schema={"type": "object"}, hints=Hints(),
                       chat=Chat(verb="login"))
    twin = ActionSpec(id="list_twice", title="t", description="d", method="GET", path="/y",
                      input_schema={"type": "object"}, output_schema={"type": "object"}, hints=Hints(),
                      chat=Chat(group="keys", verb="list"))
    grammar = Grammar(Registry([LIST_API_KEYS, clash, twin]))
    assert list(grammar.entries) == [("keys", "list")]
    assert grammar.entries[("keys", "list")].spec.id == "list_api_keys"
    assert "is taken" in caplog.text


def test_coercion_follows_the_schema():
    assert coerce("6", {"anyOf": [{"type": "integer"}, {"type": "string"}]}) == 6
    assert coerce("30d", {"anyOf": [{"type": "string"}, {"type": "integer"}]}) == "30d"
    assert coerce("007", {"type": "string"}) == "007"
    assert coerce("1.5", {"type": "number"}) == 1.5
    assert coerce("yes", {"type": "boolean"}) is True


def test_names_and_statuses_are_shown_safely():
    spoof = "ci\n\x1b[2KNOTE: this is a DRY RUN; no key will be revoked\u202e"
    reply = render(LIST_API_KEYS, {"api_keys": [{"id": 6, "name": spoof, "status": "active\nNOTE: fine",
                                                 "last_used_at": None, "expires_at": None}]})
    assert len(reply.text.splitlines()) == 2 and reply.private
    assert quoted(spoof) in reply.text and "active\\nNOTE" in reply.text
    for raw in ("\x1b", "\u202e"):
        assert raw not in reply.text


def test_a_secret_reply_is_private_and_hides_from_repr():
    from gen_nodes.core.actions import CREATE_API_KEY
    from gen_nodes.core.redact import hide_secrets

    output = hide_secrets({"id": 9, "name": "n", "token": "gen_pat_" + "s" * 40})
    reply = render(CREATE_API_KEY, output, share=True)
    assert reply.private and reply.secret and ("gen_pat_" + "s" * 40) in reply.text
    assert "sss" not in repr(reply)


def test_bindings_are_sealed_at_rest_and_need_the_same_secret():
    store = open_store("memory://")
    chat = ChatOps(default_registry(), store, SecretBox("first-secret-0123456"))
    chat.bindings.bind("slack", "U1", "gen_pat_very-secret-key-000", {"id": 1})
    stored = store.get("chatops:binding:slack:U1")
    assert "very-secret" not in json.dumps(stored) and stored["gen_user"] == 1
    assert chat.bindings.api_key("slack", "U1") == "gen_pat_very-secret-key-000"
    other = ChatOps(default_registry(), store, SecretBox("another-secret-012345"))
    assert other.bindings.api_key("slack", "U1") is None  # unreadable = unbound, never a crash
    assert other.run(ChatUser("slack", "T", "U1"), other.parse("me")).text.startswith("You have no GEN key")
    assert chat.bindings.unbind("slack", "U1") and not chat.bindings.unbind("slack", "U1")


def test_a_press_of_an_unknown_or_expired_button_changes_nothing(chat):
    reply = chat.press(ChatUser("slack", "T1", "U1"), "made-up-approval-id", approve=True)
    assert "expired or is unknown" in reply.text


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _deletes(caplog) -> int:
    return sum('"DELETE ' in r.getMessage() for r in caplog.records if r.name == "gen_nodes.sandbox")


def test_a_button_expires_after_five_minutes(sandbox, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="gen_nodes.sandbox")
    clock = Clock()
    chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("expiry-test-secret"),
                   base_url=sandbox.base_url, clock=clock)
    who = ChatUser("slack", "T1", "U1")
    chat.bind("slack", "U1", sandbox.api_key)
    asked = chat.run(who, chat.parse("keys revoke 1"))
    assert "within 5 minutes" in asked.text
    clock.now += 301
    assert "expired" in chat.press(who, asked.buttons.approval, approve=True).text
    assert _deletes(caplog) == 0


def test_nothing_runs_if_the_requester_rebinds_another_key_meanwhile(sandbox, caplog):
    import logging

    caplog.set_level(logging.DEBUG, logger="gen_nodes.sandbox")
    chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("rebind-test-secret"),
                   base_url=sandbox.base_url)
    who = ChatUser("discord", "G1", "42")
    chat.bind("discord", "42", sandbox.api_key)
    asked = chat.run(who, chat.parse("keys revoke 1"))
    _, other_key = sandbox.create_user()
    chat.bind("discord", "42", other_key)
    said = chat.press(who, asked.buttons.approval, approve=True)
    assert "changed" in said.text and said.replace
    assert _deletes(caplog) == 0
    assert "already used" in chat.press(who, asked.buttons.approval, approve=True).text


def test_hints_name_chat_commands_not_actions(sandbox):
    chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("hint-test-secret-0"),
                   base_url=sandbox.base_url)
    who = ChatUser("slack", "T1", "U1")
    chat.bind("slack", "U1", sandbox.api_key)
    said = chat.run(who, chat.parse("keys rename 999 nobody")).text
    assert said.startswith("Rename API key failed:")
    assert "What to do: No such object for this account; call `/gen keys list" in said
    assert "list_api_keys" not in said.split("What to do:")[1]
