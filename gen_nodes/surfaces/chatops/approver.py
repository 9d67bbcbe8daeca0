"""Chat-ops as the approver channel: a held call's Approve / Deny buttons in a direct message.

``gen-nodes serve --confirmation approval --approval-notify slack`` (or ``discord``, or the MCP
server's same option) builds a target here through :func:`gen_nodes.safety.notify.parse_targets`:

- :func:`slack_target` / :func:`discord_target` read the bot token chat-ops uses
  (``SLACK_BOT_TOKEN`` and ``SLACK_API_URL``; ``DISCORD_BOT_TOKEN`` and ``DISCORD_API_URL``) and
  take the server's ``store`` (or a function returning it, for a server that opens its store
  later), which must be the one ``gen-nodes chatops`` serves from (the same ``--store``):
  bindings are read there and the approval lives there.
- ``deliver(notice)`` finds the chat user bound to the GEN account that asked
  (``notice.account["id"]``, indexed when the user binds), routes the approval to them
  (:meth:`Approvals.route`), then sends them a DM: the preview, a danger Approve button and a
  Deny button. It returns False when nobody is bound or the platform refuses.
- :func:`press_routed` is what the chat-ops server does with a press on such a button: only
  the routed user may decide, once, and nothing runs here; the surface that raised the call
  runs it (the gateway when the workflow next polls, the MCP server that is waiting). A press
  on an approval raised elsewhere and not routed to the presser is refused and audited.

The route admits the press, so a Discord DM (which has no guild) works under ``--allow``.
The bot token is never in a repr, a log line or an exception.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Callable, Mapping

from gen_nodes.safety.approvals import EXPIRED, ApprovalError, Approvals
from gen_nodes.safety.display import quoted
from gen_nodes.core import settings
from gen_nodes.core.errors import InvalidSetting
from gen_nodes.safety.display import account_text
from gen_nodes.safety.notify import Notice
from gen_nodes.surfaces.chatops.core import _BINDING_PREFIX, BINDING_TTL, Buttons, ChatOps, ChatUser, Reply, _ids, _item_lines

log = logging.getLogger("gen_nodes.chatops.approver")

#: Surfaces whose approvals chat-ops raises and runs itself (``ChatOps.press`` handles those).
CHAT_SURFACES = ("slack", "discord")
_INDEX_PREFIX = "chatops:gen-user:"
#: Chat users remembered per GEN account and platform (the newest binding is asked first).
INDEX_LIMIT = 10
#: What the presser is told once they approved, per surface that runs the call.
_RUNS_IT = {
    "gateway": "the gateway runs it when the workflow next checks",
    "mcp": "the MCP server runs it now for the client that asked",
}


# -- which chat user is bound to a GEN account ----------------------------------------------


def remember_binding(store: Any, platform: str, user: str, gen_user: Any) -> None:
    """Index a new binding by GEN account, so a held call of that account can find its person."""
    if gen_user is None:
        return
    key = _index_key(platform, gen_user)
    while True:
        record = store.get(key)
        users = [u for u in (record or {}).get("users", []) if u != user][-(INDEX_LIMIT - 1):] + [user]
        if record is None and store.add(key, {"users": users}, ttl=BINDING_TTL):
            return
        if record is not None and store.replace(key, record, {"users": users}, ttl=BINDING_TTL):
            return
        # Another binding of the same account landed meanwhile: read it again.


def bound_users(store: Any, platform: str, gen_user: Any) -> list[str]:
    """The chat users of ``platform`` bound to GEN account ``gen_user`` now, newest first."""
    record = store.get(_index_key(platform, gen_user)) or {}
    found = []
    for user in reversed(record.get("users", [])):
        binding = store.get(f"{_BINDING_PREFIX}{platform}:{user}")  # unbound or rebound: skipped
        if binding and str(binding.get("gen_user")) == str(gen_user):
            found.append(user)
    return found


def _index_key(platform: str, gen_user: Any) -> str:
    return f"{_INDEX_PREFIX}{platform}:{gen_user}"


def _account_key(platform: str, approval_id: str) -> str:
    return f"chatops:routed-account:{platform}:{approval_id}"


def _still_bound(store: Any, who: ChatUser, approval_id: str) -> bool:
    """Whether ``who`` still acts as the GEN account the approval was routed for (not unbound, not rebound)."""
    routed = store.get(_account_key(who.platform, approval_id)) or {}
    return routed.get("gen_user") is not None and who.user in bound_users(store, who.platform, routed["gen_user"])


# -- the targets -------------------------------------------------------------------------------


class ChatApprover:
    """A notify target sending a held call's buttons to the bound person of one platform."""

    def __init__(self, platform: str, store: Any, send: Callable[[str, Reply], bool]) -> None:
        self.name = self.platform = platform
        self._store, self._send = store, send

    def __repr__(self) -> str:
        return f"ChatApprover({self.platform!r})"

    @property
    def store(self) -> Any:
        return self._store() if callable(self._store) and not hasattr(self._store, "get") else self._store

    def deliver(self, notice: Notice) -> bool:
        gen_user = (notice.account or {}).get("id")
        users = bound_users(self.store, self.platform, gen_user) if gen_user is not None else []
        if not users:
            log.info("approval %s: no %s user is bound to GEN account %s", notice.approval_id, self.platform,
                     gen_user)
            return False
        approvals = Approvals(self.store)
        try:  # routed before the DM goes out, so an instant press finds its route
            approvals.route(notice.approval_id, self.platform, users[0])
        except ApprovalError:
            log.warning("approval %s is unknown or gone; nothing was sent", notice.approval_id)
            return False
        # Kept beside the route: at the press the person must still be bound to this GEN account.
        held = approvals.get(notice.approval_id)
        ttl = max(1.0, (held.expires_at if held else time.time()) + approvals.keep - time.time())
        self.store.add(_account_key(self.platform, notice.approval_id), {"gen_user": gen_user}, ttl=ttl)
        return self._send(users[0], notice_reply(notice))


