"""Every action and every documented error path, replayed from cassettes in cassettes/.

Record (starts an in-process sandbox; faults are injected through its Python API,
outside the recorded HTTP)::

    python -m pytest tests/test_cassettes.py --record-mode=rewrite

Re-record against the real GEN API instead: set GEN_RECORD_API_KEY (and
GEN_RECORD_BASE_URL if not https://api.gen.pro/v1). Tests marked ``sandbox_only``
then skip and keep their sandbox cassettes.

Replay (default)::

    python -m pytest tests/test_cassettes.py

needs no server: the client talks to https://api.gen.pro/v1 with a placeholder
key, vcrpy's record mode "none" refuses any request not in the cassette, and the
``block_network`` mark makes every socket connect fail.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta

import pytest
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest

from cassette_support import (
    CANONICAL_BASE_URL,
    KEY_PLACEHOLDER,
    SANDBOX_NOW,
    TOKEN_PLACEHOLDER,
    Scrubber,
    ScrubError,
    assert_requests,
    cassette_files,
    find_leaks,
    interactions,
    recording,  # noqa: F401 - used by the replay_only skip condition
    recording_real_api,  # noqa: F401 - used by the sandbox_only skip condition
)
from gen_nodes.core import engine
from gen_nodes.core.errors import (
    AuthenticationError,
    InvalidInput,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    ServerError,
)
from gen_nodes.core.redact import Secret
from gen_nodes.sandbox import Sandbox

# Every test here uses its own cassette (named after the test) and, in replay, no network at all.
pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

#: Needs the sandbox: fault injection, the OpenAPI variant, or revoking every key of the account.
#: A string condition, so it is evaluated before pytest-recording's "rewrite" deletes the cassette.
sandbox_only = pytest.mark.skipif(
    "recording_real_api(config)",
    reason="sandbox-only (fault injection, variant or revoke-all); keeps its sandbox cassette",
)
#: Checks replay itself: nothing to record.
replay_only = pytest.mark.skipif("recording(config)", reason="checks replay; nothing to record")
#: Run against the sandbox's "openapi" variant (string ids, 200 with a body on revoke).
openapi_variant = pytest.mark.parametrize("gen_target", ["openapi"], indirect=True)

UNKNOWN_ID = 987654321
ERROR_503 = {"error": "Service unavailable", "error_code": "service_unavailable"}
ERROR_429 = {"error": "Rate limit exceeded", "error_code": "rate_limited"}
ERROR_500 = {"error": "Internal server error", "error_code": "internal_error"}
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.fixture
def gen(gen_target, registry):
    """``gen(action_id, arguments)``: run an action through the registry with the target's client."""

    def run(action_id, arguments=None, *, client=None):
        return registry.run(action_id, arguments, client=client or gen_target.client)

    return run


def statuses(cassette) -> list[int]:
    return [response["status"]["code"] for response in cassette.responses]


def key_ids(output) -> list:
    return [key["id"] for key in output["api_keys"]]


def lifetime(key) -> timedelta:
    return datetime.fromisoformat(key["expires_at"]) - datetime.fromisoformat(key["created_at"])


# -- every action, success ---------------------------------------------------------


def test_get_me_returns_the_owner_of_the_key(gen, vcr):
    me = gen("get_me")

    assert isinstance(me["id"], (int, str)) and str(me["id"])
    assert "@" in me["email"]
    assert isinstance(me["name"], str) and me["name"]
    assert_requests(vcr, "GET /me")


def test_list_api_keys_includes_the_key_in_use_and_no_secret(gen, vcr):
    keys = gen("list_api_keys")["api_keys"]

    assert keys
    assert {key["status"] for key in keys} <= {"active", "expired", "revoked"}
    assert all("token" not in key for key in keys)
    # The key that signed this very request is active and has just been used.
    assert any(key["status"] == "active" and key["last_used_at"] for key in keys)
    assert_requests(vcr, "GET /persisted_tokens")


