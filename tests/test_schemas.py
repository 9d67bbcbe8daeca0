"""The JSON Schema files: valid 2020-12, described, exemplified, resolvable offline, compiled once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry as RefRegistry

from gen_nodes.core.registry import default_registry
from gen_nodes.core.validation import bundled, load_schema, problems, schema_dir, validator

SCHEMA_FILES = sorted(schema_dir().glob("*.json"))
SPECS = list(default_registry())
SPEC_IDS = [spec.id for spec in SPECS]
BUILTINS = {"get_me", "list_api_keys", "create_api_key", "update_api_key", "revoke_api_key", "revoke_all_api_keys", "rotate_api_key"}


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` value anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_every_action_has_its_two_schema_files():
    names = {path.name for path in SCHEMA_FILES}
    assert BUILTINS <= set(SPEC_IDS)
    for action in BUILTINS:
        assert f"{action}.input.json" in names
        assert f"{action}.output.json" in names
    # The key object is defined once and shared through $ref.
    assert {"api_key.json", "common.json"} <= names
    assert len(SCHEMA_FILES) == 2 * len(BUILTINS) + 2


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_file_passes_the_2020_12_metaschema(path: Path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:gen-nodes:schemas:")
    Draft202012Validator.check_schema(schema)  # raises SchemaError when invalid
    # What the package loads is exactly what the file says.
    assert load_schema(path.stem) == schema


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_input_schema_is_closed_described_and_exemplified(spec):
    schema = spec.input_schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    for name, prop in schema["properties"].items():
        assert isinstance(prop.get("description"), str) and len(prop["description"]) > 10, (spec.id, name)
    # The bundled form (what tool formats see) keeps every description too.
    for name, prop in bundled(schema)["properties"].items():
        assert prop.get("description"), (spec.id, name)
    examples = schema["examples"]
    assert examples, spec.id
    for example in examples:
        assert problems(schema, example) == [], (spec.id, example)
    for name in schema.get("required", []):
        assert name in schema["properties"]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_output_schema_examples_validate(spec):
    schema = spec.output_schema
    examples = schema.get("examples") or bundled(schema).get("examples")
    assert examples, spec.id
    for example in examples:
        assert problems(schema, example) == [], (spec.id, example)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_examples_in_every_file_and_definition_validate(path: Path):
    schema = load_schema(path.stem)
    for example in schema.get("examples", []):
        assert problems(schema, example) == [], (path.name, example)
    for name, definition in schema.get("$defs", {}).items():
        for example in definition.get("examples", []):
            assert list(Draft202012Validator(definition).iter_errors(example)) == [], (name, example)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_refs_resolve_offline_and_bundle_to_self_contained_schemas(spec):
    for schema in (spec.input_schema, spec.output_schema):
        flat = bundled(schema)
        assert list(refs(flat)) == []
        assert "$defs" not in json.dumps(flat)
        # A validator with an EMPTY referencing registry (no retrieval at all) works on the
        # bundled form, and agrees with the package's validator on the examples.
        bare = Draft202012Validator(flat, registry=RefRegistry())
        for example in schema.get("examples", []) + flat.get("examples", []):
            assert list(bare.iter_errors(example)) == []
    # bundled() does not touch the loaded schema it was given.
    assert spec.input_schema is load_schema(f"{spec.id}.input")


def test_every_ref_points_to_a_shipped_schema():
    ids = {json.loads(p.read_text())["$id"] for p in SCHEMA_FILES}
    seen = set()
    for path in SCHEMA_FILES:
        for ref in refs(json.loads(path.read_text())):
            seen.add(ref)
            assert ref.split("#")[0] in ids, (path.name, ref)
    assert "urn:gen-nodes:schemas:api_key" in seen  # the key object is shared, not copied


def test_bundled_key_object_has_the_documented_fields():
    flat = bundled(load_schema("create_api_key.output"))
    assert set(flat["required"]) == {"id", "token"}  # all else optional: GEN's documents differ
    assert {"id", "name", "token", "token_type", "created_at", "expires_at", "last_used_at", "revoked_at",
            "status"} <= set(flat["properties"])
    assert flat["properties"]["status"]["enum"] == ["active", "expired", "revoked"]
    # id: integer or string; timestamps nullable.
    id_types = {branch["type"] for branch in flat["properties"]["id"]["anyOf"]}
    assert id_types == {"integer", "string"}
    assert "null" in flat["properties"]["expires_at"]["type"]


def test_output_schemas_tolerate_server_variants():
    key = {"id": "6", "name": None, "status": "revoked", "expires_at": None, "last_used_at": None,
           "revoked_at": "2026-03-09T10:00:00.000Z", "masked_token": "gen_pat_…abcd"}
    assert problems(load_schema("list_api_keys.output"), {"api_keys": [key]}) == []
    assert problems(load_schema("update_api_key.output"), {**key, "id": 6}) == []
    assert problems(load_schema("get_me.output"), {"id": "user_abc123", "email": "a@b.c", "plan": "pro"}) == []
    assert problems(load_schema("revoke_api_key.output"), {"id": "6", "revoked": True, "message": "ok"}) == []
    bad = problems(load_schema("list_api_keys.output"), {"api_keys": [{"id": 1, "status": "gone"}]})
    assert [p["path"] for p in bad] == ["$.api_keys[0].status"]


@pytest.mark.parametrize(
    ("action", "arguments", "path"),
    [
        ("create_api_key", {"name": ""}, "$.name"),
        ("create_api_key", {"name": "x" * 256}, "$.name"),
        ("create_api_key", {"expires_in": "30"}, "$.expires_in"),
        ("create_api_key", {"expires_in": 0}, "$.expires_in"),
        ("create_api_key", {"expires_in": True}, "$.expires_in"),
        ("create_api_key", {"token": "x"}, "$"),
        ("update_api_key", {"id": "abc", "name": "x"}, "$.id"),
        ("update_api_key", {"id": 3}, "$"),
        ("revoke_api_key", {"id": 0}, "$.id"),
        ("list_api_keys", {"status": "deleted"}, "$.status"),
    ],
)
def test_problems_name_the_json_path(action, arguments, path):
    found = problems(default_registry().get(action).input_schema, arguments)
    assert [p["path"] for p in found] == [path]
    assert found[0]["message"]


def test_problem_messages_explain_what_is_expected():
    create = default_registry().get("create_api_key").input_schema
    [problem] = problems(create, {"expires_in": "30 days"})
    assert "Expected:" in problem["message"] and '"30d"' in problem["message"]
    [problem] = problems(create, {"nmae": "typo"})
    assert 'unknown field "nmae"' in problem["message"]
    assert "Allowed fields: expires_in, name" in problem["message"]


def test_validators_are_built_once_and_reused():
    for spec in SPECS:
        first = validator(spec.input_schema)
        assert validator(spec.input_schema) is first
        assert validator(spec.output_schema) is validator(spec.output_schema)
        assert first.META_SCHEMA == Draft202012Validator.META_SCHEMA  # Draft 2020-12 rules
    # Validating does not rebuild them either.
    spec = default_registry().get("create_api_key")
    before = validator(spec.input_schema)
    problems(spec.input_schema, {"name": "x"})
    assert validator(spec.input_schema) is before


def test_schemas_are_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = schema_dir()
    assert folder.is_absolute() and (folder / "api_key.json").is_file()
    assert load_schema("get_me.input")["$id"] == "urn:gen-nodes:schemas:get_me.input"


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


def test_integers_are_strict_inside_inlined_schema_files_too():
    from gen_nodes.core.actions import LIST_API_KEYS
    from gen_nodes.core.validation import problems

    [problem] = problems(LIST_API_KEYS.output_schema, {"api_keys": [{"id": 1.0}]})
    assert problem["path"] == "$.api_keys[0].id"