def notice_reply(notice: Notice) -> Reply:
    """The DM: what would change, who asked and where, until when; Approve / Deny buttons."""
    surface = notice.requested.get("surface") or "?"
    client = notice.requested.get("client")
    lines = [f"*Approval needed: {notice.title}*",
             f"Asked by {account_text(notice.account)} through the {surface}"
             + (f" (client {quoted(client)})" if client else "") + "."]
    if notice.preview is None:
        lines.append("(This action declares no preview.)")
    elif notice.preview:
        lines.append(f"This would affect {len(notice.preview)} item(s):")
        lines.extend(_item_lines(notice.preview))
    else:
        lines.append("No matching item was found; GEN will answer whether it exists.")
    lines.append(f"Only you can decide, once, before {notice.expires_at}. Nothing runs until you approve.")
    return Reply("\n".join(lines), private=False, buttons=Buttons(
        approval=notice.approval_id, approve_label=f"Approve: {notice.title}", deny_label="Deny",
        confirm_text=f"{notice.title}: this cannot be undone. Approve it?"))


def slack_target(*, store: Any = None, env: Mapping[str, str] | None = None, **_: Any) -> ChatApprover:
    """The ``slack`` target: a DM through ``conversations.open`` + ``chat.postMessage``."""
    return ChatApprover("slack", _checked(store, "slack"), slack_sender(env))


def discord_target(*, store: Any = None, env: Mapping[str, str] | None = None, session: Any = None,
                   **_: Any) -> ChatApprover:
    """The ``discord`` target: a bot DM (create the DM channel, post a message with buttons)."""
    return ChatApprover("discord", _checked(store, "discord"), discord_sender(env, session))


def slack_sender(env: Mapping[str, str] | None = None) -> Callable[[str, Reply], bool]:
    """``send(user, reply)``: a Slack DM with the bot token chat-ops uses (also the expiry digest's)."""
    from slack_sdk import WebClient

    env = settings.of(env)
    token = _setting(env.slack_bot_token, "SLACK_BOT_TOKEN", "slack",
                     "Copy the Bot User OAuth Token (xoxb-...) of the chat-ops Slack app; the manifest "
                     "needs the chat:write and im:write scopes.")
    api_url = env.slack_api_url or ""
    client = WebClient(token=token, base_url=api_url.rstrip("/") + "/") if api_url else WebClient(token=token)
    return lambda user, reply: _slack_dm(client, user, reply)


def discord_sender(env: Mapping[str, str] | None = None, session: Any = None) -> Callable[[str, Reply], bool]:
    """``send(user, reply)``: a Discord bot DM with ``DISCORD_BOT_TOKEN`` (also the expiry digest's)."""
    import requests

    from gen_nodes.surfaces.chatops.discord import DEFAULT_API_URL

    env = settings.of(env)
    token = _setting(env.discord_bot_token, "DISCORD_BOT_TOKEN", "discord",
                     "Copy a bot token from the Discord developer portal's Bot page (the bot must share a "
                     "server with the people it messages).")
    api_url = (env.discord_api_url or DEFAULT_API_URL).rstrip("/")
    http = session or requests.Session()
    return lambda user, reply: _discord_dm(http, api_url, token, user, reply)


