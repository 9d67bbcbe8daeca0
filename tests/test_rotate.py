"""``rotate_api_key``, a composite action declared as data: its steps through the engine, its defaults,
its partial outcome, exactly-once retries, and the surfaces the lead owns (CLI, tools, gateway, chat).

n8n, Airflow and Temporal run it in their own test modules, with the real engines.
"""

from __future__ import annotations

import json
import logging
import re

import pytest

import gen_nodes
from gen_nodes.client.http import GenClient
from gen_nodes.core.errors import NotFound, Rejected
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.core.spec import PARTIAL, SUCCEEDED, ActionSpec, Hints, Input, Output, Step
from gen_nodes.runtime.dispatch import Dispatcher
from gen_nodes.runtime.steps import StepRunner, engine_client
from gen_nodes.safety.idempotency import IdempotencyRecords
from gen_nodes.sandbox.store import TOKEN_PREFIX
from gen_nodes.state import open_store
from gen_nodes.state.secretbox import SecretBox
from gen_nodes.surfaces.chatops.core import ChatOps, ChatUser
from cli_support import gen_nodes_cli

DAY = 86400
REVOKE_PATH = "/persisted_tokens/*/revoke"


@pytest.fixture
def requests_seen(caplog):
    """The sandbox's request lines (``"POST /v1/persisted_tokens"``...), in order."""
    caplog.set_level(logging.DEBUG, logger="gen_nodes.sandbox")

    def seen(method: str | None = None) -> list[str]:
        lines = [m.group(1) for r in caplog.records if r.name == "gen_nodes.sandbox"
                 for m in [re.search(r'"([A-Z]+ /v1/[^ ?"]*)', r.getMessage())] if m]
        return [line for line in lines if method is None or line.startswith(method + " ")]

    return seen


def keys(sandbox, name: str | None = None) -> list[dict]:
    return [k for k in sandbox.store.list_keys(sandbox.user["id"]) if name is None or k["name"] == name]


def rotate(sandbox, **arguments) -> dict:
    return gen_nodes.run("rotate_api_key", arguments, api_key=sandbox.api_key, base_url=sandbox.base_url)


def old_key(sandbox, name: str = "n8n production", expires_in=90 * DAY) -> dict:
    return sandbox.store.create_key(sandbox.user["id"], name, expires_in)[0]


def lifetime_days(key: dict) -> float:
    from gen_nodes.core.times import moment

    return (moment(key["expires_at"]) - moment(key["created_at"])).total_seconds() / DAY


def works(sandbox, token: str) -> bool:
    with GenClient(api_key=str.__str__(token), base_url=sandbox.base_url) as client:
        return default_registry().run("get_me", {}, client=client)["id"] == sandbox.user["id"]


# -- the engine ------------------------------------------------------------------------------------


def test_it_creates_the_successor_first_then_revokes_the_old_key(sandbox, requests_seen):
    old = old_key(sandbox)
    out = rotate(sandbox, id=old["id"])
    assert out["status"] == SUCCEEDED
    assert out["old_key"]["id"] == old["id"] and out["revoked"] == {"id": old["id"], "revoked": True}
    new = out["new_key"]
    assert new["name"] == "n8n production" and new["status"] == "active" and works(sandbox, new["token"])
    assert round(lifetime_days(new)) == 90
    assert {k["id"]: k["status"] for k in keys(sandbox, "n8n production")} == {old["id"]: "revoked",
                                                                              new["id"]: "active"}
    changes = [line for line in requests_seen() if not line.startswith("GET")]
    assert changes == ["POST /v1/persisted_tokens", f"DELETE /v1/persisted_tokens/{old['id']}/revoke"]
    assert new["token"] not in repr(out) and TOKEN_PREFIX in repr(out)  # masked in reprs, as for a create


@pytest.mark.parametrize("lifetime, expected", [(30 * DAY + 3600, 30), (30 * DAY + 13 * 3600, 31), (3600, 1)])
def test_the_old_lifetime_is_kept_in_whole_days(sandbox, lifetime, expected):
    out = rotate(sandbox, id=old_key(sandbox, "job", lifetime)["id"])
    assert lifetime_days(out["new_key"]) == expected


def test_a_key_that_never_expired_gets_one_that_never_expires(sandbox):
    out = rotate(sandbox, id=old_key(sandbox, "forever", None)["id"])
    assert out["new_key"]["expires_at"] is None


