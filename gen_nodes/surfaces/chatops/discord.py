"""Discord: ``/gen`` as HTTP interactions on Starlette, served at ``/interactions``.

Bolt does not cover Discord, so this module rebuilds its pipeline by hand, as
thinly as the Slack adapter over :class:`~gen_nodes.surfaces.chatops.core.ChatOps`:

1. verify: the body is read capped at 1 MiB (413 past it, before the rest is
   read); then every request's Ed25519 signature (``X-Signature-Ed25519`` over
   ``X-Signature-Timestamp`` + body) against ``DISCORD_PUBLIC_KEY`` with PyNaCl;
   a bad signature, or a timestamp more than 5 minutes off, gets 401;
2. PING gets PONG; an interaction id seen before (remembered in the store, so
   across processes) is a replay: answered, privately, without acting again;
3. ack: help and usage errors are answered at once (type 4); ``login`` answers
   with a modal (type 9); anything that calls GEN is deferred (type 5) and its
   answer follows through the interaction webhook (``DISCORD_API_URL``, default
   Discord's API), with the ephemeral flag (64) unless a read-only answer is
   shared; a button press is acked with type 6 and its outcome edits the message
   that held the button (an approval) or follows it (a command button, ``gen_run:<command>``:
   the expiry digest's Rotate, run as if the presser had typed the command).

``application_commands(grammar)`` is the command JSON for Discord's API, generated
from the registry (``gen-nodes chatops discord commands``). Mentions are never
parsed in our messages (``allowed_mentions``), so a key name cannot ping anyone.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping

import requests

from gen_nodes.core import settings
from gen_nodes.surfaces.chatops.coercion import _types
from gen_nodes.surfaces.chatops.core import ChatOps
from gen_nodes.surfaces.chatops.grammar import SHARE_FLAG, Grammar, _shareable
from gen_nodes.surfaces.chatops.messages import ChatUser, Reply

PATH = "/interactions"
DEFAULT_API_URL = "https://discord.com/api/v10"
#: A signed request older (or newer) than this is refused, so a captured one cannot be replayed later.
MAX_AGE = 300
EPHEMERAL = 64
CONTENT_LIMIT = 2000
LOGIN_MODAL = "gen_login"
KEY_INPUT = "api_key"
APPROVE, DENY = "gen_approve", "gen_deny"
#: A command button's custom_id is this, a colon and the command text (the digest's Rotate).
RUN = "gen_run"
#: Discord's limits: buttons per action row, action rows per message, characters in a custom_id.
ROW_BUTTONS, MAX_ROWS, CUSTOM_ID_LIMIT = 5, 5, 100

# Interaction and response types (Discord's numbers).
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 1, 2, 3, 5
PONG, MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, MODAL = 1, 4, 5, 6, 9
# Application command option types.
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN, NUMBER = 1, 2, 3, 4, 5, 10
NO_MENTIONS = {"parse": []}

log = logging.getLogger("gen_nodes.chatops.discord")


def build_app(chatops: ChatOps, *, public_key: str, api_url: str | None = None,
              session: requests.Session | None = None, clock=time.time):
    """The Starlette app answering Discord's interactions at ``/interactions``."""
    import anyio
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from nacl.signing import VerifyKey  # PyNaCl only where requests are served, not to print commands

    verify_key = VerifyKey(bytes.fromhex(public_key))
    webhook = Webhook(api_url or settings.current().discord_api_url or DEFAULT_API_URL, session)

    async def interactions(request: Request) -> JSONResponse:
        payload = await _verified_payload(request, verify_key, clock())
        if not isinstance(payload, dict):
            return payload  # the refusal
        kind = payload.get("type")
        if kind == PING:
            return JSONResponse({"type": PONG})
        seen_as = str(payload.get("id") or request.headers.get("x-signature-ed25519", ""))
        if not await anyio.to_thread.run_sync(chatops.first_sight, "discord", seen_as):
            return JSONResponse(_message_response(Reply("This request was already handled; nothing more was done.")))
        who = _who(payload)
        # A press is admitted by ChatOps.press itself: an approval DM has no guild, its route admits it.
        refused = chatops.admit(who) if kind != MESSAGE_COMPONENT else None
        if refused is not None:
            return JSONResponse(_message_response(refused))
        if kind == APPLICATION_COMMAND:
            words, fields, share = _options(payload.get("data") or {})
            parsed = chatops.parse_fields(words, fields, share=share)
            if parsed.kind == "login":
                return JSONResponse(login_modal())
            if parsed.kind == "answer":
                return JSONResponse(_message_response(chatops.run(who, parsed)))
            task = BackgroundTask(webhook.follow_up, payload, lambda: chatops.run(who, parsed))
            return JSONResponse(_deferred(private=not parsed.share), background=task)
        if kind == MESSAGE_COMPONENT:
            custom_id = str((payload.get("data") or {}).get("custom_id") or "")
            action, _, value = custom_id.partition(":")
            if action not in (APPROVE, DENY, RUN):
                return JSONResponse({"error": "unknown component"}, status_code=400)
            task = BackgroundTask(webhook.follow_up, payload, (lambda: chatops.press_command(who, value))
                                  if action == RUN else (lambda: chatops.press(who, value, approve=action == APPROVE)))
            return JSONResponse({"type": DEFERRED_UPDATE}, background=task)
        if kind == MODAL_SUBMIT and (payload.get("data") or {}).get("custom_id") == LOGIN_MODAL:
            key = _modal_value(payload.get("data") or {}, KEY_INPUT)
            task = BackgroundTask(webhook.follow_up, payload, lambda: chatops.login(who, key))
            return JSONResponse(_deferred(private=True), background=task)
        return JSONResponse({"error": f"unsupported interaction type {kind!r}"}, status_code=400)

    return Starlette(routes=[Route(PATH, interactions, methods=["POST"])])


