"""The platform-free chat core, :class:`ChatOps`: parsing, running, approvals and login, over the
grammar (``grammar.py``), coercion (``coercion.py``), bindings (``bindings.py``), replies
(``render.py``, ``messages.py``) and the audit trail (``audit.py``).

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
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Mapping

from gen_nodes.client.cache import ClientCache, key_digest
from gen_nodes.client.http import GenClient, RetryPolicy
from gen_nodes.core.errors import AuthenticationError, GenError, InvalidInput
from gen_nodes.core.redact import masked_copy
from gen_nodes.core.registry import Registry
from gen_nodes.core.spec import PARTIAL, ActionSpec
from gen_nodes.core.terms import ChatTerms, chat_terms  # noqa: F401 (ChatTerms: importable here as before)
from gen_nodes.safety.approvals import APPROVED, EXPIRED, PENDING, RUN_LEASE, RUNNING, ApprovalError, Approvals
from gen_nodes.safety.display import quoted
from gen_nodes.state.secretbox import SecretBox
from gen_nodes.surfaces.chatops.alerts import OptIns, parse_alerts, run_alerts
from gen_nodes.surfaces.chatops.audit import _ids, write_audit
# _BINDING_PREFIX and BINDING_TTL are imported from here by approver.py.
from gen_nodes.surfaces.chatops.bindings import _BINDING_PREFIX, BINDING_TTL, Bindings  # noqa: F401
from gen_nodes.surfaces.chatops.coercion import coerce
from gen_nodes.surfaces.chatops.grammar import BUILT_INS, SHARE_FLAG, Entry, Grammar, _shareable, _unquote, holds_key
from gen_nodes.surfaces.chatops.messages import Buttons, ChatUser, Command, Reply
from gen_nodes.surfaces.chatops.render import _item_lines, render

log = logging.getLogger("gen_nodes.chatops")

#: Seconds an approval button stays usable.
APPROVAL_TTL = 300
#: Seconds a verified request is remembered, so a replay of it does not act again. Both platforms'
#: requests are accepted with a timestamp up to 5 minutes off either way, so one signed request
#: stays acceptable for 10 minutes from the first sight at most; a minute more for clock drift.
REPLAY_TTL = 2 * 300 + 60
#: Seconds the check of a person's login key after a confirmed call may take (one try, no retries).
LOGIN_CHECK_DEADLINE = 5.0
_SEEN_PREFIX = "chatops:seen:"


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
        self.approvals = Approvals(store, ttl=approval_ttl, clock=clock, box=box)
        self.clock = clock
        self.base_url = base_url
        self.timeout = timeout
        # One GenClient per bound key, reused across commands (keyed by the key's digest).
        self.clients = ClientCache(lambda key: GenClient(api_key=key, base_url=base_url, timeout=timeout))
        #: Workspaces/guilds allowed to use the bot; empty allows every one.
        self.allow = frozenset(allow)
        #: When the daily expiry digest goes out ("HH:MM" UTC), if this server sends it (``--digest-at``).
        self.digest_at: str | None = None

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
        if words[0].lower() == "alerts" and self.grammar.alerts:
            return parse_alerts(self, words[1:], {})
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
        if words[0] == "alerts" and self.grammar.alerts:
            return parse_alerts(self, words[1:], fields)
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
        if command.kind == "alerts":
            return run_alerts(self, who, command)
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

    def press_command(self, who: ChatUser, text: str) -> Reply:
        """A press on a command button (the digest's Rotate): exactly what typing ``text`` would do,
        through the same parsing and running, so a destructive command still asks for approval.
        In a DM (no workspace: Discord), the person counts as in the workspace they opted in from."""
        if not who.team:
            optin = OptIns(self.store).get(who.platform, who.user) or {}
            who = replace(who, team=str(optin.get("team") or ""))
        return self.run(who, self.parse(text))

    def press(self, who: ChatUser, approval_id: str, approve: bool) -> Reply:
        """A press of an approval button: only its requester, once; the action runs exactly once."""
        from gen_nodes.surfaces.chatops.approver import press_routed  # a call held by another surface, routed to a chat user

        routed = press_routed(self, who, approval_id, approve)
        if routed is not None:
            return routed
        pending = self.approvals.get(approval_id) if approval_id else None
        refused = self.admit(_as_asked(who, (pending.context or {}) if pending else {}))
        if refused is not None:
            return refused
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
        if pending.state in (APPROVED, RUNNING) and approve:
            return self._resume(who, pending)
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

    def _resume(self, who: ChatUser, pending: Any) -> Reply:
        """Approve pressed again on a call approved or still running: the process may have died after the
        first press (the button stayed, with no answer). An approved call that never started runs now. A
        resumable call (a composite action, whose steps keep records under the approval, or one safe to
        send again) left running for ``RUN_LEASE`` is taken over and finished from where it stopped: a
        create that was done is not sent again, and its secret reaches the person. Only with the key it
        was asked with: it may have partly run."""
        resumable = pending.action in self.registry and self.registry.get(pending.action).resumable
        if pending.state == RUNNING and not resumable:
            return Reply("This confirmation was already used (running); nothing more was done.")
        key = self.bindings.api_key(who.platform, who.user)
        if key is None or key_digest(key) != pending.principal:
            self.audit(who, pending.action, outcome="key_changed")
            return Reply(f"This was started with another GEN key than the one you are logged in with now, and it "
                         f"may have partly run; nothing more was done. Log in again with the key you asked with "
                         f"(`{self.prefix} login`) and press Approve again to finish it, or check "
                         f"`{self.prefix} keys list`.")
        claimed = self.approvals.claim(pending.id, resumable=resumable)
        if claimed is not None:
            log.info("approval %s was left %s; running it for its requester", pending.id, pending.state)
            return self._run_approved(who, claimed)
        if pending.claimed_at is None:  # another press started it just now
            return Reply("This is running now; nothing more was done.")
        left = max(1, math.ceil((pending.claimed_at + RUN_LEASE - self.clock()) / 60))
        return Reply(f"This is still running; nothing more was done. If no answer comes, press Approve again in "
                     f"{left} minute{'s' if left != 1 else ''}: a run whose process stopped is then finished from "
                     "where it stopped, without repeating what it did.")

    def _run_approved(self, who: ChatUser, approval: Any) -> Reply:
        spec = self.registry.get(approval.action)
        ids = _ids(approval.arguments, approval.preview or [])
        with self._lease(who) as client:
            try:
                output = self.approvals.run_claimed(approval, partial(_run_as, self.registry, self.approvals, client),
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
        made = [value["id"] for value in output.values() if isinstance(value, dict) and "id" in value]
        partly = spec.composite and output.get("status") == PARTIAL  # a step failed after another changed something
        self.audit(who, spec.id, ids=list(dict.fromkeys([*ids, *made])), outcome="partial" if partly else "ok")
        reply = render(spec, output)
        return Reply(reply.text + self._login_note(who), replace=True, secret=reply.secret)

    def _login_note(self, who: ChatUser) -> str:
        """After a confirmed (destructive) call: a line saying so if GEN no longer takes the key the person
        logged in with here, which the call may have revoked (a rotation or a revoke of that very key, a
        revoke-all), or their next command fails with no word why. "" when it still works or GEN cannot
        say now: one quick try on a client of its own, so the reply (perhaps carrying a new secret) is
        not held up by retries."""
        key = self.bindings.api_key(who.platform, who.user)
        if key is None or "get_me" not in self.registry:
            return ""
        try:
            with GenClient(api_key=key, base_url=self.base_url, timeout=self.timeout, deadline=LOGIN_CHECK_DEADLINE,
                           retry=RetryPolicy(attempts=1)) as client:
                self.registry.run("get_me", {}, client=client)
        except AuthenticationError:
            return (f"\nGEN no longer accepts the key you logged in with here (this call may have revoked it). "
                    f"Log in again with `{self.prefix} login` and an active key.")
        except Exception:  # anything else: not known now; the next command says so if it is refused
            pass
        return ""

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
        """One audit line for ``who`` (see ``audit.py``). Never a secret."""
        write_audit(who, action, ids=ids, outcome=outcome)


#: ``ApprovalError.reason`` of an approved call whose asker's bound key is no longer the one that asked.
KEY_CHANGED = "key_changed"


def _as_asked(who: ChatUser, context: Mapping[str, Any]) -> ChatUser:
    """A press from a DM (no workspace) by the person who asked counts as from the workspace they
    asked in (a Discord DM has no guild); any other press is taken as it came."""
    if who.team or (context.get("surface"), context.get("user")) != (who.platform, who.user):
        return who
    return replace(who, team=str(context.get("team") or ""))


def _run_as(registry: Registry, approvals: Any, client: GenClient | None, approval: Any) -> dict[str, Any]:
    """Run an approved call with the pressing user's client, only if it is still the asker's key; a
    composite's steps keep records under the approval (``Approvals.steps``)."""
    if client is None or client.identity != approval.principal:
        raise ApprovalError("The GEN key that asked for this call changed or was unbound; it did not run.",
                            reason=KEY_CHANGED)
    return registry.run(approval.action, dict(approval.arguments), client=client, once=approvals.steps(approval))