def test_name_and_expiry_can_be_given(sandbox):
    out = rotate(sandbox, id=old_key(sandbox)["id"], name="n8n production 2027", expires_in="7d")
    assert out["new_key"]["name"] == "n8n production 2027" and lifetime_days(out["new_key"]) == 7


def test_an_expired_key_can_be_rotated(sandbox):
    old = old_key(sandbox, "lapsed", 2 * DAY)
    sandbox.store.advance(3 * DAY)
    out = rotate(sandbox, id=old["id"])
    assert out["status"] == SUCCEEDED and out["old_key"]["status"] == "expired"
    assert out["new_key"]["status"] == "active" and lifetime_days(out["new_key"]) == 2


def test_a_revoked_or_unknown_key_changes_nothing(sandbox, requests_seen):
    old = old_key(sandbox)
    sandbox.store.revoke_key(sandbox.user["id"], old["id"])
    before = [(k["id"], k["status"]) for k in keys(sandbox)]
    with pytest.raises(Rejected) as revoked:
        rotate(sandbox, id=old["id"])
    assert "revoked" in revoked.value.message and "changed nothing" in revoked.value.message
    assert "list_api_keys" in revoked.value.hint
    with pytest.raises(NotFound) as unknown:
        rotate(sandbox, id=987654)
    assert "987654" in unknown.value.message
    assert [(k["id"], k["status"]) for k in keys(sandbox)] == before
    assert requests_seen("POST") == [] and requests_seen("DELETE") == []


def test_bad_input_is_refused_before_any_request(sandbox, requests_seen):
    from gen_nodes.core.errors import InvalidInput

    for bad, path in [({}, "$: "), ({"id": 6, "expires_in": "7w"}, "$.expires_in"), ({"id": 6, "name": ""}, "$.name")]:
        with pytest.raises(InvalidInput) as caught:
            rotate(sandbox, **bad)
        assert path in str(caught.value)
    assert requests_seen() == []


def test_a_failed_revoke_ends_partial_and_keeps_the_new_secret(sandbox):
    old = old_key(sandbox)
    sandbox.inject_fault(503, method="DELETE", path=REVOKE_PATH, times=10)
    out = rotate(sandbox, id=old["id"])
    assert out["status"] == PARTIAL and out["failed_step"] == "revoke" and "revoked" not in out
    assert out["error"]["type"] == "server_error"
    assert f"key {old['id']}" in out["next"] and "may still work" in out["next"]
    assert works(sandbox, out["new_key"]["token"])  # the new secret is not lost
    assert {k["id"]: k["status"] for k in keys(sandbox, "n8n production")}[old["id"]] == "active"


@pytest.mark.parametrize("failure", [RuntimeError("private detail 42"), KeyboardInterrupt()])
def test_a_bug_or_ctrl_c_after_the_create_still_hands_back_the_new_key(sandbox, monkeypatch, failure):
    """Not only GEN's errors: whatever stops the run after the create, the new key and its secret come back."""
    import gen_nodes.core.composite as composite

    real_run_step = composite._run_step

    def fails_at_revoke(spec, step, *args, **kwargs):
        if step.name == "revoke":
            raise failure
        return real_run_step(spec, step, *args, **kwargs)

    monkeypatch.setattr(composite, "_run_step", fails_at_revoke)
    out = rotate(sandbox, id=old_key(sandbox)["id"])
    assert out["status"] == PARTIAL and out["error"]["type"] == "api_error"
    assert type(failure).__name__ in out["error"]["message"] and "private detail 42" not in json.dumps(out["error"])
    assert works(sandbox, out["new_key"]["token"])


def test_a_failed_create_revokes_nothing(sandbox, requests_seen):
    old = old_key(sandbox)
    sandbox.inject_fault(422, method="POST", body={"error": "name taken"})
    with pytest.raises(Rejected):
        rotate(sandbox, id=old["id"])
    assert requests_seen("DELETE") == [] and keys(sandbox, "n8n production")[0]["status"] == "active"


