"""Input edge cases: each one gave a wrong answer once. Every bad input is refused locally as
``invalid_input`` (nothing sent), with a short message that speaks JSON, not Python."""

from __future__ import annotations

import json

import pytest
import requests

from gen_nodes.runtime.dispatch import Dispatcher
from gen_nodes.core.engine import execute
from gen_nodes.core.errors import InvalidInput
from gen_nodes.core.spec import ActionSpec, Hints

from client_support import counting_session

MAX_INT64 = 2**63 - 1


@pytest.fixture
def counted_dispatcher(sandbox):
    from gen_nodes.client.http import GenClient

    session, adapter = counting_session()
    client = GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, session=session)
    return Dispatcher(client=client, confirmation="none"), adapter


# -- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["6\n", "6\r\n", " 6", "6 ", "٦", "+6", "06", "6.0", "0x6", "",
                                 str(MAX_INT64 + 1), "99999999999999999999"])
@pytest.mark.parametrize("action", ["update_api_key", "revoke_api_key"])
def test_an_id_is_ascii_digits_within_64_bits(registry, action, bad):
    arguments = {"id": bad, "name": "x"} if action == "update_api_key" else {"id": bad}
    with pytest.raises(InvalidInput) as caught:
        registry.validate(action, arguments)
    assert caught.value.errors[0]["path"] == "$.id"


@pytest.mark.parametrize("bad", [MAX_INT64 + 1, 2**64, 0, -6])
def test_an_integer_id_is_within_64_bits(registry, bad):
    with pytest.raises(InvalidInput):
        registry.validate("revoke_api_key", {"id": bad})


def test_the_largest_64_bit_id_is_accepted(registry):
    assert registry.validate("revoke_api_key", {"id": str(MAX_INT64)}) == {"id": str(MAX_INT64)}
    assert registry.validate("revoke_api_key", {"id": MAX_INT64}) == {"id": MAX_INT64}


def test_an_id_with_a_newline_sends_nothing(counted_dispatcher, sandbox):
    dispatcher, adapter = counted_dispatcher
    result = dispatcher.call("gen_revoke_api_key", {"id": "6\n"})
    assert result.is_error and result.content["error"]["type"] == "invalid_input"
    assert adapter.sent == []


def test_patterns_mean_the_whole_string_everywhere(registry):
    with pytest.raises(InvalidInput):
        registry.validate("create_api_key", {"expires_in": "30d\n"})


LOOSE = ActionSpec(
    id="loose_lookup", title="Loose", description="A plugin action whose schema lets any string through.",
    method="GET", path="/persisted_tokens/{id}",
    input_schema={"type": "object", "properties": {"id": {"type": ["string", "integer"]}}, "required": ["id"]},
    output_schema={"type": "object"}, hints=Hints(read_only=True, idempotent=True), inputs={"id": "path"},
)


@pytest.mark.parametrize("bad", ["6\n", "../me", "6/revoke", "", "%36", str(MAX_INT64 + 1), MAX_INT64 + 1, -1, True])
def test_the_path_builder_refuses_what_is_not_an_id_whatever_the_schema_says(sandbox, bad):
    from gen_nodes.client.http import GenClient

    session, adapter = counting_session()
    client = GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, session=session)
    with pytest.raises(InvalidInput) as caught:
        execute(LOOSE, {"id": bad}, client)
    assert caught.value.errors[0]["path"] == "$.id"
    assert adapter.sent == []


# -- nesting, size, encoding ------------------------------------------------------------------


