"""Approval notices: how the decision link of a held call reaches a person, never a model.

A surface that holds a destructive call (the gateway's ``--confirmation approval``, MCP URL-mode
elicitation) tells a person through the targets its operator chose; no API answer carries the
link. One :class:`Notifier` per server, built from ``--approval-notify TARGET`` (repeatable) or
``GEN_NODES_APPROVAL_NOTIFY`` (comma-separated):

    notifier = Notifier(parse_targets(["stderr", "https://hooks.example/approve"]))
    notifier.notify(Notice(approval_id=..., action="revoke_api_key", title="Revoke API key",
                           preview=[...], account={"id": 1, "name": ...}, requested={...},
                           expires_at="2026-12-06T10:00:00Z", url="https://gw/approve/<secret>"))

Targets:

- ``stderr`` (the default): one line on the server's standard error, for whoever started it.
- ``http://`` / ``https://`` URL: a webhook. It gets a POST of ``{"approval": {...}}`` (see
  :meth:`Notice.body`) signed with ``X-Gen-Nodes-Signature: sha256=<hex>``, the HMAC-SHA256 of
  the raw body keyed by ``GEN_NODES_NOTIFY_SECRET`` (required: no secret, no start). Each
  delivery is given up after 5 s in all (however slowly the receiver answers) and is tried 3 times
  with back-off.
- ``slack`` / ``discord``: a direct message with Approve / Deny buttons to the chat-ops user
  bound to the same GEN account (chat-ops declares these kinds in the ``gen_nodes.approval_targets``
  entry points, :data:`TARGETS_GROUP`; :func:`register_kind` adds one at run time).

If no target delivers, :meth:`Notifier.notify` raises :class:`~gen_nodes.core.errors.NobodyToAsk`:
the caller is told at once that nobody can be asked, instead of waiting for a decision that
cannot come.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, Mapping, Protocol, TextIO

from gen_nodes.core import settings
from gen_nodes.core.errors import InvalidSetting, NobodyToAsk
from gen_nodes.safety.display import account_text

log = logging.getLogger("gen_nodes.safety.notify")

SIGNATURE_HEADER = "X-Gen-Nodes-Signature"
SECRET_ENV = "GEN_NODES_NOTIFY_SECRET"
#: Seconds one webhook delivery may take, and how many times it is tried.
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_ATTEMPTS = 3
#: Seconds before the second try; doubled before each later one.
WEBHOOK_BACKOFF = 0.5


@dataclass(frozen=True)
class Notice:
    """What a person needs to decide one held call. ``url`` is the secret decision link."""

    approval_id: str
    action: str
    title: str
    preview: list[dict[str, Any]] | None
    #: The GEN user of the key that asked (``get_me``), or None when it could not be read.
    account: dict[str, Any] | None
    #: ``{"surface": "gateway", "at": "<ISO time>", "client": "<name>" | None}``
    requested: dict[str, Any]
    expires_at: str
    #: The approval page's link; None where no page decides (a chat button does).
    url: str | None = field(default=None, repr=False)

    def body(self) -> dict[str, Any]:
        """The webhook's JSON body."""
        return {"approval": {
            "id": self.approval_id, "action": self.action, "title": self.title, "preview": self.preview,
            "account": self.account, "requested": self.requested, "expires_at": self.expires_at,
            "url": self.url,
        }}


class Target(Protocol):
    """One way to reach a person. ``deliver`` returns True once the notice was handed over."""

    name: str

    def deliver(self, notice: Notice) -> bool: ...


class StderrTarget:
    """One line on the server's standard error, for the person who started it."""

    name = "stderr"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def deliver(self, notice: Notice) -> bool:
        who = account_text(notice.account)
        where = notice.url or "(no approval page: decide in chat)"
        line = (f"gen-nodes: approval needed: {notice.title} for {who}, asked via "
                f"{notice.requested.get('surface', '?')}; open {where} (expires {notice.expires_at})")
        stream = self._stream or sys.stderr
        print(line.replace("\n", " "), file=stream, flush=True)
        return True