def test_list_api_keys_filters_by_status_on_the_client(gen, vcr):
    kept = gen("create_api_key", {"name": "stays active"})
    dropped = gen("create_api_key", {"name": "gets revoked"})
    gen("revoke_api_key", {"id": dropped["id"]})

    active = gen("list_api_keys", {"status": "active"})
    revoked = gen("list_api_keys", {"status": "revoked"})
    gen("revoke_api_key", {"id": kept["id"]})  # leave nothing behind on a real account

    assert kept["id"] in key_ids(active) and dropped["id"] not in key_ids(active)
    assert dropped["id"] in key_ids(revoked) and kept["id"] not in key_ids(revoked)
    assert {key["status"] for key in active["api_keys"]} == {"active"}
    assert {key["status"] for key in revoked["api_keys"]} == {"revoked"}
    # GEN has no status parameter: both lists are the same GET, filtered locally.
    assert_requests(
        vcr,
        "POST /persisted_tokens",
        "POST /persisted_tokens",
        f"DELETE /persisted_tokens/{dropped['id']}/revoke",
        "GET /persisted_tokens",
        "GET /persisted_tokens",
        f"DELETE /persisted_tokens/{kept['id']}/revoke",
    )


def test_create_api_key_with_a_duration_string(gen, vcr):
    key = gen("create_api_key", {"name": "cassette 30d", "expires_in": "30d"})
    revoked = gen("revoke_api_key", {"id": key["id"]})

    assert key["name"] == "cassette 30d"
    assert key["status"] == "active" and key["revoked_at"] is None and key["last_used_at"] is None
    assert key["token_type"] == "personal_access_token"
    assert abs(lifetime(key) - timedelta(days=30)) < timedelta(seconds=5)
    # The secret is there, but prints masked.
    assert isinstance(key["token"], Secret) and str(key["token"]) and str(key["token"]) not in repr(key)
    assert revoked == {"id": key["id"], "revoked": True}
    assert json.loads(vcr.requests[0].body) == {"name": "cassette 30d", "expires_in": "30d"}
    assert_requests(vcr, "POST /persisted_tokens", f"DELETE /persisted_tokens/{key['id']}/revoke")
    assert statuses(vcr) == [201, 204]


def test_create_api_key_with_integer_seconds(gen, vcr):
    key = gen("create_api_key", {"name": "cassette 7 days", "expires_in": 604800})
    gen("revoke_api_key", {"id": key["id"]})

    assert key["name"] == "cassette 7 days" and key["status"] == "active"
    assert abs(lifetime(key) - timedelta(seconds=604800)) < timedelta(seconds=5)
    assert isinstance(key["token"], Secret)
    assert json.loads(vcr.requests[0].body) == {"name": "cassette 7 days", "expires_in": 604800}
    assert_requests(vcr, "POST /persisted_tokens", f"DELETE /persisted_tokens/{key['id']}/revoke")


def test_rename_api_key_changes_only_its_name(gen, vcr):
    key = gen("create_api_key", {"name": "before rename"})
    renamed = gen("update_api_key", {"id": key["id"], "name": "after rename"})
    listed = {item["id"]: item for item in gen("list_api_keys")["api_keys"]}
    gen("revoke_api_key", {"id": key["id"]})

    assert renamed["id"] == key["id"] and renamed["name"] == "after rename"
    assert renamed["created_at"] == key["created_at"] and renamed["status"] == "active"
    assert "token" not in renamed
    assert listed[key["id"]]["name"] == "after rename"
    # Sent in the wrapped form GEN's reference documents.
    assert json.loads(vcr.requests[1].body) == {"persisted_token": {"name": "after rename"}}
    assert_requests(
        vcr,
        "POST /persisted_tokens",
        f"PATCH /persisted_tokens/{key['id']}",
        "GET /persisted_tokens",
        f"DELETE /persisted_tokens/{key['id']}/revoke",
    )


def test_revoke_api_key_answers_204_and_the_key_shows_revoked(gen, vcr):
    key = gen("create_api_key", {"name": "to revoke"})
    result = gen("revoke_api_key", {"id": key["id"]})
    after = {item["id"]: item for item in gen("list_api_keys")["api_keys"]}[key["id"]]

    assert result == {"id": key["id"], "revoked": True}
    assert after["status"] == "revoked" and after["revoked_at"]
    assert statuses(vcr) == [201, 204, 200]
    assert vcr.responses[1]["body"]["string"] in ("", b"")


