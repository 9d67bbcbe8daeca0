"""Regression tests for faults a second reader found: each would leak a secret, lose a key
or mislead a user if it came back."""

from __future__ import annotations

import http.server
import os
import stat
import threading
from contextlib import contextmanager

import pytest

from gen_nodes.client.http import GenClient
from gen_nodes.core.errors import AuthenticationError, GenError, InvalidInput, OutcomeUnknown
from gen_nodes.core.redact import mask
from gen_nodes.safety.secret_delivery import deliver

from conftest import FAST_RETRY


@contextmanager
def recording_server(status: int = 200, headers: dict[str, str] | None = None):
    """A loopback HTTP server that answers every request alike and records the headers it got."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("method, safe", [("GET", True), ("POST", False)])
def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(method, safe):
    with recording_server() as (elsewhere, elsewhere_saw):
        with recording_server(302, {"Location": elsewhere + "/v1/persisted_tokens"}) as (base, _):
            client = GenClient(api_key="gen_pat_" + "k" * 40, base_url=base + "/v1", retry=FAST_RETRY)
            with pytest.raises(GenError) as caught:
                client.request(method, "/persisted_tokens", safe_to_retry=safe)
    assert caught.value.status == 302 and elsewhere in caught.value.message
    assert elsewhere_saw == []
    if safe:
        assert caught.value.type == "api_error" and "GEN_BASE_URL" in caught.value.hint
    else:  # a create answered with a redirect most likely happened
        assert isinstance(caught.value, OutcomeUnknown)


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


def test_the_repr_of_an_answer_holds_no_created_secret(client):
    answer = client.request("POST", "/persisted_tokens", json={"name": "repr"}, safe_to_retry=False)
    token = answer.data["token"]
    assert token not in repr(answer)


@pytest.mark.parametrize("key", ["gen_pat_\u201cQZX9secret\u201d", "gen_pat_QZX9secret\x00"])
def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it(sandbox, key):
    client = GenClient(api_key=key, base_url=sandbox.base_url, retry=FAST_RETRY)
    with pytest.raises(AuthenticationError) as caught:
        client.request("GET", "/me")
    assert "QZX9" not in str(caught.value) and "QZX9" not in repr(caught.value)
    assert "nothing was sent" in caught.value.message


@pytest.mark.parametrize("arguments", [{"id": 6.0}, {"id": True}])
def test_a_float_or_bool_is_not_an_integer_id(registry, arguments):
    with pytest.raises(InvalidInput) as caught:
        registry.validate("revoke_api_key", arguments)
    assert caught.value.errors[0]["path"] == "$.id"


def test_expires_in_as_a_float_is_refused_locally(registry):
    with pytest.raises(InvalidInput) as caught:
        registry.validate("create_api_key", {"expires_in": 2592000.0})
    assert caught.value.errors[0]["path"] == "$.expires_in"


def test_a_create_answered_with_an_unreadable_body_is_outcome_unknown_naming_the_key(sandbox, client, registry):
    sandbox.inject_fault(201, body="<html>created</html>", method="POST", path="/persisted_tokens", after=True)
    with pytest.raises(OutcomeUnknown) as caught:
        registry.run("create_api_key", {"name": "unreadable"}, client=client)
    [orphan] = caught.value.details["candidates"]
    assert orphan["name"] == "unreadable"
    assert f"id {orphan['id']}" in caught.value.hint


@pytest.mark.parametrize("policy", ["mask", "file"])
def test_a_nested_token_is_withheld_too(policy, tmp_path):
    secret = "gen_pat_" + "n" * 40
    out = deliver({"persisted_token": {"id": 7, "token": secret}, "items": [{"token": secret}]},
                  policy, tmp_path / "secrets")
    assert secret not in repr(out) and secret not in str(out)
    assert out["persisted_token"]["token"] == mask(secret)
    if policy == "file":
        assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
        saved = out["persisted_token"]["token_file"]
        assert open(saved).read().strip() == secret and "gen-api-key-7-" in saved


def test_the_file_policy_leaves_an_existing_folder_as_it_was_and_sanitises_the_id(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    out = deliver({"id": "../../etc/x", "token": "gen_pat_" + "f" * 40}, "file", folder)
    path = out["token_file"]
    assert os.path.dirname(path) == str(folder)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_reveal_still_masks_the_secret_in_reprs():
    secret = "gen_pat_" + "r" * 40
    out = deliver({"id": 1, "token": secret}, "reveal")
    assert out["token"] == secret and secret not in repr(out)


def test_mask_keeps_only_a_documented_prefix():
    assert mask("gen_pat_" + "a" * 30 + "WXYZ") == "gen_pat_…WXYZ"
    assert mask("ref_" + "a" * 30 + "WXYZ") == "ref_…WXYZ"
    assert mask("Ab3_xY9_kQ" + "a" * 30 + "WXYZ") == "…WXYZ"


def test_bundling_keeps_properties_and_data_named_like_keywords():
    from gen_nodes.core.validation import bundled, problems

    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
        "properties": {"$id": {"type": "string"}, "title": {"type": "string"}, "examples": {"type": "integer"}},
        "additionalProperties": False, "default": {"$id": "x", "title": "y"},
    }
    flat = bundled(schema)
    assert set(flat["properties"]) == {"$id", "title", "examples"}
    assert flat["default"] == {"$id": "x", "title": "y"}
    assert problems(schema, {"$id": "a", "title": "b", "examples": 1}) == []


def test_tool_schemas_keep_a_property_named_title():
    from dataclasses import replace

    from gen_nodes.core.actions import GET_ME
    from gen_nodes.runtime.tools import build_tools

    schema = {"type": "object", "additionalProperties": False,
              "properties": {"title": {"type": "string", "description": "a field called title"}}}
    [tool] = build_tools([replace(GET_ME, input_schema=schema)])
    assert tool.input_schema["properties"]["title"]["description"] == "a field called title"


def test_integers_are_strict_inside_inlined_schema_files_too():
    from gen_nodes.core.actions import LIST_API_KEYS
    from gen_nodes.core.validation import problems

    [problem] = problems(LIST_API_KEYS.output_schema, {"api_keys": [{"id": 1.0}]})
    assert problem["path"] == "$.api_keys[0].id"