class WebhookTarget:
    """A signed POST to an operator's URL (an n8n Webhook node, a mail or chat relay)."""

    def __init__(self, url: str, secret: str, *, timeout: float = WEBHOOK_TIMEOUT,
                 attempts: int = WEBHOOK_ATTEMPTS, backoff: float = WEBHOOK_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep, session: Any = None) -> None:
        self.url, self._secret = url, secret.encode()
        self.timeout, self.attempts, self.backoff, self._sleep = timeout, attempts, backoff, sleep
        self._session = session
        # The URL may carry a token of the operator's (…/webhook/<token>): show the host only.
        self.name = "webhook " + _origin_of(url)

    def __repr__(self) -> str:
        return f"WebhookTarget({self.name!r})"

    def deliver(self, notice: Notice) -> bool:
        import requests

        raw = json.dumps(notice.body(), separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: "sha256=" + sign(raw, self._secret)}
        for attempt in range(1, self.attempts + 1):
            try:
                answer = self._post_within_deadline(raw, headers)
                if 200 <= answer.status_code < 300:
                    return True
                failure = f"HTTP {answer.status_code}"
            except (requests.RequestException, TimeoutError) as exc:
                failure = type(exc).__name__
            log.warning("approval %s: %s did not take the notice (try %d of %d: %s)",
                        notice.approval_id, self.name, attempt, self.attempts, failure)
            if attempt < self.attempts:
                self._sleep(self.backoff * 2 ** (attempt - 1))
        return False


    def _post_within_deadline(self, raw: bytes, headers: dict[str, str]) -> Any:
        """One POST, given up after ``timeout`` seconds in all (:class:`TimeoutError`). requests' own
        timeout bounds each read, so a receiver dripping a header line every few seconds would hold
        it for ever; the POST runs in a worker thread instead, left to its per-read timeout."""
        import requests

        session = self._session or requests
        outcome: dict[str, Any] = {}

        def post() -> None:
            try:
                outcome["answer"] = session.post(self.url, data=raw, headers=headers, timeout=self.timeout,
                                                 allow_redirects=False)
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=post, name="gen-nodes-webhook", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            raise TimeoutError(f"no answer within {self.timeout:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["answer"]


def iso_time(timestamp: float) -> str:
    """A Unix time as the notices write it: ISO 8601 in UTC to the second, ``Z``-suffixed."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def sign(raw: bytes, secret: bytes) -> str:
    """The hex HMAC-SHA256 of ``raw``: what a receiver compares with the signature header."""
    return hmac.new(secret, raw, hashlib.sha256).hexdigest()


def verify(raw: bytes, header: str, secret: str | bytes) -> bool:
    """Whether ``header`` (``sha256=<hex>``) signs ``raw`` under ``secret``; for receivers and tests."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.compare_digest(header or "", "sha256=" + sign(raw, key))


class Notifier:
    """Hands each notice to every target; at least one must take it."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self.targets = list(targets) or [StderrTarget()]

    def notify(self, notice: Notice) -> list[str]:
        """The names of the targets that took the notice. Raises :class:`NobodyToAsk` if none did."""
        delivered = []
        for target in self.targets:
            try:
                if target.deliver(notice):
                    delivered.append(target.name)
            except Exception as exc:  # one broken target must not hide the others
                log.warning("approval %s: %s failed (%s)", notice.approval_id, target.name, type(exc).__name__)
        if not delivered:
            raise NobodyToAsk(
                f"Nobody could be asked to approve {notice.title}: no notification target took it "
                f"({', '.join(t.name for t in self.targets)}). Nothing was changed.")
        log.info("approval %s: notice delivered to %s", notice.approval_id, ", ".join(delivered))
        return delivered


#: The entry-point group where a surface declares its target kinds (``slack``, ``discord``:
#: chat-ops' DM to the bound person): name = "module:factory", imported when used. A factory
#: takes the notifier options and returns a Target. Safety names no surface: they register here.
TARGETS_GROUP = "gen_nodes.approval_targets"
_REGISTERED: dict[str, str] = {}


def register_kind(name: str, factory: str) -> None:
    """Name a target kind: ``factory`` is ``"module:callable"``, called with ``**options``."""
    _REGISTERED[name] = factory


def _kinds() -> dict[str, str]:
    """Target kinds by name: those the installed packages declare, then those registered here."""
    declared = {ep.name: ep.value for ep in entry_points(group=TARGETS_GROUP)}
    return {**declared, **_REGISTERED}


def parse_targets(values: Iterable[str] | None, *, secret: str | None = None,
                  env: dict[str, str] | None = None, **options: Any) -> list[Target]:
    """The targets named by ``values`` (``--approval-notify``); ``[stderr]`` when none are.

    ``secret`` signs webhooks (default ``$GEN_NODES_NOTIFY_SECRET``); ``options`` go to the
    factories of named kinds (e.g. ``store`` for chat targets). Raises :class:`InvalidSetting`
    with a one-line message for an unknown target or a webhook without a secret.
    """
    secret = _notify_secret(secret, env)
    targets: list[Target] = []
    for raw in values or ():
        value = raw.strip()
        if not value:
            continue
        if value == "stderr":
            targets.append(StderrTarget())
        elif value.lower().startswith(("http://", "https://")):
            if not secret:
                raise InvalidSetting(
                    f"The webhook target {_origin_of(value)} needs {SECRET_ENV}: its notices are signed "
                    "with it so the receiver can tell them from forgeries.",
                    hint=f"Set {SECRET_ENV} to a long random value shared with the receiver (not blank).")
            targets.append(WebhookTarget(value, secret))
        elif value in (kinds := _kinds()):
            module, _, attribute = kinds[value].partition(":")
            targets.append(getattr(importlib.import_module(module), attribute)(**options))
        else:
            raise InvalidSetting(
                f"Unknown approval notify target {value!r}.",
                hint="Use stderr, an http(s):// webhook URL, " + ", ".join(sorted(_kinds())) + ".")
    return targets or [StderrTarget()]


def check_targets(values: Iterable[str] | None, *, secret: str | None = None,
                  env: dict[str, str] | None = None) -> None:
    """Raise :class:`InvalidSetting` (one line) for what :func:`parse_targets` would refuse, building
    nothing: a server checks its targets before it listens, then builds them once its store is open."""
    secret = _notify_secret(secret, env)
    kinds = _kinds()
    for raw in values or ():
        value = raw.strip()
        if value.lower().startswith(("http://", "https://")):
            parse_targets([value], secret=secret, env=env)
        elif value and value != "stderr" and value not in kinds:
            parse_targets([value], env=env)


def _notify_secret(secret: str | None, env: Mapping[str, str] | None) -> str | None:
    """The webhook signing secret, stripped; None when blank (``" "`` signs nothing a receiver can trust)."""
    value = secret if secret is not None else settings.of(env).notify_secret
    return (value or "").strip() or None


def _origin_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: refused at start, with the URL's host only
        raise InvalidSetting(f"The notify target {parts.scheme}://{parts.hostname or '?'} has a port that is not a "
                             "number.", hint="Write the webhook URL as https://host[:port]/path.") from None
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{port}" if port else "")
