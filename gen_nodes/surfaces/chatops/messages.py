"""What comes in and what goes out of the chat core: who typed, the parsed command, the reply and its buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gen_nodes.core.spec import ActionSpec


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


#: Command buttons one message carries at most (Slack: 25 per actions block; Discord: 5 rows of 5).
COMMAND_BUTTONS_LIMIT = 25


@dataclass(frozen=True)
class CommandButton:
    """A button that runs a chat command for whoever presses it, as if they had typed it (the
    expiry digest's **Rotate**): it goes through the same parsing and running, approvals included."""

    label: str
    #: The command text after the slash command, e.g. ``keys rotate 42``.
    command: str


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
    #: Buttons that each run a command (at most :data:`COMMAND_BUTTONS_LIMIT` are shown).
    commands: tuple[CommandButton, ...] = ()

    def __repr__(self) -> str:  # the text may hold a new key's secret
        return (f"Reply(private={self.private}, secret={self.secret}, buttons={self.buttons is not None}, "
                f"commands={len(self.commands)})")


@dataclass(frozen=True)
class Command:
    """A parsed command: a built-in (help/login/logout), an action, or an answer already."""

    kind: str  # "help" | "login" | "logout" | "alerts" | "action" | "answer"
    spec: ActionSpec | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    share: bool = False
    #: For ``answer`` (help, usage errors, refusals): the reply, sent without any GEN call.
    reply: Reply | None = None
    #: The audit outcome of an ``answer`` worth auditing (e.g. an inline key refused).
    audit: str | None = None

    def __repr__(self) -> str:  # the arguments are the user's; keep them out of logs
        return f"Command(kind={self.kind!r}, action={self.spec.id if self.spec else None!r})"
