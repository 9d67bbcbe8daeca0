"""Tool exporters: OpenAI strict-mode schemas, Anthropic and MCP shapes, prefixes, the CLI.

The strict-mode checker below is written from OpenAI's documented rules (Structured
Outputs "Supported schemas", Function calling "Strict mode"), plus one rule OpenAI's
validator enforces although the guide leaves it implicit: every schema node needs a
``type`` (or ``anyOf`` / ``$ref``), else the request fails with "In context=(...),
schema must have a 'type' key" (reported e.g. in openclaw/clawpatch#60 for enum-only
properties). The checker is tested against bad schemas first, so it can fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gen_nodes.surfaces.llm import openai as oa
from gen_nodes.surfaces.llm.anthropic import anthropic_tools
from gen_nodes.runtime.tools import CONFIRMATION_POLICIES, build_tools, mcp_definition, tool_name

# ---- the strict-mode checker ------------------------------------------------------------

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# Keywords OpenAI documents as supported in strict mode (written out here on purpose,
# not imported from gen_nodes, so the checker is independent of the code it checks).
ALLOWED_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "description",
    "enum", "const", "anyOf", "$defs", "$ref",
    "pattern", "format",  # string
    "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",  # number
    "items", "minItems", "maxItems",  # array
}
FORBIDDEN_COMBINATORS = {"oneOf", "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas"}
ALLOWED_FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
ALLOWED_TYPES = {"string", "number", "boolean", "integer", "object", "array", "null"}
MAX_OBJECT_DEPTH = 5
_PY_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}


def _value_has_type(value: Any, type_name: str) -> bool:
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _PY_TYPES[type_name])


def schema_violations(schema: Any) -> list[str]:
    """Every way a tool's ``parameters`` break OpenAI strict mode (empty list: conforms)."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return ["$: the root must be an object schema"]
    if schema.get("type") != "object":
        problems.append("$: the root must have type 'object'")
    for key in ("anyOf", "oneOf", "allOf", "enum", "not"):
        if key in schema:
            problems.append(f"$: the root must not be {key}")
    _check_node(schema, "$", 1, problems)
    return problems


def _check_node(node: Any, path: str, depth: int, problems: list[str]) -> None:
    if not isinstance(node, dict):
        problems.append(f"{path}: a schema must be an object, got {type(node).__name__}")
        return
    for key in node:
        if key in FORBIDDEN_COMBINATORS:
            problems.append(f"{path}: {key} is not supported")
        elif key not in ALLOWED_KEYWORDS:
            problems.append(f"{path}: keyword {key!r} is not supported")
    if "$ref" in node:
        if not (node["$ref"] == "#" or str(node["$ref"]).startswith("#/$defs/")):
            problems.append(f"{path}: $ref must be local (#/$defs/...), got {node['$ref']!r}")
    elif "type" not in node and "anyOf" not in node:
        problems.append(f"{path}: schema must have a 'type' key")
    types = node.get("type")
    type_list = types if isinstance(types, list) else ([types] if types is not None else [])
    for t in type_list:
        if t not in ALLOWED_TYPES:
            problems.append(f"{path}: type {t!r} is not supported")
    if "format" in node and node["format"] not in ALLOWED_FORMATS:
        problems.append(f"{path}: format {node['format']!r} is not supported")
    if "enum" in node:
        if not isinstance(node["enum"], list) or not node["enum"]:
            problems.append(f"{path}: enum must be a non-empty list")
        elif type_list:
            for value in node["enum"]:
                if not any(_value_has_type(value, t) for t in type_list if t in ALLOWED_TYPES):
                    problems.append(f"{path}: enum value {value!r} does not match type {types!r}")
    if "anyOf" in node:
        if not isinstance(node["anyOf"], list) or not node["anyOf"]:
            problems.append(f"{path}: anyOf must be a non-empty list")
        else:
            for i, branch in enumerate(node["anyOf"]):
                _check_node(branch, f"{path}.anyOf[{i}]", depth, problems)
    if "items" in node:
        _check_node(node["items"], f"{path}[]", depth, problems)
    for name, sub in (node.get("$defs") or {}).items():
        _check_node(sub, f"{path}.$defs.{name}", depth, problems)
    if "object" in type_list or "properties" in node:
        if depth > MAX_OBJECT_DEPTH:
            problems.append(f"{path}: objects nested deeper than {MAX_OBJECT_DEPTH} levels")
        if node.get("additionalProperties") is not False:
            problems.append(f"{path}: additionalProperties must be false")
        props = node.get("properties")
        if not isinstance(props, dict):
            problems.append(f"{path}: an object must list its properties")
            props = {}
        required = node.get("required")
        if not isinstance(required, list):
            problems.append(f"{path}: required must be a list of every property")
            required = []
        if len(set(required)) != len(required):
            problems.append(f"{path}: required has duplicates")
        missing = [p for p in props if p not in required]
        extra = [r for r in required if r not in props]
        if missing:
            problems.append(f"{path}: properties not in required: {missing}")
        if extra:
            problems.append(f"{path}: required names unknown properties: {extra}")
        for name, sub in props.items():
            _check_node(sub, f"{path}.{name}", depth + 1, problems)


