"""The tool dispatcher against the real sandbox: parsing, nulls, errors, confirmation, secrets."""

from __future__ import annotations

import json
import stat
from typing import Any

import pytest

from conftest import FAST_RETRY
from gen_nodes.client import GenClient
from gen_nodes.confirm import ConfirmationTokens
from gen_nodes.dispatch import Dispatcher
from gen_nodes.registry import Registry, default_registry


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


def test_null_confirmation_token_counts_as_missing(dispatcher, sandbox):
    key_id, _ = _new_key(sandbox)
    error = _error(dispatcher.call("gen_revoke_api_key", {"id": key_id, "confirmation_token": None}))
    assert error["type"] == "confirmation_required"
    assert "refused" not in error["message"]
    assert _key_status(sandbox, key_id) == "active"


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


def test_unknown_id_after_confirmation_is_not_found(dispatcher, rec):
    first = _error(dispatcher.call("gen_revoke_api_key", {"id": 999999}))
    assert first["type"] == "confirmation_required"
    assert first["preview"] == []  # nothing of ours would be affected
    error = _error(dispatcher.call("gen_revoke_api_key", {"id": 999999,
                                                          "confirmation_token": first["confirmation_token"]}))
    assert error["type"] == "not_found"
    assert error["status"] == 404
    assert "list_api_keys" in error["hint"]
    assert rec.writes() == [("DELETE", "/persisted_tokens/999999/revoke")]


def test_gen_rejection_of_a_rename_is_an_error_dict(dispatcher, sandbox):
    key_id, _ = _new_key(sandbox)
    error = _error(dispatcher.call("gen_update_api_key", {"id": key_id + 100, "name": "x"}))
    assert error["type"] == "not_found" and error["status"] == 404 and error["hint"]


# ---- confirmation: the token flow -------------------------------------------------------------

def test_token_flow_previews_then_acts(dispatcher, rec, sandbox):
    key_id, plain = _new_key(sandbox, "victim")
    other_id, _ = _new_key(sandbox, "bystander")
    first = dispatcher.call("gen_revoke_api_key", {"id": key_id})
    error = _error(first)
    assert error["type"] == "confirmation_required"
    assert "gen_revoke_api_key" in error["message"] and "not run" in error["message"]
    assert "confirmation_token" in error["hint"]
    (item,) = error["preview"]
    assert item["id"] == key_id and item["name"] == "victim" and item["status"] == "active"
    assert "token" not in item  # a listing never has secrets
    assert plain not in first.text and sandbox.api_key not in first.text
    token = error["confirmation_token"]
    assert token.startswith("confirm_") and len(token) > 16
    assert error["expires_in_seconds"] == 300
    assert rec.writes() == []  # only the preview listing was sent
    assert _key_status(sandbox, key_id) == "active"

    second = dispatcher.call("gen_revoke_api_key", {"id": key_id, "confirmation_token": token})
    assert not second.is_error, second.content
    assert second.content == {"id": key_id, "revoked": True}
    assert rec.writes() == [("DELETE", f"/persisted_tokens/{key_id}/revoke")]
    listed = {k["id"]: k for k in dispatcher.call("gen_list_api_keys", {}).content["api_keys"]}
    assert listed[key_id]["status"] == "revoked"
    assert listed[other_id]["status"] == "active"


def test_token_works_with_args_as_json_text_in_another_key_order(dispatcher, sandbox):
    key_id, _ = _new_key(sandbox)
    token = _error(dispatcher.call("gen_revoke_api_key", {"id": key_id}))["confirmation_token"]
    result = dispatcher.call("gen_revoke_api_key", json.dumps({"confirmation_token": token, "id": key_id}))
    assert result.content == {"id": key_id, "revoked": True}


def _assert_refused(result, reason: str, refused_token: str | None) -> dict[str, Any]:
    error = _error(result)
    assert error["type"] == "confirmation_required"
    assert f"refused ({reason})" in error["message"], error["message"]
    assert error["confirmation_token"] != refused_token  # a fresh one for a new try
    return error