async def _verified_payload(request: Any, verify_key: "VerifyKey", now: float) -> Any:
    """The interaction, a JSON object read (at most 1 MiB) and verified; else the answer refusing
    it: 413 past 1 MiB (the rest unread), 401 for a bad or stale signature, 400 for a body not JSON."""
    from starlette.responses import JSONResponse

    from gen_nodes.net.middleware import BodyTooLarge, body_too_large, read_body

    try:
        body = await read_body(request)
    except BodyTooLarge:
        return body_too_large()
    if not _verified(verify_key, request.headers, body, now):
        return JSONResponse({"error": "invalid request signature"}, status_code=401)
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    if not isinstance(payload, dict):
        return JSONResponse({"error": "the body is not a JSON object"}, status_code=400)
    return payload


def _verified(key: "VerifyKey", headers: Mapping[str, str], body: bytes, now: float) -> bool:
    from nacl.exceptions import BadSignatureError

    signature = headers.get("x-signature-ed25519", "")
    timestamp = headers.get("x-signature-timestamp", "")
    try:
        key.verify(timestamp.encode() + body, bytes.fromhex(signature))
        return abs(now - int(timestamp)) <= MAX_AGE
    except (BadSignatureError, ValueError):
        return False


class Webhook:
    """Discord's interaction webhook: follow-up messages and edits of the original."""

    def __init__(self, api_url: str, session: requests.Session | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.session = session or requests.Session()

    def follow_up(self, interaction: Mapping[str, Any], produce) -> None:
        """Run ``produce`` (the slow part) and send its reply for ``interaction``."""
        try:
            reply = produce()
        except Exception:
            log.exception("a chat command failed unexpectedly")
            reply = Reply("Something went wrong on the gen-nodes side; nothing more is known. "
                          "Ask the operator to look at the server log.")
        base = f"{self.api_url}/webhooks/{interaction.get('application_id')}/{interaction.get('token')}"
        if reply.replace and interaction.get("type") == MESSAGE_COMPONENT:
            self._send("PATCH", f"{base}/messages/@original", {**message(reply), "components": []})
        else:
            self._send("POST", base, message(reply))

    def _send(self, method: str, url: str, payload: dict[str, Any]) -> None:
        try:
            response = self.session.request(method, url, json=payload, timeout=10)
        except requests.RequestException as exc:  # the URL holds the interaction token: not logged
            log.warning("Discord follow-up failed: %s", type(exc).__name__)
            return
        if response.status_code >= 300:
            log.warning("Discord follow-up answered %s", response.status_code)


def message(reply: Reply) -> dict[str, Any]:
    """A :class:`Reply` as a Discord message (content, flags, components)."""
    out: dict[str, Any] = {"content": _cut(reply.text), "allowed_mentions": NO_MENTIONS}
    if reply.private or reply.secret:
        out["flags"] = EPHEMERAL
    rows = []
    if reply.buttons is not None:
        b = reply.buttons
        rows.append({"type": 1, "components": [
            {"type": 2, "style": 4, "label": b.approve_label[:80], "custom_id": f"{APPROVE}:{b.approval}"},
            {"type": 2, "style": 2, "label": b.deny_label[:80], "custom_id": f"{DENY}:{b.approval}"},
        ]})
    commands = [{"type": 2, "style": 1, "label": c.label[:80], "custom_id": f"{RUN}:{c.command}"}
                for c in reply.commands if len(f"{RUN}:{c.command}") <= CUSTOM_ID_LIMIT]
    rows.extend({"type": 1, "components": commands[i:i + ROW_BUTTONS]} for i in range(0, len(commands), ROW_BUTTONS))
    if rows:
        out["components"] = rows[:MAX_ROWS]
    return out


def _message_response(reply: Reply) -> dict[str, Any]:
    return {"type": MESSAGE, "data": message(reply)}


def _deferred(private: bool) -> dict[str, Any]:
    return {"type": DEFERRED_MESSAGE, "data": {"flags": EPHEMERAL} if private else {}}


def _cut(text: str) -> str:
    if len(text) <= CONTENT_LIMIT:
        return text
    note = "\n... (cut: the answer is longer than a Discord message allows)"
    head = text[:CONTENT_LIMIT - len(note)]
    return head[:head.rfind("\n")] + note if "\n" in head else head + note


def _who(payload: Mapping[str, Any]) -> ChatUser:
    member = payload.get("member") or {}
    user = member.get("user") or payload.get("user") or {}
    return ChatUser("discord", str(payload.get("guild_id") or ""), str(user.get("id") or ""),
                    str(payload.get("channel_id") or ""))


def _options(data: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any], bool]:
    """(command words, option values, share) from an application command's nested options."""
    words: list[str] = []
    options = data.get("options") or []
    while options and options[0].get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
        words.append(options[0]["name"])
        options = options[0].get("options") or []
    fields = {o["name"]: o.get("value") for o in options if "name" in o}
    share = bool(fields.pop(SHARE_FLAG.lstrip("-"), False))
    return tuple(words), fields, share


