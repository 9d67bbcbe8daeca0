"""Slack chat-ops over real HTTP: signed requests to the running Bolt app, GEN in the sandbox,
and loopback doubles for Slack's Web API and ``response_url`` that record what they get."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time

import pytest
import requests

pytest.importorskip("slack_bolt")

from slack_sdk import WebClient  # noqa: E402

from chat_support import (  # noqa: E402
    Recorder, button_payload, interaction_form, login_submission, post_unending, serve_asgi, slack_post,
    slack_signed, slash_form)
from gen_nodes.surfaces.chatops.slack import build_app, build_asgi  # noqa: E402
from key_age_support import seed_key_ages  # noqa: E402

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
RESPONSE = "/response/"
_URLS = itertools.count(1)  # each command or press gets a response_url of its own


@pytest.fixture
def web():
    """Slack's Web API (/api/...) and every response_url (/response/...), recorded."""
    with Recorder() as recorder:
        yield recorder


@pytest.fixture
def events(chat, web):
    app = build_app(chat, signing_secret=SIGNING_SECRET, token=BOT_TOKEN,
                    client=WebClient(token=BOT_TOKEN, base_url=web.url + "/api/"),
                    token_verification_enabled=False)
    with serve_asgi(build_asgi(app, chat, signing_secret=SIGNING_SECRET)) as url:
        yield url + "/slack/events"


class Slack:
    """A person typing /gen in Slack: signed posts, answers read from the response_url double."""

    def __init__(self, events: str, web: Recorder, user: str = "U1", team: str = "T1") -> None:
        self.events, self.web, self.user, self.team = events, web, user, team

    def command(self, text: str, **headers: str):
        url = f"{self.web.url}{RESPONSE}{self.user}/{next(_URLS)}/"
        ack = slack_post(self.events, SIGNING_SECRET, slash_form(text, url, user=self.user, team=self.team),
                         headers=headers)
        return ack, url

    def answer(self, text: str) -> dict:
        """Type ``text`` and return the message that arrives through its response_url."""
        ack, url = self.command(text)
        assert ack.status_code == 200, ack.text
        return self.web.wait_for(url[len(self.web.url):])[0].body

    def press(self, action_id: str, approval: str, **headers: str):
        url = f"{self.web.url}{RESPONSE}{self.user}/{next(_URLS)}/"
        form = interaction_form(button_payload(action_id, approval, url, user=self.user, team=self.team))
        return slack_post(self.events, SIGNING_SECRET, form, headers=headers), url


def _approval_of(message: dict) -> str:
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions, message
    button = actions[0]["elements"][0]
    assert button["style"] == "danger" and "confirm" in button
    return button["value"]


def _deletes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gen_nodes.sandbox" and '"DELETE ' in r.getMessage()]


def _audit(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "gen_nodes.chatops.audit"]


def test_help_and_usage_errors_are_the_ack_itself(events, web):
    person = Slack(events, web)
    ack, _ = person.command("help")
    assert ack.status_code == 200
    body = ack.json()
    assert body["response_type"] == "ephemeral"
    for usage in ("/gen me", "/gen keys list [active|expired|revoked]", "/gen keys create [NAME...] [expires=30d]",
                  "/gen keys rename ID NEW NAME...", "/gen keys revoke ID", "/gen keys revoke-all",
                  "/gen login", "/gen logout"):
        assert usage in body["text"], usage
    ack, _ = person.command("keys revoke six")
    text = ack.json()["text"]
    assert "Usage: `/gen keys revoke ID`" in text and "$.id" in text and "Nothing was sent." in text
    ack, _ = person.command("keys frobnicate")
    assert "Unknown command" in ack.json()["text"] and "/gen keys" in ack.json()["text"]
    assert web.matching(RESPONSE) == []  # nothing followed through response_url


