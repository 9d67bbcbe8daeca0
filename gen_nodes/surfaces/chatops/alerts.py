"""Expiry alerts: ``/gen alerts on [within=7d]`` / ``/gen alerts off`` and the daily digest.

- The opt-in is kept in the shared store per platform and user (:class:`OptIns`), with an index
  per platform so a digest round can find everyone who asked (the store has no key scan).
- :func:`digest_round` is what each chat-ops process started with ``--digest-at`` runs once a
  day (``schedule.py`` decides when): for each opted-in person who still has a binding, one
  ``list_api_keys`` call with their own key; the keys expiring within their span and the keys that
  expired in the last day, both selected at GEN's clock (its ``Date`` header) with the spec's own
  filters; if there are any, one private DM through the approver's DM path, each key with a
  **Rotate** button that runs ``keys rotate ID`` through :meth:`ChatOps.press_command`, the same
  path as the typed command (its approval preview and Approve / Deny button).
- Once per person per day, across processes and restarts: before anything is sent, an atomic
  ``store.add`` of ``chatops:digest:<platform>:<user>:<UTC date>`` decides which process sends.
  A person with nothing to report keeps the claim (nothing is sent that day). A failed GEN call or
  a DM the platform refused releases the claim, so a later try (the scheduler retries the round,
  see ``schedule.py``), on any process, sends it.

A digest lists keys as ``keys list`` does: never a token.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from gen_nodes.core.engine import execute_timed, select
from gen_nodes.core.times import moment
from gen_nodes.core.errors import AuthenticationError, GenError, InvalidInput
from gen_nodes.safety.display import plain, quoted
from gen_nodes.surfaces.chatops.bindings import BINDING_TTL
from gen_nodes.surfaces.chatops.coercion import coerce
from gen_nodes.surfaces.chatops.messages import COMMAND_BUTTONS_LIMIT, ChatUser, Command, CommandButton, Reply
from gen_nodes.surfaces.chatops.render import _item_lines

if TYPE_CHECKING:
    from gen_nodes.surfaces.chatops.core import ChatOps

log = logging.getLogger("gen_nodes.chatops.alerts")

#: The span of ``/gen alerts on`` without ``within=``.
DEFAULT_WITHIN = "7d"
#: The action a digest's Rotate button runs, typed as its chat command.
ROTATE_ACTION = "rotate_api_key"
#: The list action a digest reads, and its filter input that selects keys expiring soon.
LIST_ACTION, EXPIRING = "list_api_keys", "expiring_within"
#: How far back an expired key is still reported.
EXPIRED_SINCE = timedelta(days=1)
#: How long a day's claim is kept: past the end of that UTC day wherever the clocks are.
CLAIM_TTL = 2 * 86400
_OPT_IN_PREFIX = "chatops:alerts:"
_INDEX_PREFIX = "chatops:alerts-index:"
_CLAIM_PREFIX = "chatops:digest:"


# -- who opted in ------------------------------------------------------------------------------


class OptIns:
    """Each person's expiry-alert opt-in, per platform, in the shared store."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def turn_on(self, who: ChatUser, within: Any) -> None:
        self.store.set(f"{_OPT_IN_PREFIX}{who.platform}:{who.user}", {
            "within": within, "team": who.team,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}, ttl=BINDING_TTL)
        self._index(who.platform, lambda users: [u for u in users if u != who.user] + [who.user])

    def turn_off(self, who: ChatUser) -> bool:
        removed = self.store.pop(f"{_OPT_IN_PREFIX}{who.platform}:{who.user}") is not None
        self._index(who.platform, lambda users: [u for u in users if u != who.user])
        return removed

    def get(self, platform: str, user: str) -> dict[str, Any] | None:
        return self.store.get(f"{_OPT_IN_PREFIX}{platform}:{user}")

    def users(self, platform: str) -> list[str]:
        """Everyone of ``platform`` who turned alerts on (and not off since), oldest first."""
        return list((self.store.get(f"{_INDEX_PREFIX}{platform}") or {}).get("users", []))

    def _index(self, platform: str, change: Callable[[list[str]], list[str]]) -> None:
        key = f"{_INDEX_PREFIX}{platform}"
        while True:  # compare-and-swap: two people opting in at once both stay in the index
            record = self.store.get(key)
            users = change(list((record or {}).get("users", [])))
            if record is None and self.store.add(key, {"users": users}, ttl=BINDING_TTL):
                return
            if record is not None and self.store.replace(key, record, {"users": users}, ttl=BINDING_TTL):
                return


# -- the commands --------------------------------------------------------------------------------


