"""JSON Schema files: finding, loading, ``$ref`` resolution and compiled validators.

The schema files live in the repository's top-level ``schemas/`` folder; the wheel
carries them as ``gen_nodes/schemas`` (see ``pyproject.toml``), so an installed
copy finds them from any directory. ``$ref`` is resolved only through a
``referencing`` registry of the files we ship (plus those a plugin adds): never
over the network. Each validator is built once and reused: a compiled one
(jsonschema-rs, see ``fastcheck.py``) says whether a document is valid, and ``jsonschema``
says why when it is not.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from gen_nodes.core.fastcheck import FastCheck

_SOURCE_TREE = Path(__file__).resolve().parents[2] / "schemas"


def schema_dir() -> Path:
    """The folder of the built-in schema files (packaged copy first, then the source tree)."""
    packaged = Path(str(resources.files("gen_nodes") / "schemas"))
    return packaged if packaged.is_dir() else _SOURCE_TREE


@lru_cache(maxsize=None)
def _load_file(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_schema(name: str, folder: str | Path | None = None) -> dict[str, Any]:
    """Load ``name`` (e.g. ``"get_me.input"``) from ``folder`` (default: the built-in schemas).

    Every schema with an ``$id`` that is loaded becomes resolvable by ``$ref``.
    """
    base = Path(folder) if folder is not None else schema_dir()
    filename = name if name.endswith(".json") else name + ".json"
    schema = _load_file(str(base / filename))
    if "$id" in schema:
        _EXTRA[schema["$id"]] = schema
    return schema


# Schemas registered by load_schema (built-ins and plugins alike), by $id.
_EXTRA: dict[str, dict[str, Any]] = {}


def _ref_registry():
    """A ``referencing`` registry of every loaded schema, rebuilt only when one was added."""
    global _REGISTRY
    # The shared definitions are always resolvable, even before any action is loaded.
    for name in ("common", "api_key"):
        load_schema(name)
    if _REGISTRY is None or _REGISTRY[0] != len(_EXTRA):
        from referencing import Registry, Resource

        resources_ = [(uri, Resource.from_contents(schema)) for uri, schema in _EXTRA.items()]
        _REGISTRY = (len(_EXTRA), Registry().with_resources(resources_))
    return _REGISTRY[1]


_REGISTRY = None


def validator(schema: Mapping[str, Any]):
    """A compiled Draft 2020-12 validator for ``schema``, built once per schema."""
    key = id(schema)
    hit = _VALIDATORS.get(key)
    if hit is None or hit[0] is not schema:
        # Compiled from the bundled copy: resolving each $ref through the registry on every
        # instance costs about twice the validation itself.
        try:
            flat = bundled(schema)
        except RecursionError:  # a self-referencing (plugin) schema cannot be inlined
            flat = schema
        hit = (schema, _validator_class()(flat, registry=_ref_registry()))
        _VALIDATORS[key] = hit
    return hit[1]


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


@lru_cache(maxsize=1)
def _validator_class():
    """Draft 2020-12, except that an integer must be a JSON integer (6.0 would be sent as "6.0"),
    and ``pattern`` means what it means in JSON Schema (ECMA-262), not in Python: ``$`` is the end
    of the string, not also the place before a final newline ("6\\n" must not pass ``^[0-9]+$``)."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))

    def pattern(validator, expected, instance, schema):
        if validator.is_type(instance, "string") and not _ecma_pattern(expected).search(instance):
            yield ValidationError(f"does not match {expected}")

    return validators.extend(Draft202012Validator, validators={"pattern": pattern}, type_checker=checker)


@lru_cache(maxsize=256)
def _ecma_pattern(pattern: str) -> "re.Pattern[str]":
    """``pattern`` compiled with every ``$`` outside a character class made ``\\Z`` (ECMA's end of input)."""
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return re.compile("".join(out))


#: Characters of a value echoed in an error message; the rest is cut, and its length said.
ECHO_LIMIT = 40


