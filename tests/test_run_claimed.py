"""Running an approved call, written once (``Approvals.run_claimed``): it runs once and its outcome is
kept in one shape, and the dispatcher, the gateway and chat-ops all go through it."""

from __future__ import annotations

import pytest

from gen_nodes.core.errors import NotFound
from gen_nodes.core.terms import GATEWAY_TERMS, PYTHON_TERMS
from gen_nodes.safety.approvals import DONE, Approvals
from gen_nodes.state import open_store


@pytest.fixture
def approvals():
    return Approvals(open_store("memory://"))


def claimed(approvals, arguments=None):
    asked = approvals.request(action="revoke_api_key", arguments=arguments or {"id": 6}, principal="alice")
    approvals.decide(asked.id, approve=True, by="alice")
    return approvals.claim(asked.id)


def test_the_output_is_kept_with_its_secrets_masked_and_returned_as_it_is(approvals):
    approval = claimed(approvals)
    output = approvals.run_claimed(approval, lambda a: {"id": a.arguments["id"], "token": "gen_pat_" + "x" * 32})
    assert output["token"] == "gen_pat_" + "x" * 32
    kept = approvals.get(approval.id)
    assert kept.state == DONE and kept.ok is True
    assert kept.result["id"] == 6 and "x" * 32 not in str(kept.result)


def test_an_error_is_kept_as_its_dict_in_the_callers_terms_and_raised(approvals):
    approval = claimed(approvals)

    def not_found(_):
        raise NotFound("no key 6", hint="Call ${list_api_keys}; then set ${API_KEY}.")

    with pytest.raises(NotFound):
        approvals.run_claimed(approval, not_found, terms=GATEWAY_TERMS)
    kept = approvals.get(approval.id)
    assert kept.ok is False and kept.result == {"error": NotFound(
        "no key 6", hint="Call ${list_api_keys}; then set ${API_KEY}.").to_dict(GATEWAY_TERMS)}
    assert GATEWAY_TERMS.API_KEY in kept.result["error"]["hint"]
    assert PYTHON_TERMS.API_KEY not in kept.result["error"]["hint"]


def test_a_bug_is_kept_as_an_unexpected_failure_without_its_text(approvals):
    approval = claimed(approvals)

    def bug(_):
        raise ValueError("gen_pat_secret-looking text")

    with pytest.raises(ValueError):
        approvals.run_claimed(approval, bug)
    kept = approvals.get(approval.id)
    assert kept.ok is False and kept.result["error"]["type"] == "api_error"
    assert "ValueError" in kept.result["error"]["message"] and "secret" not in str(kept.result)


# -- every surface that runs approved calls goes through run_claimed ----------------------------


@pytest.fixture
def run_claimed_calls(monkeypatch):
    """The actions run_claimed ran, and the shape each outcome was kept in (the real method runs)."""
    calls, real = [], Approvals.run_claimed

    def spy(self, approval, run, **kw):
        try:
            return real(self, approval, run, **kw)
        finally:
            kept = self.get(approval.id)
            calls.append((approval.action, kept.ok, sorted(kept.result)))

    monkeypatch.setattr(Approvals, "run_claimed", spy)
    return calls


def test_the_dispatcher_uses_run_claimed(run_claimed_calls, sandbox, client):
    from gen_nodes.runtime.dispatch import Dispatcher

    target = sandbox.store.create_key(sandbox.user["id"], "doomed")[0]["id"]
    dispatcher = Dispatcher(client=client, confirmation="approval")
    held = dispatcher.call("gen_revoke_api_key", {"id": target})
    done = dispatcher.approve(held.approval.id, by="alice")
    assert not done.is_error and done.content["revoked"] is True
    assert run_claimed_calls == [("revoke_api_key", True, ["id", "revoked"])]


def test_the_gateway_uses_run_claimed(run_claimed_calls, sandbox):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from approval_support import Inbox
    from gen_nodes.surfaces.gateway.app import build_app

    target = sandbox.store.create_key(sandbox.user["id"], "doomed")[0]["id"]
    auth = {"X-API-Key": sandbox.api_key}
    with TestClient(build_app(base_url=sandbox.base_url, store_url="memory://", confirmation="approval",
                              notify_targets=[Inbox()])) as gw:
        approval = gw.post("/actions/revoke_api_key", headers=auth, json={"id": target}).json()["approval"]
        gw.app.state.gateway.approvals.decide(approval["id"], approve=True, by="the person")
        done = gw.get(f"/approvals/{approval['id']}", headers=auth)
    assert done.status_code == 200 and done.json()["revoked"] is True
    assert run_claimed_calls == [("revoke_api_key", True, ["id", "revoked"])]


def test_chatops_uses_run_claimed(run_claimed_calls, sandbox):
    from gen_nodes.core.registry import default_registry
    from gen_nodes.state.secretbox import SecretBox
    from gen_nodes.surfaces.chatops.core import ChatOps, ChatUser

    target = sandbox.store.create_key(sandbox.user["id"], "doomed")[0]["id"]
    chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("run-claimed-secret"),
                   base_url=sandbox.base_url)
    who = ChatUser("slack", "T1", "U1")
    chat.bind("slack", "U1", sandbox.api_key)
    asked = chat.run(who, chat.parse(f"keys revoke {target}"))
    said = chat.press(who, asked.buttons.approval, approve=True)
    assert said.replace and run_claimed_calls == [("revoke_api_key", True, ["id", "revoked"])]


def test_a_chat_user_whose_key_changed_gets_the_one_error_shape(run_claimed_calls, sandbox):
    from gen_nodes.core.registry import default_registry
    from gen_nodes.state.secretbox import SecretBox
    from gen_nodes.surfaces.chatops.core import ChatOps, ChatUser

    chat = ChatOps(default_registry(), open_store("memory://"), SecretBox("run-claimed-secret"),
                   base_url=sandbox.base_url)
    who = ChatUser("discord", "G1", "42")
    chat.bind("discord", "42", sandbox.api_key)
    asked = chat.run(who, chat.parse("keys revoke 1"))
    chat.bind("discord", "42", sandbox.create_user()[1])
    assert "changed" in chat.press(who, asked.buttons.approval, approve=True).text
    kept = chat.approvals.get(asked.buttons.approval)
    assert kept.ok is False and kept.result["error"]["type"] == "approval"
    assert kept.result["error"]["reason"] == "key_changed"
    assert run_claimed_calls == [("revoke_api_key", False, ["error"])]