@sandbox_only
def test_revoke_all_api_keys_answers_204_and_locks_every_key_out(gen, gen_target, vcr):
    other = gen("create_api_key", {"name": "another key"})
    result = gen("revoke_all_api_keys")

    with pytest.raises(AuthenticationError) as own_key:
        gen("get_me")
    with pytest.raises(AuthenticationError) as other_key:
        gen("get_me", client=gen_target.client_with_key(str(other["token"])))

    assert result == {"revoked_all": True}
    assert own_key.value.status == other_key.value.status == 401
    assert_requests(vcr, "POST /persisted_tokens", "DELETE /persisted_tokens/revoke_all", "GET /me", "GET /me")
    assert statuses(vcr) == [201, 204, 401, 401]


# -- client errors: never retried --------------------------------------------------------


def test_wrong_key_is_refused_with_401_and_not_retried(gen, gen_target, vcr):
    stranger = gen_target.client_with_key("gen_pat_" + "N0tARealKey" * 4)

    with pytest.raises(AuthenticationError) as caught:
        gen("get_me", client=stranger)

    error = caught.value
    assert (error.status, error.error_code, error.type) == (401, "unauthorized", "authentication")
    assert "GEN_API_KEY" in error.hint
    assert error.details["attempts"] == 1
    assert_requests(vcr, "GET /me")


def test_rename_of_an_unknown_id_is_404(gen, vcr):
    with pytest.raises(NotFound) as caught:
        gen("update_api_key", {"id": UNKNOWN_ID, "name": "nobody"})

    assert (caught.value.status, caught.value.error_code) == (404, "not_found")
    assert "list_api_keys" in caught.value.hint
    assert_requests(vcr, f"PATCH /persisted_tokens/{UNKNOWN_ID}")


def test_revoke_of_an_unknown_id_is_404(gen, vcr):
    with pytest.raises(NotFound) as caught:
        gen("revoke_api_key", {"id": UNKNOWN_ID})

    assert (caught.value.status, caught.value.error_code) == (404, "not_found")
    assert caught.value.details["attempts"] == 1
    assert_requests(vcr, f"DELETE /persisted_tokens/{UNKNOWN_ID}/revoke")


def test_malformed_expires_in_sent_directly_is_rejected_with_422(gen, gen_target, vcr):
    # Through the registry, local validation refuses it before anything is sent...
    with pytest.raises(InvalidInput):
        gen("create_api_key", {"name": "bad expiry", "expires_in": "soon"})
    # ...so send it with the client itself to see what GEN says.
    with pytest.raises(Rejected) as caught:
        gen_target.client.request(
            "POST", "/persisted_tokens", json={"name": "bad expiry", "expires_in": "soon"}, safe_to_retry=False
        )

    error = caught.value
    assert (error.status, error.error_code, error.type) == (422, "validation_error", "rejected")
    assert "expires_in" in error.message
    assert_requests(vcr, "POST /persisted_tokens")  # only the direct call reached GEN


@sandbox_only
def test_expiry_valid_locally_but_too_far_for_the_server_is_422(gen, vcr):
    with pytest.raises(Rejected) as caught:
        gen("create_api_key", {"name": "forever", "expires_in": "999999999d"})

    assert (caught.value.status, caught.value.error_code) == (422, "validation_error")
    assert caught.value.message == "expires_in is too large"
    assert_requests(vcr, "POST /persisted_tokens")


# -- rate limits ----------------------------------------------------------------------


@sandbox_only
def test_429_with_retry_after_is_waited_out_then_succeeds(gen, gen_target, vcr):
    gen_target.inject_fault(429, body=ERROR_429, headers={"Retry-After": "1"}, method="GET", path="/me")

    me = gen("get_me")

    assert me["email"] == "user1@sandbox.local"
    assert gen_target.waits == [1.0]  # Retry-After honoured, not the (tiny) back-off
    assert_requests(vcr, "GET /me", "GET /me")
    assert statuses(vcr) == [429, 200]


