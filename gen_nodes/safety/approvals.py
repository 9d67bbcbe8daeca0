"""Approvals: a destructive call waits for a person, then runs exactly once.

Every surface that cannot ask its person synchronously (an approval page, a chat
button, a host's own UI, a workflow runner polling) shares this one mechanism:

    approval = approvals.request(action="revoke_api_key", arguments={"id": 6},
                                 principal=client.identity, preview=[...])
    # the handle approval.id goes to the PERSON's channel only, never to a model
    approvals.decide(approval.id, approve=True, by="alice")   # pending -> approved | denied
    claimed = approvals.claim(approval.id)                     # approved -> running, one caller only
    if claimed:                                                # run claimed.arguments, exactly those,
        output = approvals.run_claimed(claimed, run)           # running -> done, its outcome kept for polling

States: ``pending`` -> ``approved`` | ``denied`` | ``expired``; ``approved`` ->
``running`` -> ``done``. Each transition is a compare-and-swap in the store, so a
double click, a platform's retry or a second process cannot decide twice or run
twice. Every surface runs a claimed call through :meth:`Approvals.run_claimed`, which stores
its outcome in one shape: ``ok=True`` with the output (secret fields masked), or ``ok=False``
with ``{"error": error.to_dict(terms)}``. An output with secrets (a rotation's new key) also keeps
them sealed, for one more delivery to a caller that lost the first answer (:meth:`redeliver`). The arguments are stored with the request and are what runs: nothing sent
later can change them. A pending approval expires after ``ttl`` seconds; finished
ones are kept ``keep`` seconds so a poller can read the outcome. One principal has at most
``max_pending`` (10) approvals pending at once, counted in the store so that every surface and
process sharing it keeps the same count; the next request raises :class:`TooManyApprovals`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from gen_nodes.core.errors import ApprovalError, GenError, InvalidSetting, TooManyApprovals, unexpected_failure
from gen_nodes.core.redact import holds_secrets, masked_copy
from gen_nodes.core.terms import Terms
from gen_nodes.core.composite import StepOnce
from gen_nodes.safety.idempotency import DEFAULT_LEASE as DEFAULT_STEP_LEASE, IdempotencyRecords, step_records
from gen_nodes.state import Store
from gen_nodes.state.secretbox import SecretBox, SecretBoxError

PENDING, APPROVED, DENIED, RUNNING, DONE, EXPIRED = "pending", "approved", "denied", "running", "done", "expired"
#: Seconds a person has to decide.
DEFAULT_TTL = 300.0
#: Seconds a decided or finished approval stays readable (for pollers and late clicks).
DEFAULT_KEEP = 3600.0
#: Calls one key may have waiting for a person at once: a model cannot flood the person's channel.
MAX_PENDING = 10
#: Seconds an approved call may run before another caller may take it over (its runner died):
#: longer than a step's own idempotency lease (``idempotency.DEFAULT_LEASE``, counted from the
#: step's start, which comes after the claim), so a takeover never finds the step of a dead run
#: still "in progress" and fails for it.
RUN_LEASE = DEFAULT_STEP_LEASE + 300.0


@dataclass(frozen=True)
class Approval:
    """One destructive call waiting for, or past, a person's decision."""

    #: The handle: unguessable; whoever holds it can decide, so it goes to the person only.
    id: str
    action: str
    arguments: dict[str, Any]
    #: Who asked (a digest of their GEN key, ``GenClient.identity``); the call runs as them.
    principal: str
    state: str
    created_at: float
    expires_at: float
    #: What the call would affect, masked, as shown to the person.
    preview: list[dict[str, Any]] | None = None
    #: Surface data, e.g. ``{"surface": "slack", "user": "U1"}``: who may decide, where to answer.
    context: dict[str, Any] = field(default_factory=dict)
    decided_by: str | None = None
    #: Once done (:meth:`Approvals.run_claimed`): the output, secrets masked, or ``{"error": {...}}``.
    result: dict[str, Any] | None = None
    ok: bool | None = None
    #: When the call was last claimed to run (:meth:`Approvals.claim`).
    claimed_at: float | None = None
    #: The output's secrets, sealed, until :meth:`Approvals.redeliver` hands them out once more.
    sealed_result: dict[str, Any] | None = field(default=None, repr=False)