def _modal_value(data: Mapping[str, Any], custom_id: str) -> str:
    for row in data.get("components") or []:
        for component in row.get("components") or []:
            if component.get("custom_id") == custom_id:
                return str(component.get("value") or "")
    return ""


def login_modal() -> dict[str, Any]:
    return {"type": MODAL, "data": {"custom_id": LOGIN_MODAL, "title": "GEN login", "components": [
        {"type": 1, "components": [{
            "type": 4, "custom_id": KEY_INPUT, "style": 1, "label": "Your GEN API key", "required": True,
            "min_length": 8, "max_length": 400, "placeholder": "gen_pat_...",
        }]},
    ]}}


# -- application commands, generated from the registry ------------------------------------


def application_commands(grammar: Grammar, name: str = "gen") -> list[dict[str, Any]]:
    """The ``/gen`` command with a subcommand per action (grouped as in chat), ready to register."""
    top: list[dict[str, Any]] = []
    groups: dict[str, dict[str, Any]] = {}
    for entry in grammar.entries.values():
        sub = {"type": SUB_COMMAND, "name": entry.chat.verb, "description": _describe(entry.spec.title),
               "options": _command_options(entry)}
        if entry.chat.group:
            group = groups.get(entry.chat.group)
            if group is None:
                group = groups[entry.chat.group] = {"type": SUB_COMMAND_GROUP, "name": entry.chat.group,
                                                    "description": "", "options": []}
                top.append(group)
            group["options"].append(sub)
            group["description"] = _describe(f"{entry.chat.group}: " + ", ".join(o["name"] for o in group["options"]))
        else:
            top.append(sub)
    for verb, text in (("login", "Use your own GEN key (opens a private form)"),
                       ("logout", "Forget your GEN key"), ("help", "How to use /gen")):
        top.append({"type": SUB_COMMAND, "name": verb, "description": text, "options": []})
    if grammar.alerts:
        top.append(_alerts_group())
    return [{"name": name, "type": 1, "description": "GEN API keys", "options": top}]


def _alerts_group() -> dict[str, Any]:
    """``/gen alerts on [within]`` and ``/gen alerts off`` (the expiry digest, ``alerts.py``)."""
    within = {"type": STRING, "name": "within", "required": False, "max_length": 20,
              "description": "Keys expiring within this span: 7d (days), 12h (hours) or seconds; default 7d"}
    return {"type": SUB_COMMAND_GROUP, "name": "alerts", "description": "Daily private alerts about expiring keys",
            "options": [{"type": SUB_COMMAND, "name": "on", "description": "Turn expiry alerts on",
                         "options": [within]},
                        {"type": SUB_COMMAND, "name": "off", "description": "Turn expiry alerts off",
                         "options": []}]}


def _command_options(entry) -> list[dict[str, Any]]:
    options = []
    for field, schema in entry.properties.items():
        option: dict[str, Any] = {"name": entry.option_name(field), "description": _describe(
            schema.get("description") or field), "required": field in entry.required}
        types = _types(schema)
        option["type"] = STRING if "string" in types or not types else (
            INTEGER if "integer" in types else NUMBER if "number" in types else BOOLEAN)
        if schema.get("enum"):
            option["choices"] = [{"name": str(v), "value": v} for v in schema["enum"]][:25]
        if option["type"] == STRING:
            for key, target in (("minLength", "min_length"), ("maxLength", "max_length")):
                if key in schema:
                    option[target] = min(schema[key], 6000)
        options.append(option)
    if _shareable(entry.spec):
        options.append({"type": BOOLEAN, "name": SHARE_FLAG.lstrip("-"), "required": False,
                        "description": "Show the answer to the channel (read-only answers only)"})
    # Discord wants required options first.
    return sorted(options, key=lambda o: not o["required"])


def _describe(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 100 else text[:97].rstrip() + "..."