def test_wrong_token_is_refused(dispatcher, rec, sandbox):
    key_id, _ = _new_key(sandbox)
    _error(dispatcher.call("gen_revoke_api_key", {"id": key_id}))
    result = dispatcher.call("gen_revoke_api_key", {"id": key_id, "confirmation_token": "confirm_madeUpByTheModel"})
    _assert_refused(result, "unknown", "confirm_madeUpByTheModel")
    assert rec.writes() == []
    assert _key_status(sandbox, key_id) == "active"


def test_reused_token_is_refused(dispatcher, rec, sandbox):
    key_a, _ = _new_key(sandbox, "a")
    key_b, _ = _new_key(sandbox, "b")
    token = _error(dispatcher.call("gen_revoke_api_key", {"id": key_a}))["confirmation_token"]
    assert dispatcher.call("gen_revoke_api_key", {"id": key_a, "confirmation_token": token}).content["revoked"]
    assert len(rec.writes()) == 1
    again = dispatcher.call("gen_revoke_api_key", {"id": key_a, "confirmation_token": token})
    _assert_refused(again, "already used", token)
    elsewhere = dispatcher.call("gen_revoke_api_key", {"id": key_b, "confirmation_token": token})
    _assert_refused(elsewhere, "already used", token)
    assert len(rec.writes()) == 1  # no second DELETE
    assert _key_status(sandbox, key_b) == "active"


def test_expired_token_is_refused(rec, sandbox, secrets_dir):
    now = [1000.0]
    tokens = ConfirmationTokens(ttl=60, clock=lambda: now[0])
    dispatcher = Dispatcher(client=rec, secrets_folder=secrets_dir, tokens=tokens)
    key_id, _ = _new_key(sandbox)
    first = _error(dispatcher.call("gen_revoke_api_key", {"id": key_id}))
    assert first["expires_in_seconds"] == 60 and "60 seconds" in first["hint"]
    now[0] += 61
    result = dispatcher.call("gen_revoke_api_key", {"id": key_id, "confirmation_token": first["confirmation_token"]})
    fresh = _assert_refused(result, "expired", first["confirmation_token"])
    assert rec.writes() == []
    assert _key_status(sandbox, key_id) == "active"
    # The fresh token, used in time, works.
    now[0] += 59
    done = dispatcher.call("gen_revoke_api_key", {"id": key_id, "confirmation_token": fresh["confirmation_token"]})
    assert done.content == {"id": key_id, "revoked": True}


def test_token_for_different_arguments_is_refused(dispatcher, rec, sandbox):
    key_a, _ = _new_key(sandbox, "a")
    key_b, _ = _new_key(sandbox, "b")
    token = _error(dispatcher.call("gen_revoke_api_key", {"id": key_a}))["confirmation_token"]
    result = dispatcher.call("gen_revoke_api_key", {"id": key_b, "confirmation_token": token})
    _assert_refused(result, "issued for a different call", token)
    # The same id written as a string is different arguments too.
    token = _error(dispatcher.call("gen_revoke_api_key", {"id": key_a}))["confirmation_token"]
    _assert_refused(dispatcher.call("gen_revoke_api_key", {"id": str(key_a), "confirmation_token": token}),
                    "issued for a different call", token)
    assert rec.writes() == []
    assert _key_status(sandbox, key_a) == "active" and _key_status(sandbox, key_b) == "active"


def test_token_for_a_different_tool_is_refused(dispatcher, rec, sandbox):
    key_id, _ = _new_key(sandbox)
    token = _error(dispatcher.call("gen_revoke_all_api_keys", {}))["confirmation_token"]
    _assert_refused(dispatcher.call("gen_revoke_api_key", {"id": key_id, "confirmation_token": token}),
                    "issued for a different call", token)
    assert rec.writes() == []
    assert _key_status(sandbox, key_id) == "active"


def test_token_of_another_user_is_refused(dispatcher, rec, sandbox):
    other_user, other_key = sandbox.create_user()
    victim_id, _ = _new_key(sandbox, "b's key", user_id=other_user["id"])
    with _client(sandbox, other_key) as other:
        # User A asks to revoke B's key id (A cannot see it), gets a token...
        token = _error(dispatcher.call("gen_revoke_api_key", {"id": victim_id}))["confirmation_token"]
        # ...and B's session may not spend it, though the arguments are the same.
        result = dispatcher.call("gen_revoke_api_key", {"id": victim_id, "confirmation_token": token}, client=other)
        _assert_refused(result, "issued for a different call", token)
        assert other.writes() == [] and rec.writes() == []
        assert _key_status(sandbox, victim_id, other_user["id"]) == "active"
        # B's own token does work for B.
        own = _error(dispatcher.call("gen_revoke_api_key", {"id": victim_id}, client=other))
        assert [k["id"] for k in own["preview"]] == [victim_id]
        done = dispatcher.call("gen_revoke_api_key", {"id": victim_id, "confirmation_token": own["confirmation_token"]},
                               client=other)
        assert done.content == {"id": victim_id, "revoked": True}
    assert _key_status(sandbox, victim_id, other_user["id"]) == "revoked"