def shown(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``value`` as short JSON for an error message: a long string cut with its length, never Python's repr."""
    if isinstance(value, str) and len(value) > limit:
        return f"{_json(value[:limit])[:-1]}…\" ({len(value):,} characters)"
    text = _json(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def _json(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        text = f"a {type(value).__name__}"
    # A lone surrogate cannot be written out as UTF-8: show it escaped.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


_TYPES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
          "object": "an object", "array": "a list", "null": "null"}
_BOUNDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
           "exclusiveMaximum": "less than"}


def _message(error) -> str:
    """What is wrong, in JSON's words, echoing at most a short prefix of the value."""
    kind, value, limit = error.validator, error.instance, error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "type":
        wanted = limit if isinstance(limit, list) else [limit]
        return f"expected {' or '.join(_TYPES.get(t, t) for t in wanted)}, got {shown(value)}"
    if kind == "maxLength":
        return f"{shown(value)} is too long: at most {limit:,} characters"
    if kind == "minLength":
        return f"{shown(value)} is too short: at least {limit:,} character{'s' if limit != 1 else ''}"
    if kind == "pattern":
        return f"{shown(value)} does not match the pattern {limit}"
    if kind in _BOUNDS:
        return f"{shown(value)} is out of range: it must be {_BOUNDS[kind]} {limit}"
    if kind == "enum":
        return f"{shown(value)} is not one of {shown(limit, 200)}"
    if kind == "const":
        return f"{shown(value)} must be {shown(limit)}"
    if kind == "required" and isinstance(value, dict):
        missing = [name for name in limit if name not in value]
        return f"missing required field {', '.join(shown(name) for name in missing[:5])}"
    if kind == "additionalProperties" and isinstance(value, dict):
        known = schema.get("properties", {})
        unknown = [name for name in value if name not in known]
        allowed = ", ".join(sorted(known)) or "none"
        return f"unknown field {', '.join(shown(name) for name in unknown[:5])}. Allowed fields: {allowed}"
    if kind in ("anyOf", "oneOf"):
        described = schema.get("description")
        expected = f"Expected: {described.rstrip('.')}" if described else "It matches none of the allowed forms"
        reason = _form_reason(error)
        return f"{shown(value)} is not valid here{f': {reason}' if reason else ''}. {expected}"
    text = error.message
    return text if len(text) <= 200 else text[:200] + "…"


def _form_reason(error) -> str | None:
    """Why the value fails the one allowed form (of an ``anyOf``/``oneOf``) whose type it has:
    that form's description, else its first problem. None when no form, or several, take its type."""
    failed: dict[int, list] = {}
    for problem in error.context:
        failed.setdefault(problem.relative_schema_path[0], []).append(problem)
    forms = error.validator_value if isinstance(error.validator_value, list) else []
    same_type = [index for index, problems in failed.items()
                 if not any(list(p.relative_schema_path) == [index, "type"] for p in problems)]
    if len(same_type) != 1 or same_type[0] >= len(forms):
        return None
    form = forms[same_type[0]] if isinstance(forms[same_type[0]], dict) else {}
    return form.get("description") or _message(failed[same_type[0]][0])


def fast_check(schema: Mapping[str, Any]) -> FastCheck:
    """The compiled check of ``schema`` (jsonschema-rs, from the bundled copy), built once per schema."""
    key = id(schema)
    hit = _FAST.get(key)
    if hit is None or hit[0] is not schema:
        try:
            flat = bundled(schema)
        except RecursionError:
            flat = schema
        hit = (schema, FastCheck(flat, list(_ref_registry_contents().items())))
        _FAST[key] = hit
    return hit[1]


_FAST: dict[int, tuple[Mapping[str, Any], FastCheck]] = {}


def _ref_registry_contents() -> dict[str, dict[str, Any]]:
    _ref_registry()
    return dict(_EXTRA)


def is_valid(schema: Mapping[str, Any], instance: Any) -> bool:
    """Whether ``instance`` satisfies ``schema``: the compiled check, ``jsonschema`` only where it cannot tell."""
    # A no is confirmed by jsonschema: jsonschema-rs may be stricter (a pattern's "$", say).
    return fast_check(schema).verdict(instance) is True or validator(schema).is_valid(instance)


def problems(schema: Mapping[str, Any], instance: Any) -> list[dict[str, str]]:
    """Every way ``instance`` fails ``schema``, as ``{"path": "$.field", "message": ...}``.

    A valid document costs only the compiled check; ``jsonschema`` finds the problems.
    """
    if fast_check(schema).verdict(instance):
        return []
    out: list[dict[str, str]] = []
    for error in sorted(validator(schema).iter_errors(instance), key=lambda e: list(e.path)):
        problem = {"path": _short_path(error.json_path), "message": _message(error)}
        if problem not in out:  # jsonschema reports each missing field apart; the message names them all
            out.append(problem)
    return out


def _short_path(path: str, limit: int = 120) -> str:
    return path if len(path) <= limit else path[:limit] + "…"


def bundled(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``$ref`` replaced by what it points to: one self-contained object.

    Tool formats (MCP, OpenAI, Anthropic) want a schema with no outside references.
    A ``$ref`` with sibling keywords is merged: properties and required are united,
    other siblings win.
    """
    return _bundle(copy.deepcopy(dict(schema)), _ref_registry().resolver(), root=True)


#: Keywords whose value maps names (never keywords themselves) to subschemas.
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
#: Keywords whose value is data, not a schema.
DATA_KEYWORDS = ("enum", "const", "default", "examples")


def _bundle(node: Any, resolver, root: bool = False) -> Any:
    if isinstance(node, list):
        return [_bundle(item, resolver) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node.pop("$ref")
        resolved = resolver.lookup(ref)
        target = _bundle(copy.deepcopy(resolved.contents), resolved.resolver)
        node = _merge(target, _bundle(node, resolver, root))
    else:
        node = {key: _bundle_keyword(key, value, resolver) for key, value in node.items()}
    # An inlined file's own $schema would make jsonschema switch rules for that subschema.
    for key in ("$id", "$defs", "definitions") if root else ("$id", "$defs", "definitions", "$schema"):
        node.pop(key, None)
    return node


def _bundle_keyword(key: str, value: Any, resolver) -> Any:
    if key in DATA_KEYWORDS:
        return value
    if key in SUBSCHEMA_MAPS and isinstance(value, dict):
        return {name: _bundle(sub, resolver) for name, sub in value.items()}
    return _bundle(value, resolver)


def _merge(target: dict[str, Any], siblings: dict[str, Any]) -> dict[str, Any]:
    merged = {**target, **siblings}
    if "properties" in target and "properties" in siblings:
        merged["properties"] = {**target["properties"], **siblings["properties"]}
    if "required" in target and "required" in siblings:
        merged["required"] = list(dict.fromkeys(target["required"] + siblings["required"]))
    return merged
