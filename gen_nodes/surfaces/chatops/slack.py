"""Slack: ``/gen`` as a Bolt for Python app in HTTP mode, served at ``/slack/events``.

A thin adapter over :class:`~gen_nodes.surfaces.chatops.core.ChatOps`, built the
Bolt way: Bolt's middleware verifies every request with the signing secret (a bad
signature or one older than 5 minutes gets 401), each listener acks at once and
does the GEN call in a lazy function that answers through ``response_url``, so a
slow GEN never runs into Slack's 3-second deadline.

- the slash command: help and usage errors are the ack itself; ``login`` opens a
  modal (``views.open``); everything else is acked empty and answered later;
- the login modal (``callback_id`` ``gen_login``): acked at once (the modal closes),
  then the key is checked with GEN and the result goes to the command's
  ``response_url`` (kept in the modal's ``private_metadata``), privately;
- the approval buttons (``gen_approve`` / ``gen_deny``, the approval id as value):
  only the requester's press acts, once (the store makes decide/claim atomic), so a
  double click or Slack's retry (``X-Slack-Retry-Num``) runs GEN's call once;
- a command button (``gen_run_<n>``, the command text as value: the expiry digest's
  Rotate) runs that command for the presser exactly as if they had typed it.

In front of Bolt, :func:`build_asgi` reads the body capped at 1 MiB (413 past it,
before the rest is read), checks the signature itself (401, nothing logged), and
answers a replay of a verified request (same signature and timestamp, remembered in
the store, so across processes) with an empty 200 that does nothing.

Bolt's and slack_sdk's own loggers log request and answer bodies at DEBUG, and Bolt
writes a refused request's body at INFO: a pasted GEN key, or a newline forging an
audit line. This module hands them a logger held at INFO whose filter
(:class:`BoltLines`) cuts any line that would carry a body.
"""

from __future__ import annotations

import html
import json
import logging
import re
from typing import Any, Callable

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from gen_nodes.surfaces.chatops.core import ChatOps
from gen_nodes.surfaces.chatops.messages import COMMAND_BUTTONS_LIMIT, ChatUser, Reply

PATH = "/slack/events"
LOGIN_CALLBACK = "gen_login"
KEY_BLOCK = KEY_ACTION = "api_key"
APPROVE, DENY = "gen_approve", "gen_deny"
#: The action id of a command button (the digest's Rotate) is this plus its place: ids are unique per block.
RUN = "gen_run_"
#: Slack's limit for one section block's text.
SECTION_LIMIT = 3000
MAX_SECTIONS = 40


