"""The fast path of schema checks: jsonschema-rs, compiled once per schema.

``jsonschema`` gives the detailed problems with their JSON paths, but walks every value in
Python (about 50 µs per listed key). jsonschema-rs checks the same Draft 2020-12 schema in
compiled code, two orders of magnitude faster. :func:`gen_nodes.core.validation.problems` asks it
first and runs ``jsonschema`` only when the answer is no, so a valid document costs the
compiled check and an invalid one gets exactly the problems it always got.

Where the two could disagree, jsonschema-rs must never be the more lenient one:

- our ``integer`` is a JSON integer (``6.0`` would be sent as ``"6.0"``), but jsonschema-rs
  accepts any number with no fractional part; and a ``tuple`` is not an array for
  ``jsonschema`` but is one for jsonschema-rs. :func:`suspects` finds such values where
  the schema asks for an integer or an array, and the document then goes to ``jsonschema``.
- what jsonschema-rs cannot read (a ``str`` subclass such as ``Secret``, non-string keys,
  lone surrogates) makes it raise, and the document goes to ``jsonschema``.
- in a ``pattern``, Python's ``$`` also matches before a final newline and Rust's does
  not: jsonschema-rs is only stricter there, and a no is re-checked by ``jsonschema``.

``tests/test_fastcheck.py`` checks the agreement on generated documents and on every
recorded cassette's answer.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

log = logging.getLogger("gen_nodes.core.validation")

#: Tells whether a document holds a value the two validators may judge differently.
Suspects = Callable[[Any], bool]


class FastCheck:
    """jsonschema-rs for one schema, and the :func:`suspects` test that sends a document to ``jsonschema``."""

    __slots__ = ("compiled", "suspects")

    def __init__(self, schema: Mapping[str, Any], registry_resources: list[tuple[str, Any]]) -> None:
        try:
            import jsonschema_rs

            registry = jsonschema_rs.Registry(registry_resources) if _has_ref(schema) else None
            self.compiled = jsonschema_rs.Draft202012Validator(
                schema, validate_formats=False, registry=registry)
        except Exception as exc:  # not installed, or a schema it cannot compile (a regex dialect, say)
            log.debug("no compiled check for this schema (%s); jsonschema checks it", type(exc).__name__)
            self.compiled = None
        self.suspects = suspects(schema)

    def verdict(self, instance: Any) -> bool | None:
        """True: valid for certain. False: jsonschema-rs says no. None: only ``jsonschema`` can tell."""
        if self.compiled is None:
            return None
        try:
            valid = self.compiled.is_valid(instance)
        except Exception:  # a value it cannot read
            return None
        if valid and self.suspects is not None and self.suspects(instance):
            return None
        return valid


# -- values judged differently -------------------------------------------------------

_LISTS_IN_PLACE = ("allOf", "anyOf", "oneOf")
_ONE_IN_PLACE = ("not", "if", "then", "else")
_ARRAY_KEYWORDS = ("items", "prefixItems", "contains", "minItems", "maxItems", "uniqueItems", "unevaluatedItems",
                   "minContains", "maxContains")


def _always(instance: Any) -> bool:
    return True


def suspects(schema: Any) -> Suspects | None:
    """A test for a float where ``schema`` allows an integer, or a tuple where it asks for an array,
    at any depth; None when ``schema`` has no such place.

    The test is generated Python code with the schema's shape inlined, so a 10,000-key list
    costs one loop, not a call per value.
    """
    lines: list[str] = []
    try:
        if not _emit(schema, "v0", 1, lines):
            return None
        source = "def test(v0):\n" + "\n".join(lines) + "\n    return False\n"
        namespace: dict[str, Any] = {}
        exec(compile(source, "<gen_nodes.core.fastcheck>", "exec"), namespace)  # noqa: S102 - our own code
        return namespace["test"]
    except (RecursionError, SyntaxError, MemoryError):  # too deep to inline: jsonschema judges all
        return _always


def _in_place(schema: Any) -> list[dict[str, Any]]:
    """``schema`` and every subschema applied to the same value (allOf, anyOf, not, if, ...)."""
    out, stack = [], [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        out.append(node)
        for key in _LISTS_IN_PLACE:
            if isinstance(node.get(key), list):
                stack.extend(node[key])
        stack.extend(node.get(key) for key in _ONE_IN_PLACE)
        if isinstance(node.get("dependentSchemas"), dict):
            stack.extend(node["dependentSchemas"].values())
    return out


def _emit(schema: Any, var: str, depth: int, out: list[str]) -> bool:
    """Append the statements that return True when ``var`` (matched by ``schema``) holds a suspect."""
    pad = "    " * depth
    group = _in_place(schema)
    if any("$ref" in node or "$dynamicRef" in node for node in group):
        out.append(f"{pad}return True")  # left unbundled (self-referencing): jsonschema judges it
        return True
    types: set[str] = set()
    for node in group:
        declared = node.get("type")
        types.update([declared] if isinstance(declared, str) else declared if isinstance(declared, list) else ())
    flagged = ["float"] if "integer" in types else []
    if "array" in types or any(key in node for node in group for key in _ARRAY_KEYWORDS):
        flagged.append("tuple")
    before = len(out)
    if flagged:
        out.append(f"{pad}if type({var}) in ({', '.join(flagged)},): return True")
    child = f"v{depth}"
    on_dict: list[str] = []
    on_list: list[str] = []
    for node in group:
        for name, sub in (node.get("properties") or {}).items():
            body: list[str] = []
            if _emit(sub, child, depth + 2, body):
                on_dict += [f"{pad}    if {name!r} in {var}:", f"{pad}        {child} = {var}[{name!r}]", *body]
        others = list((node.get("patternProperties") or {}).values())  # any name may match a pattern
        others += [node.get("additionalProperties"), node.get("unevaluatedProperties")]
        for sub in others:
            body = []
            if _emit(sub, child, depth + 2, body):
                on_dict += [f"{pad}    for {child} in {var}.values():", *body]
        for key in ("items", "unevaluatedItems", "contains"):
            body = []
            if _emit(node.get(key), child, depth + 2, body):
                on_list += [f"{pad}    for {child} in {var}:", *body]
        for index, sub in enumerate(node.get("prefixItems") or ()):
            body = []
            if _emit(sub, child, depth + 2, body):
                on_list += [f"{pad}    if len({var}) > {index}:", f"{pad}        {child} = {var}[{index}]", *body]
    if on_dict:
        out += [f"{pad}if type({var}) is dict:", *on_dict]
    if on_list:
        out += [f"{pad}if type({var}) is list:", *on_list]
    return len(out) > before


def _has_ref(schema: Any) -> bool:
    if isinstance(schema, dict):
        return "$ref" in schema or "$dynamicRef" in schema or any(_has_ref(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_ref(v) for v in schema)
    return False