def deep(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("arguments", [
    '{"name": ' + "[" * 5000 + "]" * 5000 + "}",
    {"name": deep(5000)},
    {"nme": deep(5000)},
    json.dumps({"name": deep(200)}),
])
def test_deep_nesting_is_invalid_input_not_a_recursion_error(arguments):
    result = Dispatcher(client=object()).call("gen_create_api_key", arguments)
    assert result.is_error and result.content["error"]["type"] == "invalid_input"
    assert "nested" in result.content["error"]["message"]


def test_deep_nesting_in_python_is_invalid_input(registry):
    with pytest.raises(InvalidInput, match="nested"):
        registry.validate("create_api_key", {"name": deep(5000)})


def test_a_huge_value_is_echoed_as_a_short_prefix_with_its_length_and_the_limit():
    result = Dispatcher(client=object()).call("gen_create_api_key", {"name": "x" * 3_900_000})
    error = result.content["error"]
    assert error["type"] == "invalid_input"
    assert len(result.text) < 2000
    assert "3,900,000 characters" in error["message"] and "at most 255 characters" in error["message"]
    assert error["errors"][0]["path"] == "$.name"


def test_a_huge_unknown_field_name_is_cut_too():
    result = Dispatcher(client=object()).call("gen_create_api_key", {"n" * 100_000: 1})
    assert result.content["error"]["type"] == "invalid_input" and len(result.text) < 2000


@pytest.mark.parametrize("arguments", [{"name": "\ud800"}, '{"name": "\\udc00x"}', {"name": ["a\udfff"]}])
def test_a_lone_surrogate_is_refused_locally(counted_dispatcher, arguments):
    dispatcher, adapter = counted_dispatcher
    result = dispatcher.call("gen_create_api_key", arguments)
    assert result.is_error and result.content["error"]["type"] == "invalid_input"
    assert result.content["error"]["errors"][0]["path"].startswith("$.name")
    result.text.encode("utf-8")  # the error itself is valid Unicode
    assert adapter.sent == []


@pytest.mark.parametrize("body", [b'{"name": "\\ud800"}', b'{"\\udc00": 1}'])
def test_the_sandbox_answers_422_to_a_lone_surrogate(sandbox, body):
    answer = requests.post(sandbox.base_url + "/persisted_tokens", data=body, timeout=5,
                           headers={"X-API-Key": sandbox.api_key, "Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json()["error_code"] == "validation_error"


# -- unknown fields, and no Python in the words ------------------------------------------------


@pytest.mark.parametrize("value", [None, 1, "x"])
def test_an_unknown_field_is_an_error_whatever_its_value(value):
    result = Dispatcher(client=object()).call("gen_list_api_keys", {"unknown": value})
    assert result.is_error and result.content["error"]["type"] == "invalid_input"
    assert "unknown" in result.content["error"]["message"]


def test_null_for_a_known_optional_field_still_means_omitted(counted_dispatcher):
    dispatcher, _ = counted_dispatcher
    assert not dispatcher.call("gen_list_api_keys", {"status": None}).is_error


@pytest.mark.parametrize("arguments, shown", [
    ({"name": True}, "true"), ({"name": None}, "null"), ({"name": {"a": 1}}, '{"a": 1}'),
    ({"expires_in": False}, "false"),
])
def test_messages_show_json_not_python(registry, arguments, shown):
    with pytest.raises(InvalidInput) as caught:
        registry.validate("create_api_key", arguments)
    text = json.dumps(caught.value.to_dict())
    assert shown in caught.value.message
    for literal in ("True", "False", "None", "{'a'", "'string'"):
        assert literal not in text


def test_the_sandbox_answers_400_to_json_nested_too_deeply_to_parse(sandbox):
    body = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answer = requests.post(sandbox.base_url + "/persisted_tokens", data=body, timeout=5,
                           headers={"X-API-Key": sandbox.api_key, "Content-Type": "application/json"})
    assert answer.status_code == 400


@pytest.mark.parametrize("arguments", [{"id": 6.0}, {"id": True}])
def test_a_float_or_bool_is_not_an_integer_id(registry, arguments):
    with pytest.raises(InvalidInput) as caught:
        registry.validate("revoke_api_key", arguments)
    assert caught.value.errors[0]["path"] == "$.id"


def test_expires_in_as_a_float_is_refused_locally(registry):
    with pytest.raises(InvalidInput) as caught:
        registry.validate("create_api_key", {"expires_in": 2592000.0})
    assert caught.value.errors[0]["path"] == "$.expires_in"


def test_an_id_with_a_leading_zero_is_refused_saying_why(registry):
    with pytest.raises(InvalidInput) as info:
        registry.validate("revoke_api_key", {"id": "06"})
    [problem] = info.value.errors
    assert problem["path"] == "$.id" and "leading zero" in problem["message"], problem
    assert '"6", not "06"' in str(info.value)
    with pytest.raises(InvalidInput, match="from 1 to"):  # the number form says its own rule
        registry.validate("revoke_api_key", {"id": 0})


def test_missing_fields_are_listed_once(registry):
    with pytest.raises(InvalidInput) as info:
        registry.validate("update_api_key", {})
    assert info.value.errors == [{"path": "$", "message": 'missing required field "id", "name"'}]
    assert str(info.value).count("missing required field") == 1