@sandbox_only
def test_429_on_create_is_retried_since_nothing_was_created(gen, gen_target, vcr):
    gen_target.inject_fault(429, body=ERROR_429, headers={"Retry-After": "1"}, method="POST",
                            path="/persisted_tokens")

    key = gen("create_api_key", {"name": "after a 429"})
    names = [item["name"] for item in gen("list_api_keys")["api_keys"]]

    assert key["name"] == "after a 429"
    assert names.count("after a 429") == 1
    assert gen_target.waits == [1.0]
    assert_requests(vcr, "POST /persisted_tokens", "POST /persisted_tokens", "GET /persisted_tokens")
    assert statuses(vcr) == [429, 201, 200]


@sandbox_only
def test_429_on_every_attempt_raises_rate_limited_with_retry_after(gen, gen_target, vcr):
    gen_target.inject_fault(429, times=3, body=ERROR_429, headers={"Retry-After": "1"}, method="GET",
                            path="/persisted_tokens")

    with pytest.raises(RateLimited) as caught:
        gen("list_api_keys")

    error = caught.value
    assert (error.status, error.error_code, error.retry_after) == (429, "rate_limited", 1.0)
    assert error.details["attempts"] == 3
    assert "wait 1 seconds" in error.hint
    assert gen_target.waits == [1.0, 1.0]
    assert_requests(vcr, *["GET /persisted_tokens"] * 3)


@sandbox_only
def test_429_asking_for_too_long_a_wait_gives_up_at_once(gen, gen_target, vcr):
    gen_target.inject_fault(429, body=ERROR_429, headers={"Retry-After": "120"}, method="GET", path="/me")

    with pytest.raises(RateLimited) as caught:
        gen("get_me")

    assert caught.value.retry_after == 120.0
    assert "wait 120 seconds" in caught.value.hint
    assert gen_target.waits == []
    assert_requests(vcr, "GET /me")


# -- server errors ----------------------------------------------------------------------


@sandbox_only
def test_503_then_502_are_retried_then_succeed(gen, gen_target, vcr):
    gen_target.inject_fault(503, body=ERROR_503, method="GET", path="/persisted_tokens")
    gen_target.inject_fault(502, method="GET", path="/persisted_tokens")

    keys = gen("list_api_keys")["api_keys"]

    assert [key["name"] for key in keys] == ["sandbox bootstrap"]
    assert len(gen_target.waits) == 2
    assert all(0 < wait <= gen_target.client.retry.max_backoff for wait in gen_target.waits)
    assert_requests(vcr, *["GET /persisted_tokens"] * 3)
    assert statuses(vcr) == [503, 502, 200]


@sandbox_only
def test_5xx_on_every_attempt_raises_server_error(gen, gen_target, vcr):
    gen_target.inject_fault(503, times=3, body=ERROR_503, method="GET", path="/me")

    with pytest.raises(ServerError) as caught:
        gen("get_me")

    error = caught.value
    assert (error.status, error.error_code, error.message) == (503, "service_unavailable", "Service unavailable")
    assert error.details["attempts"] == 3
    assert_requests(vcr, "GET /me", "GET /me", "GET /me")


@sandbox_only
def test_html_502_from_a_proxy_becomes_a_readable_server_error(gen, gen_target, vcr):
    gen_target.inject_fault(502, times=3, body=HTML_502, method="GET", path="/me")

    with pytest.raises(ServerError) as caught:
        gen("get_me")

    error = caught.value
    assert error.status == 502 and error.error_code is None
    assert error.message == (
        "GEN answered 502 Bad Gateway (not a GEN error body: \"502 Bad Gateway 502 Bad Gateway nginx\")"
    )
    assert "<" not in error.message and "GEN (or a proxy" in error.hint
    assert vcr.responses[0]["headers"]["Content-Type"] == ["text/html; charset=utf-8"]
    assert_requests(vcr, "GET /me", "GET /me", "GET /me")


@sandbox_only
@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_create_is_outcome_unknown_and_never_retried(gen, gen_target, vcr, status):
    gen_target.inject_fault(status, body=ERROR_500, method="POST", path="/persisted_tokens")

    with pytest.raises(OutcomeUnknown) as caught:
        gen("create_api_key", {"name": "maybe made"})

    error = caught.value
    assert (error.status, error.error_code, error.type) == (status, "internal_error", "outcome_unknown")
    assert error.details["candidates"] == []
    assert "most likely did not take effect" in error.hint
    assert gen_target.waits == []
    # One POST only; the GET is the engine looking for a key the POST may have made.
    assert_requests(vcr, "POST /persisted_tokens", "GET /persisted_tokens")
    assert interactions(vcr).count("POST /persisted_tokens") == 1


