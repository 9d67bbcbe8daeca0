"""The tool dispatcher against the real sandbox: parsing, nulls, errors, confirmation, secrets."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest

from client_support import FAST_RETRY
from gen_nodes.client.http import GenClient
from gen_nodes.safety.approvals import Approvals
from gen_nodes.runtime.dispatch import Dispatcher
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.state import open_store


class RecordingClient(GenClient):
    """A real client that also remembers every request it sends and the answers' bodies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, Any]] = []
        self.answers: list[Any] = []

    def request(self, method, path, **kwargs):
        self.sent.append((method, path, kwargs.get("params")))
        response = super().request(method, path, **kwargs)
        self.answers.append(response.data)
        return response

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.sent if m != "GET"]


def _client(sandbox, api_key: str | None = None) -> RecordingClient:
    return RecordingClient(api_key=api_key or sandbox.api_key, base_url=sandbox.base_url,
                           retry=FAST_RETRY, timeout=(2.0, 5.0))


@pytest.fixture
def rec(sandbox):
    with _client(sandbox) as c:
        yield c


@pytest.fixture
def secrets_dir(tmp_path):
    return tmp_path / "secrets"


@pytest.fixture
def dispatcher(rec, secrets_dir):
    return Dispatcher(client=rec, secrets_folder=secrets_dir)


def _key_status(sandbox, key_id: int, user_id: int | None = None) -> str:
    return sandbox.store.get_key(user_id or sandbox.user["id"], key_id)["status"]


def _new_key(sandbox, name: str = "victim", user_id: int | None = None) -> tuple[int, str]:
    key, plain = sandbox.store.create_key(user_id or sandbox.user["id"], name)
    return key["id"], plain


def _without_last_used(listing: dict[str, Any]) -> list[dict[str, Any]]:
    # The sandbox stamps last_used_at of the calling key on each request.
    return [{k: v for k, v in item.items() if k != "last_used_at"} for item in listing["api_keys"]]


def _error(result) -> dict[str, Any]:
    assert result.is_error, result.content
    assert set(result.content) == {"error"}
    assert json.loads(result.text) == result.content
    return result.content["error"]


# ---- arguments ---------------------------------------------------------------------------

def test_args_as_json_string_dict_or_nothing(dispatcher, sandbox):
    expected = {"id": sandbox.user["id"], "email": sandbox.user["email"]}
    for args in ('{}', {}, None, "", "  {} "):
        result = dispatcher.call("gen_get_me", args)
        assert not result.is_error, (args, result.content)
        assert {k: result.content[k] for k in expected} == expected
    as_text = dispatcher.call("gen_list_api_keys", '{"status": "active"}')
    as_dict = dispatcher.call("gen_list_api_keys", {"status": "active"})
    assert _without_last_used(as_text.content) == _without_last_used(as_dict.content)
    assert [k["name"] for k in as_dict.content["api_keys"]] == ["sandbox bootstrap"]
    assert json.loads(as_dict.text) == as_dict.content


def test_strict_mode_nulls_run_like_omitted_fields(dispatcher, rec, sandbox):
    omitted = dispatcher.call("gen_create_api_key", {})
    nulled = dispatcher.call("gen_create_api_key", '{"name": null, "expires_in": null}')
    assert not omitted.is_error and not nulled.is_error, (omitted.content, nulled.content)
    assert set(omitted.content) == set(nulled.content)
    for result in (omitted, nulled):
        assert result.content["name"] is None
        assert result.content["expires_at"] is None
        assert result.content["status"] == "active"
    # Both sent the same (empty) body: the nulls never reached GEN.
    posts = [(m, p) for m, p, _ in rec.sent if m == "POST"]
    assert posts == [("POST", "/persisted_tokens")] * 2
    listed = {k["id"]: k for k in dispatcher.call("gen_list_api_keys", {}).content["api_keys"]}
    for result in (omitted, nulled):
        assert listed[result.content["id"]]["name"] is None
        assert listed[result.content["id"]]["expires_at"] is None
    # list: {"status": null} is the unfiltered list, like {}.
    all_keys = dispatcher.call("gen_list_api_keys", {})
    null_status = dispatcher.call("gen_list_api_keys", {"status": None})
    assert _without_last_used(null_status.content) == _without_last_used(all_keys.content)
    assert len(all_keys.content["api_keys"]) == 3
    assert all(params is None for m, p, params in rec.sent if m == "GET")