def test_revoke_all_previews_active_keys_only(dispatcher, rec, sandbox):
    keep_id, _ = _new_key(sandbox, "active one")
    dead_id, _ = _new_key(sandbox, "already revoked")
    sandbox.store.revoke_key(sandbox.user["id"], dead_id)
    error = _error(dispatcher.call("gen_revoke_all_api_keys", {}))
    assert sorted(k["id"] for k in error["preview"]) == sorted([keep_id, 1])
    assert all(k["status"] == "active" for k in error["preview"])
    assert rec.writes() == []
    done = dispatcher.call("gen_revoke_all_api_keys", {"confirmation_token": error["confirmation_token"]})
    assert done.content == {"revoked_all": True}
    assert _key_status(sandbox, keep_id) == "revoked"
    # Our own key went too: the next call is refused by GEN.
    assert _error(dispatcher.call("gen_get_me", {}))["type"] == "authentication"


def test_confirmed_true_skips_the_token(dispatcher, sandbox):
    key_id, _ = _new_key(sandbox)
    result = dispatcher.call("gen_revoke_api_key", {"id": key_id}, confirmed=True)
    assert result.content == {"id": key_id, "revoked": True}


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
    assert "confirmation_token" not in error  # nothing the model could use to push on
    assert len(asked) == 1
    assert rec.writes() == []
    assert _key_status(sandbox, key_id) == "active"


def test_elicit_without_a_callback_falls_back_to_tokens(rec, sandbox, secrets_dir):
    dispatcher = Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="elicit")
    key_id, _ = _new_key(sandbox)
    error = _error(dispatcher.call("gen_revoke_api_key", {"id": key_id}))
    assert error["type"] == "confirmation_required" and error["confirmation_token"].startswith("confirm_")
    assert _key_status(sandbox, key_id) == "active"


def test_token_policy_ignores_a_confirm_callback(rec, sandbox, secrets_dir):
    dispatcher = Dispatcher(client=rec, secrets_folder=secrets_dir, confirmation="token",
                            confirm=lambda *a: True)
    key_id, _ = _new_key(sandbox)
    assert _error(dispatcher.call("gen_revoke_api_key", {"id": key_id}))["type"] == "confirmation_required"
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
    from gen_nodes.actions import GET_ME
    from gen_nodes.spec import ActionSpec

    spec = ActionSpec(**{**GET_ME.__dict__, "id": "whoami_plugin"})
    dispatcher = Dispatcher(Registry([spec]), client=client, prefix="p_")
    assert [t.name for t in dispatcher.tools] == ["p_whoami_plugin"]
    assert dispatcher.call("p_whoami_plugin", {}).content["id"] == sandbox.user["id"]
    assert _error(dispatcher.call("gen_get_me", {}))["type"] == "invalid_input"


def test_elicit_with_a_callback_always_asks_and_never_hands_out_a_token(client, sandbox, secrets_dir):
    target = sandbox.store.create_key(sandbox.user["id"], "victim")[0]["id"]
    asked = []
    dispatcher = Dispatcher(client=client, confirmation="elicit", secrets_folder=secrets_dir,
                            confirm=lambda tool, args, preview: asked.append(args) or False)
    for extra in ({}, {"confirmation_token": "junk"}, {"confirmation_token": "confirm_made_up"}):
        result = dispatcher.call("gen_revoke_api_key", {"id": target, **extra})
        assert result.is_error and result.content["error"]["type"] == "confirmation_required"
        assert result.content["error"]["declined"] is True
        assert "confirmation_token" not in result.content["error"]
    assert asked == [{"id": target}] * 3
    assert sandbox.store.get_key(sandbox.user["id"], target)["status"] == "active"