def test_the_preview_shows_the_old_key_and_what_the_new_one_will_be(sandbox, requests_seen):
    from gen_nodes.safety.display import preview_lines

    old = old_key(sandbox)
    shown = default_registry().preview("rotate_api_key", {"id": old["id"]}, api_key=sandbox.api_key,
                                       base_url=sandbox.base_url)
    assert shown[0] == {"name": "n8n production", "expires_in": "90d", "change": "Create API key"}
    assert shown[1]["id"] == old["id"] and shown[1]["change"] == "Revoke API key"
    assert preview_lines(shown)[1:] == ['  - Create API key: a new key, name "n8n production", expires_in "90d"',
                                        f'  - Revoke API key: id {old["id"]}: "n8n production" (active)']
    assert requests_seen("POST") == [] and requests_seen("DELETE") == []


def test_a_plugin_declares_its_own_composite_the_same_way(sandbox):
    """Steps are data: a plugin's composite (rename a key, then list) runs with no engine change."""
    from gen_nodes.core.actions import LIST_API_KEYS, UPDATE_API_KEY

    relabel = ActionSpec(
        id="relabel_and_list", title="Relabel and list", description="Rename a key, then list the keys.",
        method="", path="", hints=Hints(idempotent=True),
        input_schema={"type": "object", "required": ["id", "name"], "additionalProperties": False,
                      "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
        output_schema={"type": "object"},
        steps=(Step("renamed", "update_api_key", input={"id": Input("id"), "name": Input("name")}),
               Step("listed", "list_api_keys")),
        result={"renamed": Output("renamed"), "count": Output("listed", "api_keys")})
    registry = Registry([LIST_API_KEYS, UPDATE_API_KEY, relabel])
    old = old_key(sandbox)
    out = registry.run("relabel_and_list", {"id": old["id"], "name": "relabelled"}, api_key=sandbox.api_key,
                       base_url=sandbox.base_url)
    assert out["status"] == SUCCEEDED and out["renamed"]["name"] == "relabelled"
    assert any(k["name"] == "relabelled" for k in out["count"])


# -- exactly once: each step keeps its own record ----------------------------------------------------


class Died(BaseException):
    """Stands in for the process dying mid-run (not a GenError: nothing records an outcome)."""


def test_a_retry_after_dying_between_create_and_revoke_resumes_with_one_new_key(sandbox, monkeypatch,
                                                                                requests_seen):
    """The first try made the new key and died before the revoke; the retry of the same engine step
    replays the create (delivering its secret once) and runs only the revoke."""
    import gen_nodes.core.composite as composite

    records = IdempotencyRecords(open_store("memory://"))
    runner = StepRunner("temporal", records)
    old = old_key(sandbox)
    real_run_step = composite._run_step

    def dies_before_revoke(spec, step, *args, **kwargs):
        if step.name == "revoke":
            raise Died()
        return real_run_step(spec, step, *args, **kwargs)

    with engine_client(sandbox.api_key, sandbox.base_url) as client:
        monkeypatch.setattr(composite, "_run_step", dies_before_revoke)
        with pytest.raises(Died):
            runner.run("rotate_api_key", {"id": old["id"]}, client, step="wf-1/rotate")
        monkeypatch.setattr(composite, "_run_step", real_run_step)
        assert [k["status"] for k in keys(sandbox, "n8n production")] == ["active", "active"]
        out = runner.run("rotate_api_key", {"id": old["id"]}, client, step="wf-1/rotate")
        # A finished step replays its stored result; its secret is delivered once more, then masked.
        runner.run("rotate_api_key", {"id": old["id"]}, client, step="wf-1/rotate")
        again = runner.run("rotate_api_key", {"id": old["id"]}, client, step="wf-1/rotate")
    assert out["status"] == SUCCEEDED and works(sandbox, out["new_key"]["token"])
    assert len(requests_seen("POST")) == 1 and len(requests_seen("DELETE")) == 1
    assert {k["status"] for k in keys(sandbox, "n8n production") if k["id"] == old["id"]} == {"revoked"}
    assert again["new_key"]["id"] == out["new_key"]["id"] and "token_note" in again["new_key"]
    assert not again["new_key"]["token"].startswith(out["new_key"]["token"])  # masked: delivered already


def test_an_approved_rotation_whose_runner_died_is_resumed_once_its_lease_passed(sandbox, monkeypatch, tmp_path,
                                                                               requests_seen):
    """Held for a person, approved, then the process running it died between the create and the revoke:
    the approval stays running; after RUN_LEASE a new run of the same approval replays the create
    (its secret delivered) and runs only the revoke. A plain revoke-all is resumable too; nothing else."""
    import gen_nodes.core.composite as composite
    from gen_nodes.safety.approvals import RUN_LEASE, Approvals

    now = [1_000_000.0]
    approvals = Approvals(open_store("memory://"), clock=lambda: now[0])
    old = old_key(sandbox)
    real_run_step, real_finish = composite._run_step, Approvals.finish

    def dies_before_revoke(spec, step, *args, **kwargs):
        if step.name == "revoke":
            raise Died()
        return real_run_step(spec, step, *args, **kwargs)

    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        tools = Dispatcher(client=client, confirmation="approval", approvals=approvals, secrets_folder=tmp_path)
        handle = tools.call("gen_rotate_api_key", {"id": old["id"]}).approval.id
        approvals.decide(handle, approve=True, by="the person")
        monkeypatch.setattr(composite, "_run_step", dies_before_revoke)
        monkeypatch.setattr(Approvals, "finish", lambda self, *args, **kwargs: None)  # dead: nothing recorded
        with pytest.raises(Died):
            tools.run_approved(handle)
        monkeypatch.setattr(composite, "_run_step", real_run_step)
        monkeypatch.setattr(Approvals, "finish", real_finish)
        assert approvals.get(handle).state == "running"
        early = tools.run_approved(handle)
        assert early.is_error and "running" in early.content["error"]["message"]
        now[0] += RUN_LEASE + 1
        done = tools.run_approved(handle)
    assert not done.is_error and done.content["status"] == SUCCEEDED, done.content
    assert works(sandbox, open(done.content["new_key"]["token_file"]).read())
    assert len(requests_seen("POST")) == 1 and len(requests_seen("DELETE")) == 1
    assert approvals.get(handle).state == "done"


def test_the_same_step_with_another_key_id_is_refused(sandbox):
    from gen_nodes.core.errors import IdempotencyConflict

    runner = StepRunner("airflow", IdempotencyRecords(open_store("memory://")))
    first, second = old_key(sandbox, "a"), old_key(sandbox, "b")
    with engine_client(sandbox.api_key, sandbox.base_url) as client:
        runner.run("rotate_api_key", {"id": first["id"]}, client, step="dag/run/task")
        with pytest.raises(IdempotencyConflict):
            runner.run("rotate_api_key", {"id": second["id"]}, client, step="dag/run/task")
    assert [k["status"] for k in keys(sandbox, "b")] == ["active"]


# -- surfaces ----------------------------------------------------------------------------------------


def _env(sandbox) -> dict[str, str]:
    return {"GEN_API_KEY": sandbox.api_key, "GEN_BASE_URL": sandbox.base_url, "PATH": "/usr/bin:/bin"}


def test_the_cli_asks_then_rotates_with_yes_and_exits_8_when_partial(sandbox, requests_seen):
    old = old_key(sandbox)
    refused = gen_nodes_cli("run", "rotate_api_key", "--input", json.dumps({"id": old["id"]}), env=_env(sandbox))
    assert refused.returncode == 6 and "--yes" in refused.stderr and requests_seen("POST") == []
    done = gen_nodes_cli("run", "rotate_api_key", "--yes", "--input", json.dumps({"id": old["id"]}), env=_env(sandbox))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "succeeded" and works(sandbox, out["new_key"]["token"])
    sandbox.inject_fault(503, method="DELETE", path=REVOKE_PATH, times=10)
    partial = gen_nodes_cli("run", "rotate_api_key", "--yes", "--input", json.dumps({"id": out["new_key"]["id"]}),
                            env=_env(sandbox))
    assert partial.returncode == 8 and "partly done" in partial.stderr
    assert json.loads(partial.stdout)["status"] == "partial"


def test_tools_hold_it_for_a_person_and_deliver_the_secret_by_policy(sandbox, tmp_path):
    old = old_key(sandbox)
    asked = []
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        tools = Dispatcher(client=client, confirm=lambda tool, args, preview: asked.append(preview) or True,
                           secrets_folder=tmp_path)
        result = tools.call("gen_rotate_api_key", {"id": old["id"], "name": None, "expires_in": None})
    assert not result.is_error and result.content["status"] == "succeeded"
    assert [item["change"] for item in asked[0]] == ["Create API key", "Revoke API key"]
    new = result.content["new_key"]
    assert TOKEN_PREFIX + "…" in new["token"] and works(sandbox, open(new["token_file"]).read())
    assert open(new["token_file"]).read() not in result.text


def test_the_gateway_answers_207_when_partial_and_a_repeat_never_makes_another_key(sandbox, requests_seen):
    from starlette.testclient import TestClient

    from gen_nodes.surfaces.gateway.app import build_app

    old = old_key(sandbox)
    auth = {"X-API-Key": sandbox.api_key, "Idempotency-Key": "rotate-1"}
    with TestClient(build_app(base_url=sandbox.base_url, store_url="memory://")) as gw:
        document = gw.get("/openapi.json").json()
        assert "207" in json.dumps(document["paths"]["/actions/rotate_api_key"]["post"]["responses"])
        sandbox.inject_fault(503, method="DELETE", path=REVOKE_PATH, times=10)
        first = gw.post("/actions/rotate_api_key", json={"id": old["id"]}, headers=auth)
        assert first.status_code == 207 and first.json()["status"] == "partial"
        again = gw.post("/actions/rotate_api_key", json={"id": old["id"]}, headers=auth)
    assert again.status_code == 207 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["new_key"]["id"] == first.json()["new_key"]["id"]
    assert len(requests_seen("POST")) == 1


def chat_on(sandbox, platform="slack", user="U1", **options):
    """A chat-ops core on the sandbox, ``user`` logged in with the sandbox's key; (chat, who)."""
    chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("rotate-chat-test-secret"),
                   base_url=sandbox.base_url, **options)
    chat.bind(platform, user, sandbox.api_key)
    return chat, ChatUser(platform, "T1" if platform == "slack" else "G1", user)