def test_a_confirmation_field_is_an_unknown_field_whatever_its_value(dispatcher, rec, sandbox):
    """No tool takes anything that approves it: the old token field is just an unknown field."""
    key_id, _ = _new_key(sandbox)
    for value in (None, "confirm_abc", True):
        error = _error(dispatcher.call("gen_revoke_api_key", {"id": key_id, "confirmation_token": value}))
        assert error["type"] in ("invalid_input", "confirmation_required"), error
        assert "token" not in json.dumps(error).replace("confirmation_token", "")
    assert rec.writes() == [] and _key_status(sandbox, key_id) == "active"


def test_null_for_a_required_field_is_invalid(dispatcher, rec):
    error = _error(dispatcher.call("gen_update_api_key", {"id": 1, "name": None}))
    assert error["type"] == "invalid_input"
    assert [e["path"] for e in error["errors"]] == ["$.name"]
    assert rec.sent == []


# ---- invalid input -----------------------------------------------------------------------

def test_invalid_input_names_the_field_and_what_is_allowed(dispatcher, rec):
    result = dispatcher.call("gen_create_api_key", {"expires_in": "abc"})
    error = _error(result)
    assert error["type"] == "invalid_input"
    assert len(error["errors"]) == 1
    (problem,) = error["errors"]
    assert problem["path"] == "$.expires_in"
    assert '"abc"' in problem["message"] and '"30d"' in problem["message"]  # what it got, what is allowed
    assert "errors" in error["hint"] and "no request was sent" in error["hint"]
    assert "$.expires_in" in error["message"]
    assert rec.sent == []  # nothing reached GEN


def test_unknown_field_lists_the_allowed_ones(dispatcher, rec):
    error = _error(dispatcher.call("gen_create_api_key", '{"nmae": "ci"}'))
    assert error["type"] == "invalid_input"
    (problem,) = error["errors"]
    assert 'unknown field "nmae"' in problem["message"]
    assert "Allowed fields: expires_in, name" in problem["message"]
    assert rec.sent == []


def test_wrong_type_for_list_status(dispatcher):
    error = _error(dispatcher.call("gen_list_api_keys", {"status": "gone"}))
    assert error["errors"][0]["path"] == "$.status"
    assert "active" in error["errors"][0]["message"]


@pytest.mark.parametrize("args, message", [
    ('{"name": ', "not valid JSON"),
    ("{'name': 'x'}", "not valid JSON"),
    ("[1, 2]", "must be a JSON object, not list"),
    ('"just text"', "must be a JSON object, not str"),
    (42, "must be a JSON object, not int"),
    (["name"], "must be a JSON object, not list"),
])
def test_malformed_arguments_are_errors(dispatcher, rec, args, message):
    error = _error(dispatcher.call("gen_create_api_key", args))
    assert error["type"] == "invalid_input"
    assert message in error["message"]
    assert error["errors"] == [{"path": "$", "message": error["errors"][0]["message"]}]
    assert error["hint"]
    assert rec.sent == []


def test_unknown_tool_lists_the_tools(dispatcher, rec):
    error = _error(dispatcher.call("gen_delete_everything", {}))
    assert error["type"] == "invalid_input"
    assert "gen_delete_everything" in error["message"]
    for name in ("gen_create_api_key", "gen_get_me", "gen_list_api_keys", "gen_revoke_all_api_keys",
                 "gen_revoke_api_key", "gen_update_api_key"):
        assert name in error["hint"]
    # The action id without the prefix is not a tool name either.
    assert _error(dispatcher.call("get_me", {}))["type"] == "invalid_input"
    assert rec.sent == []