def usage(prefix: str) -> str:
    return f"`{prefix} alerts on [within={DEFAULT_WITHIN}]` or `{prefix} alerts off`"


def parse_alerts(chat: "ChatOps", words: Sequence[str], fields: Mapping[str, Any]) -> Command:
    """``alerts on [within=SPAN]`` / ``alerts off`` (the words after ``alerts``; Discord gives
    ``within`` as a field) as a :class:`Command`; a usage answer for anything else."""
    fields = dict(fields)
    rest = []
    for word in words[1:]:
        name, eq, value = word.partition("=")
        if eq and name.lower() == "within":
            fields["within"] = value
        else:
            rest.append(word)
    switch = words[0].lower() if words else ""
    if switch not in ("on", "off") or rest or (switch == "off" and fields) or set(fields) - {"within"}:
        return _answer(f"Usage: {usage(chat.prefix)}")
    if switch == "off":
        return Command(kind="alerts", arguments={"on": False})
    schema = chat.registry.get(LIST_ACTION).input_schema.get("properties", {}).get(EXPIRING, {})
    within = coerce(fields.get("within", DEFAULT_WITHIN), schema)
    try:  # the same check as `keys list expiring=...`: the list action's own input schema
        chat.registry.validate(LIST_ACTION, {EXPIRING: within})
    except InvalidInput:
        return _answer(f"`within` must be a span such as `7d` (days) or `12h` (hours), or a whole number of "
                       f"seconds, not {quoted(fields.get('within'))}. Nothing was changed.\n"
                       f"Usage: {usage(chat.prefix)}")
    return Command(kind="alerts", arguments={"on": True, "within": within})


def _answer(text: str) -> Command:
    return Command(kind="answer", reply=Reply(text))


def run_alerts(chat: "ChatOps", who: ChatUser, command: Command) -> Reply:
    """Turn ``who``'s expiry alerts on or off; only for a person with a bound key."""
    optins = OptIns(chat.store)
    if not command.arguments.get("on"):
        removed = optins.turn_off(who)
        chat.audit(who, "alerts", outcome="off" if removed else "was_off")
        return Reply("Expiry alerts are off." if removed else "Expiry alerts were not on; nothing changed.")
    if chat.bindings.api_key(who.platform, who.user) is None:
        chat.audit(who, "alerts", outcome="not_bound")
        return Reply(f"Expiry alerts need your own GEN key: run `{chat.prefix} login` first, then "
                     f"`{chat.prefix} alerts on` again.")
    within = command.arguments["within"]
    optins.turn_on(who, within)
    chat.audit(who, "alerts", outcome="on")
    when = (f"each day at {chat.digest_at} UTC" if chat.digest_at else
            "once the operator starts this chat-ops server with `--digest-at HH:MM`, each day at that time")
    return Reply(f"Expiry alerts are on: {when} you get a private message listing your keys that expire "
                 f"within {_span_text(within)}, and those that expired in the last day, each with a Rotate "
                 f"button. Nothing is sent on a day with none. `{chat.prefix} alerts off` stops them.")


def _span_text(within: Any) -> str:
    return f"{within} seconds" if isinstance(within, int) else str(within)


# -- the digest ----------------------------------------------------------------------------------


@dataclass
class RoundOutcome:
    """What one digest round did, person by person (user ids, never keys)."""

    sent: list[str] = field(default_factory=list)
    nothing: list[str] = field(default_factory=list)
    unbound: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: GEN refused the person's bound key (revoked, expired): told once that day to log in again.
    key_invalid: list[str] = field(default_factory=list)
    #: Their workspace is no longer on the allow-list: nothing sent.
    refused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return ", ".join(f"{len(getattr(self, name))} {name}" for name in
                         ("sent", "nothing", "unbound", "already", "failed", "key_invalid", "refused"))


def digest_round(chat: "ChatOps", platform: str, day: date, send: Callable[[str, Reply], bool]) -> RoundOutcome:
    """Send ``day``'s digest to every opted-in person of ``platform`` this process wins the claim for."""
    optins, outcome = OptIns(chat.store), RoundOutcome()
    for user in optins.users(platform):
        optin = optins.get(platform, user)
        key = chat.bindings.api_key(platform, user) if optin else None
        if key is None:
            outcome.unbound.append(user)
            continue
        claim = f"{_CLAIM_PREFIX}{platform}:{user}:{day.isoformat()}"
        if not chat.store.add(claim, {"by": os.getpid()}, ttl=CLAIM_TTL):
            outcome.already.append(user)
            continue
        who = ChatUser(platform, str(optin.get("team") or ""), user)
        try:
            result = "refused" if chat.admit(who) else _digest_one(
                chat, who, key, optin.get("within", DEFAULT_WITHIN), day, send)
        except Exception as exc:  # a bug or a client's odd error: this person only, tried again later
            log.warning("the %s digest of one person failed unexpectedly: %s", platform, type(exc).__name__)
            result = "failed"
        if result == "failed":
            chat.store.delete(claim)  # released: a later try, on any process, may send it
        getattr(outcome, result).append(user)
    log.info("%s digest round of %s: %s", platform, day.isoformat(), outcome.summary())
    return outcome