def test_chat_asks_with_a_button_and_the_secret_goes_only_to_the_requester(sandbox):
    chat, who = chat_on(sandbox)
    old = old_key(sandbox)
    command = chat.parse(f"keys rotate {old['id']} n8n production 2027 expires=30d")
    assert dict(command.arguments) == {"id": old["id"], "name": "n8n production 2027", "expires_in": "30d"}
    asked = chat.run(who, command)
    assert asked.buttons is not None and "Create API key" in asked.text and "Revoke API key" in asked.text
    assert chat.press(ChatUser("slack", "T1", "U2"), asked.buttons.approval, approve=True).buttons is None
    assert [k["status"] for k in keys(sandbox, "n8n production")] == ["active"]
    done = chat.press(who, asked.buttons.approval, approve=True)
    assert done.private and done.secret and "Rotate API key: done." in done.text
    (new,) = keys(sandbox, "n8n production 2027")
    token = re.search(r"`(" + re.escape(TOKEN_PREFIX) + r"[^`]+)`", done.text).group(1)
    assert works(sandbox, token) and keys(sandbox, "n8n production")[0]["status"] == "revoked"


def test_chat_says_so_when_the_rotated_key_is_the_one_it_logs_in_with(sandbox):
    """Rotating (or revoking) the very key the chat logs in with leaves the chat with a revoked key:
    the reply says so at once, rather than the next command failing."""
    chat, who = chat_on(sandbox)
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        login = default_registry().run("create_api_key", {"name": "chat login"}, client=client)
    chat.bind("slack", "U1", str.__str__(login["token"]))
    other = old_key(sandbox)
    asked = chat.run(who, chat.parse(f"keys rotate {other['id']}"))
    done = chat.press(who, asked.buttons.approval, approve=True)
    assert "Rotate API key: done." in done.text and "logged in with" not in done.text
    asked = chat.run(who, chat.parse(f"keys rotate {keys(sandbox, 'n8n production')[-1]['id']}"))
    sandbox.inject_fault(503, method="GET", path="/me")  # GEN cannot say now: no note, no false claim
    done = chat.press(who, asked.buttons.approval, approve=True)
    assert "Rotate API key: done." in done.text and "logged in with" not in done.text
    asked = chat.run(who, chat.parse(f"keys rotate {login['id']}"))
    done = chat.press(who, asked.buttons.approval, approve=True)
    assert "Rotate API key: done." in done.text and done.private and done.secret
    assert "GEN no longer accepts the key you logged in with here" in done.text and "/gen login" in done.text