# ---- GEN errors --------------------------------------------------------------------------

def test_bad_key_is_an_authentication_error(sandbox, secrets_dir):
    with _client(sandbox, api_key="gen_pat_not_a_real_key_000000") as bad:
        result = Dispatcher(client=bad, secrets_folder=secrets_dir).call("gen_get_me", {})
    error = _error(result)
    assert error["type"] == "authentication"
    assert error["status"] == 401
    assert "API key" in error["hint"]
    assert "gen_pat_not_a_real_key_000000" not in result.text


def test_unknown_id_after_approval_is_not_found(approving, rec):
    first = approving.call("gen_revoke_api_key", {"id": 999999})
    assert _error(first)["preview"] == []  # nothing of ours would be affected
    error = _error(approving.approve(first.approval.id, by="alice"))
    assert error["type"] == "not_found"
    assert error["status"] == 404
    assert "gen_list_api_keys" in error["hint"]  # named as the model calls it
    assert rec.writes() == [("DELETE", "/persisted_tokens/999999/revoke")]


def test_gen_rejection_of_a_rename_is_an_error_dict(dispatcher, sandbox):
    key_id, _ = _new_key(sandbox)
    error = _error(dispatcher.call("gen_update_api_key", {"id": key_id + 100, "name": "x"}))
    assert error["type"] == "not_found" and error["status"] == 404 and error["hint"]


# ---- confirmation: the approval policy (two phases) -------------------------------------------

@pytest.fixture
def approvals():
    return Approvals(open_store("memory://"), ttl=60)


@pytest.fixture
def approving(rec, secrets_dir, approvals):
    return Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="approval", approvals=approvals)


def test_without_a_way_to_ask_a_destructive_call_is_refused_naming_the_options(dispatcher, rec, sandbox):
    key_id, _ = _new_key(sandbox)
    result = dispatcher.call("gen_revoke_api_key", {"id": key_id})
    error = _error(result)
    assert error["type"] == "confirmation_required" and "nothing was sent" in error["message"]
    for option in ("confirm=", "approval", "host"):
        assert option in error["hint"]
    assert result.approval is None
    assert rec.sent == []  # not even the preview listing
    assert _key_status(sandbox, key_id) == "active"


def test_approval_holds_the_call_then_runs_it_once_when_the_host_approves(approving, approvals, rec, sandbox):
    key_id, plain = _new_key(sandbox, "victim")
    other_id, _ = _new_key(sandbox, "bystander")
    first = approving.call("gen_revoke_api_key", {"id": key_id})
    error = _error(first)
    assert error["awaiting_approval"] is True and "waiting for the user's approval" in error["message"]
    assert [(k["id"], k["name"], k["status"]) for k in error["preview"]] == [(key_id, "victim", "active")]
    handle = first.approval.id
    # The handle is for the host only: nowhere in what the model sees, nor in the repr.
    assert handle not in first.text and handle not in repr(first) and handle not in json.dumps(first.content)
    assert plain not in first.text and sandbox.api_key not in first.text
    assert rec.writes() == [] and _key_status(sandbox, key_id) == "active"
    assert approvals.get(handle).state == "pending" and approvals.get(handle).arguments == {"id": key_id}

    done = approving.approve(handle, by="alice")
    assert done.content == {"id": key_id, "revoked": True}
    assert rec.writes() == [("DELETE", f"/persisted_tokens/{key_id}/revoke")]
    assert approvals.get(handle).state == "done" and approvals.get(handle).decided_by == "alice"
    assert _key_status(sandbox, other_id) == "active"
    # Once: a second approval, a deny or a direct run of the same handle does nothing.
    for again in (approving.approve(handle), approving.deny(handle), approving.run_approved(handle)):
        assert _error(again)["type"] == "approval"
    assert len(rec.writes()) == 1