class BoltLines(logging.Filter):
    """Cuts a line that would carry a request body (Bolt writes one into a refused signature's line
    and an unhandled request's) down to its first words, so no body reaches a log; and drops Bolt's
    start-up notice that ``token`` goes unused (Bolt reads SLACK_BOT_TOKEN from the environment even
    when it is given a client, which already carries that token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "`token` will be unused" in text:
            return False
        if "body" in text.lower() or "request (" in text or "\n" in text:
            record.msg, record.args = text.split("(", 1)[0].splitlines()[0].strip()[:80] + " (body not logged)", ()
        return True


#: Given to Bolt and slack_sdk instead of their own loggers: their DEBUG lines hold bodies. Bolt
#: copies this logger's level and filters onto the loggers it makes for its parts.
platform_log = logging.getLogger("gen_nodes.chatops.slack")
platform_log.setLevel(logging.INFO)
platform_log.addFilter(BoltLines())


def build_app(chatops: ChatOps, *, signing_secret: str, token: str | None = None,
              client: WebClient | None = None, token_verification_enabled: bool = True,
              command: str = "/gen") -> App:
    """The Bolt app: one slash command, the login modal and the two approval buttons.

    With a ``client``, its token is the one used (``token`` is not passed on: Bolt would warn
    that it goes unused, see :class:`BoltLines`). Building it calls ``auth.test`` unless
    ``token_verification_enabled`` is False: Slack unreachable raises ``URLError``, a bad token
    ``BoltError`` (``gen-nodes chatops slack`` checks the token itself first, with readable errors)."""
    app = App(signing_secret=signing_secret, token=None if client is not None else token, client=client,
              logger=platform_log, token_verification_enabled=token_verification_enabled)

    def ack_command(ack: Any, body: dict, client: WebClient) -> None:
        who = _who(body)
        refused = chatops.admit(who)
        parsed = chatops.parse(_text(body))
        if refused is None and parsed.kind == "login":
            ack()
            client.views_open(trigger_id=body["trigger_id"], view=login_view(body))
        elif refused is not None or parsed.kind == "answer":
            ack(**message(refused or chatops.run(who, parsed)))
        else:
            ack()

    def run_command(body: dict) -> None:
        who = _who(body)
        parsed = chatops.parse(_text(body))
        if parsed.kind in ("login", "answer") or chatops.admit(who) is not None:
            return  # answered in the ack
        _send(body.get("response_url"), lambda: chatops.run(who, parsed))

    def finish_login(body: dict) -> None:
        view = body.get("view") or {}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            key = view["state"]["values"][KEY_BLOCK][KEY_ACTION]["value"] or ""
        except (KeyError, TypeError, ValueError):
            platform_log.warning("a login form without its key field was ignored")
            return
        who = _who(body, channel=meta.get("channel", ""))
        _send(meta.get("response_url"), lambda: chatops.login(who, key))

    def press(approve: bool):
        def lazy(body: dict) -> None:
            action = (body.get("actions") or [{}])[0]
            _send(body.get("response_url"),
                  lambda: chatops.press(_who(body), str(action.get("value") or ""), approve=approve))
        return lazy

    app.command(command)(ack=ack_command, lazy=[run_command])
    app.view(LOGIN_CALLBACK)(ack=lambda ack: ack(), lazy=[finish_login])
    def run_button(body: dict) -> None:
        action = (body.get("actions") or [{}])[0]
        _send(body.get("response_url"), lambda: chatops.press_command(_who(body), str(action.get("value") or "")))

    app.action(APPROVE)(ack=lambda ack: ack(), lazy=[press(True)])
    app.action(DENY)(ack=lambda ack: ack(), lazy=[press(False)])
    app.action(re.compile(f"^{RUN}[0-9]+$"))(ack=lambda ack: ack(), lazy=[run_button])
    return app


def build_asgi(app: App, chatops: ChatOps, *, signing_secret: str):
    """A Starlette app serving the Bolt app at ``/slack/events`` (Bolt runs in a worker thread).

    Before Bolt sees a request: a body over 1 MiB gets 413 unread, a bad or stale signature
    401, and a replay of a verified request an empty 200 (see the module docstring)."""
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from gen_nodes.net.middleware import BodyTooLarge, body_too_large, read_body

    verifier = SignatureVerifier(signing_secret)

    async def events(request: Request):
        try:
            body = await read_body(request)
        except BodyTooLarge:
            return body_too_large()
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not _signed(verifier, body, timestamp, signature):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        if not await anyio.to_thread.run_sync(chatops.first_sight, "slack", f"{timestamp}:{signature}"):
            return Response(status_code=200)
        bolt_request = to_bolt_request(request, body)
        return to_starlette_response(await anyio.to_thread.run_sync(app.dispatch, bolt_request))

    return Starlette(routes=[Route(PATH, events, methods=["POST"])])


def _signed(verifier: SignatureVerifier, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's signature check, made total: a missing or non-numeric timestamp, or a body that is
    not UTF-8, is a bad signature (slack_sdk would raise)."""
    if not timestamp.isdigit() or not signature:
        return False
    try:
        return verifier.is_valid(body, timestamp, signature)
    except (ValueError, UnicodeDecodeError):
        return False


def _who(body: dict, channel: str | None = None) -> ChatUser:
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else body.get("user_id")
    team = body.get("team")
    team_id = team.get("id") if isinstance(team, dict) else body.get("team_id")
    if channel is None:
        chan = body.get("channel")
        channel = chan.get("id", "") if isinstance(chan, dict) else body.get("channel_id", "")
    return ChatUser("slack", str(team_id or ""), str(user_id or ""), str(channel or ""))


