"""Text shown to a person for a decision: names quoted, hidden characters made visible, cut short.

Key names are chosen by whoever creates or renames a key, and that may be a model following a
prompt injection. A name holding newlines, ANSI escapes or bidi overrides could forge the text of
a confirmation ("NOTE: this is a DRY RUN"). Every text a person decides on (the CLI prompt, the
MCP elicitation message, the approval page, chat messages) shows such values through
:func:`quoted`, and a call's preview through :func:`preview_lines` / :func:`confirmation_lines`.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Iterable

from gen_nodes.core.redact import masked_copy

#: Characters of a value shown before it is cut.
NAME_LIMIT = 80
#: Keys listed one by one before the rest are summed up.
ITEM_LIMIT = 50

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}


def _visible(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    # C*: controls (ESC starts ANSI sequences), format (bidi overrides, zero-width), surrogates,
    # private use, unassigned; Zl/Zp: line and paragraph separators.
    if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return char


def quoted(value: Any, limit: int = NAME_LIMIT) -> str:
    """``value`` in double quotes, with every control, format or separator character (and ``"``,
    ``\\``) shown as an escape, cut after ``limit`` characters (``…`` and the full length follow).
    ``None`` is ``(none)``; a number or boolean is shown as JSON, unquoted."""
    if value is None:
        return "(none)"
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    text = str.__str__(value) if isinstance(value, str) else str(value)
    shown = "".join(_visible(c) for c in text[:limit])
    if len(text) > limit:
        return f'"{shown}…" ({len(text)} characters)'
    return f'"{shown}"'


def plain(value: Any, limit: int = NAME_LIMIT) -> str:
    """Like :func:`quoted`, without the quotes: for values whose shape is known (ids, statuses)."""
    text = quoted(value, limit)
    return text[1:-1] if text.startswith('"') and text.endswith('"') else text


def preview_lines(preview: Iterable[dict[str, Any]] | None, limit: int = ITEM_LIMIT) -> list[str]:
    """One line per affected key: ``id 6: "name" (active)``, masked and escaped; at most ``limit``."""
    if preview is None:
        return []
    items = list(masked_copy(list(preview)))
    if not items:
        return ["No matching key was found; GEN will answer whether it exists."]
    lines = ["Keys affected:"]
    lines.extend(_item_line(item) for item in items[:limit])
    if len(items) > limit:
        lines.append(f"  … and {len(items) - limit} more")
    return lines


def _item_line(item: dict[str, Any]) -> str:
    """``  - id 6: "name" (active)``; a composite action's step says what it does to the key
    (``  - Revoke API key: id 6 ...``), and a key still to be made shows what it will be."""
    change = f"{plain(item['change'], 40)}: " if "change" in item else ""
    if "change" in item and item.get("id") is None:
        planned = ", ".join(f"{plain(field, 40)} {quoted(value)}" for field, value in item.items() if field != "change")
        return f"  - {change}a new key, {planned or 'with GEN defaults'}"
    return f"  - {change}id {plain(item.get('id'), 24)}: {quoted(item.get('name'))} ({plain(item.get('status'), 24)})"


def account_text(account: dict[str, Any] | None) -> str:
    """The GEN account whose key asked, as a person reads it: ``name <email>``, escaped (a name is
    chosen by whoever made the account), or why it is unknown."""
    if not account:
        return "an unknown GEN account (it could not be read)"
    name = plain(account.get("name"), 80) if account.get("name") else f"user {plain(account.get('id'), 24)}"
    return f"{name} <{plain(account.get('email'), 120)}>" if account.get("email") else name


def arguments_line(arguments: dict[str, Any]) -> str:
    """The call's arguments, masked, as escaped JSON cut to a sane length."""
    text = json.dumps(masked_copy(arguments), sort_keys=True, ensure_ascii=True)
    return f"Arguments: {text if len(text) <= 400 else text[:400] + f'… ({len(text)} characters)'}"


def confirmation_lines(title: str, description: str, name: str, arguments: dict[str, Any],
                       preview: Iterable[dict[str, Any]] | None) -> list[str]:
    """What a person reads before approving a destructive call (no question at the end)."""
    lines = [f"{title} ({name}): this cannot be undone.", description, *preview_lines(preview)]
    if arguments:
        lines.append(arguments_line(arguments))
    return lines