def test_approval_deny_expiry_and_unknown_handles_run_nothing(rec, sandbox, secrets_dir):
    now = [1000.0]
    approvals = Approvals(open_store("memory://"), ttl=60, clock=lambda: now[0])
    approving = Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="approval", approvals=approvals)
    key_id, _ = _new_key(sandbox)
    denied = approving.call("gen_revoke_api_key", {"id": key_id}).approval
    error = _error(approving.deny(denied.id, by="bob"))
    assert error["declined"] is True and "gen_revoke_api_key" in error["message"]
    late = approving.call("gen_revoke_api_key", {"id": key_id}).approval
    now[0] += 61
    assert _error(approving.approve(late.id))["reason"] == "expired"
    assert _error(approving.approve("not-a-real-handle-at-all"))["reason"] == "unknown"
    assert rec.writes() == [] and _key_status(sandbox, key_id) == "active"


def test_approval_runs_exactly_the_previewed_arguments_as_the_same_key(approving, rec, sandbox):
    other_user, other_key = sandbox.create_user()
    victim_id, _ = _new_key(sandbox, "b's key", user_id=other_user["id"])
    mine, _ = _new_key(sandbox, "mine")
    held = approving.call("gen_revoke_api_key", {"id": mine}).approval
    with _client(sandbox, other_key) as other:
        # Another key cannot run it: the approval is bound to the key that asked.
        refused = _error(approving.approve(held.id, client=other))
        assert refused["reason"] == "not_yours" and other.writes() == []
    assert _key_status(sandbox, mine) == "active" and _key_status(sandbox, victim_id, other_user["id"]) == "active"
    assert rec.writes() == []


def test_revoke_all_previews_active_keys_only(approving, rec, sandbox):
    keep_id, _ = _new_key(sandbox, "active one")
    dead_id, _ = _new_key(sandbox, "already revoked")
    sandbox.store.revoke_key(sandbox.user["id"], dead_id)
    first = approving.call("gen_revoke_all_api_keys", {})
    error = _error(first)
    assert sorted(k["id"] for k in error["preview"]) == sorted([keep_id, 1])
    assert all(k["status"] == "active" for k in error["preview"])
    assert rec.writes() == []
    done = approving.approve(first.approval.id)
    assert done.content == {"revoked_all": True}
    assert _key_status(sandbox, keep_id) == "revoked"
    # Our own key went too: the next call is refused by GEN.
    assert _error(approving.call("gen_get_me", {}))["type"] == "authentication"


def test_confirmed_true_is_the_host_saying_a_person_agreed(dispatcher, sandbox):
    key_id, _ = _new_key(sandbox)
    result = dispatcher.call("gen_revoke_api_key", {"id": key_id}, confirmed=True)
    assert result.content == {"id": key_id, "revoked": True}


def test_host_policy_acts_at_once_and_says_so_in_the_description(rec, sandbox, secrets_dir):
    dispatcher = Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="host")
    revoke = dispatcher.tool("gen_revoke_api_key")
    assert not revoke.needs_approval and "ask the user before calling it" in revoke.description
    key_id, _ = _new_key(sandbox)
    assert dispatcher.call("gen_revoke_api_key", {"id": key_id}).content == {"id": key_id, "revoked": True}


# ---- confirmation: elicit and none -------------------------------------------------------------

def test_elicit_accept_acts_and_shows_the_preview(rec, sandbox, secrets_dir):
    asked = []

    def confirm(tool, args, preview):
        asked.append((tool.name, args, preview))
        return True

    dispatcher = Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="elicit", confirm=confirm)
    key_id, plain = _new_key(sandbox, "victim")
    result = dispatcher.call("gen_revoke_api_key", {"id": key_id})
    assert result.content == {"id": key_id, "revoked": True}
    ((name, args, preview),) = asked
    assert name == "gen_revoke_api_key" and args == {"id": key_id}
    assert [(k["id"], k["name"]) for k in preview] == [(key_id, "victim")]
    assert plain not in json.dumps(preview)
    assert _key_status(sandbox, key_id) == "revoked"