def _slack_dm(client: Any, user: str, reply: Reply) -> bool:
    from slack_sdk.errors import SlackApiError

    from gen_nodes.surfaces.chatops.slack import message

    payload = message(reply)
    try:
        channel = client.conversations_open(users=user)["channel"]["id"]
        client.chat_postMessage(channel=channel, text=payload["text"], blocks=payload["blocks"])
    except SlackApiError as exc:
        log.warning("Slack refused the DM: %s", exc.response.get("error") if exc.response else "?")
        return False
    except (OSError, KeyError, TypeError) as exc:
        log.warning("the DM to Slack failed: %s", type(exc).__name__)
        return False
    return True


def _discord_dm(http: Any, api_url: str, token: str, user: str, reply: Reply) -> bool:
    import requests

    from gen_nodes.surfaces.chatops.discord import message

    headers = {"Authorization": f"Bot {token}"}
    try:
        opened = http.post(f"{api_url}/users/@me/channels", json={"recipient_id": user}, headers=headers,
                           timeout=10)
        if opened.status_code >= 300:
            log.warning("Discord refused to open the DM: HTTP %s", opened.status_code)
            return False
        sent = http.post(f"{api_url}/channels/{opened.json()['id']}/messages", json=message(reply),
                         headers=headers, timeout=10)
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        log.warning("the DM to Discord failed: %s", type(exc).__name__)
        return False
    if sent.status_code >= 300:
        log.warning("Discord refused the DM: HTTP %s", sent.status_code)
        return False
    return True


def _setting(value: str | None, name: str, kind: str, hint: str) -> str:
    if not value:
        raise InvalidSetting(f"The {kind} direct messages (approval target, expiry digest) need {name}, which "
                             "is not set.", hint=hint)
    return value


def _checked(store: Any, kind: str) -> Any:
    """The server's store; a memory:// one is refused: the chat-ops server could never see it."""
    from gen_nodes.state.memory import MemoryStore

    if store is None:
        raise InvalidSetting(f"The {kind} approval target needs the server's store.",
                             hint="Give the server the same --store as gen-nodes chatops.")
    if isinstance(store, MemoryStore):
        raise InvalidSetting(f"The {kind} approval target cannot share a memory:// store with chat-ops.",
                             hint="Give the server the same --store as gen-nodes chatops (sqlite:// or redis://).")
    return store


# -- a press on a routed button, in the chat-ops server -------------------------------------------


def press_routed(chat: ChatOps, who: ChatUser, approval_id: str, approve: bool) -> Reply | None:
    """Decide an approval raised elsewhere, if routed to ``who``; None for chat-ops' own approvals."""
    pending = chat.approvals.get(approval_id) if approval_id else None
    if pending is None or (pending.context or {}).get("surface") in CHAT_SURFACES:
        return None
    routed = chat.approvals.routed_to(approval_id, who.platform)
    if routed is None or not secrets.compare_digest(routed, who.user):
        chat.audit(who, pending.action, outcome="refused_not_routed")
        return Reply("This approval was not sent to you; nothing was changed.")
    ids = _ids(pending.arguments, pending.preview or [])
    if not _still_bound(chat.approvals.store, who, approval_id):
        chat.audit(who, pending.action, ids=ids, outcome="key_changed")
        return Reply(f"You are no longer bound to the GEN account that asked (`{chat.prefix} logout` or a "
                     f"new `{chat.prefix} login` since); nothing was changed.")
    try:
        decided = chat.approvals.decide(approval_id, approve=approve, by=f"{who.platform}:{who.user}")
    except ApprovalError as exc:
        chat.audit(who, pending.action, ids=ids, outcome=exc.reason)
        if exc.reason == EXPIRED:
            return Reply("This approval expired before you decided; nothing was changed.", replace=True)
        return Reply(f"{exc.message} Nothing more was done.")
    chat.audit(who, pending.action, ids=ids, outcome=decided.state)
    if not approve:
        return Reply(f"Denied: {pending.action} will not run; nothing was changed.", replace=True)
    surface = str(pending.context.get("surface") or "")
    runs_it = _RUNS_IT.get(surface, f"the {surface or 'surface that asked'} runs it")
    return Reply(f"Approved: {runs_it}. Nothing else can decide it now.", replace=True)
