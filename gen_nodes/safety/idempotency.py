"""Idempotency records: a create retried by a runner makes one key, not two.

GEN has no idempotency keys, and workflow runners retry failed steps (n8n's Retry
On Fail, Zapier's replay, Airflow and Temporal retries). Every surface that lets a
caller name a step (an ``Idempotency-Key`` header, an Airflow task instance, a
Temporal activity) keeps one record per (scope, key) here:

    begin = records.begin(scope=scope, key=key, fingerprint=records.fingerprint(action, args))
    if begin.state == "new":        # this caller runs the call, then:
        records.finish(scope=scope, key=key, response=response)
    elif begin.state == "replay":   # begin.response is the first call's response
    elif begin.state == "conflict": # the same key was used for another request: refuse
    elif begin.state == "in_progress":  # another caller is running it: records.wait(...) or say so
    elif begin.state == "lost":     # a caller began and never finished (it died mid-call):
                                    # the outcome is unknown; never send it again

Every surface runs that sequence through :meth:`IdempotencyRecords.run_once`, written once here:
it runs the call for ``new``, waits for ``in_progress``, hands back a ``replay``, raises the
surface's own error for ``conflict``, ``in_progress`` and ``lost``, records an ``outcome_unknown``
(GEN may have acted) and forgets any other ``GenError`` (GEN certainly did not act: a retry runs).

``response`` is whatever the surface needs to answer again (a status and a body,
an operator's output); an ``outcome_unknown`` error is recorded like any other and
replayed as such, never re-sent. Secret fields (``redact.SECRET_FIELDS``) are sealed
with :class:`~gen_nodes.state.secretbox.SecretBox` before they reach the store, and
the first replay removes them: a lost first answer is delivered once more, no more.
Records expire after ``ttl`` (24 h by default).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Generic, Literal, TypeVar

from gen_nodes.core.composite import StepOnce
from gen_nodes.core.errors import GenError, IdempotencyConflict, OutcomeUnknown, RequestInProgress
from gen_nodes.core.redact import SECRET_FIELDS, Secret, hide_secrets, mask
from gen_nodes.core.spec import ActionSpec, Step
from gen_nodes.state import Store, StoreError
from gen_nodes.state.secretbox import SecretBox, SecretBoxError, box_for

log = logging.getLogger("gen_nodes.safety.idempotency")

DEFAULT_TTL = 24 * 3600.0
#: Seconds a begun call may run before a repeat treats it as lost (beyond any client deadline).
DEFAULT_LEASE = 600.0
_SEALED = "$sealed"
_WITHHELD = "$withheld"

State = Literal["new", "replay", "conflict", "in_progress", "lost"]
Output = TypeVar("Output")


@dataclass(frozen=True)
class Begin:
    """What :meth:`IdempotencyRecords.begin` found."""

    state: State
    #: For ``replay``: the recorded response (secrets opened, or masked once already replayed).
    response: dict[str, Any] | None = None
    #: For ``replay``: True when the secret was already delivered by an earlier replay.
    secrets_withheld: bool = False


@dataclass(frozen=True)
class Refusals:
    """The errors :meth:`IdempotencyRecords.run_once` raises instead of running, in a surface's words."""

    #: The key was used for another request.
    conflict: Callable[[], GenError]
    #: The first call with the key is still running after the wait.
    in_progress: Callable[[], GenError]
    #: The first call began and never finished: its outcome is unknown (an ``OutcomeUnknown``).
    lost: Callable[[], GenError]
    #: The outcome recorded when the call fails with something that is not a ``GenError`` (a bug):
    #: None records nothing, so the record stays begun and a later repeat finds it ``lost``.
    unexpected: Callable[[BaseException], GenError] | None = None


@dataclass(frozen=True)
class Once(Generic[Output]):
    """What :meth:`IdempotencyRecords.run_once` did: ran the call (``output``) or found its ``replay``."""

    output: Output | None = None
    replay: Begin | None = None


def _output_record(output: Any) -> dict[str, Any]:
    return {"output": output}


def _error_record(error: GenError) -> dict[str, Any]:
    return {"error": error.to_dict()}


