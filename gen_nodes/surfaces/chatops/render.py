"""Replies written for people: an action's output as a compact chat message (a secret makes it private)."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from gen_nodes.core.redact import SECRET_FIELDS, masked_copy
from gen_nodes.core.spec import PARTIAL, ActionSpec
from gen_nodes.safety.display import plain, quoted
from gen_nodes.surfaces.chatops.messages import Reply

#: Items shown in a list or preview before "... and N more".
LIST_LIMIT = 50


def render(spec: ActionSpec, output: Mapping[str, Any], share: bool = False) -> Reply:
    """An action's output as a compact message; a secret makes it private."""
    wrap = spec.response.wrap
    if wrap and isinstance(output.get(wrap), list):
        items = output[wrap]
        head = f"{spec.title}: {len(items)} item(s)" + (":" if items else ".")
        return Reply("\n".join([head, *_item_lines(items)]), private=not share)
    if spec.composite:
        return _steps_reply(spec, output, share)
    secrets = _secrets(output)
    lines = [f"{spec.title}: done."]
    lines.extend(_field_lines({k: v for k, v in output.items() if k not in secrets}))
    lines.extend(_secret_lines(secrets))
    return Reply("\n".join(lines), private=bool(secrets) or not share, secret=bool(secrets))


def _steps_reply(spec: ActionSpec, output: Mapping[str, Any], share: bool) -> Reply:
    """A composite action's output: done or partly done (why, and what next), one line per object
    its steps made or touched, and any secret they made (the reply is then private)."""
    partial = output.get("status") == PARTIAL
    lines = [f"{spec.title}: partly done." if partial else f"{spec.title}: done."]
    if partial:  # the error first: the next step refers to it
        error = output.get("error") if isinstance(output.get("error"), Mapping) else {}
        lines += [f"Why: {plain(error.get('message'), 400)}", f"Next: {plain(output.get('next'), 600)}"]
    secrets: dict[str, Any] = {}
    for name, value in output.items():
        if isinstance(value, Mapping) and name != "error":
            lines.append(f"{plain(name, 40)}: {_item_line(value)[2:]}")
            secrets.update(_secrets(value))
    lines.extend(_secret_lines(secrets))
    return Reply("\n".join(lines), private=bool(secrets) or not share, secret=bool(secrets))


def _secrets(output: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in output.items() if k in SECRET_FIELDS and isinstance(v, str)}


def _secret_lines(secrets: Mapping[str, Any]) -> list[str]:
    return [f"Secret `{name}` (shown once, only to you; GEN never shows it again, and it is not kept here): "
            f"`{str.__str__(value)}`" for name, value in secrets.items()]


def _item_lines(items: list[Any]) -> list[str]:
    lines = [_item_line(item) for item in items[:LIST_LIMIT]]
    if len(items) > LIST_LIMIT:
        lines.append(f"... and {len(items) - LIST_LIMIT} more.")
    return lines


_LIST_COLUMNS = ("name", "status", "last_used_at", "expires_at")


def _item_line(item: Any) -> str:
    if not isinstance(item, Mapping):
        return f"• {quoted(item)}"
    if "change" in item:  # a composite action's preview: what its step does to this key
        rest = {k: v for k, v in item.items() if k != "change"}
        what = _item_line(rest)[2:] if rest.get("id") is not None else "a new key, " + ", ".join(
            f"{plain(k, 40)} {_value(v)}" for k, v in rest.items())
        return f"• {plain(item['change'], 40)}: {what}"
    parts = [f"`{plain(item.get('id'), 24)}`"] if "id" in item else []
    if any(c in item for c in _LIST_COLUMNS):
        if "name" in item:
            parts.append(quoted(item.get("name")) if item.get("name") is not None else "(no name)")
        if "status" in item:
            parts.append(plain(item.get("status"), 24))
        if "last_used_at" in item:
            parts.append(f"last used {_when(item.get('last_used_at'), 'never')}")
        if "expires_at" in item:
            parts.append(f"expires {_when(item.get('expires_at'), 'never')}")
    else:
        parts.extend(f"{plain(k, 40)}={_value(v)}" for k, v in list(item.items())[:5] if k != "id")
    return "• " + "  ".join(parts)


def _field_lines(data: Mapping[str, Any]) -> list[str]:
    return [f"{plain(name, 40)}: {_value(value)}" for name, value in data.items()]


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        when = _when(value, None) if _looks_like_time(value) else None
        return when or quoted(value)
    return quoted(json.dumps(masked_copy(value), default=str))


def _looks_like_time(value: str) -> bool:
    return bool(re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", value))


def _when(value: Any, missing: str | None) -> str | None:
    if not value:
        return missing
    text = str(value)
    match = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})", text)
    return f"{match.group(1)} {match.group(2)} UTC" if match else quoted(text)