def test_chat_finishes_a_rotation_whose_process_died_when_approve_is_pressed_again(sandbox, monkeypatch,
                                                                                   requests_seen):
    """The chat process died between the create and the revoke: no answer came and the button stayed.
    Pressed again within RUN_LEASE it says to wait; after it, the run resumes: the create is replayed
    (its secret reaches the requester), only the revoke is sent."""
    import gen_nodes.core.composite as composite
    from gen_nodes.safety.approvals import RUN_LEASE, Approvals

    now = [1_000_000.0]
    chat, who = chat_on(sandbox, clock=lambda: now[0])
    old = old_key(sandbox)
    asked = chat.run(who, chat.parse(f"keys rotate {old['id']}"))
    real_run_step, real_finish = composite._run_step, Approvals.finish

    def dies_before_revoke(spec, step, *args, **kwargs):
        if step.name == "revoke":
            raise Died()
        return real_run_step(spec, step, *args, **kwargs)

    monkeypatch.setattr(composite, "_run_step", dies_before_revoke)
    monkeypatch.setattr(Approvals, "finish", lambda self, *args, **kwargs: None)  # dead: nothing recorded
    with pytest.raises(Died):
        chat.press(who, asked.buttons.approval, approve=True)
    monkeypatch.setattr(composite, "_run_step", real_run_step)
    monkeypatch.setattr(Approvals, "finish", real_finish)
    early = chat.press(who, asked.buttons.approval, approve=True)
    assert "still running" in early.text and f"{round(RUN_LEASE / 60)} minutes" in early.text and not early.secret
    assert "Only the person" in chat.press(ChatUser("slack", "T1", "U2"), asked.buttons.approval, True).text
    now[0] += RUN_LEASE + 1
    with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url) as client:
        other = default_registry().run("create_api_key", {"name": "another login"}, client=client)
    chat.bind("slack", "U1", str.__str__(other["token"]))  # logged in with another key meanwhile
    refused = chat.press(who, asked.buttons.approval, approve=True)
    assert "another GEN key" in refused.text and "may have partly run" in refused.text and not refused.secret
    assert len(requests_seen("DELETE")) == 0, "nothing was resumed with the other key"
    chat.bind("slack", "U1", sandbox.api_key)
    done = chat.press(who, asked.buttons.approval, approve=True)
    assert "Rotate API key: done." in done.text and done.private and done.secret
    token = re.search(r"`(" + re.escape(TOKEN_PREFIX) + r"[^`]+)`", done.text).group(1)
    assert works(sandbox, token) and keys(sandbox, "n8n production")[0]["status"] == "revoked"
    assert len(requests_seen("POST")) == 2 and len(requests_seen("DELETE")) == 1  # the rotation's, the other login's
    again = chat.press(who, asked.buttons.approval, approve=True)
    assert "already used (done)" in again.text and not again.secret


