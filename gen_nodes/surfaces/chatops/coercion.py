"""Words typed in chat as the JSON values an action's input schema expects."""

from __future__ import annotations

import re
from typing import Any, Mapping

_INT = re.compile(r"^-?[0-9]+$")


def _types(schema: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        found.add(kind)
    elif isinstance(kind, list):
        found.update(kind)
    for branch in (*schema.get("anyOf", ()), *schema.get("oneOf", ())):
        found |= _types(branch)
    return found


def coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """A word typed in chat as the JSON value the schema expects (digits -> integer, ...)."""
    if not isinstance(value, str):
        return value
    types = _types(schema)
    if "integer" in types and _INT.match(value):
        return int(value)
    if "number" in types and "string" not in types:
        try:
            return float(value)
        except ValueError:
            return value
    if "boolean" in types and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    return value