class _SandboxClock(datetime):
    """The engine's clock, set to the sandbox's, so "created since the request began" holds in replay."""

    @classmethod
    def now(cls, tz=None):
        return SANDBOX_NOW


@sandbox_only
def test_500_after_the_key_was_made_names_the_orphan_to_revoke(gen, gen_target, vcr, monkeypatch):
    monkeypatch.setattr(engine, "datetime", _SandboxClock)
    gen_target.inject_fault(500, method="POST", path="/persisted_tokens", after=True)

    with pytest.raises(OutcomeUnknown) as caught:
        gen("create_api_key", {"name": "made then lost"})

    candidates = caught.value.details["candidates"]
    assert [item["name"] for item in candidates] == ["made then lost"]
    assert all("token" not in item for item in candidates)
    orphan = candidates[0]["id"]
    assert f"revoke_api_key (id {orphan})" in caught.value.hint
    assert_requests(vcr, "POST /persisted_tokens", "GET /persisted_tokens")
    assert statuses(vcr) == [500, 200]


# -- the OpenAPI variant: string ids, 200 with a body ------------------------------------


@openapi_variant
@sandbox_only
def test_openapi_variant_string_ids_and_revoke_answering_200_with_a_body(gen, vcr):
    me = gen("get_me")
    key = gen("create_api_key", {"name": "string id"})
    result = gen("revoke_api_key", {"id": key["id"]})
    listed = {item["id"]: item for item in gen("list_api_keys")["api_keys"]}

    assert isinstance(me["id"], str) and isinstance(key["id"], str) and key["id"].isdigit()
    assert result == {"id": key["id"], "revoked": True, "message": "Token revoked"}
    assert all(isinstance(key_id, str) for key_id in listed)
    assert listed[key["id"]]["status"] == "revoked"
    assert statuses(vcr) == [200, 201, 200, 200]


@openapi_variant
@sandbox_only
def test_openapi_variant_revoke_all_answering_200_with_a_count(gen, vcr):
    gen("create_api_key", {"name": "one"})
    gen("create_api_key", {"name": "two"})

    result = gen("revoke_all_api_keys")

    assert result == {"revoked_all": True, "message": "Successfully revoked 3 tokens"}
    assert_requests(vcr, "POST /persisted_tokens", "POST /persisted_tokens", "DELETE /persisted_tokens/revoke_all")
    assert statuses(vcr) == [201, 201, 200]


# -- replay is sealed ---------------------------------------------------------------------


@replay_only
def test_replay_cannot_reach_a_live_server(gen_target, vcr):
    with Sandbox() as live:  # a real server that would answer, if anything could reach it
        with pytest.raises(CannotOverwriteExistingCassetteException):
            gen_target.client.request("GET", "/me")
        with pytest.raises(RuntimeError, match="Network is disabled"):
            socket.create_connection((live.host, live.port), timeout=1)

    assert gen_target.client.base_url == CANONICAL_BASE_URL
    assert vcr.play_count == 0 and len(vcr) == 0


# -- scrubbing ------------------------------------------------------------------------------

#: Real-looking secrets (fake); the first has none of GEN's documented prefixes.
FAKE_KEY = "gen_pat_" + "Zx9Qw7Lp" * 5
FAKE_TOKEN = "ref_" + "Mn4Bv8Kc" * 5
UNPREFIXED_TOKEN = "s3cr3t" + "Yt6Hu2Jk" * 5


def _json_response(payload, headers=None):
    body = json.dumps(payload).encode("utf-8")
    return {
        "status": {"code": 201, "message": "Created"},
        "headers": {"Content-Type": ["application/json"], "Content-Length": [str(len(body))], **(headers or {})},
        "body": {"string": body},
    }