def _digest_one(chat: "ChatOps", who: ChatUser, key: str, within: Any, day: date,
                send: Callable[[str, Reply], bool]) -> str:
    """One person's digest: "sent", "nothing" (no key to report) or "failed" (GEN or the platform)."""
    try:
        with chat.clients.lease(key) as client:
            expiring, expired = keys_to_report(chat, client, within)
    except AuthenticationError:  # the bound key was revoked (a rotation of it, say) or expired: say so, once
        sent = send(who.user, Reply(f"Your expiry digest could not be made: GEN no longer accepts the key you "
                                    f"logged in with here (revoked or expired). Log in again with "
                                    f"`{chat.prefix} login` to get digests again."))
        chat.audit(who, "digest", outcome="key_invalid")
        return "key_invalid" if sent else "failed"
    except GenError as exc:
        chat.audit(who, "digest", outcome=exc.type)
        return "failed"
    if not expiring and not expired:
        chat.audit(who, "digest", outcome="nothing")
        return "nothing"
    reply = digest_reply(chat.prefix, day, within, expiring, expired, rotate_words(chat))
    ids = [item.get("id") for item in (*expiring, *expired)]
    if not send(who.user, reply):
        chat.audit(who, "digest", ids=ids, outcome="send_failed")
        return "failed"
    chat.audit(who, "digest", ids=ids, outcome="sent")
    return "sent"


def keys_to_report(chat: "ChatOps", client: Any, within: Any) -> tuple[list[dict], list[dict]]:
    """From one list call: the keys expiring within ``within``, and those that expired in the last day."""
    spec = chat.registry.get(LIST_ACTION)
    output, now = execute_timed(spec, {}, client, resolve=chat.registry.get)
    items = output.get(spec.response.wrap or "", [])
    expiring = select(spec, {EXPIRING: within, "status": "active"}, items, now)  # a revoked key needs no rotation
    expired = [item for item in select(spec, {"status": "expired"}, items, now)
               if (moment(item.get("expires_at")) or datetime.min.replace(tzinfo=timezone.utc)) >= now - EXPIRED_SINCE]
    return expiring, expired


def rotate_words(chat: "ChatOps") -> str | None:
    """The command words of the rotation (``keys rotate``) when the registry has it; None otherwise."""
    from gen_nodes.surfaces.chatops.grammar import chat_of  # the grammar imports this module

    if ROTATE_ACTION not in chat.registry:
        return None
    grammar = chat_of(chat.registry.get(ROTATE_ACTION))
    return " ".join(word for word in (grammar.group, grammar.verb) if word)


def digest_reply(prefix: str, day: date, within: Any, expiring: list[dict], expired: list[dict],
                 rotate: str | None = "keys rotate") -> Reply:
    """The DM: the keys, then one Rotate button per key (the first :data:`COMMAND_BUTTONS_LIMIT`), each
    running ``rotate`` ID as if typed; no buttons when ``rotate`` is None (no rotation action)."""
    lines = [f"*Your GEN keys that need attention* (daily digest, {day.isoformat()})"]
    if expiring:
        lines.append(f"Expiring within {_span_text(within)}:")
        lines.extend(_item_lines(expiring))
    if expired:
        lines.append("Expired in the last day:")
        lines.extend(_item_lines(expired))
    keys = [*expiring, *expired] if rotate else []
    if rotate:
        lines.append(f"Rotate makes a new key and revokes the old one, once you confirm (`{prefix} {rotate} ID` "
                     "does the same).")
    lines.append(f"`{prefix} alerts off` stops these messages.")
    if len(keys) > COMMAND_BUTTONS_LIMIT:
        lines.append(f"Buttons are shown for the first {COMMAND_BUTTONS_LIMIT} keys.")
    buttons = tuple(CommandButton(f"Rotate {plain(item.get('name') or item.get('id'), 40)}",
                                  f"{rotate} {item.get('id')}") for item in keys[:COMMAND_BUTTONS_LIMIT])
    return Reply("\n".join(lines), private=False, commands=buttons)