def test_chat_runs_an_approved_rotation_that_never_started_when_approve_is_pressed_again(sandbox, requests_seen):
    """The process died after recording the approval and before running it: pressed again, it runs once."""
    chat, who = chat_on(sandbox)
    old = old_key(sandbox)
    asked = chat.run(who, chat.parse(f"keys rotate {old['id']}"))
    chat.approvals.decide(asked.buttons.approval, approve=True, by="slack:U1")  # ... and then the process died
    done = chat.press(who, asked.buttons.approval, approve=True)
    assert "Rotate API key: done." in done.text and done.secret
    again = chat.press(who, asked.buttons.approval, approve=True)
    assert "already used (done)" in again.text
    assert len(requests_seen("POST")) == 1 and len(requests_seen("DELETE")) == 1


def test_chat_says_partly_done_and_what_next(sandbox, gen_log):
    chat, who = chat_on(sandbox, "discord", "42")
    old = old_key(sandbox)
    asked = chat.run(who, chat.parse(f"keys rotate {old['id']}"))
    sandbox.inject_fault(503, method="DELETE", path=REVOKE_PATH, times=10)
    done = chat.press(who, asked.buttons.approval, approve=True)
    lines = done.text.splitlines()
    assert lines[0] == "Rotate API key: partly done." and lines[1].startswith("Why: ")
    assert lines[2].startswith("Next: ") and f"key {old['id']}" in lines[2]
    assert done.private and done.secret
    audited = [json.loads(r.getMessage()) for r in gen_log.records if r.name == "gen_nodes.chatops.audit"]
    new_id = keys(sandbox, "n8n production")[-1]["id"]
    assert {"action": "rotate_api_key", "outcome": "partial"}.items() <= audited[-1].items()
    assert set(audited[-1]["ids"]) == {str(old["id"]), str(new_id)} or set(audited[-1]["ids"]) == {old["id"], new_id}