def _text(body: dict) -> str:
    # Slack escapes &, < and > in command text.
    return html.unescape(body.get("text") or "")


def escape(text: str) -> str:
    """Slack's three control characters, escaped: a key name cannot ping @channel or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(reply: Reply) -> dict[str, Any]:
    """A :class:`Reply` as a Slack message payload (for ``ack``, ``response_url`` or the API)."""
    text = escape(reply.text)
    sections = [text[i:i + SECTION_LIMIT] for i in range(0, len(text), SECTION_LIMIT)][:MAX_SECTIONS] or [" "]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections]
    if reply.buttons is not None:
        b = reply.buttons
        blocks.append({"type": "actions", "block_id": "gen_approval", "elements": [
            {"type": "button", "action_id": APPROVE, "style": "danger", "value": b.approval,
             "text": {"type": "plain_text", "text": b.approve_label[:75]},
             "confirm": {"title": {"type": "plain_text", "text": "Are you sure?"},
                         "text": {"type": "mrkdwn", "text": escape(b.confirm_text)},
                         "confirm": {"type": "plain_text", "text": b.approve_label[:30]},
                         "deny": {"type": "plain_text", "text": "Keep it"}, "style": "danger"}},
            {"type": "button", "action_id": DENY, "value": b.approval,
             "text": {"type": "plain_text", "text": b.deny_label}},
        ]})
    if reply.commands:
        blocks.append({"type": "actions", "block_id": "gen_commands", "elements": [
            {"type": "button", "action_id": f"{RUN}{i}", "value": c.command,
             "text": {"type": "plain_text", "text": c.label[:75]}}
            for i, c in enumerate(reply.commands[:COMMAND_BUTTONS_LIMIT])]})
    out: dict[str, Any] = {"text": text[:SECTION_LIMIT], "blocks": blocks,
                           "response_type": "ephemeral" if (reply.private or reply.secret) else "in_channel"}
    if reply.replace:
        out["replace_original"] = True
    return out


def _send(response_url: str | None, produce: Callable[[], Reply]) -> None:
    """Run ``produce`` (the slow part) and answer through ``response_url`` (valid 30 minutes).
    A failure is logged without the body, and the person still hears that something broke."""
    if not response_url:
        platform_log.warning("no response_url to answer through; the request was dropped")
        return
    try:
        reply = produce()
    except Exception:
        platform_log.exception("a chat command failed unexpectedly")
        reply = Reply("Something went wrong on the gen-nodes side; nothing more is known. "
                      "Ask the operator to look at the server log.")
    payload = message(reply)
    payload.setdefault("replace_original", False)  # a refusal must not overwrite the requester's message
    try:
        result = WebhookClient(response_url, logger=platform_log, timeout=10).send_dict(payload)
    except Exception as exc:  # network trouble: say what, never the payload
        platform_log.warning("answering through response_url failed: %s", type(exc).__name__)
        return
    if result.status_code >= 300:
        platform_log.warning("response_url answered %s", result.status_code)


def login_view(body: dict) -> dict[str, Any]:
    """The login modal. The command's ``response_url`` rides along to answer the submission."""
    meta = json.dumps({"response_url": body.get("response_url", ""), "channel": body.get("channel_id", "")})
    return {
        "type": "modal",
        "callback_id": LOGIN_CALLBACK,
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": "GEN login"},
        "submit": {"type": "plain_text", "text": "Bind key"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text":
                "Paste your own GEN API key. It is checked with GEN, stored encrypted, and used only for "
                "your commands. Never type a key into a command: command text is logged."}},
            {"type": "input", "block_id": KEY_BLOCK, "label": {"type": "plain_text", "text": "GEN API key"},
             "element": {"type": "plain_text_input", "action_id": KEY_ACTION,
                         "placeholder": {"type": "plain_text", "text": "gen_pat_..."}}},
        ],
    }
