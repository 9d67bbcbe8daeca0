"""One action as one step of a workflow engine (Airflow, Temporal): exactly once, and retried only where safe.

Workflow engines retry a failed step on their own, and GEN has no idempotency
keys, so a retried create would make a second key and lose the first one's
secret. A :class:`StepRunner` runs an action on behalf of such an engine:

- the input is checked against the action's schema before anything is sent;
- an action that is not safe to repeat (a create) runs under an idempotency
  record (``gen_nodes.idempotency``) keyed by the engine's own identity for the
  step (Airflow: dag, task, run, map index; Temporal: workflow, run, activity).
  A retry of a step that succeeded gets the stored result back, a retry of a
  step whose outcome is unknown gets the same ``outcome_unknown`` (with the
  keys it may have made) instead of a second create, and a retry that finds
  the first try still running waits for it;
- the client does not retry by itself (``ENGINE_RETRY``): the engine's own
  retry policy is the only one, so attempts do not multiply and show in the
  engine's UI;
- each :class:`~gen_nodes.errors.GenError` says whether the engine may retry it
  (``retryable``: rate limits, 5xx, network faults), and ``retry_after``.

The engine adapters (``gen_nodes.airflow``, ``gen_nodes.temporal``) only translate
identities and errors into their engine's terms.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from .client import GenClient, RetryPolicy
from .engine import execute, lookup, validate_input
from .errors import GenError, InvalidInput, OutcomeUnknown
from .redact import hide_secrets, masked_copy
from .registry import Registry, default_registry

log = logging.getLogger("gen_nodes.steps")

#: One try per engine attempt: the engine's retry policy decides about the next one.
ENGINE_RETRY = RetryPolicy(attempts=1)

#: How long a retry waits for an earlier try of the same step that is still running.
DEFAULT_WAIT = 60.0

Deliver = Callable[[dict[str, Any]], dict[str, Any]]


class StepRunner:
    """Runs actions as engine steps; ``records`` (an ``IdempotencyRecords``) makes creates exactly-once.

    ``surface`` names the engine in the record scope (``airflow``, ``temporal``), so two
    engines sharing a store never meet. ``deliver`` turns a fresh output into what the
    step returns (the secret policy); it runs once, before the result is stored.
    """

    def __init__(self, surface: str, records: Any, *, registry: Registry | None = None,
                 deliver: Deliver | None = None, wait: float = DEFAULT_WAIT) -> None:
        self.surface = surface
        self.records = records
        self.registry = registry or default_registry()
        self.deliver = deliver or (lambda output: output)
        self.wait = wait

    def run(self, action: str, arguments: Any, client: GenClient, *, step: str) -> dict[str, Any]:
        """The action's output for the engine step named ``step``; raises a ``GenError``."""
        spec = self.registry.get(action)
        args = validate_input(spec, {} if arguments is None else arguments)
        if spec.hints.safe_to_retry or self.records is None:
            return self._fresh(spec, args, client)
        scope = f"{self.surface}:{client.identity}"
        begin = self.records.begin(scope=scope, key=step, fingerprint=self.records.fingerprint(spec.id, args))
        if begin.state == "in_progress":
            log.info("step %s: an earlier try is still running; waiting for it", step)
            begin = self.records.wait(scope=scope, key=step, timeout=self.wait)
            if begin is None or begin.state == "in_progress":
                raise self._unfinished(spec, args, client, step)
        if begin.state == "replay":
            return _replayed(begin.response, step)
        if begin.state == "conflict":
            raise InvalidInput(
                f"Step {step} already ran {spec.id} with other input; it is not run again with this one.",
                errors=[{"path": "$", "message": "differs from the input of the step's first try"}],
                hint="A retried step must keep its input. To create another key, run it as a new step "
                     "(a new DAG run or task, a new workflow run or activity).",
            )
        try:
            output = self._fresh(spec, args, client)
        except OutcomeUnknown as exc:
            self.records.finish(scope=scope, key=step, response={"error": exc.to_dict()})
            raise
        except GenError:
            # Any other answer means GEN did not act: a later try may run it again.
            self.records.release(scope=scope, key=step)
            raise
        self.records.finish(scope=scope, key=step, response={"output": output})
        return hide_secrets(output)

    def _fresh(self, spec: Any, args: dict[str, Any], client: GenClient) -> dict[str, Any]:
        output = execute(spec, args, client, resolve=self.registry.get)
        # Plain JSON (a Secret str becomes str again) for the engine's serializer and the store.
        return json.loads(json.dumps(self.deliver(output)))

    def _unfinished(self, spec: Any, args: dict[str, Any], client: GenClient, step: str) -> OutcomeUnknown:
        """An earlier try started and never finished (its worker died mid-request, say)."""
        error = OutcomeUnknown(
            f"An earlier try of step {step} started {spec.id} and never finished; "
            "GEN may or may not have carried it out, so it is not run again.",
        )
        if spec.orphans is not None:
            try:
                found = lookup(spec.orphans, args, client, self.registry.get)
            except GenError:
                found = None
            error.details["candidates"] = masked_copy(found)
            if found:
                ids = ", ".join(str(item.get("id")) for item in found)
                error.hint = (f"Matching key(s) never used: id {ids}. The secret is lost; revoke them with "
                              "revoke_api_key and run the step again as a new one.")
        return error


def _replayed(response: Any, step: str) -> dict[str, Any]:
    """The stored result of the step's first try: its output, or the same error again."""
    response = response or {}
    if "error" in response:
        stored = dict(response["error"])
        message = stored.pop("message", "The first try of this step ended without a known outcome.")
        hint = stored.pop("hint", None)
        for field in ("type", "status", "error_code"):
            stored.pop(field, None)
        error = OutcomeUnknown(f"{message} (the result of step {step}'s first try; not run again)",
                               hint=hint, **stored)
        raise error
    log.info("step %s: returning the stored result of its first try", step)
    return hide_secrets(dict(response.get("output") or {}))


def engine_client(api_key: str | None = None, base_url: str | None = None, **options: Any) -> GenClient:
    """A client for an engine step: no retries of its own unless ``retry=`` says otherwise."""
    options.setdefault("retry", ENGINE_RETRY)
    return GenClient(api_key=api_key, base_url=base_url, **options)