def function_violations(fn: dict[str, Any]) -> list[str]:
    """Checks the name/description/parameters/strict part shared by both OpenAI forms."""
    problems = []
    if not isinstance(fn.get("name"), str) or not NAME_RE.match(fn["name"]):
        problems.append(f"name {fn.get('name')!r} does not match {NAME_RE.pattern}")
    if not isinstance(fn.get("description"), str) or not fn["description"].strip():
        problems.append("description must be a non-empty string")
    if fn.get("strict") is not True:
        problems.append("strict must be present and true")
    problems += schema_violations(fn.get("parameters"))
    return problems


def chat_tool_violations(tool: dict[str, Any]) -> list[str]:
    """A Chat Completions tool: ``{"type": "function", "function": {...}}``."""
    if set(tool) != {"type", "function"} or tool["type"] != "function":
        return [f"a Chat Completions tool has exactly type='function' and function, got keys {sorted(tool)}"]
    fn = tool["function"]
    problems = []
    if set(fn) != {"name", "description", "parameters", "strict"}:
        problems.append(f"function keys must be name/description/parameters/strict, got {sorted(fn)}")
    return problems + function_violations(fn)


def responses_tool_violations(tool: dict[str, Any]) -> list[str]:
    """A Responses API tool: flat ``{"type", "name", "description", "parameters", "strict"}``."""
    problems = []
    if set(tool) != {"type", "name", "description", "parameters", "strict"}:
        problems.append(f"a Responses tool is flat with type/name/description/parameters/strict, got {sorted(tool)}")
    if tool.get("type") != "function":
        problems.append("type must be 'function'")
    return problems + function_violations(tool)


def accepts_null(schema: dict[str, Any]) -> bool:
    return Draft202012Validator(schema).is_valid(None)


# ---- the checker can fail -----------------------------------------------------------------

GOOD = {  # OpenAI's own strict-mode example, with an optional (nullable) unit
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country"},
        "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", None]},
        "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["location", "unit", "when", "tags"],
    "additionalProperties": False,
}


def _bad(**changes: Any) -> dict[str, Any]:
    schema = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is None:
            schema.pop(key)
        else:
            schema[key] = value
    return schema


def _with_prop(name: str, sub: dict[str, Any]) -> dict[str, Any]:
    schema = json.loads(json.dumps(GOOD))
    schema["properties"][name] = sub
    schema["required"].append(name)
    return schema


def test_checker_accepts_a_conforming_schema():
    assert schema_violations(GOOD) == []
    assert chat_tool_violations({"type": "function", "function": {
        "name": "get_weather", "description": "Weather", "parameters": GOOD, "strict": True}}) == []
    assert responses_tool_violations({"type": "function", "name": "get_weather", "description": "Weather",
                                      "parameters": GOOD, "strict": True}) == []