class Approvals:
    """Approvals kept in a :class:`~gen_nodes.state.Store` (see the module doc)."""

    def __init__(self, store: Store, *, ttl: float = DEFAULT_TTL, keep: float = DEFAULT_KEEP,
                 clock: Callable[[], float] = time.time, max_pending: int = MAX_PENDING,
                 box: SecretBox | None = None) -> None:
        self.store, self.ttl, self.keep, self._clock = store, ttl, keep, clock
        self.max_pending = max_pending
        #: Seals what approved calls create (a step's record, a result kept for one more delivery);
        #: default: the store's own box (``box_for``), made on first use.
        self._secret_box = box
        self._records: IdempotencyRecords | None = None  # made on first use, by steps() and run_claimed()

    def request(self, *, action: str, arguments: dict[str, Any], principal: str,
                preview: list[dict[str, Any]] | None = None, context: dict[str, Any] | None = None) -> Approval:
        """Open a pending approval for this exact call."""
        now = self._clock()
        approval = Approval(id=secrets.token_urlsafe(24), action=action, arguments=dict(arguments),
                            principal=principal, state=PENDING, created_at=now, expires_at=now + self.ttl,
                            preview=preview, context=dict(context or {}))
        self._reserve(principal, approval.id, approval.expires_at)
        if not self.store.add(_key(approval.id), asdict(approval), ttl=self.ttl + self.keep):
            raise RuntimeError("approval id collision")  # 192 random bits: never in practice
        return approval

    def pending_count(self, principal: str) -> int:
        """How many calls of ``principal`` wait for a person now (every process sharing the store sees it)."""
        record = self.store.get(_pending_key(principal)) or {"open": {}}
        return len(self._still_open(record["open"]))

    def _reserve(self, principal: str, approval_id: str, expires_at: float) -> None:
        """Count this approval against its principal's cap, or raise :class:`TooManyApprovals`.

        The principal's open approvals are one record, changed by compare-and-swap: two processes
        sharing the store cannot both take the last place."""
        key = _pending_key(principal)
        while True:
            record = self.store.get(key)
            still_open = self._still_open(record["open"] if record else {})
            if len(still_open) >= self.max_pending:
                raise TooManyApprovals(
                    f"This API key already has {len(still_open)} calls waiting for a person's approval "
                    f"(at most {self.max_pending}); this one was not opened.")
            updated = {"open": {**still_open, approval_id: expires_at}}
            ttl = max(1.0, max(updated["open"].values()) - self._clock())
            if record is None:
                if self.store.add(key, updated, ttl=ttl):
                    return
            elif self.store.replace(key, record, updated, ttl=ttl):
                return
            # Another request changed the count meanwhile: count again.

    def _still_open(self, opened: dict[str, float]) -> dict[str, float]:
        """The approvals of ``opened`` (id -> expiry) still pending. One not stored yet (its request is
        being written) counts as pending until it expires."""
        now, kept = self._clock(), {}
        for approval_id, expires_at in opened.items():
            if expires_at <= now:
                continue
            record = self._record(approval_id)
            if record is None or record.get("state") == PENDING:
                kept[approval_id] = expires_at
        return kept

    def now(self) -> float:
        """The time by this store's clock (what ``expires_at`` is measured against)."""
        return self._clock()

    def get(self, approval_id: str) -> Approval | None:
        """The approval, with ``state == "expired"`` once a pending one ran out of time."""
        record = self._record(approval_id)
        return None if record is None else self._seen(record)

    def decide(self, approval_id: str, *, approve: bool, by: str = "", principal: str | None = None) -> Approval:
        """Approve or deny a pending approval, once. ``principal``: only that caller may decide.

        Raises :class:`ApprovalError` (``reason``: unknown, expired, decided, not_yours).
        """
        while True:
            record = self._record(approval_id)
            if record is None:
                raise ApprovalError("No such approval (it may have expired long ago).", reason="unknown")
            current = self._seen(record)
            if principal is not None and not secrets.compare_digest(principal, current.principal):
                raise ApprovalError("Only the person who asked for this call can decide it.", reason="not_yours",
                                    hint="Nothing was changed. Ask the person who made the request.")
            if current.state == EXPIRED:
                raise ApprovalError("This approval expired before anyone decided.", reason="expired")
            if current.state != PENDING:
                raise ApprovalError(f"This approval was already {current.state}.", reason="decided",
                                    state=current.state)
            decided = replace(current, state=APPROVED if approve else DENIED, decided_by=by or None)
            if self.store.replace(_key(approval_id), record, asdict(decided), ttl=self.keep):
                return decided
            # Someone else changed it meanwhile: read it again and report what they did.

    def claim(self, approval_id: str, *, resumable: bool = False) -> Approval | None:
        """Move an approved call to running and return it; None for everyone but the first caller.

        ``resumable``: the call may run again safely (it is idempotent, or a composite action whose
        steps keep records, see :meth:`steps`): a call left running for :data:`RUN_LEASE` seconds
        (its runner died) may then be claimed again, and resumes."""
        record = self._record(approval_id)
        if record is None:
            return None
        stale = (resumable and record.get("state") == RUNNING
                 and self._clock() >= (record.get("claimed_at") or 0) + RUN_LEASE)
        if record.get("state") != APPROVED and not stale:
            return None
        running = replace(self._seen(record), state=RUNNING, claimed_at=self._clock())
        if self.store.replace(_key(approval_id), record, asdict(running), ttl=self.keep):
            return running
        return None

    def finish(self, approval_id: str, *, result: dict[str, Any], ok: bool,
               sealed: dict[str, Any] | None = None) -> Approval | None:
        """Record the outcome of a claimed call (kept ``keep`` seconds); ``sealed``: see :meth:`redeliver`."""
        record = self._record(approval_id)
        if record is None or record.get("state") != RUNNING:
            return None
        done = replace(self._seen(record), state=DONE, result=result, ok=ok, sealed_result=sealed)
        return done if self.store.replace(_key(approval_id), record, asdict(done), ttl=self.keep) else None

    def run_claimed(self, approval: Approval, run: Callable[[Approval], dict[str, Any]], *,
                    terms: Terms | None = None) -> dict[str, Any]:
        """Run a call :meth:`claim` returned, once: ``run(approval)`` with its stored arguments, and keep
        its outcome in one shape (see the module doc; an error's hint in ``terms``).

        Returns the output as ``run`` gave it (unmasked, for the caller); re-raises its error. A failure
        that is not a ``GenError`` (a bug) is kept as an unexpected failure, without its text.
        """
        try:
            output = run(approval)
        except GenError as exc:
            self.finish(approval.id, result={"error": exc.to_dict(terms)}, ok=False)
            raise
        except BaseException as exc:
            self.finish(approval.id, result={"error": unexpected_failure(exc).to_dict(terms)}, ok=False)
            raise
        self.finish(approval.id, result=masked_copy(output), ok=True, sealed=self._sealed(output))
        return output

    def _sealed(self, output: dict[str, Any]) -> dict[str, Any] | None:
        """``output`` sealed for :meth:`redeliver`, if it holds a secret and a box can be had: never an
        error here, after the call ran (the caller must get its output)."""
        if not holds_secrets(output):
            return None
        try:
            return self._box().sealed(output)
        except GenError:
            return None

    def redeliver(self, approval_id: str) -> dict[str, Any] | None:
        """The output of a done call with its secrets, once more, for a caller whose first answer was
        lost (as an idempotent replay delivers it once more); None once that was done, or if it had none.
        Of concurrent callers, one gets it (compare-and-swap)."""
        record = self._record(approval_id)
        if record is None or record.get("state") != DONE or not record.get("sealed_result"):
            return None
        if not self.store.replace(_key(approval_id), record, {**record, "sealed_result": None}, ttl=self.keep):
            return None
        return self._box().opened(record["sealed_result"])

    def steps(self, approval: Approval) -> StepOnce:
        """Each step of an approved composite call under its own record, keyed by the approval: a run
        resumed after its runner died (:meth:`claim` with ``resumable``) replays the steps that
        finished (a create is never sent twice) and runs the rest."""
        def once(step: Any, action: Any, arguments: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            steps = step_records(self._box(), scope=f"approval:{approval.principal}", key=approval.id,
                                 fingerprint=IdempotencyRecords.fingerprint(approval.action, approval.arguments))
            return steps(step, action, arguments, run)

        return once  # the records (and their box) are made only when a composite's step runs

    def _box(self) -> IdempotencyRecords:
        """The records (and their secret box) over this store, made on first use."""
        if self._records is None:
            try:
                self._records = IdempotencyRecords(self.store, box=self._secret_box)
            except SecretBoxError as exc:  # a shared store and no GEN_NODES_STATE_SECRET: say which setting
                raise InvalidSetting(str(exc), hint="Set GEN_NODES_STATE_SECRET (the same on every process "
                                     "sharing the store), then start the server again.") from None
        return self._records

    def wait(self, approval_id: str, *, timeout: float, poll: float = 0.2,
             sleep: Callable[[float], None] = time.sleep) -> Approval | None:
        """Block until the approval leaves ``pending`` (or ``timeout`` passes); its latest state."""
        deadline = self._clock() + timeout
        while True:
            approval = self.get(approval_id)
            if approval is None or approval.state != PENDING or self._clock() >= deadline:
                return approval
            sleep(min(poll, max(0.0, deadline - self._clock())))

    # -- where a pending approval may be decided ---------------------------------------------
    # An approval is decided only through a channel it was given: a page link (the secret of
    # ``link``) or a chat route (``route``). Neither is the approval id nor derived from it, so
    # whoever holds only the id (a model that saw a 202 or a poll answer) can decide nothing.

    def link(self, approval_id: str) -> str:
        """A new secret for the approval page (``/approve/<secret>``), returned once; only its hash is kept.

        Give it to a person only (a notify target, MCP URL elicitation), never in an API answer.
        """
        approval = self.get(approval_id)
        if approval is None:
            raise ApprovalError("No such approval (it may have expired long ago).", reason="unknown")
        secret = secrets.token_urlsafe(24)  # 192 bits
        ttl = max(1.0, approval.expires_at + self.keep - self._clock())
        if not self.store.add(_link_key(secret), {"approval": approval_id}, ttl=ttl):
            raise RuntimeError("approval link collision")  # 192 random bits: never in practice
        return secret

    def by_link(self, secret: str) -> Approval | None:
        """The approval a page link decides, or None for an unknown link (an approval id is one)."""
        if not isinstance(secret, str) or not 16 <= len(secret) <= 128:
            return None
        record = self.store.get(_link_key(secret))
        return self.get(record["approval"]) if record else None

    def route(self, approval_id: str, platform: str, user: str) -> None:
        """Let ``user`` of chat ``platform`` decide this approval (a notify target sent them the buttons)."""
        approval = self.get(approval_id)
        if approval is None:
            raise ApprovalError("No such approval (it may have expired long ago).", reason="unknown")
        ttl = max(1.0, approval.expires_at + self.keep - self._clock())
        self.store.add(_route_key(approval_id, platform), {"user": user}, ttl=ttl)

    def routed_to(self, approval_id: str, platform: str) -> str | None:
        """The chat user of ``platform`` this approval was routed to, if any."""
        if not isinstance(approval_id, str) or not 8 <= len(approval_id) <= 128:
            return None
        record = self.store.get(_route_key(approval_id, platform))
        return record["user"] if record else None

    def _record(self, approval_id: str) -> dict[str, Any] | None:
        if not isinstance(approval_id, str) or not 8 <= len(approval_id) <= 128:
            return None
        return self.store.get(_key(approval_id))

    def _seen(self, record: dict[str, Any]) -> Approval:
        approval = Approval(**record)
        if approval.state == PENDING and self._clock() >= approval.expires_at:
            return replace(approval, state=EXPIRED)
        return approval


def _key(approval_id: str) -> str:
    return "approval:" + approval_id


def _pending_key(principal: str) -> str:
    return "approval-pending:" + principal


def _link_key(secret: str) -> str:
    return "approval-link:" + hashlib.sha256(secret.encode()).hexdigest()


def _route_key(approval_id: str, platform: str) -> str:
    return f"approval-route:{platform}:{approval_id}"