def test_scrubber_rewrites_the_url_and_hides_the_key_in_every_header():
    scrubber = Scrubber(base_url="http://127.0.0.1:54321/v1")
    scrubber.remember(FAKE_KEY)
    request = VcrRequest(
        "PATCH",
        "http://127.0.0.1:54321/v1/persisted_tokens/7",
        json.dumps({"persisted_token": {"name": f"copy of {FAKE_KEY}"}}).encode(),
        {"X-API-Key": FAKE_KEY, "Authorization": f"Bearer {FAKE_KEY}", "X-Debug": f"key={FAKE_KEY}",
         "Accept": "application/json"},
    )

    scrubbed = scrubber.request(request)

    assert scrubbed.uri == "https://api.gen.pro/v1/persisted_tokens/7"
    assert scrubbed.headers["X-API-Key"] == KEY_PLACEHOLDER
    assert scrubbed.headers["Authorization"] == KEY_PLACEHOLDER
    assert scrubbed.headers["X-Debug"] == f"key={KEY_PLACEHOLDER}"
    assert scrubbed.headers["Accept"] == "application/json"
    assert json.loads(scrubbed.body) == {"persisted_token": {"name": f"copy of {KEY_PLACEHOLDER}"}}
    assert FAKE_KEY not in repr(dict(scrubbed.headers)) + scrubbed.uri + scrubbed.body.decode()


def test_scrubber_replaces_every_token_field_by_name_and_keeps_content_length_right():
    response = _json_response(
        {"id": 7, "name": "ci", "token": UNPREFIXED_TOKEN, "token_type": "personal_access_token",
         "nested": {"keys": [{"token": FAKE_TOKEN}]}, "note": f"echo {UNPREFIXED_TOKEN}"},
        headers={"Set-Cookie": ["session=abc"]},
    )

    scrubbed = Scrubber().response(response)

    body = scrubbed["body"]["string"]
    data = json.loads(body)
    assert data["token"] == TOKEN_PLACEHOLDER  # no known prefix, scrubbed for where it sits
    assert data["nested"]["keys"][0]["token"] == TOKEN_PLACEHOLDER
    assert data["token_type"] == "personal_access_token"
    assert data["note"] == f"echo {TOKEN_PLACEHOLDER}"
    assert scrubbed["headers"]["Content-Length"] == [str(len(body))]
    assert "Set-Cookie" not in scrubbed["headers"]
    assert UNPREFIXED_TOKEN.encode() not in body and FAKE_TOKEN.encode() not in body


def test_scrubber_hides_a_token_from_a_response_when_a_later_request_sends_it():
    scrubber = Scrubber()
    scrubber.response(_json_response({"id": 8, "token": UNPREFIXED_TOKEN}))

    request = scrubber.request(VcrRequest("GET", "https://api.gen.pro/v1/me", None,
                                          {"X-API-Key": UNPREFIXED_TOKEN, "X-Trace": UNPREFIXED_TOKEN}))

    assert request.headers["X-API-Key"] == KEY_PLACEHOLDER
    assert request.headers["X-Trace"] == TOKEN_PLACEHOLDER


def test_scrubber_refuses_a_body_it_cannot_read():
    response = {"status": {"code": 200, "message": "OK"},
                "headers": {"Content-Encoding": ["zstd"]}, "body": {"string": b"\x28\xb5\x2f\xfd"}}

    with pytest.raises(ScrubError):
        Scrubber().response(response)


def test_leak_scan_flags_a_key_a_token_and_a_local_url(tmp_path):
    bad = tmp_path / "leaky.yaml"
    bad.write_text(
        "interactions:\n"
        "- request:\n"
        "    body: null\n"
        "    headers:\n"
        f"      X-API-Key:\n      - {FAKE_KEY}\n"
        "    method: GET\n"
        "    uri: http://127.0.0.1:5555/v1/me\n"
        "  response:\n"
        f"    body:\n      string: '{{\"token\": \"{UNPREFIXED_TOKEN}\"}}'\n"
        "    headers: {}\n"
        "    status: {code: 200, message: OK}\n"
        "version: 1\n"
    )

    problems = "\n".join(find_leaks(bad))

    assert "key-like value" in problems
    assert "X-API-Key is not" in problems
    assert "secret field(s) not replaced" in problems
    assert "is not under https://api.gen.pro/v1" in problems


def test_every_cassette_is_free_of_secrets():
    files = cassette_files()

    assert len(files) >= 25, "cassettes missing: record them (see tests/cassette_support.py)"
    problems = [problem for path in files for problem in find_leaks(path)]
    assert problems == []