@pytest.mark.parametrize("schema, expected", [
    ({"anyOf": [GOOD, {"type": "null"}]}, "root must have type 'object'"),
    ({"type": "object", "anyOf": [GOOD], "properties": {}, "required": [], "additionalProperties": False},
     "root must not be anyOf"),
    ({"type": "string"}, "root must have type 'object'"),
    (_bad(additionalProperties=None), "$: additionalProperties must be false"),
    (_bad(additionalProperties=True), "$: additionalProperties must be false"),
    (_bad(required=["location"]), "properties not in required: ['unit', 'when', 'tags']"),
    (_bad(required=None), "required must be a list"),
    (_bad(required=["location", "unit", "when", "tags", "ghost"]), "unknown properties: ['ghost']"),
    (_with_prop("x", {"oneOf": [{"type": "string"}, {"type": "integer"}]}), "$.x: oneOf is not supported"),
    (_with_prop("x", {"allOf": [{"type": "string"}]}), "$.x: allOf is not supported"),
    (_with_prop("x", {"type": "string", "not": {"const": "a"}}), "$.x: not is not supported"),
    (_with_prop("x", {"type": "string", "if": {"const": "a"}, "then": {}}), "$.x: if is not supported"),
    (_with_prop("x", {"type": "string", "minLength": 1}), "$.x: keyword 'minLength' is not supported"),
    (_with_prop("x", {"type": "string", "default": "a"}), "keyword 'default' is not supported"),
    (_with_prop("x", {"type": "string", "format": "uri"}), "$.x: format 'uri' is not supported"),
    (_with_prop("x", {"enum": ["a", "b"]}), "$.x: schema must have a 'type' key"),
    (_with_prop("x", {"type": "string", "enum": ["a", None]}), "enum value None does not match"),
    (_with_prop("x", {"type": "object", "properties": {"y": {"type": "string"}}, "required": ["y"]}),
     "$.x: additionalProperties must be false"),
    (_with_prop("x", {"anyOf": [{"type": "object", "properties": {"y": {"type": "string"}},
                                 "additionalProperties": False, "required": []}, {"type": "null"}]}),
     "$.x.anyOf[0]: properties not in required: ['y']"),
    (_with_prop("x", {"type": "array", "items": {"type": "string", "maxLength": 3}}), "$.x[]: keyword 'maxLength'"),
    (_with_prop("x", {"$ref": "https://example.com/s.json"}), "$ref must be local"),
    (_with_prop("x", {"type": "date"}), "type 'date' is not supported"),
])
def test_checker_rejects_bad_schemas(schema, expected):
    found = schema_violations(schema)
    assert any(expected in problem for problem in found), found


def test_checker_rejects_deep_nesting():
    node: dict[str, Any] = {"type": "string"}
    for _ in range(6):
        node = {"type": "object", "properties": {"a": node}, "required": ["a"], "additionalProperties": False}
    assert any("nested deeper" in p for p in schema_violations(node))


def test_checker_rejects_bad_tool_envelopes():
    fn = {"name": "get_weather", "description": "Weather", "parameters": GOOD, "strict": True}
    assert any("does not match" in p for p in chat_tool_violations(
        {"type": "function", "function": {**fn, "name": "weather.get"}}))
    assert any("does not match" in p for p in function_violations({**fn, "name": "x" * 65}))
    assert any("strict must be present" in p for p in chat_tool_violations(
        {"type": "function", "function": {k: v for k, v in fn.items() if k != "strict"}}))
    # A Responses tool without strict: the API would then try (and maybe fail) to normalise it.
    assert any("strict must be present" in p for p in responses_tool_violations(
        {"type": "function", **{k: v for k, v in fn.items() if k != "strict"}}))
    # The nested Chat Completions form is not the Responses form, and vice versa.
    assert responses_tool_violations({"type": "function", "function": fn})
    assert chat_tool_violations({"type": "function", **fn})


# ---- our exported schemas -------------------------------------------------------------------

EXPECTED_NAMES = ["gen_create_api_key", "gen_get_me", "gen_list_api_keys", "gen_revoke_all_api_keys",
                  "gen_revoke_api_key", "gen_rotate_api_key", "gen_update_api_key"]
DESTRUCTIVE = {"gen_revoke_api_key", "gen_revoke_all_api_keys", "gen_rotate_api_key"}


@pytest.fixture(scope="module")
def tools():
    from gen_nodes.core.registry import default_registry

    return build_tools(default_registry())