def test_elicit_decline_changes_nothing(rec, sandbox, secrets_dir):
    asked = []
    dispatcher = Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="elicit",
                            confirm=lambda tool, args, preview: asked.append(preview) or False)
    key_id, _ = _new_key(sandbox)
    error = _error(dispatcher.call("gen_revoke_api_key", {"id": key_id}))
    assert error["type"] == "confirmation_required"
    assert "declined" in error["message"]
    assert len(asked) == 1
    assert rec.writes() == []
    assert _key_status(sandbox, key_id) == "active"


def test_confirmation_none_acts_at_once(rec, sandbox, secrets_dir):
    dispatcher = Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="none")
    key_id, _ = _new_key(sandbox)
    result = dispatcher.call("gen_revoke_api_key", {"id": key_id})
    assert result.content == {"id": key_id, "revoked": True}
    assert rec.writes() == [("DELETE", f"/persisted_tokens/{key_id}/revoke")]
    assert _key_status(sandbox, key_id) == "revoked"


# ---- secret policies ----------------------------------------------------------------------------

def _created_secret(rec: RecordingClient) -> str:
    (secret,) = [str.__str__(a["token"]) for a in rec.answers if isinstance(a, dict) and "token" in a]
    return secret


def _whoami(sandbox, api_key: str, secrets_dir) -> dict[str, Any]:
    with _client(sandbox, api_key) as c:
        return Dispatcher(client=c, secrets_folder=secrets_dir).call("gen_get_me", {}).content