class IdempotencyRecords:
    """Records in a :class:`~gen_nodes.state.Store`. ``box``: seals secrets (default: :func:`box_for`)."""

    def __init__(self, store: Store, *, ttl: float = DEFAULT_TTL, lease: float = DEFAULT_LEASE,
                 box: SecretBox | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store, self.ttl, self.lease, self._clock = store, ttl, lease, clock
        self.box = box or box_for(store)

    @staticmethod
    def fingerprint(action: str, arguments: Any) -> str:
        """A digest of one request: the action and its arguments (key order does not matter)."""
        text = json.dumps([action, arguments], sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def begin(self, *, scope: str, key: str, fingerprint: str) -> Begin:
        """Claim (scope, key) for this request, or say what an earlier one left."""
        name = _name(scope, key)
        started = {"fingerprint": fingerprint, "state": "in_progress", "lease_until": self._clock() + self.lease}
        while True:
            if self.store.add(name, started, ttl=self.ttl):
                return Begin("new")
            record = self.store.get(name)
            if record is None:
                continue  # expired between the two calls: try to claim it again
            if record.get("fingerprint") != fingerprint:
                return Begin("conflict")
            if record.get("state") == "done":
                return self._replay(name, record)
            if self._clock() < record.get("lease_until", 0):
                return Begin("in_progress")
            return Begin("lost")

    def finish(self, *, scope: str, key: str, response: dict[str, Any], fingerprint: str | None = None) -> None:
        """Record the response of a call :meth:`begin` said to run. ``fingerprint``: the one given to
        :meth:`begin` (without it, it is read back from the record: one more trip to the store)."""
        name = _name(scope, key)
        if fingerprint is None:
            record = self.store.get(name)
            fingerprint = record.get("fingerprint") if record else None
        self.store.set(name, {"fingerprint": fingerprint, "state": "done", "response": self._seal(response)},
                       ttl=self.ttl)

    def abandon(self, *, scope: str, key: str) -> None:
        """Forget a begun call that certainly sent nothing (bad input, no connection), so a retry runs."""
        self.store.delete(_name(scope, key))

    def wait(self, *, scope: str, key: str, fingerprint: str, timeout: float, poll: float = 0.1,
             sleep: Callable[[float], None] = time.sleep) -> Begin:
        """:meth:`begin` again until the other caller finishes or ``timeout`` passes.

        Never returns ``new`` for a call that is in progress elsewhere: if the record
        vanished (expired) meanwhile, this caller may run it, and ``new`` says so.
        """
        deadline = self._clock() + timeout
        while True:
            begin = self.begin(scope=scope, key=key, fingerprint=fingerprint)
            if begin.state != "in_progress" or self._clock() >= deadline:
                return begin
            sleep(poll)

    def run_once(self, *, scope: str, key: str, fingerprint: str, run: Callable[[], Output], refusals: Refusals,
                 wait: float = 0.0, record: Callable[[Output], dict[str, Any]] = _output_record,
                 record_error: Callable[[GenError], dict[str, Any]] = _error_record,
                 resumable: bool = False, later: Callable[[Callable[[], None]], None] | None = None) -> Once[Output]:
        """Run ``run()`` at most once for (scope, key): the begin/wait/replay/lost/finish sequence.

        ``record(output)`` and ``record_error(error)`` are what a replay hands back later (default:
        ``{"output": ...}`` and ``{"error": error.to_dict()}``). Raises ``run``'s error, or one of
        ``refusals`` when the call is not run. ``resumable``: running ``run()`` again is safe (it
        guards its own parts, as a composite action's steps do with :func:`step_records`, or it is
        idempotent), so a repeat that finds an earlier call still running or lost runs it at once
        (finishing what that one left) instead of refusing.

        A call that succeeded is returned even when its record cannot be written (the store is down):
        the caller keeps what GEN made, and a repeat finds the record unfinished and refuses it as
        ``lost``, never sending it twice. ``later``: where to hand that write instead of making it
        before returning; the gateway makes it once its answer is sent, so a caller waits for GEN and
        not for the store. Nothing is sent twice either way: until the write, a repeat finds the call
        in progress and waits for it. A ``resumable`` call is always completed before returning, since
        a repeat would not wait for it but run it again.
        """
        where = {"scope": scope, "key": key}
        begin = self.begin(**where, fingerprint=fingerprint)
        if resumable and begin.state in ("in_progress", "lost"):
            log.info("an earlier call with this idempotency key did not finish; resuming it")
            begin = Begin("new")
        if begin.state == "in_progress":
            log.info("an earlier call with this idempotency key is still running; waiting up to %.0f s", wait)
            begin = self.wait(**where, fingerprint=fingerprint, timeout=wait)
        done = {**where, "fingerprint": fingerprint}
        if begin.state == "replay":
            return Once(replay=begin)
        if begin.state != "new":
            refuse = {"conflict": refusals.conflict, "in_progress": refusals.in_progress, "lost": refusals.lost}
            raise refuse[begin.state]()
        try:
            output = run()
        except OutcomeUnknown as exc:  # GEN may have acted: this is the outcome, replayed as such
            self.finish(**done, response=record_error(exc))
            raise
        except GenError:  # GEN certainly did not act: a retry may run it
            self.abandon(**where)
            raise
        except BaseException as exc:
            if refusals.unexpected is not None:
                self.finish(**done, response=record_error(refusals.unexpected(exc)))
            raise
        finish = partial(self._finish_success, done, record(output))
        if later is None or resumable:
            finish()
        else:
            later(finish)
        return Once(output=output)

    def _finish_success(self, where: dict[str, Any], response: dict[str, Any]) -> None:
        try:
            self.finish(**where, response=response)
        except Exception as exc:  # the call succeeded: its output must reach the caller all the same
            # A store's or the secret box's own message names only the store or the setting; any other may hold data.
            said = f"{type(exc).__name__}: {exc}" if isinstance(exc, (StoreError, SecretBoxError)) else type(exc).__name__
            log.error("a call with an idempotency key succeeded, but its record could not be written (%s); "
                      "a repeat with that key finds it unfinished, and it is never sent twice", said)

    def _replay(self, name: str, record: dict[str, Any]) -> Begin:
        response = record["response"]
        if not _has(response, _SEALED):
            return Begin("replay", _opened(response, None), secrets_withheld=_has(response, _WITHHELD))
        # Drop the sealed secrets first (compare-and-swap): of concurrent replays, one delivers them.
        spent = dict(record, response=_withheld(response))
        if self.store.replace(name, record, spent):
            return Begin("replay", _opened(response, self.box))
        again = self.store.get(name) or spent
        return Begin("replay", _opened(again["response"], None), secrets_withheld=True)

    def sealed(self, value: Any) -> Any:
        """``value`` with every secret field sealed, as a record keeps it (see :meth:`opened`)."""
        return self._seal(value)

    def opened(self, value: Any) -> Any:
        """What :meth:`sealed` made, its secrets opened again (wrapped so they print masked)."""
        return _opened(value, self.box)

    def _seal(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({_SEALED: self.box.seal(v), "mask": mask(v)} if k in SECRET_FIELDS and isinstance(v, str)
                        else self._seal(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._seal(v) for v in value]
        return value


def _name(scope: str, key: str) -> str:
    return "idempotency:" + hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()


def _is(value: Any, marker: str) -> bool:
    return isinstance(value, dict) and marker in value and "mask" in value and len(value) == 2


def _has(value: Any, marker: str) -> bool:
    if _is(value, marker):
        return True
    if isinstance(value, dict):
        return any(_has(v, marker) for v in value.values())
    if isinstance(value, list):
        return any(_has(v, marker) for v in value)
    return False


def _withheld(value: Any) -> Any:
    if _is(value, _SEALED):
        return {_WITHHELD: True, "mask": value["mask"]}
    if isinstance(value, dict):
        return {k: _withheld(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_withheld(v) for v in value]
    return value


def _opened(value: Any, box: SecretBox | None) -> Any:
    """The response as the caller gets it: sealed secrets opened (``box``) or shown masked."""
    if _is(value, _SEALED):
        return Secret(box.open(value[_SEALED])) if box is not None else value["mask"]
    if _is(value, _WITHHELD):
        return value["mask"]
    if isinstance(value, dict):
        return hide_secrets({k: _opened(v, box) for k, v in value.items()})
    if isinstance(value, list):
        return [_opened(v, box) for v in value]
    return value


def step_records(records: IdempotencyRecords, *, scope: str, key: str, fingerprint: str,
                 wait: float = 0.0) -> StepOnce:
    """Runs each step of a composite action at most once for the call (scope, key) with ``fingerprint``.

    Each step keeps its own record, ``key#step``, so a retry of the whole call (the same
    ``Idempotency-Key``, the same engine step) gets back what the steps that finished returned,
    and runs only the rest: never a second create, never a second revoke. A step that is safe to
    repeat (a read, a revoke) and whose earlier try was lost runs again; a create whose earlier try
    was lost is refused as ``outcome_unknown``, never sent twice.
    """
    def once(step: Step, action: ActionSpec, arguments: dict[str, Any],
             run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        ran = records.run_once(
            scope=scope, key=f"{key}#{step.name}", wait=wait, resumable=action.hints.safe_to_retry,
            fingerprint=records.fingerprint(f"{fingerprint}#{step.name}", arguments), run=run,
            refusals=Refusals(
                conflict=lambda: IdempotencyConflict(
                    f"Step {step.name} already ran with other input under this key; it is not run again."),
                in_progress=lambda: RequestInProgress(
                    f"An earlier try of step {step.name} ({step.action}) is still running; it is not run twice.",
                    retry_after=5),
                lost=lambda: OutcomeUnknown(
                    f"An earlier try of step {step.name} ({step.action}) began and never finished; GEN may or "
                    "may not have carried it out, so it is not sent again.",
                    hint="Call ${list_api_keys} to see what it did before trying again with a new key.")))
        return ran.output if ran.replay is None else replayed_output(ran.replay)

    return once


def replayed_output(begin: Begin, what: str = "this call") -> dict[str, Any]:
    """The stored result of a first try, for a replay: its output, or the same error raised again."""
    response = begin.response or {}
    if "error" in response:
        stored = dict(response["error"])
        message = stored.pop("message", "The first try ended without a known outcome.")
        stored.pop("type", None)
        raise OutcomeUnknown(f"{message} (the result of the first try of {what}; it is not run again)", **stored)
    output = dict(response.get("output") or {})
    return _noted(output) if begin.secrets_withheld else output


def _noted(value: Any) -> Any:
    """``value`` with a note beside each (masked) secret field, at any depth: it was delivered before."""
    if isinstance(value, list):
        return [_noted(item) for item in value]
    if not isinstance(value, dict):
        return value
    noted = {k: _noted(v) for k, v in value.items()}
    for field in SECRET_FIELDS & set(value):
        noted[f"{field}_note"] = ("An earlier retry already received the secret; "
                                  "it is shown masked here and cannot be shown again.")
    return noted