def _optional_and_required(tool) -> tuple[list[str], list[str]]:
    props = list(tool.input_schema["properties"])
    required = set(tool.input_schema.get("required", ()))
    return [p for p in props if p not in required], [p for p in props if p in required]


def test_every_action_becomes_a_tool(tools):
    assert sorted(t.name for t in tools) == EXPECTED_NAMES
    for tool in tools:
        assert NAME_RE.match(tool.name)
        assert tool.input_schema["type"] == "object"
        assert "properties" in tool.input_schema
        # Self-contained: no outside reference and no documentation-only keywords left.
        text = json.dumps(tool.input_schema)
        assert "$ref" not in text and "urn:gen-nodes" not in text
        assert not {"$schema", "$id", "title", "examples"} & set(tool.input_schema)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_chat_completions_tool_is_strict(tools, name):
    (exported,) = [t for t in oa.chat_completions_tools(tools) if t["function"]["name"] == name]
    assert chat_tool_violations(exported) == []


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_responses_tool_is_strict_and_flat(tools, name):
    (exported,) = [t for t in oa.responses_tools(tools) if t["name"] == name]
    assert "function" not in exported
    assert exported["strict"] is True
    assert responses_tool_violations(exported) == []


def test_enums_carry_a_type(tools):
    """OpenAI rejects a schema node without `type` ("schema must have a 'type' key")."""
    (listing,) = [t for t in tools if t.name == "gen_list_api_keys"]
    status = oa.strict_schema(listing.input_schema)["properties"]["status"]
    assert status["type"] == ["string", "null"]
    assert status["enum"] == ["active", "expired", "revoked", None]


def test_both_openai_forms_carry_the_same_function(tools):
    chat = oa.chat_completions_tools(tools)
    responses = oa.responses_tools(tools)
    assert [{"type": "function", **c["function"]} for c in chat] == responses
    for c, tool in zip(chat, tools):
        assert c["function"]["name"] == tool.name
        assert c["function"]["description"] == tool.description
        assert c["function"]["parameters"] == oa.strict_schema(tool.input_schema)


def test_non_strict_export_says_so_explicitly(tools):
    for exported in oa.responses_tools(tools, strict=False):
        assert exported["strict"] is False
        tool = next(t for t in tools if t.name == exported["name"])
        assert exported["parameters"] == tool.input_schema
    for exported in oa.chat_completions_tools(tools, strict=False):
        assert exported["function"]["strict"] is False


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_optional_fields_become_nullable_and_required_ones_do_not(tools, name):
    tool = next(t for t in tools if t.name == name)
    strict = oa.strict_schema(tool.input_schema)
    optional, required = _optional_and_required(tool)
    for prop in optional:
        assert accepts_null(strict["properties"][prop]), f"{name}.{prop} is optional but not nullable"
    for prop in required:
        assert not accepts_null(strict["properties"][prop]), f"{name}.{prop} is required but nullable"
    assert strict["required"] == list(tool.input_schema["properties"])
    assert strict["additionalProperties"] is False
    # The tool's own (plain) schema is left untouched: optional fields are still optional there.
    assert not any(accepts_null(tool.input_schema["properties"][p]) for p in optional)
    assert sorted(tool.input_schema.get("required", [])) == sorted(required)


def test_nullable_fields_keep_their_values_and_constraints(tools):
    by_name = {t.name: oa.strict_schema(t.input_schema) for t in tools}
    create = Draft202012Validator(by_name["gen_create_api_key"])
    for ok in ({"name": "ci", "expires_in": "30d"}, {"name": None, "expires_in": 2592000},
               {"name": None, "expires_in": None}):
        assert create.is_valid(ok), ok
    for bad in ({"name": None, "expires_in": "30"}, {"name": None, "expires_in": 0}, {"name": None},
                {"name": None, "expires_in": None, "extra": 1}):
        assert not create.is_valid(bad), bad
    status = Draft202012Validator(by_name["gen_list_api_keys"])
    unset = {"status": None, "expiring_within": None, "unused_for": None}
    assert status.is_valid(unset) and status.is_valid({**unset, "status": "revoked"})
    assert status.is_valid({**unset, "expiring_within": "12h", "unused_for": 86400})
    assert not status.is_valid({**unset, "status": "gone"}) and not status.is_valid({})
    assert not status.is_valid({**unset, "expiring_within": "7w"}) and not status.is_valid({**unset, "unused_for": 0})
    revoke = Draft202012Validator(by_name["gen_revoke_api_key"])
    assert revoke.is_valid({"id": 6}) and revoke.is_valid({"id": "6"})
    assert not revoke.is_valid({"id": 6, "confirmation_token": "confirm_x"})
    assert not revoke.is_valid({"id": None})


