"""The chat grammar of a registry: each action's command words, usage line and help text, and
the checks that run before parsing (a key typed into a command, quotes around free text).

The words come from each action's :class:`~gen_nodes.core.spec.Chat`; an action without one gets
``/gen <id-with-dashes> REQUIRED...``, so a plugin's actions get commands too."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping

from gen_nodes.core.redact import KNOWN_PREFIXES, SECRET_FIELDS
from gen_nodes.core.registry import Registry
from gen_nodes.core.spec import ActionSpec, Chat
from gen_nodes.core.validation import bundled
from gen_nodes.surfaces.chatops.alerts import DEFAULT_WITHIN, LIST_ACTION

log = logging.getLogger("gen_nodes.chatops")

#: Words the core answers itself; no action may take them.
BUILT_INS = ("help", "login", "logout", "alerts")
#: The word that asks for a read-only answer to be shown to the channel.
SHARE_FLAG = "--share"
# Text that holds a GEN key: a documented prefix and a long run of key characters, in any case and
# anywhere (inside `name=...`, brackets, after a colon...). The short generic prefixes (`gen_`, `ref_`)
# must not follow a letter or digit, so a name like `regen_nightly_build` is not taken for a key;
# `gen_pat_` is specific enough to be caught even glued to a word.
_KEY_LIKE = re.compile(r"(?:gen_pat_|(?<![a-z0-9])(?:%s))[a-z0-9_\-]{12,}" % "|".join(
    re.escape(p) for p in KNOWN_PREFIXES if p != "gen_pat_"), re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One action's place in the grammar."""

    spec: ActionSpec
    chat: Chat
    #: The bundled input schema's properties (for coercion, usage and option types).
    properties: Mapping[str, Any]
    required: tuple[str, ...]

    @property
    def words(self) -> tuple[str, ...]:
        return (self.chat.group, self.chat.verb) if self.chat.group else (self.chat.verb,)

    def field_for(self, option: str) -> str | None:
        """The input field an option name (alias or field name) stands for."""
        if option in self.chat.options:
            return self.chat.options[option]
        return option if option in self.properties else None

    def option_name(self, name: str) -> str:
        """How a field is named as an option (its alias, if it has one)."""
        return next((alias for alias, target in self.chat.options.items() if target == name), name)


def holds_key(text: str) -> bool:
    """True if ``text`` holds something shaped like a GEN key anywhere in it (any case)."""
    return _KEY_LIKE.search(text or "") is not None


def chat_of(spec: ActionSpec) -> Chat:
    """The spec's chat grammar, or one derived from its id and required inputs."""
    if spec.chat is not None:
        return spec.chat
    required = tuple(bundled(spec.input_schema).get("required", ()))
    return Chat(verb=spec.id.replace("_", "-"), args=required)


class Grammar:
    """Every command of a registry: lookup by words, usage lines and help."""

    def __init__(self, registry: Registry, prefix: str = "/gen") -> None:
        self.prefix = prefix
        #: Whether ``alerts`` works: the digest reads the list action.
        self.alerts = LIST_ACTION in registry
        self.entries: dict[tuple[str, ...], Entry] = {}
        # Help lists the top-level commands first, then each group: reads, writes, destructive ones.
        for spec in sorted(registry, key=lambda s: (bool(chat_of(s).group), chat_of(s).group, _rank(s))):
            schema = bundled(spec.input_schema)
            entry = Entry(spec, chat_of(spec), schema.get("properties", {}), tuple(schema.get("required", ())))
            if entry.words in self.entries or entry.words[0] in BUILT_INS or entry.chat.group in self._verbs():
                log.warning("chat command %r of action %s is taken; the action gets no chat command",
                            " ".join(entry.words), spec.id)
                continue
            self.entries[entry.words] = entry

    def _verbs(self) -> set[str]:
        return {words[0] for words in self.entries if len(words) == 1}

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(e.chat.group for e in self.entries.values() if e.chat.group))

    def find(self, words: list[str]) -> tuple[Entry | None, int]:
        """The entry the leading words name, and how many words that took."""
        for n in (2, 1):
            entry = self.entries.get(tuple(w.lower() for w in words[:n]))
            if entry is not None and len(words) >= n:
                return entry, n
        return None, 0

    def usage(self, entry: Entry) -> str:
        parts = [self.prefix, *entry.words]
        chat = entry.chat
        for i, name in enumerate(chat.args):
            label = _label(entry, name)
            if chat.rest and i == len(chat.args) - 1:
                label += "..."
            parts.append(label if name in entry.required else f"[{label}]")
        for name in entry.properties:
            if name not in chat.args:
                option = f"{entry.option_name(name)}={_label(entry, name)}"
                parts.append(option if name in entry.required else f"[{option}]")
        if _shareable(entry.spec):
            parts.append(f"[{SHARE_FLAG}]")
        return " ".join(parts)

    def help(self) -> str:
        lines = [f"GEN commands. Answers are shown only to you; add `{SHARE_FLAG}` to show a read-only "
                 "answer to the channel. Destructive commands ask you to confirm with a button first."]
        for entry in self.entries.values():
            note = " (asks you to confirm)" if entry.spec.hints.destructive else ""
            lines.append(f"`{self.usage(entry)}`  {entry.spec.title}{note}")
        lines.append(f"`{self.prefix} login`  Use your own GEN key (opens a private form)")
        lines.append(f"`{self.prefix} logout`  Forget your GEN key")
        if self.alerts:
            lines.append(f"`{self.prefix} alerts on [within={DEFAULT_WITHIN}]`  A private daily message about your "
                         f"keys that expire soon, each with a Rotate button; `{self.prefix} alerts off` stops it")
        lines.append(f"`{self.prefix} help`  This list")
        return "\n".join(lines)


def _rank(spec: ActionSpec) -> int:
    return 0 if spec.hints.read_only else 2 if spec.hints.destructive else 1


def _label(entry: Entry, name: str) -> str:
    if name in entry.chat.labels:
        return entry.chat.labels[name]
    enum = entry.properties.get(name, {}).get("enum")
    return "|".join(str(v) for v in enum) if enum else name.upper()


def _shareable(spec: ActionSpec) -> bool:
    """Only a read-only answer may go to the channel (a create's secret never can)."""
    return spec.hints.read_only and not (set(spec.output_schema.get("properties", {})) & SECRET_FIELDS)


def _unquote(text: str) -> str:
    for left, right in (('"', '"'), ("\u201c", "\u201d"), ("'", "'")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            return text[1:-1]
    return text
