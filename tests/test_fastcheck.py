"""The compiled check (jsonschema-rs) and jsonschema agree: on generated documents, valid and
invalid, and on every answer recorded in cassettes/.

``problems()`` must report exactly what jsonschema alone reports (same paths, same messages),
and the compiled verdict must never call valid what jsonschema calls invalid.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cassette_support import cassette_files
from gen_nodes.core.fastcheck import suspects
from gen_nodes.core.registry import default_registry
from gen_nodes.core.validation import bundled, fast_check, is_valid, problems, validator

SPECS = list(default_registry())
SCHEMAS = {f"{spec.id}.{kind}": schema for spec in SPECS
           for kind, schema in (("input", spec.input_schema), ("output", spec.output_schema))}


def reference(schema: Any, instance: Any) -> list[dict[str, str]]:
    """What jsonschema alone reports, formatted as problems() formats it."""
    from gen_nodes.core import validation as schemas

    saved = schemas.fast_check
    schemas.fast_check = lambda _: _NeverSure()
    try:
        return problems(schema, instance)
    finally:
        schemas.fast_check = saved


class _NeverSure:
    def verdict(self, instance: Any) -> None:
        return None


def _stricter_only_by_pattern(instance: Any) -> bool:
    """Rust's ``$`` does not match before a final newline, Python's does: the compiled check may say no."""
    if isinstance(instance, str):
        return instance.endswith("\n")
    if isinstance(instance, dict):
        return any(map(_stricter_only_by_pattern, instance.values()))
    if isinstance(instance, (list, tuple)):
        return any(map(_stricter_only_by_pattern, instance))
    return False


def assert_agree(schema: Any, instance: Any) -> None:
    expected = reference(schema, instance)
    assert problems(schema, instance) == expected
    assert is_valid(schema, instance) == (not expected)
    verdict = fast_check(schema).verdict(instance)
    if verdict is True:
        assert expected == [], "the compiled check called valid what jsonschema does not"
    elif verdict is False and not expected:
        assert _stricter_only_by_pattern(instance), "the compiled check said no where jsonschema says yes"


# -- generated documents ------------------------------------------------------------------

def _property_names(node: Any) -> set[str]:
    if isinstance(node, dict):
        names = set(node.get("properties", {})) if isinstance(node.get("properties"), dict) else set()
        return names.union(*(_property_names(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_property_names(v) for v in node))
    return set()


NAMES = sorted(set().union(*(_property_names(bundled(s)) for s in SCHEMAS.values())))
TIMESTAMP = "2026-03-01T12:00:00.000Z"

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-3, max_value=10**6), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0.0, 1.0, 6.0, 2592000.0, -1.0, 1.5]),
    st.sampled_from(["", "6", "06", "6\n", "12345678901234567890", "30d", "0d", "30 days", "active", "revoked",
                     "expired", "paused", "personal_access_token", TIMESTAMP, "not a time", "ñame", "é\u0301"]),
    st.text(alphabet=string.printable + "é\u2028", max_size=12),
)
keys = st.one_of(st.sampled_from(NAMES), st.text(max_size=6))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
                            st.dictionaries(keys, inner, max_size=6)),
    max_leaves=20,
)


@st.composite
def api_keys(draw: Any) -> dict[str, Any]:
    """A key as GEN returns it, then maybe one field changed, dropped or added."""
    key = {
        "id": draw(st.one_of(st.integers(min_value=1, max_value=10**12), st.from_regex(r"\A[1-9][0-9]{0,5}\Z"))),
        "name": draw(st.one_of(st.none(), st.text(max_size=10))),
        "token_type": "personal_access_token",
        "created_at": TIMESTAMP,
        "expires_at": draw(st.sampled_from([None, TIMESTAMP])),
        "last_used_at": draw(st.sampled_from([None, TIMESTAMP])),
        "revoked_at": None,
        "status": draw(st.sampled_from(["active", "expired", "revoked"])),
    }
    change = draw(st.sampled_from(["none", "none", "set", "drop", "add", "float"]))
    field = draw(st.sampled_from(sorted(key)))
    if change == "float" and isinstance(key["id"], int):
        key["id"] = float(key["id"])  # the same number, but not a JSON integer
    elif change == "set":
        key[field] = draw(documents)
    elif change == "drop":
        del key[field]
    elif change == "add":
        key[draw(keys)] = draw(documents)
    return key


def near_valid(schema_name: str) -> Any:
    """Documents shaped like what the action really gets or returns, mostly valid."""
    if schema_name == "list_api_keys.output":
        listed = st.lists(api_keys(), max_size=5)
        return st.builds(lambda ks: {"api_keys": ks}, st.one_of(listed, listed.map(tuple)))
    if schema_name.endswith(".output"):
        return api_keys()
    numbers = st.integers(min_value=-1, max_value=3_000_000)
    values = st.one_of(scalars, numbers, numbers.map(float), st.lists(numbers, max_size=2).map(tuple))
    own = sorted(_property_names(bundled(SCHEMAS[schema_name]))) or NAMES
    return st.dictionaries(st.sampled_from(own), values, max_size=4)


HYPOTHESIS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@HYPOTHESIS
@given(data=st.data())
def test_agree_on_generated_documents(name, data):
    schema = SCHEMAS[name]
    assert_agree(schema, data.draw(near_valid(name), label="near valid"))
    assert_agree(schema, data.draw(documents, label="any document"))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_agree_on_each_schema_example(name):
    schema = SCHEMAS[name]
    for example in schema.get("examples", []):
        assert_agree(schema, example)
        assert problems(schema, example) == []


# -- the values where a plain compiled check would be more lenient ------------------------

LIST = SCHEMAS["list_api_keys.output"]
KEY = {"id": 5, "name": "CI", "token_type": "personal_access_token", "created_at": TIMESTAMP,
       "expires_at": None, "last_used_at": None, "revoked_at": None, "status": "active"}


@pytest.mark.parametrize("instance, path", [
    ({"api_keys": [{**KEY, "id": 6.0}]}, "$.api_keys[0].id"),      # an integral float is no integer
    ({"api_keys": (KEY,)}, "$.api_keys"),                           # a tuple is no array
])
def test_values_the_compiled_check_accepts_are_still_reported(instance, path):
    assert fast_check(LIST).compiled.is_valid(instance)  # why the suspects test exists
    assert fast_check(LIST).verdict(instance) is None
    assert [p["path"] for p in problems(LIST, instance)] == [path] == [p["path"] for p in reference(LIST, instance)]


def test_values_the_compiled_check_cannot_read_go_to_jsonschema():
    from gen_nodes.core.redact import Secret

    create_out = SCHEMAS["create_api_key.output"]
    answer = {**KEY, "token": Secret("gen_pat_abcdefghijklmnop1234")}
    assert fast_check(create_out).verdict(answer) is None  # a str subclass: jsonschema-rs raises
    assert problems(create_out, answer) == []
    assert problems(LIST, {"api_keys": [{**KEY, 3: "x"}]}) == reference(LIST, {"api_keys": [{**KEY, 3: "x"}]})


def test_suspects_only_looks_where_an_integer_or_array_is_allowed():
    test = suspects(bundled(LIST))
    assert test({"api_keys": [{**KEY, "name": 1.5, "other": (1, 2)}]}) is False  # no integer/array declared there
    assert test({"api_keys": [KEY, {**KEY, "id": 7.0}]}) is True
    assert suspects({"type": "object", "properties": {"a": {"type": "string"}}}) is None


def test_a_self_referencing_schema_is_judged_by_jsonschema(tmp_path):
    from gen_nodes.core.validation import load_schema

    (tmp_path / "tree.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:test:tree", "type": "object",
        "properties": {"n": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "urn:test:tree"}}},
    }))
    tree = load_schema("tree", tmp_path)
    assert problems(tree, {"n": 1, "kids": [{"n": 2, "kids": []}]}) == []
    assert [p["path"] for p in problems(tree, {"n": 1, "kids": [{"n": "x"}]})] == ["$.kids[0].n"]
    assert fast_check(tree).verdict({"n": 1, "kids": [{"n": 2}]}) is None  # below a $ref: jsonschema judges


def test_the_jsonschema_validator_is_still_built_once():
    assert validator(LIST) is validator(LIST)
    assert fast_check(LIST) is fast_check(LIST)


# -- recorded answers ---------------------------------------------------------------------


def recorded_answers() -> list[tuple[str, Any]]:
    out = []
    for path in cassette_files():
        for i, interaction in enumerate(yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]):
            text = interaction["response"]["body"].get("string") or ""
            try:
                out.append((f"{path.stem}#{i}", json.loads(text)))
            except ValueError:
                continue
    return out


ANSWERS = recorded_answers()


def test_there_are_recorded_answers():
    assert len(ANSWERS) >= 20


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_agree_on_every_recorded_answer(name):
    schema = SCHEMAS[name]
    for _, answer in ANSWERS:
        assert_agree(schema, answer)
        if isinstance(answer, list):
            assert_agree(schema, {"api_keys": answer})