def test_every_documented_example_still_fits_the_strict_schema(tools):
    """A call the model makes in strict mode (nulls for what it leaves out) is valid."""
    for tool in tools:
        strict = Draft202012Validator(oa.strict_schema(tool.input_schema))
        examples = tool.spec.input_schema.get("examples", [])
        assert examples, tool.name
        for example in examples:
            filled = {p: example.get(p) for p in strict.schema["properties"]}
            assert strict.is_valid(filled), (tool.name, filled)


def test_strict_schema_rejects_a_union_root():
    with pytest.raises(ValueError, match="plain object"):
        oa.strict_schema({"anyOf": [{"type": "object"}, {"type": "null"}]})
    with pytest.raises(ValueError):
        oa.strict_schema({"type": "object", "oneOf": [{"type": "object"}]})


def test_strict_schema_converts_one_of_and_drops_unsupported_keywords():
    schema = {"type": "object", "required": ["a"], "properties": {
        "a": {"oneOf": [{"type": "string", "minLength": 2, "format": "uri"}, {"type": "integer", "default": 3}]},
        "b": {"type": "array", "items": {"type": "object", "properties": {"c": {"type": "string", "format": "email"}}}},
    }}
    out = oa.strict_schema(schema)
    assert schema_violations(out) == []
    assert out["required"] == ["a", "b"] and out["additionalProperties"] is False
    assert out["properties"]["a"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}  # required: no null
    assert out["properties"]["b"]["type"] == ["array", "null"]  # optional, so nullable
    items = out["properties"]["b"]["items"]
    assert items["required"] == ["c"] and items["additionalProperties"] is False
    assert items["properties"]["c"]["format"] == "email"
    assert "oneOf" in schema["properties"]["a"]  # the input was not changed


# ---- cross-check with LangChain -----------------------------------------------------------

def _skeleton(node: Any, path: str = "$") -> dict[str, Any]:
    """Per object in the schema: its required list and additionalProperties."""
    out: dict[str, Any] = {}
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            out[path] = (sorted(node.get("required", [])), node.get("additionalProperties"))
        for name, sub in (node.get("properties") or {}).items():
            out.update(_skeleton(sub, f"{path}.{name}"))
        for i, sub in enumerate(node.get("anyOf") or []):
            if isinstance(sub, dict) and sub.get("type") != "null":
                out.update(_skeleton(sub, f"{path}|{i}"))
        if "items" in node:
            out.update(_skeleton(node["items"], f"{path}[]"))
    return out


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_langchain_strict_conversion_agrees(tools, name):
    from langchain_core.utils.function_calling import convert_to_openai_tool

    tool = next(t for t in tools if t.name == name)
    ours = oa.strict_schema(tool.input_schema)
    # Our plain function dict (NOT the wrapped {"type": "function"} form, which LangChain passes through).
    theirs = convert_to_openai_tool({"name": tool.name, "description": tool.description,
                                     "parameters": tool.input_schema}, strict=True)
    assert theirs["function"]["strict"] is True
    assert theirs["function"]["name"] == tool.name
    assert _skeleton(theirs["function"]["parameters"]) == _skeleton(ours)
    assert list(theirs["function"]["parameters"]["properties"]) == list(ours["properties"])
    # Our strict schema is a fixed point of LangChain's strict rewrite.
    again = convert_to_openai_tool({"name": tool.name, "description": tool.description, "parameters": ours},
                                   strict=True)
    assert again == {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                                      "parameters": ours, "strict": True}}


