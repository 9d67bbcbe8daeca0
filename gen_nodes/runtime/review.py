"""What a person reads when an agent framework pauses a destructive gen-nodes call for review.

LangChain's ``HumanInTheLoopMiddleware`` and the OpenAI Agents SDK's ``needs_approval`` pause a
tool call and show it to a person; the frameworks only know the raw arguments. This text adds
what the call would affect (the keys a revoke would hit, found without changing anything),
masked and escaped as every other confirmation is (see ``display.py``).
"""

from __future__ import annotations

import json
from typing import Any

from gen_nodes.runtime.dispatch import Dispatcher
from gen_nodes.safety.display import arguments_line, confirmation_lines, quoted
from gen_nodes.core.errors import GenError


def review_text(dispatcher: Dispatcher, tool_name: str, arguments: Any, *, client: Any = None) -> str:
    """The call ``tool_name(arguments)`` described for the person deciding on it (never raises
    for bad input: the text then says why nothing can be previewed, and the call will be refused)."""
    try:
        tool, args = dispatcher.parse(tool_name, arguments)
    except GenError:
        return _invalid(tool_name, arguments)
    try:
        preview = dispatcher.registry.preview(tool.spec.id, args, client=client or dispatcher.default_client())
    except Exception as exc:  # the person must still get the question; only the preview is missing
        preview = None
        note = f"What it would affect could not be read ({type(exc).__name__})."
    else:
        note = ""
    lines = confirmation_lines(tool.spec.title, tool.spec.description, tool.name, args, preview)
    return "\n".join([*lines, note] if note else lines)


def _invalid(tool_name: str, arguments: Any) -> str:
    """A call the dispatcher will refuse. Name and arguments come from the model: shown escaped
    (the error's own text, written for the model, is not shown)."""
    try:
        decoded = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        decoded = arguments
    shown = decoded if isinstance(decoded, dict) else {"arguments": decoded}
    return "\n".join([f"{quoted(tool_name)}: this call is invalid and will be refused; nothing is sent.",
                      arguments_line(shown)])