def test_every_command_against_the_sandbox(events, web, chat, sandbox, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    person = Slack(events, web)

    me = person.answer("me")
    assert "user1@sandbox.local" in me["text"] and me["response_type"] == "ephemeral"

    made = person.answer("keys create release bot expires=30d")
    assert made["response_type"] == "ephemeral"
    assert "release bot" in made["text"] and "gen_pat_" in made["text"]
    new_id = next(int(line.split(": ")[1]) for line in made["text"].splitlines() if line.startswith("id: "))

    listed = person.answer("keys list active")
    assert "release bot" in listed["text"] and listed["response_type"] == "ephemeral"
    line = next(line for line in listed["text"].splitlines() if f"`{new_id}`" in line)
    assert "active" in line and "last used never" in line and "expires 20" in line
    shared = person.answer("keys list --share")
    assert shared["response_type"] == "in_channel"

    renamed = person.answer(f"keys rename {new_id} deploy bot two")
    assert '"deploy bot two"' in renamed["text"]

    asked = person.answer(f"keys revoke {new_id}")
    assert '"deploy bot two"' in asked["text"] and asked["response_type"] == "ephemeral"
    assert _deletes(gen_log) == []  # nothing revoked before the button
    ack, url = person.press("gen_approve", _approval_of(asked))
    assert ack.status_code == 200
    done = web.wait_for(url[len(web.url):])[0].body
    assert done["replace_original"] is True and "revoked: yes" in done["text"]
    assert "revoked" in person.answer("keys list revoked")["text"]

    everything = person.answer("keys revoke-all")
    assert "sandbox bootstrap" in everything["text"]
    ack, url = person.press("gen_approve", _approval_of(everything))
    assert "revoked_all: yes" in web.wait_for(url[len(web.url):])[0].body["text"]
    assert len(_deletes(gen_log)) == 2

    gone = person.answer("me")
    assert "refused your bound key" in gone["text"] and "/gen login" in gone["text"]
    assert "forgotten" in person.answer("logout")["text"]

    audit = _audit(gen_log)
    assert [(a["action"], a["outcome"]) for a in audit] == [
        ("get_me", "ok"), ("create_api_key", "ok"), ("list_api_keys", "ok"), ("list_api_keys", "ok"),
        ("update_api_key", "ok"), ("revoke_api_key", "awaiting_approval"), ("revoke_api_key", "ok"),
        ("list_api_keys", "ok"), ("revoke_all_api_keys", "awaiting_approval"), ("revoke_all_api_keys", "ok"),
        ("get_me", "authentication"), ("logout", "ok")]
    assert all(a["platform"] == "slack" and a["workspace"] == "T1" and a["user"] == "U1" for a in audit)
    assert str(new_id) in audit[1]["ids"] and audit[6]["ids"] == [str(new_id)]


def test_keys_list_with_the_time_filters_over_signed_slack_requests(events, web, chat, sandbox, gen_log):
    seed_key_ages(sandbox)
    chat.bind("slack", "U1", sandbox.api_key)
    person = Slack(events, web)
    expiring = person.answer("keys list expiring=7d")["text"]
    assert '"soon"' in expiring and '"later"' not in expiring and '"old idle"' not in expiring
    idle = person.answer("keys list active unused=30d")["text"]
    assert '"old idle"' in idle and '"soon"' not in idle and '"fresh"' not in idle
    ack, _ = person.command("keys list expiring=soon")  # refused in the ack itself, before any request
    refused = ack.json()["text"]
    assert "$.expiring_within" in refused and "expiring=7d" in refused and "Nothing was sent." in refused


def test_deny_changes_nothing(events, web, chat, sandbox, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    person = Slack(events, web)
    asked = person.answer("keys revoke 1")
    _, url = person.press("gen_deny", _approval_of(asked))
    assert "Cancelled" in web.wait_for(url[len(web.url):])[0].body["text"]
    _, url = person.press("gen_approve", _approval_of(asked))
    assert "already used" in web.wait_for(url[len(web.url):])[0].body["text"]
    assert _deletes(gen_log) == []


def test_login_through_the_modal(events, web, sandbox, gen_log):
    person = Slack(events, web)
    ack, url = person.command("login")
    assert ack.status_code == 200 and not ack.text
    opened = web.wait_for("/api/views.open")[0].body
    assert opened["trigger_id"] == "1337.42.abcd"
    view = json.loads(opened["view"]) if isinstance(opened["view"], str) else opened["view"]
    assert view["callback_id"] == "gen_login"
    assert view["blocks"][1]["element"]["type"] == "plain_text_input"

    submitted = slack_post(events, SIGNING_SECRET, interaction_form(
        login_submission(sandbox.api_key, view["private_metadata"])))
    assert submitted.status_code == 200 and not submitted.text  # the modal closes at once
    bound = web.wait_for(url[len(web.url):])[0].body
    assert "you now act as" in bound["text"] and bound["response_type"] == "ephemeral"
    assert "user1@sandbox.local" in person.answer("me")["text"]
    assert sandbox.api_key not in gen_log.text and sandbox.api_key not in web.all_text()


def test_a_wrong_key_in_the_modal_is_not_bound(events, web, gen_log):
    person = Slack(events, web)
    ack, url = person.command("login")
    view = web.wait_for("/api/views.open")[0].body["view"]
    view = json.loads(view) if isinstance(view, str) else view
    slack_post(events, SIGNING_SECRET, interaction_form(
        login_submission("gen_pat_not-a-real-key-0000000000", view["private_metadata"])))
    said = web.wait_for(url[len(web.url):])[0].body["text"]
    assert "not bound" in said
    assert "run `/gen login`" in person.answer("me")["text"]
    assert "gen_pat_not-a-real-key" not in gen_log.text


def test_a_key_typed_inline_is_refused(events, web, sandbox, gen_log):
    person = Slack(events, web)
    for text in (f"login {sandbox.api_key}", f"keys create {sandbox.api_key}"):
        ack, _ = person.command(text)
        said = ack.json()["text"]
        assert "leaked" in said and "revoke" in said and sandbox.api_key not in said
    assert "run `/gen login`" in person.answer("me")["text"]  # nothing was bound
    assert sandbox.api_key not in gen_log.text
    assert [a["outcome"] for a in _audit(gen_log)][:2] == ["refused_inline_key", "refused_inline_key"]


def test_an_unbound_user_is_told_to_log_in(events, web, gen_log):
    said = Slack(events, web, user="U9").answer("keys list")
    assert "run `/gen login`" in said["text"] and said["response_type"] == "ephemeral"
    assert _audit(gen_log)[-1] == {"platform": "slack", "workspace": "T1", "user": "U9",
                                   "action": "list_api_keys", "ids": [], "outcome": "not_bound"}


def test_stale_or_badly_signed_requests_get_401(events, web, chat, sandbox):
    chat.bind("slack", "U1", sandbox.api_key)
    form = slash_form("me", web.url + RESPONSE + "x")
    stale = slack_post(events, SIGNING_SECRET, form, timestamp=int(time.time()) - 6 * 60)
    forged = slack_post(events, SIGNING_SECRET, form, sign_with="not-the-signing-secret")
    assert (stale.status_code, forged.status_code) == (401, 401)
    time.sleep(0.3)  # give a wrongly started lazy listener the chance to show itself
    assert web.matching(RESPONSE) == []


def test_only_the_requester_can_press_the_button(events, web, chat, sandbox, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    _, other_key = sandbox.create_user()
    chat.bind("slack", "U2", other_key)
    asked = Slack(events, web).answer("keys revoke 1")
    approval = _approval_of(asked)
    intruder = Slack(events, web, user="U2")
    _, url = intruder.press("gen_approve", approval)
    refused = web.wait_for(url[len(web.url):])[0].body
    assert "Only the person who typed this command" in refused["text"]
    assert refused["replace_original"] is False and refused["response_type"] == "ephemeral"
    assert _deletes(gen_log) == []
    _, url = Slack(events, web).press("gen_approve", approval)  # the requester still can
    assert "revoked: yes" in web.wait_for(url[len(web.url):])[0].body["text"]
    assert len(_deletes(gen_log)) == 1
    assert ("revoke_api_key", "refused_not_requester") in [(a["action"], a["outcome"]) for a in _audit(gen_log)]


def test_a_double_click_and_a_slack_retry_revoke_once(events, web, chat, sandbox, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    person = Slack(events, web)
    approval = _approval_of(person.answer("keys revoke 1"))
    acks: list = []

    def click(**headers):
        acks.append(person.press("gen_approve", approval, **headers))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    clicks.append(threading.Thread(target=click, kwargs={"X-Slack-Retry-Num": "1",
                                                          "X-Slack-Retry-Reason": "http_timeout"}))
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    assert [a.status_code for a, _ in acks] == [200, 200, 200]
    answers = [web.wait_for(url[len(web.url):])[0].body["text"] for _, url in acks]
    assert sum("revoked: yes" in a for a in answers) == 1
    # the others: "already used" once it ran, or that it is running (press again only if no answer comes)
    assert sum("already used" in a or "running" in a for a in answers) == 2
    assert len(_deletes(gen_log)) == 1


def test_a_created_secret_reaches_only_the_creator_and_no_log(events, web, chat, sandbox, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    person = Slack(events, web)
    refused, _ = person.command("keys create shared key --share")
    assert "works only for read-only commands" in refused.json()["text"]
    made = person.answer("keys create the secret one")
    token = next(w.strip("`") for w in made["text"].split() if w.strip("`").startswith("gen_pat_"))
    assert made["response_type"] == "ephemeral"
    person.answer("keys list --share")
    everything_sent = [r for r in web.requests]
    public = [r.raw for r in everything_sent if isinstance(r.body, dict) and r.body.get("response_type") != "ephemeral"]
    assert public and not any(token in p for p in public)
    assert sum(token in r.raw for r in everything_sent) == 1  # the creator's ephemeral reply only
    for secret in (token, sandbox.api_key):
        assert secret not in gen_log.text
    assert not any(secret in json.dumps(a) for a in _audit(gen_log) for secret in (token, sandbox.api_key))


def test_a_slow_gen_still_answers_through_response_url(events, web, chat, sandbox):
    chat.bind("slack", "U1", sandbox.api_key)
    sandbox.inject_fault(delay=3.5, method="GET", path="/persisted_tokens")  # past Slack's 3-second deadline
    person = Slack(events, web)
    ack, url = person.command("keys list")
    assert ack.status_code == 200 and not ack.text
    assert web.matching(url[len(web.url):]) == []  # acked while GEN was still thinking
    answer = web.wait_for(url[len(web.url):])[0].body
    assert "sandbox bootstrap" in answer["text"]


def test_the_allow_list_limits_workspaces(events, web, chat, sandbox):
    chat.allow = frozenset({"T1"})
    chat.bind("slack", "U1", sandbox.api_key)
    ack, _ = Slack(events, web, team="T2").command("me")
    assert "not enabled for this workspace" in ack.json()["text"]
    assert "user1@sandbox.local" in Slack(events, web).answer("me")["text"]


def test_the_readme_manifest_points_slack_at_this_server():
    from urllib.parse import urlsplit

    from gen_nodes.surfaces.chatops.slack import PATH
    from doc_support import snippet

    manifest = json.loads(snippet("Setting up the Slack app", "json"))
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/gen" and urlsplit(command["url"]).path == PATH
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": command["url"]}
    assert manifest["oauth_config"]["scopes"]["bot"] == ["commands", "chat:write", "im:write"]  # DMs: approvals
    assert command["should_escape"] is False  # the adapter unescapes &amp; &lt; &gt; itself


def test_the_readme_audit_example_is_what_is_logged(events, web, chat, sandbox, gen_log):
    from doc_support import snippet

    chat.bind("slack", "U1", sandbox.api_key)
    Slack(events, web).answer("me")
    example = json.loads(snippet("What is logged", "json"))
    assert list(_audit(gen_log)[-1]) == list(example)


# -- hardening: bodies, replays, keys inside words ------------------------------------------


def test_no_refused_request_body_reaches_the_log(events, web, sandbox, gen_log):
    """A badly signed or stale login form (holding a GEN key), an unsigned body forging an audit line,
    and a 5 MB body: each is refused, and the log holds none of them."""
    form = interaction_form(login_submission(sandbox.api_key, "{}"))
    forged_line = '{"platform": "slack", "workspace": "T1", "user": "UBOSS", "action": "revoke_all", "outcome": "ok"}'
    answers = [
        slack_post(events, SIGNING_SECRET, form, sign_with="not-the-signing-secret").status_code,
        slack_post(events, SIGNING_SECRET, form, timestamp=int(time.time()) - 6 * 60).status_code,
        requests.post(events, data=f"text=x\nINFO gen_nodes.chatops.audit: {forged_line}\n", timeout=15,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code,
        requests.post(events, data=b"text=" + b"B" * (5 * 1024 * 1024), timeout=30, headers={
            "Content-Type": "application/x-www-form-urlencoded"}).status_code,
    ]
    assert answers == [401, 401, 401, 413]
    logged = gen_log.text + "\n".join(r.getMessage() for r in gen_log.records)
    for leaked in (sandbox.api_key, sandbox.api_key.upper(), "UBOSS", "revoke_all", "BBBBBBBB", "view_submission"):
        assert leaked not in logged, leaked
    assert not _audit(gen_log)


@pytest.mark.parametrize("length", ["chunked", "declared"])
def test_a_body_over_one_mib_gets_413_before_it_is_read(events, length):
    if length == "chunked":  # 2 MiB without the last chunk: a server reading it all would never answer
        status, sent = post_unending(events, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 413 and sent <= 2 * 1024 * 1024
    else:
        body, headers = slack_signed(SIGNING_SECRET, {"text": "x" * (1024 * 1024 + 1)})
        assert requests.post(events, data=body, headers=headers, timeout=15).status_code == 413


def test_a_replayed_signed_request_does_not_act_again(events, web, chat, sandbox, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    before = len(sandbox.store.list_keys(sandbox.user["id"]))
    body, headers = slack_signed(SIGNING_SECRET, slash_form("keys create twice", web.url + RESPONSE + "replay/"))
    first = requests.post(events, data=body, headers=headers, timeout=15)
    web.wait_for(RESPONSE + "replay/")
    again = requests.post(events, data=body, headers=headers, timeout=15)
    assert (first.status_code, again.status_code) == (200, 200) and not again.text
    time.sleep(0.5)  # a wrongly started second run would show itself here
    assert len(web.matching(RESPONSE + "replay/")) == 1
    assert len(sandbox.store.list_keys(sandbox.user["id"])) == before + 1
    assert [a["outcome"] for a in _audit(gen_log)] == ["ok"]


KEY_INSIDE = ["keys create name={key}", "keys create ({key})", "keys create key:{key}", "keys create {key},",
              "keys create <<{key}>>", "keys create {upper}", "keys create x expires={key}", "keys rename 1 {key}."]


def test_a_key_inside_a_word_never_reaches_gen(events, web, chat, sandbox, gen_log):
    chat.bind("slack", "U1", sandbox.api_key)
    before = sandbox.store.list_keys(sandbox.user["id"])
    person = Slack(events, web)
    for text in KEY_INSIDE:
        ack, _ = person.command(text.format(key=sandbox.api_key, upper=sandbox.api_key.upper()))
        assert ack.status_code == 200 and "leaked" in ack.json()["text"], text
    assert sandbox.store.list_keys(sandbox.user["id"]) == before
    assert web.matching(RESPONSE) == []
    assert [a["outcome"] for a in _audit(gen_log)] == ["refused_inline_key"] * len(KEY_INSIDE)
    assert sandbox.api_key not in gen_log.text and sandbox.api_key not in web.all_text()


def test_bolt_itself_logs_no_body_either(chat, sandbox, gen_log):
    """Bolt's own check, reached without the server in front, writes the body into its 401 line at
    INFO; the logger it is handed cuts that line."""
    from slack_bolt.request import BoltRequest

    app = build_app(chat, signing_secret=SIGNING_SECRET, client=WebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/"),
                    token_verification_enabled=False)
    body, headers = slack_signed(SIGNING_SECRET, interaction_form(login_submission(sandbox.api_key, "{}")),
                                 sign_with="not-the-signing-secret")
    assert app.dispatch(BoltRequest(body=body.decode(), headers=headers)).status == 401
    assert "Invalid request signature detected (body not logged)" in gen_log.text
    assert sandbox.api_key not in gen_log.text and "view_submission" not in gen_log.text