def test_langchain_would_pass_our_wrapped_form_through_unchanged(tools):
    """Why the cross-check above feeds LangChain the plain function dict."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    wrapped = oa.chat_completions_tools(tools, strict=False)[0]
    assert convert_to_openai_tool(wrapped, strict=True) == wrapped


# ---- prefixes ------------------------------------------------------------------------------

def test_prefix_changes_every_name(registry):
    tools = build_tools(registry, prefix="x_")
    assert sorted(t.name for t in tools) == [n.replace("gen_", "x_", 1) for n in EXPECTED_NAMES]
    assert sorted(t.name for t in build_tools(registry, prefix="")) == [n[4:] for n in EXPECTED_NAMES]
    for exported in oa.chat_completions_tools(tools):
        assert exported["function"]["name"].startswith("x_")
    assert tool_name("get_me") == "gen_get_me"


@pytest.mark.parametrize("prefix", ["bad prefix ", "gen.", "x/", "é_", "p" * 60])
def test_invalid_prefix_is_a_value_error(registry, prefix):
    with pytest.raises(ValueError, match="does not match"):
        build_tools(registry, prefix=prefix)


def test_unknown_confirmation_policy_is_a_value_error(registry):
    with pytest.raises(ValueError, match="confirmation must be one of"):
        build_tools(registry, confirmation="ask")


# ---- confirmation: nothing in a schema approves a call ------------------------------------

@pytest.mark.parametrize("policy", CONFIRMATION_POLICIES)
def test_no_tool_takes_an_input_that_approves_it(registry, policy):
    for tool in build_tools(registry, confirmation=policy):
        spec_props = set(bundled_props(tool.spec))
        assert set(tool.input_schema["properties"]) == spec_props, tool.name
        assert "confirm" not in json.dumps(tool.input_schema).lower(), tool.name
        gated = policy in ("elicit", "approval") and tool.spec.hints.destructive
        assert tool.needs_approval == gated == (gated and tool.name in DESTRUCTIVE), tool.name
        if gated:
            assert tool.description.endswith("it acts only after the user approves it outside this conversation.")
        elif policy == "host" and tool.spec.hints.destructive:
            assert tool.description.endswith("ask the user before calling it.")
        else:
            assert "approve" not in tool.description.lower()


def bundled_props(spec):
    from gen_nodes.core.validation import bundled

    return bundled(spec.input_schema).get("properties", {})


# ---- Anthropic -----------------------------------------------------------------------------

def test_anthropic_shape(tools):
    exported = anthropic_tools(tools)
    assert [e["name"] for e in exported] == [t.name for t in tools]
    for e, tool in zip(exported, tools):
        assert set(e) == {"name", "description", "input_schema"}
        assert NAME_RE.match(e["name"])
        assert e["description"] == tool.description
        assert e["input_schema"] == tool.input_schema
        assert e["input_schema"]["type"] == "object"


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_anthropic_strict_shape(tools, name):
    (e,) = [e for e in anthropic_tools(tools, strict=True) if e["name"] == name]
    assert set(e) == {"name", "description", "input_schema", "strict"}
    assert e["strict"] is True
    assert schema_violations(e["input_schema"]) == []


# ---- MCP definitions -----------------------------------------------------------------------

# (readOnlyHint, destructiveHint, idempotentHint) per tool, as issue 3 specifies.
EXPECTED_HINTS = {
    "gen_get_me": (True, False, True),
    "gen_list_api_keys": (True, False, True),
    "gen_create_api_key": (False, False, False),
    "gen_update_api_key": (False, False, True),
    "gen_revoke_api_key": (False, True, True),
    "gen_revoke_all_api_keys": (False, True, True),
    "gen_rotate_api_key": (False, True, False),
}


def test_mcp_definitions_have_explicit_exact_annotations(tools):
    assert sorted(EXPECTED_HINTS) == EXPECTED_NAMES
    for tool in tools:
        d = mcp_definition(tool)
        assert set(d) == {"name", "title", "description", "inputSchema", "outputSchema", "annotations"}
        assert d["name"] == tool.name and d["title"] == tool.spec.title
        assert d["inputSchema"] is tool.input_schema and d["inputSchema"]["type"] == "object"
        assert d["outputSchema"]["type"] == "object"
        ann = d["annotations"]
        assert set(ann) == {"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
        # Every hint explicitly a bool (none left to the MCP default, which is destructive).
        assert all(type(ann[k]) is bool for k in ann if k != "title")
        assert (ann["readOnlyHint"], ann["destructiveHint"], ann["idempotentHint"]) == EXPECTED_HINTS[tool.name]
        assert ann["idempotentHint"] == tool.spec.hints.idempotent
        assert ann["openWorldHint"] is True


# ---- the CLI -------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("gen-nodes")
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from gen_nodes.surfaces.cli import main; sys.exit(main())"]
    return subprocess.run(cmd + ["tools", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GEN_API_KEY": ""})


@pytest.fixture(scope="module")
def cli_outputs():
    out = {}
    for fmt in ("openai", "openai-responses", "anthropic", "mcp"):
        proc = _cli("--format", fmt)
        assert proc.returncode == 0, proc.stderr
        out[fmt] = json.loads(proc.stdout)
    return out


def test_cli_openai_chat_completions(cli_outputs, tools):
    exported = cli_outputs["openai"]
    assert exported == json.loads(json.dumps(oa.chat_completions_tools(tools)))
    problems = {t["function"]["name"]: chat_tool_violations(t) for t in exported}
    assert problems == {name: [] for name in EXPECTED_NAMES}


def test_cli_openai_responses(cli_outputs, tools):
    exported = cli_outputs["openai-responses"]
    assert exported == json.loads(json.dumps(oa.responses_tools(tools)))
    problems = {t["name"]: responses_tool_violations(t) for t in exported}
    assert problems == {name: [] for name in EXPECTED_NAMES}
    assert all(t["strict"] is True and "function" not in t for t in exported)


def test_cli_anthropic_and_mcp(cli_outputs, tools):
    assert cli_outputs["anthropic"] == json.loads(json.dumps(anthropic_tools(tools)))
    assert all("strict" not in t for t in cli_outputs["anthropic"])
    mcp = cli_outputs["mcp"]
    assert mcp == json.loads(json.dumps([mcp_definition(t) for t in tools]))
    for d in mcp:
        hints = d["annotations"]
        assert (hints["readOnlyHint"], hints["destructiveHint"], hints["idempotentHint"]) == EXPECTED_HINTS[d["name"]]


def test_cli_prefix_strict_anthropic_and_no_confirmation():
    proc = _cli("--format", "anthropic", "--strict", "--prefix", "x_", "--confirmation", "none")
    assert proc.returncode == 0, proc.stderr
    exported = json.loads(proc.stdout)
    assert sorted(t["name"] for t in exported) == [n.replace("gen_", "x_", 1) for n in EXPECTED_NAMES]
    assert all(t["strict"] is True for t in exported)
    assert not any("confirm" in json.dumps(t["input_schema"]) for t in exported)
    for t in exported:
        assert schema_violations(t["input_schema"]) == [], t["name"]


def test_cli_no_strict_openai():
    proc = _cli("--format", "openai-responses", "--no-strict")
    assert proc.returncode == 0, proc.stderr
    exported = json.loads(proc.stdout)
    assert all(t["strict"] is False for t in exported)
    create = next(t for t in exported if t["name"] == "gen_create_api_key")
    assert create["parameters"]["properties"]["name"]["type"] == "string"  # not nullable when not strict
    assert "required" not in create["parameters"]


def test_cli_invalid_prefix_is_a_clean_error():
    proc = _cli("--prefix", "bad prefix")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "does not match" in proc.stderr
    assert "Traceback" not in proc.stderr
    error = json.loads(proc.stderr)["error"]
    assert error["type"] == "invalid_input" and "prefix" in error["message"]
    assert error["errors"][0]["path"] == "--prefix"


def test_tool_schemas_keep_a_property_named_title():
    from dataclasses import replace

    from gen_nodes.core.actions import GET_ME
    from gen_nodes.runtime.tools import build_tools

    schema = {"type": "object", "additionalProperties": False,
              "properties": {"title": {"type": "string", "description": "a field called title"}}}
    [tool] = build_tools([replace(GET_ME, input_schema=schema)])
    assert tool.input_schema["properties"]["title"]["description"] == "a field called title"
