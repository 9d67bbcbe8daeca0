"""Every action through the generic engine, from Python, against the live sandbox on loopback."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import requests
from requests.adapters import HTTPAdapter

import gen_nodes
from gen_nodes.client.http import GenClient
from gen_nodes.core.engine import execute, lookup, preview, validate_input
from gen_nodes.core.errors import AuthenticationError, InvalidInput, NotFound, OutcomeUnknown, UnknownAction
from gen_nodes.core.redact import Secret
from gen_nodes.sandbox import Sandbox

from client_support import FAST_RETRY

KEY_FIELDS = {"id", "name", "token_type", "created_at", "expires_at", "last_used_at", "revoked_at", "status"}


class CountingAdapter(HTTPAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def send(self, request, **kwargs):
        self.sent.append((request.method, request.path_url))
        return super().send(request, **kwargs)


def counting_client(sandbox: Sandbox, **options) -> tuple[GenClient, CountingAdapter]:
    session = requests.Session()
    adapter = CountingAdapter()
    session.mount("http://", adapter)
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("timeout", (2.0, 5.0))
    return GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, session=session, **options), adapter


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def keys_by_id(sandbox: Sandbox) -> dict[int, dict]:
    return {k["id"]: k for k in sandbox.store.list_keys(sandbox.user["id"])}


# -- every action, both entry points --------------------------------------------------


def test_lifecycle_with_gen_nodes_run_and_connection_kwargs(sandbox):
    conn = {"api_key": sandbox.api_key, "base_url": sandbox.base_url, "retry": FAST_RETRY}

    me = gen_nodes.run("get_me", **conn)
    assert me == {**sandbox.user}
    assert me["email"] == "user1@sandbox.local"

    created = gen_nodes.run("create_api_key", {"name": "ci", "expires_in": "30d"}, **conn)
    assert set(created) == KEY_FIELDS | {"token"}
    assert created["name"] == "ci" and created["status"] == "active"
    assert isinstance(created["token"], Secret) and created["token"].startswith("gen_pat_")
    # The token really is a working key.
    assert gen_nodes.run("get_me", api_key=str(created["token"]), base_url=sandbox.base_url)["id"] == me["id"]

    listed = gen_nodes.run("list_api_keys", **conn)
    assert [k["name"] for k in listed["api_keys"]] == ["sandbox bootstrap", "ci"]
    assert all("token" not in k for k in listed["api_keys"])
    assert all(set(k) == KEY_FIELDS for k in listed["api_keys"])

    renamed = gen_nodes.run("update_api_key", {"id": created["id"], "name": "ci-2"}, **conn)
    assert renamed["id"] == created["id"] and renamed["name"] == "ci-2" and "token" not in renamed
    assert keys_by_id(sandbox)[created["id"]]["name"] == "ci-2"

    revoked = gen_nodes.run("revoke_api_key", {"id": created["id"]}, **conn)
    assert revoked == {"id": created["id"], "revoked": True}
    assert keys_by_id(sandbox)[created["id"]]["status"] == "revoked"
    with pytest.raises(AuthenticationError):
        gen_nodes.run("get_me", api_key=str(created["token"]), base_url=sandbox.base_url)

    assert gen_nodes.run("revoke_all_api_keys", **conn) == {"revoked_all": True}
    assert {k["status"] for k in keys_by_id(sandbox).values()} == {"revoked"}
    # It revoked the key in use too.
    with pytest.raises(AuthenticationError) as caught:
        gen_nodes.run("list_api_keys", **conn)
    assert caught.value.status == 401


def test_lifecycle_with_registry_run_and_a_shared_client(sandbox, client, registry):
    me = registry.run("get_me", {}, client=client)
    assert me["id"] == sandbox.user["id"]
    created = registry.run("create_api_key", {"name": "n8n"}, client=client)
    assert created["expires_at"] is None and created["last_used_at"] is None
    assert registry.run("list_api_keys", client=client)["api_keys"][-1]["id"] == created["id"]
    assert registry.run("update_api_key", {"id": created["id"], "name": "n8n staging"}, client=client)["name"] \
        == "n8n staging"
    assert registry.run("revoke_api_key", {"id": created["id"]}, client=client)["revoked"] is True
    assert registry.run("revoke_all_api_keys", client=client) == {"revoked_all": True}
    # registry.run leaves the caller's client open (and it still talks: now 401, since all are revoked).
    with pytest.raises(AuthenticationError):
        registry.run("get_me", client=client)


def test_openapi_variant_string_ids_and_200_bodies(registry):
    with Sandbox(variant="openapi") as sandbox, GenClient(sandbox.api_key, sandbox.base_url, retry=FAST_RETRY) as c:
        me = registry.run("get_me", client=c)
        assert me["id"] == str(sandbox.user["id"])
        created = registry.run("create_api_key", {"name": "ci", "expires_in": 3600}, client=c)
        assert isinstance(created["id"], str) and created["id"].isdigit()
        renamed = registry.run("update_api_key", {"id": created["id"], "name": "ci-2"}, client=c)
        assert renamed["id"] == created["id"] and renamed["name"] == "ci-2"
        revoked = registry.run("revoke_api_key", {"id": created["id"]}, client=c)
        assert revoked == {"id": created["id"], "revoked": True, "message": "Token revoked"}
        assert registry.run("revoke_all_api_keys", client=c) == {
            "revoked_all": True, "message": "Successfully revoked 1 tokens"}


def test_id_as_a_digit_string(sandbox, client, registry):
    created = registry.run("create_api_key", {"name": "digits"}, client=client)
    key_id = str(created["id"])
    renamed = registry.run("update_api_key", {"id": key_id, "name": "still digits"}, client=client)
    assert renamed["id"] == created["id"] and renamed["name"] == "still digits"
    revoked = registry.run("revoke_api_key", {"id": key_id}, client=client)
    assert revoked == {"id": key_id, "revoked": True}  # echoed as given
    assert keys_by_id(sandbox)[created["id"]]["status"] == "revoked"


def test_revoke_twice_is_harmless(sandbox, client, registry):
    created = registry.run("create_api_key", {"name": "twice"}, client=client)
    registry.run("revoke_api_key", {"id": created["id"]}, client=client)
    revoked_at = keys_by_id(sandbox)[created["id"]]["revoked_at"]
    assert registry.run("revoke_api_key", {"id": created["id"]}, client=client)["revoked"] is True
    assert keys_by_id(sandbox)[created["id"]]["revoked_at"] == revoked_at


def test_unknown_ids_are_not_found(client, registry):
    with pytest.raises(NotFound) as caught:
        registry.run("revoke_api_key", {"id": 987654}, client=client)
    assert (caught.value.status, caught.value.error_code, caught.value.exit_code) == (404, "not_found", 4)
    with pytest.raises(NotFound):
        registry.run("update_api_key", {"id": "987654", "name": "x"}, client=client)


# -- list filter ------------------------------------------------------------------------


def test_list_status_filter(sandbox, client, registry):
    active = registry.run("create_api_key", {"name": "stays"}, client=client)
    short = registry.run("create_api_key", {"name": "short-lived", "expires_in": 60}, client=client)
    gone = registry.run("create_api_key", {"name": "gone"}, client=client)
    registry.run("revoke_api_key", {"id": gone["id"]}, client=client)
    sandbox.store.advance(120)

    def names(status=None):
        arguments = {} if status is None else {"status": status}
        return [k["name"] for k in registry.run("list_api_keys", arguments, client=client)["api_keys"]]

    assert names() == ["sandbox bootstrap", "stays", "short-lived", "gone"]
    assert names("active") == ["sandbox bootstrap", "stays"]
    assert names("expired") == ["short-lived"]
    assert names("revoked") == ["gone"]
    assert active["id"] != short["id"]


# -- create: both expiry forms ------------------------------------------------------


@pytest.mark.parametrize("expires_in", ["30d", 2592000])
def test_create_with_expiry(client, registry, expires_in):
    created = registry.run("create_api_key", {"name": "expiring", "expires_in": expires_in}, client=client)
    assert when(created["expires_at"]) - when(created["created_at"]) == timedelta(days=30)
    assert created["status"] == "active"


def test_create_without_anything(client, registry):
    created = registry.run("create_api_key", {}, client=client)
    assert created["name"] is None and created["expires_at"] is None and created["token"]


# -- invalid input: refused locally with JSON paths, nothing sent ---------------------


INVALID = [
    ("create_api_key", {"name": ""}, ["$.name"]),
    ("create_api_key", {"name": 5}, ["$.name"]),
    ("create_api_key", {"expires_in": "30"}, ["$.expires_in"]),
    ("create_api_key", {"expires_in": "0d"}, ["$.expires_in"]),
    ("create_api_key", {"expires_in": -1}, ["$.expires_in"]),
    ("create_api_key", {"expires_in": True}, ["$.expires_in"]),
    ("create_api_key", {"name": "ok", "scope": "all"}, ["$"]),
    ("create_api_key", ["ci"], ["$"]),
    ("update_api_key", {"id": 1}, ["$"]),
    ("update_api_key", {"id": 0, "name": "x"}, ["$.id"]),
    ("update_api_key", {"id": "1/revoke", "name": "x"}, ["$.id"]),
    ("update_api_key", {"id": 1, "name": ""}, ["$.name"]),
    ("update_api_key", {"id": "x", "name": ""}, ["$.id", "$.name"]),
    ("revoke_api_key", {}, ["$"]),
    ("revoke_api_key", {"id": 1.5}, ["$.id"]),
    ("revoke_all_api_keys", {"confirm": True}, ["$"]),
    ("list_api_keys", {"status": "deleted"}, ["$.status"]),
    ("get_me", {"id": 1}, ["$"]),
]


@pytest.mark.parametrize(("action", "arguments", "paths"), INVALID)
def test_invalid_input_is_refused_with_paths_and_nothing_sent(sandbox, registry, action, arguments, paths):
    client, adapter = counting_client(sandbox)
    with client, pytest.raises(InvalidInput) as caught:
        registry.run(action, arguments, client=client)
    error = caught.value
    assert [e["path"] for e in error.errors] == paths
    assert all(e["message"] for e in error.errors)
    assert (error.type, error.exit_code, error.status) == ("invalid_input", 2, None)
    assert error.to_dict()["errors"] == error.errors and error.details["action"] == action
    assert action in error.message and paths[0] in error.message
    assert "no request was sent" in error.hint
    # Nothing left the client, and the server saw nothing: the key was never used.
    assert adapter.sent == []
    assert [k["last_used_at"] for k in sandbox.store.list_keys(sandbox.user["id"])] == [None]


def test_invalid_input_via_gen_nodes_run_sends_nothing(sandbox):
    with pytest.raises(InvalidInput) as caught:
        gen_nodes.run("create_api_key", {"expires_in": "1 month"}, api_key=sandbox.api_key,
                      base_url=sandbox.base_url)
    assert caught.value.errors[0]["path"] == "$.expires_in"
    assert "Expected:" in caught.value.errors[0]["message"]
    assert [k["last_used_at"] for k in sandbox.store.list_keys(sandbox.user["id"])] == [None]
    assert len(sandbox.store.list_keys(sandbox.user["id"])) == 1


def test_validate_input_returns_a_copy(registry):
    spec = registry.get("update_api_key")
    given = {"id": "7", "name": "x"}
    out = validate_input(spec, given)
    assert out == given and out is not given
    assert registry.validate("update_api_key", given) == given


# -- unknown actions ---------------------------------------------------------------------


def test_unknown_action_suggests_the_closest(sandbox, registry):
    with pytest.raises(UnknownAction) as caught:
        registry.get("list_api_key")
    error = caught.value
    assert error.type == "invalid_input" and error.exit_code == 2
    assert '"list_api_key"' in error.message
    assert error.hint.startswith("Did you mean list_api_keys")
    assert "revoke_all_api_keys" in error.hint  # lists what exists
    with pytest.raises(UnknownAction) as caught:
        gen_nodes.run("revoke_key", {"id": 1}, api_key=sandbox.api_key, base_url=sandbox.base_url)
    assert "revoke_api_key" in caught.value.hint
    assert sandbox.store.list_keys(sandbox.user["id"])[0]["last_used_at"] is None
    with pytest.raises(UnknownAction) as caught:
        registry.get("zzz")
    assert not caught.value.hint.startswith("Did you mean")


# -- outcome unknown: finding the orphan ----------------------------------------------


def test_create_dropped_after_acting_lists_the_orphan(sandbox, registry):
    client, adapter = counting_client(sandbox)
    with client:
        # Decoys: same name but already used; other name; created before.
        used = registry.run("create_api_key", {"name": "ci"}, client=client)
        with GenClient(str(used["token"]), sandbox.base_url) as used_client:
            registry.run("get_me", client=used_client)
        registry.run("create_api_key", {"name": "other"}, client=client)
        adapter.sent.clear()

        sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
        with pytest.raises(OutcomeUnknown) as caught:
            registry.run("create_api_key", {"name": "ci", "expires_in": "30d"}, client=client)
    error = caught.value
    assert (error.type, error.exit_code) == ("outcome_unknown", 7)
    orphans = [k for k in keys_by_id(sandbox).values() if k["name"] == "ci" and k["id"] != used["id"]]
    assert len(orphans) == 1
    orphan = orphans[0]
    candidates = error.details["candidates"]
    assert [c["id"] for c in candidates] == [orphan["id"]]
    assert candidates[0]["name"] == "ci" and candidates[0]["last_used_at"] is None
    assert candidates[0]["status"] == "active"
    assert f"id {orphan['id']}" in error.hint and "revoke_api_key" in error.hint
    assert error.to_dict()["candidates"] == candidates
    # The POST went out once; then one list to look for the orphan.
    assert [m for m, _ in adapter.sent] == ["POST", "GET"]


def test_create_503_finds_no_orphan_and_says_so(sandbox, client, registry):
    sandbox.inject_fault(503, method="POST", body={"error": "Service Unavailable"})
    with pytest.raises(OutcomeUnknown) as caught:
        registry.run("create_api_key", {"name": "ci"}, client=client)
    assert caught.value.details["candidates"] == []
    assert "most likely did not take effect" in caught.value.hint
    assert [k["name"] for k in sandbox.store.list_keys(sandbox.user["id"])] == ["sandbox bootstrap"]


def test_create_orphan_lookup_failing_too_is_reported(sandbox, client, registry):
    sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    sandbox.inject_fault(500, times=5, method="GET", path="/persisted_tokens", body={"error": "down"})
    with pytest.raises(OutcomeUnknown) as caught:
        registry.run("create_api_key", {"name": "ci"}, client=client)
    assert caught.value.details["candidates"] is None
    assert "list_api_keys yourself" in caught.value.hint


# -- previews and lookups --------------------------------------------------------------


def test_preview_shows_what_a_destructive_action_would_touch(sandbox, client, registry):
    created = registry.run("create_api_key", {"name": "doomed"}, client=client)
    would = registry.preview("revoke_api_key", {"id": str(created["id"])}, client=client)
    assert [k["id"] for k in would] == [created["id"]]
    assert keys_by_id(sandbox)[created["id"]]["status"] == "active"  # nothing changed
    everything = registry.preview("revoke_all_api_keys", client=client)
    assert sorted(k["name"] for k in everything) == ["doomed", "sandbox bootstrap"]
    assert registry.preview("get_me", client=client) is None
    with pytest.raises(InvalidInput):
        preview(registry.get("revoke_api_key"), {}, client, registry.get)


def test_lookup_and_execute_directly(sandbox, client, registry):
    spec = registry.get("create_api_key")
    created = execute(spec, {"name": "direct"}, client, resolve=registry.get)
    found = lookup(spec.orphans, {"name": "direct"}, client, registry.get)
    assert [k["id"] for k in found] == [created["id"]]


# -- output drift detection ---------------------------------------------------------------

OFF_SCHEMA_LIST = [{"id": 1, "status": "paused"}]  # not a status GEN documents


def test_an_answer_off_the_output_schema_is_returned_unchanged_with_a_warning(
        sandbox, client, registry, monkeypatch, caplog):
    monkeypatch.setenv("GEN_NODES_CHECK_OUTPUT", "always")
    sandbox.inject_fault(200, body=OFF_SCHEMA_LIST, method="GET", path="/persisted_tokens")
    with caplog.at_level("WARNING", logger="gen_nodes.core.engine"):
        out = registry.run("list_api_keys", {}, client=client)
    assert out == {"api_keys": OFF_SCHEMA_LIST}
    warnings = [r.getMessage() for r in caplog.records if r.name == "gen_nodes.core.engine"]
    assert len(warnings) == 1 and "list_api_keys" in warnings[0] and "$.api_keys[0]" in warnings[0]


def test_by_default_every_answer_is_checked(sandbox, client, monkeypatch, caplog):
    from gen_nodes.core.registry import Registry
    from gen_nodes.core.actions import LIST_API_KEYS
    from dataclasses import replace

    monkeypatch.delenv("GEN_NODES_CHECK_OUTPUT", raising=False)
    fresh = Registry([replace(LIST_API_KEYS)])
    sandbox.inject_fault(200, body=OFF_SCHEMA_LIST, times=2, method="GET", path="/persisted_tokens")
    with caplog.at_level("WARNING", logger="gen_nodes.core.engine"):
        assert fresh.run("list_api_keys", {}, client=client) == {"api_keys": OFF_SCHEMA_LIST}
        assert fresh.run("list_api_keys", {}, client=client) == {"api_keys": OFF_SCHEMA_LIST}
    assert len([r for r in caplog.records if r.name == "gen_nodes.core.engine"]) == 2


def test_first_checks_only_the_first_answer_of_an_action(sandbox, client, monkeypatch, caplog):
    from gen_nodes.core.registry import Registry
    from gen_nodes.core.actions import LIST_API_KEYS
    from dataclasses import replace

    monkeypatch.setenv("GEN_NODES_CHECK_OUTPUT", "first")
    fresh = Registry([replace(LIST_API_KEYS)])  # a spec object this process has not checked yet
    sandbox.inject_fault(200, body=OFF_SCHEMA_LIST, times=2, method="GET", path="/persisted_tokens")
    with caplog.at_level("WARNING", logger="gen_nodes.core.engine"):
        fresh.run("list_api_keys", {}, client=client)
        fresh.run("list_api_keys", {}, client=client)
    assert len([r for r in caplog.records if r.name == "gen_nodes.core.engine"]) == 1


def test_never_checks_nothing(sandbox, client, registry, monkeypatch, caplog):
    monkeypatch.setenv("GEN_NODES_CHECK_OUTPUT", "never")
    sandbox.inject_fault(200, body=OFF_SCHEMA_LIST, method="GET", path="/persisted_tokens")
    with caplog.at_level("WARNING", logger="gen_nodes.core.engine"):
        assert registry.run("list_api_keys", {}, client=client) == {"api_keys": OFF_SCHEMA_LIST}
    assert not [r for r in caplog.records if r.name == "gen_nodes.core.engine"]


def test_a_create_answered_without_its_secret_is_outcome_unknown(sandbox, client, registry):
    sandbox.inject_fault(201, body={"id": 999, "name": "no-secret"}, method="POST", path="/persisted_tokens",
                         after=True)
    with pytest.raises(OutcomeUnknown) as caught:
        registry.run("create_api_key", {"name": "no-secret"}, client=client)
    assert "lacks token" in caught.value.message
    [orphan] = caught.value.details["candidates"]
    assert orphan["name"] == "no-secret" and f"id {orphan['id']}" in caught.value.hint


def test_a_create_with_an_unreadable_answer_and_no_key_in_sight_still_says_it_likely_happened(
        sandbox, client, registry):
    sandbox.inject_fault(201, body="<html>ok</html>", method="POST", path="/persisted_tokens")  # nothing created
    with pytest.raises(OutcomeUnknown) as caught:
        registry.run("create_api_key", {"name": "ghost"}, client=client)
    assert "not JSON" in caught.value.message and caught.value.details["candidates"] == []
    assert "most likely created" in caught.value.hint


def test_a_create_answered_with_an_unreadable_body_is_outcome_unknown_naming_the_key(sandbox, client, registry):
    sandbox.inject_fault(201, body="<html>created</html>", method="POST", path="/persisted_tokens", after=True)
    with pytest.raises(OutcomeUnknown) as caught:
        registry.run("create_api_key", {"name": "unreadable"}, client=client)
    [orphan] = caught.value.details["candidates"]
    assert orphan["name"] == "unreadable"
    assert f"id {orphan['id']}" in caught.value.hint
