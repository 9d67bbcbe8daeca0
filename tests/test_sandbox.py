"""Tests of the GEN sandbox over real loopback HTTP (no mocks)."""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from gen_nodes.sandbox import Sandbox

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
T0_TEXT = "2026-03-01T12:00:00.000Z"
TOKEN_RE = re.compile(r"gen_pat_[A-Za-z0-9]{40}")
KEY_FIELDS = {"id", "name", "token_type", "created_at", "expires_at", "last_used_at", "revoked_at", "status"}


def call(sb: Sandbox, method: str, path: str, key: str | None = "default", **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["X-API-Key"] = sb.api_key if key == "default" else key
    return requests.request(method, sb.base_url + path, headers=headers, timeout=5, **kwargs)


def create(sb: Sandbox, key: str | None = "default", **body) -> dict:
    response = call(sb, "POST", "/persisted_tokens", key, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def listed(sb: Sandbox, key: str | None = "default") -> dict:
    response = call(sb, "GET", "/persisted_tokens", key)
    assert response.status_code == 200, response.text
    return {k["id"]: k for k in response.json()}


@pytest.fixture
def sb():
    with Sandbox(clock=lambda: T0) as sandbox:
        yield sandbox


@pytest.fixture
def openapi_sb():
    with Sandbox(variant="openapi") as sandbox:
        yield sandbox


# -- basics ---------------------------------------------------------------------


def test_me_returns_the_authenticated_user(sb):
    response = call(sb, "GET", "/me")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    me = response.json()
    assert me == {
        "id": sb.user["id"],
        "email": "user1@sandbox.local",
        "name": "Sandbox User 1",
        "username": "user1",
        "created_at": T0_TEXT,
    }
    assert isinstance(me["id"], int)


def test_create_returns_plain_token_once_and_stores_only_its_hash(tmp_path):
    db = tmp_path / "sandbox.db"
    with Sandbox(db_path=str(db), clock=lambda: T0) as sb:
        response = call(sb, "POST", "/persisted_tokens", json={"name": "n8n production", "expires_in": "90d"})
        assert response.status_code == 201
        key = response.json()
        token = key["token"]
        assert TOKEN_RE.fullmatch(token)
        assert set(key) == KEY_FIELDS | {"token"}
        assert key["name"] == "n8n production"
        assert key["token_type"] == "personal_access_token"
        assert key["created_at"] == T0_TEXT
        assert key["expires_at"] == "2026-05-30T12:00:00.000Z"
        assert (key["last_used_at"], key["revoked_at"], key["status"]) == (None, None, "active")

        listing = call(sb, "GET", "/persisted_tokens")
        assert token not in listing.text
        assert all("token" not in k for k in listing.json())
        assert call(sb, "GET", "/me", token).status_code == 200

    assert token.encode() not in db.read_bytes()
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT hash FROM keys WHERE id = ?", (key["id"],)).fetchone()[0]
    assert stored != token
    assert stored == hashlib.sha256(token.encode()).hexdigest()


def test_create_without_body_fields_has_no_name_and_never_expires(sb):
    key = create(sb)
    assert key["name"] is None
    assert key["expires_at"] is None
    assert key["status"] == "active"
    unknown_ignored = create(sb, name=None, expires_in=None, colour="blue")
    assert unknown_ignored["name"] is None and "colour" not in unknown_ignored


def test_create_accepts_integer_seconds(sb):
    key = create(sb, name="ci", expires_in=3600)
    assert key["expires_at"] == "2026-03-01T13:00:00.000Z"


def test_list_returns_every_key_with_its_status_ordered_by_id(sb):
    active = create(sb, name="active")
    expiring = create(sb, name="expiring", expires_in=60)
    revoked = create(sb, name="revoked")
    assert call(sb, "DELETE", f"/persisted_tokens/{revoked['id']}/revoke").status_code == 204
    sb.store.advance(61)

    response = call(sb, "GET", "/persisted_tokens")
    keys = response.json()
    assert [k["id"] for k in keys] == sorted(k["id"] for k in keys)
    by_name = {k["name"]: k for k in keys}
    assert set(by_name) == {"sandbox bootstrap", "active", "expiring", "revoked"}
    assert by_name["active"]["status"] == "active"
    assert by_name["expiring"]["status"] == "expired"
    assert by_name["revoked"]["status"] == "revoked"
    assert by_name["revoked"]["revoked_at"] == T0_TEXT
    assert all(set(k) == KEY_FIELDS for k in keys)
    assert active["id"] < expiring["id"] < revoked["id"]


# -- rename -----------------------------------------------------------------------


@pytest.mark.parametrize("body", [{"persisted_token": {"name": "Updated name"}}, {"name": "Updated name"}])
def test_rename_accepts_wrapped_and_bare_bodies(sb, body):
    key = create(sb, name="old")
    response = call(sb, "PATCH", f"/persisted_tokens/{key['id']}", json=body)
    assert response.status_code == 200
    renamed = response.json()
    assert renamed["name"] == "Updated name"
    assert "token" not in renamed
    assert set(renamed) == KEY_FIELDS
    assert listed(sb)[key["id"]]["name"] == "Updated name"


@pytest.mark.parametrize("body", [
    {"persisted_token": {"name": ""}},
    {"name": ""},
    {"name": "x" * 256},
    {"name": 5},
    {"persisted_token": {}},
    {},
])
def test_rename_rejects_bad_names_with_422(sb, body):
    key = create(sb, name="keep")
    response = call(sb, "PATCH", f"/persisted_tokens/{key['id']}", json=body)
    assert response.status_code == 422
    assert response.json()["error_code"] == "validation_error"
    assert response.json()["error"]
    assert listed(sb)[key["id"]]["name"] == "keep"


def test_rename_accepts_255_characters(sb):
    key = create(sb)
    response = call(sb, "PATCH", f"/persisted_tokens/{key['id']}", json={"name": "x" * 255})
    assert response.status_code == 200 and response.json()["name"] == "x" * 255


# -- revoke -----------------------------------------------------------------------


def test_revoke_answers_204_then_the_key_is_refused(sb):
    key = create(sb, name="doomed")
    assert call(sb, "GET", "/me", key["token"]).status_code == 200

    response = call(sb, "DELETE", f"/persisted_tokens/{key['id']}/revoke")
    assert response.status_code == 204
    assert response.content == b""

    refused = call(sb, "GET", "/me", key["token"])
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "unauthorized"
    assert listed(sb)[key["id"]]["status"] == "revoked"


def test_revoking_twice_is_204_and_keeps_the_first_revoked_at(sb):
    key = create(sb)
    assert call(sb, "DELETE", f"/persisted_tokens/{key['id']}/revoke").status_code == 204
    first = listed(sb)[key["id"]]["revoked_at"]
    sb.store.advance(3600)
    assert call(sb, "DELETE", f"/persisted_tokens/{key['id']}/revoke").status_code == 204
    assert first == T0_TEXT
    assert listed(sb)[key["id"]]["revoked_at"] == first


def test_revoke_all_also_revokes_the_key_making_the_request(sb):
    other = create(sb, name="other")
    response = call(sb, "DELETE", "/persisted_tokens/revoke_all")
    assert response.status_code == 204
    assert response.content == b""

    assert call(sb, "GET", "/me").status_code == 401
    assert call(sb, "GET", "/me", other["token"]).status_code == 401
    statuses = {k["name"]: k["status"] for k in sb.store.list_keys(sb.user["id"])}
    assert statuses == {"sandbox bootstrap": "revoked", "other": "revoked"}


# -- authentication ---------------------------------------------------------------


def test_expired_key_is_refused(sb):
    key = create(sb, name="short", expires_in=60)
    assert call(sb, "GET", "/me", key["token"]).status_code == 200
    sb.store.advance(59)
    assert call(sb, "GET", "/me", key["token"]).status_code == 200
    sb.store.advance(1)  # expires_at <= now
    response = call(sb, "GET", "/me", key["token"])
    assert response.status_code == 401
    assert response.json()["error_code"] == "unauthorized"
    assert listed(sb)[key["id"]]["status"] == "expired"


@pytest.mark.parametrize("key", [None, "", "gen_pat_" + "a" * 40, "nonsense"])
def test_missing_or_unknown_key_is_401(sb, key):
    for method, path in [("GET", "/me"), ("GET", "/persisted_tokens"), ("POST", "/persisted_tokens"),
                         ("DELETE", "/persisted_tokens/revoke_all")]:
        response = call(sb, method, path, key)
        assert response.status_code == 401
        assert response.json()["error_code"] == "unauthorized"
    assert len(sb.store.list_keys(sb.user["id"])) == 1
    assert sb.store.list_keys(sb.user["id"])[0]["status"] == "active"


def test_successful_auth_sets_last_used_at():
    now = [T0]
    with Sandbox(clock=lambda: now[0]) as sb:
        key = create(sb, name="used")
        assert key["last_used_at"] is None
        now[0] = T0 + timedelta(minutes=5, milliseconds=123)
        assert call(sb, "GET", "/me", key["token"]).status_code == 200
        assert sb.store.get_key(sb.user["id"], key["id"])["last_used_at"] == "2026-03-01T12:05:00.123Z"
        # The list request itself is a use of the bootstrap key.
        bootstrap = [k for k in listed(sb).values() if k["name"] == "sandbox bootstrap"][0]
        assert bootstrap["last_used_at"] == "2026-03-01T12:05:00.123Z"


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize("method,template", [("PATCH", "/persisted_tokens/{}"),
                                             ("DELETE", "/persisted_tokens/{}/revoke")])
@pytest.mark.parametrize("key_id", ["999", "abc", "-1", "1.0", "0", "99999999999999999999999"])
def test_unknown_or_malformed_id_is_404(sb, method, template, key_id):
    response = call(sb, method, template.format(key_id), json={"name": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": "Token not found", "error_code": "not_found"}


def test_another_users_key_is_404_and_untouched(sb):
    mine = create(sb, name="mine")
    _, other_key = sb.create_user(email="eve@example.com")
    for method, path in [("PATCH", f"/persisted_tokens/{mine['id']}"),
                         ("DELETE", f"/persisted_tokens/{mine['id']}/revoke")]:
        response = call(sb, method, path, other_key, json={"name": "stolen"})
        assert response.status_code == 404
        assert response.json()["error_code"] == "not_found"
    assert listed(sb)[mine["id"]]["name"] == "mine"
    assert listed(sb)[mine["id"]]["status"] == "active"


@pytest.mark.parametrize("expires_in", ["30", "0d", True, False, 0, -5, "30x", 1.5, "030d", "30d\n", "", [], {}])
def test_bad_expires_in_is_422_and_creates_nothing(sb, expires_in):
    response = call(sb, "POST", "/persisted_tokens", json={"name": "x", "expires_in": expires_in})
    assert response.status_code == 422
    assert response.json()["error_code"] == "validation_error"
    assert "expires_in" in response.json()["error"]
    assert [k["name"] for k in listed(sb).values()] == ["sandbox bootstrap"]


def test_absurdly_long_expiry_is_422(sb):
    response = call(sb, "POST", "/persisted_tokens", json={"expires_in": "99999999999d"})
    assert response.status_code == 422


@pytest.mark.parametrize("name", ["", "x" * 256, 7, ["a"]])
def test_bad_create_name_is_422(sb, name):
    response = call(sb, "POST", "/persisted_tokens", json={"name": name})
    assert response.status_code == 422
    assert response.json()["error_code"] == "validation_error"


def test_invalid_json_is_400_and_non_object_is_422(sb):
    bad = call(sb, "POST", "/persisted_tokens", data=b"{not json",
               headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "bad_request"
    array = call(sb, "POST", "/persisted_tokens", json=["name"])
    assert array.status_code == 422


def test_unknown_route_is_404_and_wrong_method_is_405(sb):
    missing = call(sb, "GET", "/nothing")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "not_found"
    wrong = call(sb, "PUT", "/persisted_tokens")
    assert wrong.status_code == 405
    assert wrong.json()["error_code"] == "method_not_allowed"
    assert wrong.headers["Allow"] == "GET, POST"
    assert call(sb, "GET", "/persisted_tokens/revoke_all").status_code == 405


# -- variants and users -----------------------------------------------------------


def test_openapi_variant_uses_string_ids_and_200_messages(openapi_sb):
    sb = openapi_sb
    assert isinstance(call(sb, "GET", "/me").json()["id"], str)
    key = create(sb, name="n8n", expires_in=2592000)
    assert key["id"] == "2"
    assert all(isinstance(i, str) for i in listed(sb))

    revoked = call(sb, "DELETE", f"/persisted_tokens/{key['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json() == {"message": "Token revoked"}

    create(sb, name="second")
    everything = call(sb, "DELETE", "/persisted_tokens/revoke_all")
    assert everything.status_code == 200
    # the bootstrap key and "second"; the already revoked key does not count
    assert everything.json() == {"message": "Successfully revoked 2 tokens"}


def test_control_endpoint_creates_isolated_users(sb):
    response = requests.post(sb.base_url.removesuffix("/v1") + "/_sandbox/users",
                             json={"email": "bob@example.com", "name": "Bob"}, timeout=5)
    assert response.status_code == 201
    payload = response.json()
    assert payload["user"]["email"] == "bob@example.com"
    assert payload["user"]["name"] == "Bob"
    assert payload["user"]["username"] == "bob"
    bob_key = payload["api_key"]
    assert TOKEN_RE.fullmatch(bob_key)

    assert call(sb, "GET", "/me", bob_key).json()["id"] == payload["user"]["id"]
    alice_key = create(sb, name="alice secret")
    bob_keys = call(sb, "GET", "/persisted_tokens", bob_key).json()
    assert [k["name"] for k in bob_keys] == ["sandbox bootstrap"]
    assert alice_key["id"] not in {k["id"] for k in bob_keys}

    assert call(sb, "DELETE", "/persisted_tokens/revoke_all", bob_key).status_code == 204
    assert call(sb, "GET", "/me").status_code == 200
    assert listed(sb)[alice_key["id"]]["status"] == "active"

    duplicate = requests.post(sb.base_url.removesuffix("/v1") + "/_sandbox/users",
                              json={"email": "bob@example.com"}, timeout=5)
    assert duplicate.status_code == 422


# -- fault injection ----------------------------------------------------------------


def test_fault_with_status_body_and_retry_after_then_recovers(sb):
    sb.inject_fault(429, body={"error": "Slow down", "error_code": "rate_limited"},
                    headers={"Retry-After": "1"}, method="GET", path="/persisted_tokens", times=2)
    assert call(sb, "GET", "/me").status_code == 200  # not matched
    for _ in range(2):
        response = call(sb, "GET", "/persisted_tokens")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert response.json() == {"error": "Slow down", "error_code": "rate_limited"}
    assert call(sb, "GET", "/persisted_tokens").status_code == 200


def test_fault_is_answered_before_auth(sb):
    sb.inject_fault(503)
    response = call(sb, "GET", "/me", key=None)
    assert response.status_code == 503
    assert response.content == b""


def test_fault_with_html_body(sb):
    sb.inject_fault(502, body="<html><body>Bad Gateway</body></html>")
    response = call(sb, "GET", "/me")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html><body>Bad Gateway</body></html>"


def test_fault_with_wildcard_path(sb):
    key = create(sb)
    sb.inject_fault(500, path="/persisted_tokens/*/revoke")
    assert call(sb, "DELETE", f"/persisted_tokens/{key['id']}/revoke").status_code == 500
    assert listed(sb)[key["id"]]["status"] == "active"


def test_drop_closes_without_answer_and_creates_nothing(sb):
    sb.inject_fault(drop=True, method="POST")
    with pytest.raises(requests.ConnectionError):
        call(sb, "POST", "/persisted_tokens", json={"name": "lost"})
    assert [k["name"] for k in listed(sb).values()] == ["sandbox bootstrap"]


def test_drop_after_handling_really_creates_the_key(sb):
    sb.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    with pytest.raises(requests.ConnectionError):
        call(sb, "POST", "/persisted_tokens", json={"name": "created but unanswered"})
    assert "created but unanswered" in [k["name"] for k in listed(sb).values()]


def test_status_after_handling_reports_failure_of_a_done_revoke(sb):
    key = create(sb)
    sb.inject_fault(502, after=True)
    assert call(sb, "DELETE", f"/persisted_tokens/{key['id']}/revoke").status_code == 502
    assert listed(sb)[key["id"]]["status"] == "revoked"


def test_delay_provokes_a_client_read_timeout(sb):
    sb.inject_fault(delay=1.0)
    with pytest.raises(requests.ReadTimeout):
        requests.get(sb.base_url + "/me", headers={"X-API-Key": sb.api_key}, timeout=0.2)
    assert call(sb, "GET", "/me").status_code == 200


def test_requests_seen_counts_a_request_when_it_arrives_even_while_a_fault_delays_it(sb):
    key = create(sb)
    sb.inject_fault(delay=1.0, method="DELETE", path="/persisted_tokens/*/revoke")
    with pytest.raises(requests.ReadTimeout):
        requests.delete(f"{sb.base_url}/persisted_tokens/{key['id']}/revoke", headers={"X-API-Key": sb.api_key},
                        timeout=0.2)
    assert sb.requests_seen() == [("POST", "/persisted_tokens"), ("DELETE", f"/persisted_tokens/{key['id']}/revoke")]
    assert sb.requests_seen("delete", "/persisted_tokens/*/revoke") == sb.requests_seen()[1:]
    assert sb.requests_seen("GET") == []
    call(sb, "GET", "/me", key=None)  # refused (401), but it reached the API: it counts
    assert sb.requests_seen("GET") == [("GET", "/me")]


# -- transport ------------------------------------------------------------------------


def test_keep_alive_connection_survives_bodies_errors_and_204(sb):
    key = create(sb)
    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=5)
    headers = {"X-API-Key": sb.api_key, "Content-Type": "application/json"}
    plan = [
        ("GET", "/v1/me", None, 200),
        ("POST", "/v1/persisted_tokens", b'{"name": "ka"}', 201),
        ("GET", "/v1/me", None, 200),
        ("DELETE", f"/v1/persisted_tokens/{key['id']}/revoke", None, 204),
        ("PATCH", "/v1/persisted_tokens/999", b'{"name": "x"}', 404),
        ("POST", "/v1/persisted_tokens", b"{bad", 400),
        ("GET", "/v1/persisted_tokens", None, 200),
    ]
    sock = None
    for method, path, body, status in plan:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        assert response.status == status, payload
        assert response.getheader("Connection") != "close"
        sock = sock or conn.sock
        assert conn.sock is sock  # same TCP connection throughout
    conn.close()


def test_stop_is_idempotent_and_really_stops():
    sb = Sandbox().start()
    url = sb.base_url
    session = requests.Session()
    assert session.get(url + "/me", headers={"X-API-Key": sb.api_key}, timeout=5).status_code == 200
    sb.stop()
    sb.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url + "/me", headers={"X-API-Key": sb.api_key}, timeout=5)


def test_logs_go_to_debug_logger_without_secrets(sb, caplog):
    with caplog.at_level(logging.DEBUG, logger="gen_nodes.sandbox"):
        key = create(sb, name="logged")
        call(sb, "GET", "/me", key["token"])
    assert '"GET /v1/me HTTP/1.1" 200' in caplog.text
    assert sb.api_key not in caplog.text
    assert key["token"] not in caplog.text
    assert all(r.name == "gen_nodes.sandbox" and r.levelno == logging.DEBUG for r in caplog.records)


# -- scale and persistence ------------------------------------------------------------


def test_seed_10000_keys_and_list_them_fast(sb):
    started = time.perf_counter()
    ids = sb.store.seed_keys(sb.user["id"], 10_000)
    seeded = time.perf_counter() - started
    assert len(ids) == 10_000 and ids == sorted(ids)

    started = time.perf_counter()
    response = call(sb, "GET", "/persisted_tokens")
    listed_in = time.perf_counter() - started
    keys = response.json()
    assert len(keys) == 10_001
    assert keys[1]["name"] == "seed-1" and keys[-1]["name"] == "seed-10000"
    assert [k["id"] for k in keys[1:]] == ids
    assert seeded < 5 and listed_in < 5, (seeded, listed_in)


def test_file_db_persists_across_sandboxes(tmp_path):
    db = str(tmp_path / "state.db")
    with Sandbox(db_path=db) as first:
        first_key = first.api_key
        kept = create(first, name="persisted", expires_in="30d")
        user_id = first.user["id"]

    with Sandbox(db_path=db) as second:
        assert second.user["id"] == user_id
        assert second.api_key != first_key
        keys = {k["name"]: k for k in listed(second).values()}
        assert keys["persisted"]["id"] == kept["id"]
        assert keys["persisted"]["expires_at"] == kept["expires_at"]
        assert [k["name"] for k in listed(second).values()].count("sandbox bootstrap") == 2
        assert call(second, "GET", "/me", kept["token"]).json()["id"] == user_id
        assert call(second, "GET", "/me", first_key).status_code == 200


def test_a_kept_bootstrap_key_is_reused_while_it_works(tmp_path):
    db = str(tmp_path / "state.db")
    with Sandbox(db_path=db) as first:
        kept = first.api_key
    with Sandbox(db_path=db, api_key=kept) as second:
        assert second.api_key == kept
        assert listed(second)  # the key works
        assert [k["name"] for k in listed(second).values()] == ["sandbox bootstrap"]
        assert call(second, "DELETE", "/persisted_tokens/revoke_all").status_code == 204
    with Sandbox(db_path=db, api_key=kept) as third:
        assert third.api_key != kept
        assert third.user["id"] == second.user["id"]
        assert call(third, "GET", "/me").status_code == 200
