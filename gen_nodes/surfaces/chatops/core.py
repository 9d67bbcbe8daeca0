"""The platform-free chat core: grammar, parsing, replies, bindings, approvals, audit.

Every platform adapter does the same three things with it:

1. ``ChatOps.parse(text)`` (or ``parse_fields`` for platforms with typed options)
   turns what the person typed into a :class:`Command`, without any network call,
   so the adapter can answer help and usage errors at once and open the login form
   while the platform's interaction is still fresh;
2. ``ChatOps.run(who, command)`` does the slow part (GEN calls) and returns a
   :class:`Reply`, which the adapter sends later (Slack ``response_url``, Discord
   follow-up);
3. ``ChatOps.login`` and ``ChatOps.press`` finish the login form and the approval
   button.

The grammar comes from each action's :class:`~gen_nodes.core.spec.Chat` (an action
without one gets ``/gen <id-with-dashes> REQUIRED...``), so a plugin's actions get
commands too. Arguments are checked against the input schema before anything is
sent. Each person acts with their own GEN key (bound through ``/gen login`` or
``gen-nodes chatops bind``, sealed with :class:`~gen_nodes.state.secretbox.SecretBox`);
a destructive action answers with a preview and a button that only the person who
asked can press, once, within the approval TTL (``gen_nodes.safety.approvals``). Replies
are private unless a read-only answer is shared with ``--share``; a secret is only
ever in the creator's private reply. Every action writes one audit line (logger
``gen_nodes.chatops.audit``): platform, workspace, user, action, ids, outcome;
never command text, arguments or secrets.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Mapping

from gen_nodes.safety.approvals import EXPIRED, PENDING, ApprovalError, Approvals
from gen_nodes.client.http import GenClient
from gen_nodes.safety.display import plain, quoted
from gen_nodes.core.errors import AuthenticationError, GenError, InvalidInput
from gen_nodes.core.terms import ChatTerms, chat_terms  # ChatTerms: importable here as before
from gen_nodes.core.redact import KNOWN_PREFIXES, SECRET_FIELDS, masked_copy
from gen_nodes.core.registry import Registry
from gen_nodes.core.validation import bundled
from gen_nodes.core.spec import ActionSpec, Chat
from gen_nodes.state.secretbox import SecretBox, SecretBoxError
from gen_nodes.client.cache import ClientCache

log = logging.getLogger("gen_nodes.chatops")
audit_log = logging.getLogger("gen_nodes.chatops.audit")

#: Words the core answers itself; no action may take them.
BUILT_INS = ("help", "login", "logout")
#: The word that asks for a read-only answer to be shown to the channel.
SHARE_FLAG = "--share"
#: Seconds an approval button stays usable.
APPROVAL_TTL = 300
#: Items shown in a list or preview before "... and N more".
LIST_LIMIT = 50
_BINDING_PREFIX = "chatops:binding:"
#: Seconds a binding lasts without use: a year (every command that uses it renews it).
BINDING_TTL = 365 * 24 * 3600
#: Seconds a verified request is remembered, so a replay of it does not act again. Both platforms'
#: requests are accepted with a timestamp up to 5 minutes off either way, so one signed request
#: stays acceptable for 10 minutes from the first sight at most; a minute more for clock drift.
REPLAY_TTL = 2 * 300 + 60
_SEEN_PREFIX = "chatops:seen:"
# Text that holds a GEN key: a documented prefix and a long run of key characters, in any case and
# anywhere (inside `name=...`, brackets, after a colon...). The short generic prefixes (`gen_`, `ref_`)
# must not follow a letter or digit, so a name like `regen_nightly_build` is not taken for a key;
# `gen_pat_` is specific enough to be caught even glued to a word.
_KEY_LIKE = re.compile(r"(?:gen_pat_|(?<![a-z0-9])(?:%s))[a-z0-9_\-]{12,}" % "|".join(
    re.escape(p) for p in KNOWN_PREFIXES if p != "gen_pat_"), re.IGNORECASE)
_INT = re.compile(r"^-?[0-9]+$")


# -- what comes in and what goes out ----------------------------------------------------


@dataclass(frozen=True)
class ChatUser:
    """Who typed the command, as the platform says (never from the command text)."""

    platform: str
    #: The Slack workspace or Discord guild ("" for a Discord DM).
    team: str
    user: str
    channel: str = ""


@dataclass(frozen=True)
class Buttons:
    """An approve/deny pair for a pending approval; only ``who`` may press them."""

    approval: str
    approve_label: str
    confirm_text: str
    deny_label: str = "Cancel"


@dataclass(frozen=True)
class Reply:
    """A message for people, in the small markdown Slack and Discord share (backticks)."""

    text: str
    #: Seen only by the person who asked (ephemeral); a secret forces this.
    private: bool = True
    buttons: Buttons | None = None
    #: Replace the message that carried the button (after a press).
    replace: bool = False
    #: Holds a secret: the adapter must send it privately and never log it.
    secret: bool = False

    def __repr__(self) -> str:  # the text may hold a new key's secret
        return f"Reply(private={self.private}, secret={self.secret}, buttons={self.buttons is not None})"


@dataclass(frozen=True)
class Command:
    """A parsed command: a built-in (help/login/logout), an action, or an answer already."""

    kind: str  # "help" | "login" | "logout" | "action" | "answer"
    spec: ActionSpec | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    share: bool = False
    #: For ``answer`` (help, usage errors, refusals): the reply, sent without any GEN call.
    reply: Reply | None = None
    #: The audit outcome of an ``answer`` worth auditing (e.g. an inline key refused).
    audit: str | None = None

    def __repr__(self) -> str:  # the arguments are the user's; keep them out of logs
        return f"Command(kind={self.kind!r}, action={self.spec.id if self.spec else None!r})"


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


# -- the chat core ----------------------------------------------------------------------


class Bindings:
    """Each chat user's own GEN key, sealed at rest, in the shared store."""

    def __init__(self, store: Any, box: SecretBox) -> None:
        self.store = store
        self.box = box

    @staticmethod
    def _key(platform: str, user: str) -> str:
        return f"{_BINDING_PREFIX}{platform}:{user}"

    def bind(self, platform: str, user: str, api_key: str, gen_user: Mapping[str, Any]) -> None:
        self.store.set(self._key(platform, user), {
            "key": self.box.seal(api_key),
            "gen_user": gen_user.get("id"),
            "bound_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }, ttl=BINDING_TTL)
        from gen_nodes.surfaces.chatops.approver import remember_binding  # held calls of this GEN account find this person

        remember_binding(self.store, platform, user, gen_user.get("id"))

    def api_key(self, platform: str, user: str) -> str | None:
        """The user's GEN key, or None if unbound (or sealed with another secret)."""
        record = self.store.get(self._key(platform, user))
        if not record:
            return None
        try:
            key = self.box.open(record["key"])
        except (SecretBoxError, KeyError, TypeError):  # sealed under another secret: as good as unbound
            log.warning("a %s binding could not be opened (GEN_NODES_CHATOPS_SECRET changed?)", platform)
            return None
        self.store.replace(self._key(platform, user), record, record, ttl=BINDING_TTL)  # renew
        return key

    def unbind(self, platform: str, user: str) -> bool:
        return self.store.pop(self._key(platform, user)) is not None


class ChatOps:
    """The chat core shared by every platform adapter. Thread-safe: all state is in ``store``."""

    def __init__(self, registry: Registry, store: Any, box: SecretBox, *, base_url: str | None = None,
                 timeout: Any = None, allow: Iterable[str] = (), prefix: str = "/gen",
                 approval_ttl: float = APPROVAL_TTL, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.grammar = Grammar(registry, prefix)
        self.terms = chat_terms({e.spec.id: f"`{self.grammar.usage(e)}`" for e in self.grammar.entries.values()},
                                prefix)
        self.store = store
        self.bindings = Bindings(store, box)
        self.approvals = Approvals(store, ttl=approval_ttl, clock=clock)
        self.base_url = base_url
        self.timeout = timeout
        # One GenClient per bound key, reused across commands (keyed by the key's digest).
        self.clients = ClientCache(lambda key: GenClient(api_key=key, base_url=base_url, timeout=timeout))
        #: Workspaces/guilds allowed to use the bot; empty allows every one.
        self.allow = frozenset(allow)

    @property
    def prefix(self) -> str:
        return self.grammar.prefix

    # -- 0. replays --

    def first_sight(self, platform: str, request_id: str) -> bool:
        """True the first time a verified request (``request_id``: what identifies it on ``platform``)
        is seen; False for a replay. Remembered in the store for :data:`REPLAY_TTL`, added atomically,
        so processes sharing the store see each other's requests."""
        digest = hashlib.sha256(request_id.encode()).hexdigest()
        if self.store.add(f"{_SEEN_PREFIX}{platform}:{digest}", {}, ttl=REPLAY_TTL):
            return True
        log.warning("a replayed %s request was answered without acting on it", platform)
        return False

    # -- 1. parsing (no network) --

    def parse(self, text: str) -> Command:
        """What the person typed after the slash command, as a :class:`Command`."""
        words = (text or "").split()
        if holds_key(text) or (words and words[0].lower() == "login" and len(words) > 1):
            return self._inline_key()
        if not words or words[0].lower() == "help":
            return self._answer(self.grammar.help())
        if words[0].lower() in ("login", "logout"):
            extra = words[1:]
            if extra:
                return self._answer(f"`{self.prefix} {words[0].lower()}` takes no arguments.")
            return Command(kind=words[0].lower())
        entry, taken = self.grammar.find(words)
        if entry is None:
            return self._unknown(words)
        share = SHARE_FLAG in (w.lower() for w in words[taken:])
        rest = [w for w in words[taken:] if w.lower() != SHARE_FLAG]
        positional: list[str] = []
        options: dict[str, Any] = {}
        for word in rest:
            name, eq, value = word.partition("=")
            target = entry.field_for(name.lower()) if eq else None
            if target is not None:
                options[target] = value
            else:
                positional.append(word)
        args = entry.chat.args
        if len(positional) > len(args) and not (entry.chat.rest and args):
            return self._usage(entry, f"Too many words: {len(positional)} given, at most {len(args)} expected.")
        values = dict(options)
        for i, name in enumerate(args):
            if i >= len(positional):
                break
            if entry.chat.rest and i == len(args) - 1:
                values[name] = _unquote(" ".join(positional[i:]))
            else:
                values[name] = positional[i]
        return self._command(entry, values, share)

    def parse_fields(self, words: tuple[str, ...], fields: Mapping[str, Any], share: bool = False) -> Command:
        """A command given as words plus typed options (Discord's application commands)."""
        if any(holds_key(str(v)) for v in (*words, *fields.values())):
            return self._inline_key()
        if not words or words[0] == "help":
            return self._answer(self.grammar.help())
        if words[0] in ("login", "logout"):
            return Command(kind=words[0])
        entry = self.grammar.entries.get(tuple(words))
        if entry is None:
            return self._unknown(list(words))
        values = {}
        for option, value in fields.items():
            target = entry.field_for(option)
            if target is None:
                return self._usage(entry, f"Unknown option {option!r}.")
            values[target] = value
        return self._command(entry, values, share)

    def _command(self, entry: Entry, values: dict[str, Any], share: bool) -> Command:
        arguments = {name: coerce(v, entry.properties.get(name, {})) for name, v in values.items()}
        try:
            self.registry.validate(entry.spec.id, arguments)
        except InvalidInput as exc:
            return self._usage(entry, f"{exc.message}\nNothing was sent.")
        if share and not _shareable(entry.spec):
            return self._usage(entry, f"`{SHARE_FLAG}` works only for read-only commands; this answer stays private.")
        return Command(kind="action", spec=entry.spec, arguments=arguments, share=share)

    def _answer(self, text: str, audit: str | None = None) -> Command:
        return Command(kind="answer", reply=Reply(text), audit=audit)

    def _usage(self, entry: Entry, problem: str) -> Command:
        return self._answer(f"{problem}\nUsage: `{self.grammar.usage(entry)}`")

    def _unknown(self, words: list[str]) -> Command:
        typed = " ".join(words[:2])
        known = [" ".join(w) for w in self.grammar.entries] + list(BUILT_INS)
        close = difflib.get_close_matches(typed.lower(), known, n=2)
        hint = f" Did you mean `{self.prefix} {close[0]}`?" if close else ""
        return self._answer(f"Unknown command {quoted(typed)}.{hint}\n\n{self.grammar.help()}")

    def _inline_key(self) -> Command:
        return self._answer(
            "That looks like a GEN API key typed into the command. Nothing was sent. Command text is kept in "
            "the chat platform's logs, so treat that key as leaked: revoke it (GEN dashboard, or "
            f"`{self.prefix} keys revoke ID` with another key), create a new one, and bind it with "
            f"`{self.prefix} login`, which opens a private form.",
            audit="refused_inline_key")

    # -- 2. running --

    def admit(self, who: ChatUser) -> Reply | None:
        """A refusal if ``who``'s workspace is not on the allow-list; None to go ahead."""
        if self.allow and who.team not in self.allow:
            self.audit(who, "use", outcome="refused_workspace")
            return Reply("This GEN bot is not enabled for this workspace.")
        return None

    def run(self, who: ChatUser, command: Command) -> Reply:
        """Carry out a parsed command for ``who`` (GEN calls happen here) and say how it went."""
        refused = self.admit(who)
        if refused is not None:
            return refused
        if command.kind == "answer":
            if command.audit:
                self.audit(who, "login", outcome=command.audit)
            return command.reply or Reply("")
        if command.kind == "logout":
            removed = self.bindings.unbind(who.platform, who.user)
            self.audit(who, "logout", outcome="ok" if removed else "not_bound")
            return Reply("Your GEN key is forgotten here." if removed else "No GEN key was bound for you.")
        if command.kind == "login":
            return Reply(f"Open the login form with `{self.prefix} login`.")
        spec = command.spec
        assert spec is not None
        with self._lease(who) as client:
            if client is None:
                self.audit(who, spec.id, outcome="not_bound")
                return self._not_bound()
            try:
                if spec.hints.destructive:
                    return self._ask(who, spec, dict(command.arguments), client)
                output = self.registry.run(spec.id, dict(command.arguments), client=client)
            except GenError as exc:
                self.audit(who, spec.id, ids=_ids(command.arguments), outcome=exc.type)
                return self._failed(spec, exc)
        made = [output] if "id" in output else []
        self.audit(who, spec.id, ids=_ids(command.arguments, made), outcome="ok")
        return render(spec, output, share=command.share)

    def _ask(self, who: ChatUser, spec: ActionSpec, arguments: dict[str, Any], client: GenClient) -> Reply:
        affected = self.registry.preview(spec.id, arguments, client=client)
        approval = self.approvals.request(
            action=spec.id, arguments=arguments, principal=client.identity,
            preview=masked_copy(affected or []),
            context={"surface": who.platform, "team": who.team, "user": who.user, "channel": who.channel})
        self.audit(who, spec.id, ids=_ids(arguments, affected or []), outcome="awaiting_approval")
        minutes = max(1, round(self.approvals.ttl / 60))
        lines = [f"*{spec.title}*: {spec.description}"]
        if affected is None:
            lines.append("(This action declares no preview.)")
        elif affected:
            lines.append(f"This would affect {len(affected)} item(s):")
            lines.extend(_item_lines(affected))
        else:
            lines.append("No matching item was found; GEN will answer whether it exists.")
        lines.append(f"Only you can confirm, once, within {minutes} minutes.")
        return Reply("\n".join(lines), buttons=Buttons(
            approval=approval.id, approve_label=spec.title,
            confirm_text=f"{spec.title}: this cannot be undone. Go ahead?"))

    def press(self, who: ChatUser, approval_id: str, approve: bool) -> Reply:
        """A press of an approval button: only its requester, once; the action runs exactly once."""
        from gen_nodes.surfaces.chatops.approver import press_routed  # a call held by another surface, routed to a chat user

        routed = press_routed(self, who, approval_id, approve)
        if routed is not None:
            return routed
        refused = self.admit(who)
        if refused is not None:
            return refused
        pending = self.approvals.get(approval_id) if approval_id else None
        if pending is None:
            self.audit(who, "approval", outcome="unknown_or_expired")
            return Reply("This confirmation has expired or is unknown; nothing was changed. Run the command again.")
        context = pending.context or {}
        if (context.get("surface"), context.get("user")) != (who.platform, who.user):
            self.audit(who, pending.action, outcome="refused_not_requester")
            return Reply("Only the person who typed this command can confirm it.")
        if pending.state == EXPIRED:
            self.audit(who, pending.action, outcome="expired")
            return Reply("This confirmation expired; nothing was changed. Run the command again.")
        if pending.state != PENDING:
            return Reply(f"This confirmation was already used ({pending.state}); nothing more was done.")
        try:
            self.approvals.decide(approval_id, approve=approve, by=f"{who.platform}:{who.user}")
        except ApprovalError:
            return Reply("This confirmation was already used; nothing more was done.")
        if not approve:
            self.audit(who, pending.action, outcome="denied")
            return Reply(f"Cancelled: {pending.action} was not run; nothing was changed.", replace=True)
        claimed = self.approvals.claim(approval_id)
        if claimed is None:
            return Reply("This confirmation was already used; nothing more was done.")
        return self._run_approved(who, claimed)

    def _run_approved(self, who: ChatUser, approval: Any) -> Reply:
        spec = self.registry.get(approval.action)
        ids = _ids(approval.arguments, approval.preview or [])
        with self._lease(who) as client:
            try:
                output = self.approvals.run_claimed(approval, partial(_run_as, self.registry, client),
                                                    terms=self.terms)
            except ApprovalError as exc:
                if exc.details.get("reason") != KEY_CHANGED:
                    raise
                self.audit(who, spec.id, ids=ids, outcome="key_changed")
                return Reply("Your GEN key changed (or was unbound) since you asked; nothing was changed. "
                             "Run the command again.", replace=True)
            except GenError as exc:
                self.audit(who, spec.id, ids=ids, outcome=exc.type)
                return self._failed(spec, exc, replace=True)
        self.audit(who, spec.id, ids=ids, outcome="ok")
        reply = render(spec, output)
        return Reply(reply.text, replace=True, secret=reply.secret)

    # -- 3. identity --

    def login(self, who: ChatUser, api_key: str) -> Reply:
        """Check a key pasted into the private login form with GEN, then bind it to ``who``."""
        refused = self.admit(who)
        if refused is not None:
            return refused
        try:
            me = self.bind(who.platform, who.user, api_key)
        except GenError as exc:
            self.audit(who, "login", outcome=exc.type)
            return Reply(f"That key was not bound: {exc.message}\nWhat to do: {exc.hint}")
        self.audit(who, "login", ids=[me.get("id")], outcome="ok")
        return Reply(f"Done: you now act as GEN user {quoted(me.get('email') or me.get('name'))} "
                     f"(id {me.get('id')}). `{self.prefix} logout` forgets the key.")

    def bind(self, platform: str, user: str, api_key: str) -> dict[str, Any]:
        """Bind ``api_key`` to a chat user after checking it with ``get_me``; GEN's user."""
        api_key = (api_key or "").strip()
        if not api_key:
            raise AuthenticationError("No GEN key was given.", hint="Paste an active GEN API key.")
        with GenClient(api_key=api_key, base_url=self.base_url, timeout=self.timeout) as client:
            me = self.registry.run("get_me", {}, client=client)
        self.bindings.bind(platform, user, api_key, me)
        return me

    @contextmanager
    def _lease(self, who: ChatUser) -> Iterator[GenClient | None]:
        """The client of ``who``'s bound key (reused across commands), or None if unbound."""
        key = self.bindings.api_key(who.platform, who.user)
        if key is None:
            yield None
            return
        with self.clients.lease(key) as client:
            yield client

    def close(self) -> None:
        self.clients.close()

    def _not_bound(self) -> Reply:
        return Reply(f"You have no GEN key bound here yet: run `{self.prefix} login` and paste your own key "
                     "into the private form.")

    def _failed(self, spec: ActionSpec, exc: GenError, replace: bool = False) -> Reply:
        hint = exc.to_dict(self.terms)["hint"]
        if isinstance(exc, AuthenticationError):
            hint = (f"GEN refused your bound key (revoked or expired?). Bind an active one with "
                    f"`{self.prefix} login`.")
        return Reply(f"{spec.title} failed: {exc.message}\nWhat to do: {hint}", replace=replace)

    def audit(self, who: ChatUser, action: str, *, ids: Iterable[Any] = (), outcome: str) -> None:
        """One line per action: platform, workspace, user, action, ids, outcome. Never a secret."""
        audit_log.info(json.dumps({
            "platform": who.platform, "workspace": who.team, "user": who.user, "action": action,
            "ids": [str(i) for i in ids if i is not None][:LIST_LIMIT], "outcome": outcome,
        }, sort_keys=False))


#: ``ApprovalError.reason`` of an approved call whose asker's bound key is no longer the one that asked.
KEY_CHANGED = "key_changed"


def _run_as(registry: Registry, client: GenClient | None, approval: Any) -> dict[str, Any]:
    """Run an approved call with the pressing user's client, only if it is still the asker's key."""
    if client is None or client.identity != approval.principal:
        raise ApprovalError("The GEN key that asked for this call changed or was unbound; it did not run.",
                            reason=KEY_CHANGED)
    return registry.run(approval.action, dict(approval.arguments), client=client)


# -- replies written for people ---------------------------------------------------------


def render(spec: ActionSpec, output: Mapping[str, Any], share: bool = False) -> Reply:
    """An action's output as a compact message; a secret makes it private."""
    wrap = spec.response.wrap
    if wrap and isinstance(output.get(wrap), list):
        items = output[wrap]
        head = f"{spec.title}: {len(items)} item(s)" + (":" if items else ".")
        return Reply("\n".join([head, *_item_lines(items)]), private=not share)
    secrets = {k: v for k, v in output.items() if k in SECRET_FIELDS and isinstance(v, str)}
    lines = [f"{spec.title}: done."]
    lines.extend(_field_lines({k: v for k, v in output.items() if k not in secrets}))
    for name, value in secrets.items():
        lines.append(f"Secret `{name}` (shown once, only to you; GEN never shows it again, and it is not kept "
                     f"here): `{str.__str__(value)}`")
    return Reply("\n".join(lines), private=bool(secrets) or not share, secret=bool(secrets))


def _item_lines(items: list[Any]) -> list[str]:
    lines = [_item_line(item) for item in items[:LIST_LIMIT]]
    if len(items) > LIST_LIMIT:
        lines.append(f"... and {len(items) - LIST_LIMIT} more.")
    return lines


_LIST_COLUMNS = ("name", "status", "last_used_at", "expires_at")


def _item_line(item: Any) -> str:
    if not isinstance(item, Mapping):
        return f"• {quoted(item)}"
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


def _unquote(text: str) -> str:
    for left, right in (('"', '"'), ("\u201c", "\u201d"), ("'", "'")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            return text[1:-1]
    return text


def _ids(arguments: Mapping[str, Any], items: Iterable[Any] = ()) -> list[Any]:
    """Ids worth auditing: the id arguments, then the ids of the objects named (made, previewed)."""
    ids = [v for k, v in arguments.items() if k == "id" or k.endswith("_id")]
    for item in items:
        if isinstance(item, Mapping) and item.get("id") is not None and item["id"] not in ids:
            ids.append(item["id"])
    return ids