def test_file_policy_is_the_default_and_writes_a_private_file(dispatcher, rec, sandbox, secrets_dir):
    assert dispatcher.secret_policy == "file"
    result = dispatcher.call("gen_create_api_key", {"name": "ci"})
    assert not result.is_error, result.content
    secret = _created_secret(rec)
    out = result.content
    assert secret not in result.text
    assert out["token"] != secret and "…" in out["token"] and out["token"].endswith(secret[-4:])
    path = secrets_dir / out["token_file"].rsplit("/", 1)[-1]
    assert out["token_file"] == str(path) and path.parent == secrets_dir
    assert str(path) in out["token_note"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    assert path.read_text().strip() == secret
    # The secret in the file is the real, working key.
    me = _whoami(sandbox, path.read_text().strip(), secrets_dir)
    assert me["id"] == sandbox.user["id"]


def test_file_policy_accepts_a_string_folder(rec, secrets_dir):
    dispatcher = Dispatcher(client=rec, secrets_folder=str(secrets_dir))
    result = dispatcher.call("gen_create_api_key", {"name": "ci"})
    assert not result.is_error, result.content
    assert (secrets_dir / result.content["token_file"].rsplit("/", 1)[-1]).exists()


def test_file_policy_that_cannot_write_says_which_key_to_revoke(rec, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = Dispatcher(client=rec, secrets_folder=blocker / "secrets").call("gen_create_api_key", {"name": "ci"})
    assert not result.is_error
    assert "token_file" not in result.content
    assert f"revoke key {result.content['id']}" in result.content["token_note"]
    assert result.content["token"].startswith("gen_pat_…")


def test_mask_policy_keeps_the_secret_out(rec, sandbox, secrets_dir):
    dispatcher = Dispatcher(client=rec, secret_policy="mask", secrets_folder=secrets_dir)
    result = dispatcher.call("gen_create_api_key", {"name": "masked", "expires_in": "30d"})
    secret = _created_secret(rec)
    assert secret not in result.text
    assert secret[8:] not in result.text  # not even most of it
    assert result.content["token"].endswith(secret[-4:]) and "…" in result.content["token"]
    assert "token_file" not in result.content
    assert "withheld" in result.content["token_note"]
    assert result.content["name"] == "masked" and result.content["expires_at"] is not None
    assert not secrets_dir.exists()  # nothing written


def test_reveal_policy_returns_a_working_secret(rec, sandbox, secrets_dir):
    dispatcher = Dispatcher(client=rec, secret_policy="reveal", secrets_folder=secrets_dir)
    result = dispatcher.call("gen_create_api_key", {"name": "revealed"})
    secret = _created_secret(rec)
    assert result.content["token"] == secret
    assert json.loads(result.text)["token"] == secret
    assert "token_file" not in result.content and "token_note" not in result.content
    assert _whoami(sandbox, secret, secrets_dir)["id"] == sandbox.user["id"]


def test_results_without_secrets_are_unchanged_by_the_policy(rec, sandbox, secrets_dir):
    outputs = [Dispatcher(client=rec, secret_policy=p, secrets_folder=secrets_dir).call("gen_get_me", {}).content
               for p in ("file", "mask", "reveal")]
    assert outputs[0] == outputs[1] == outputs[2]
    assert not secrets_dir.exists()


@pytest.mark.parametrize("policy", ["plain", "FILE", ""])
def test_bad_secret_policy_fails_at_construction(client, policy):
    with pytest.raises(ValueError, match="secret policy must be one of"):
        Dispatcher(client=client, secret_policy=policy)


def test_bad_confirmation_policy_fails_at_construction(client):
    with pytest.raises(ValueError, match="confirmation must be one of"):
        Dispatcher(client=client, confirmation="ask")


# ---- unexpected failures -------------------------------------------------------------------------

class ExplodingRegistry(Registry):
    def run(self, action_id, arguments=None, *, client=None, **options):
        raise RuntimeError('Traceback (most recent call last):\n  File "/secret/path.py", line 1\nboom gen_pat_xyz')


def test_unexpected_exception_is_an_api_error_without_details(client, caplog):
    dispatcher = Dispatcher(ExplodingRegistry(default_registry()), client=client)
    result = dispatcher.call("gen_get_me", {})
    error = _error(result)
    assert error["type"] == "api_error"
    assert "RuntimeError" in error["message"]
    assert error["hint"]
    for leaked in ("Traceback", "/secret/path.py", "boom", "gen_pat_xyz"):
        assert leaked not in result.text
    assert "RuntimeError" in caplog.text  # logged for us...
    assert "boom" not in caplog.text and "Traceback" not in caplog.text  # ...without the details


def test_plugin_tools_are_dispatched_too(client, sandbox):
    from gen_nodes.core.actions import GET_ME
    from gen_nodes.core.spec import ActionSpec

    spec = ActionSpec(**{**GET_ME.__dict__, "id": "whoami_plugin"})
    dispatcher = Dispatcher(Registry([spec]), client=client, prefix="p_")
    assert [t.name for t in dispatcher.tools] == ["p_whoami_plugin"]
    assert dispatcher.call("p_whoami_plugin", {}).content["id"] == sandbox.user["id"]
    assert _error(dispatcher.call("gen_get_me", {}))["type"] == "invalid_input"


def test_elicit_with_a_callback_always_asks(client, sandbox, secrets_dir):
    target = sandbox.store.create_key(sandbox.user["id"], "victim")[0]["id"]
    asked = []
    dispatcher = Dispatcher(client=client, confirmation="elicit", secrets_folder=secrets_dir,
                            confirm=lambda tool, args, preview: asked.append(args) or False)
    for _ in range(3):
        result = dispatcher.call("gen_revoke_api_key", {"id": target})
        assert result.is_error and result.content["error"]["type"] == "confirmation_required"
        assert result.content["error"]["declined"] is True
    assert asked == [{"id": target}] * 3
    assert sandbox.store.get_key(sandbox.user["id"], target)["status"] == "active"
