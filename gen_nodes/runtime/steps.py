"""One action as one step of a workflow engine (Airflow, Temporal): exactly once, and retried only where safe.

Workflow engines retry a failed step on their own, and GEN has no idempotency
keys, so a retried create would make a second key and lose the first one's
secret. A :class:`StepRunner` runs an action on behalf of such an engine:

- the input is checked against the action's schema before anything is sent;
- an action that is not safe to repeat (a create) runs under an idempotency
  record (``gen_nodes.safety.idempotency``) keyed by the engine's own identity for the
  step (Airflow: dag, task, run, map index; Temporal: workflow, run, activity).
  A retry of a step that succeeded gets the stored result back; a retry of a
  step whose outcome is unknown, or whose first try began and never ended (its
  worker died), gets ``outcome_unknown`` with the keys it may have made instead
  of a second create; a retry that finds the first try still running waits for
  it, then says ``in_progress`` (retryable) if it is still not done;
- the client does not retry by itself (``ENGINE_RETRY``): the engine's own
  retry policy is the only one, so attempts do not multiply and show in the
  engine's UI;
- each :class:`~gen_nodes.core.errors.GenError` says whether the engine may retry it
  (``retryable``: rate limits, 5xx, network faults), and ``retry_after``.

The engine adapters (``gen_nodes.airflow``, ``gen_nodes.temporal``) only translate
identities and errors into their engine's terms.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from gen_nodes.client.http import GenClient, RetryPolicy
from gen_nodes.core.engine import execute, lookup, validate_input
from gen_nodes.core.errors import GenError, IdempotencyConflict, OutcomeUnknown, RequestInProgress
from gen_nodes.core.redact import masked_copy
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.safety.idempotency import Refusals, replayed_output, step_records

log = logging.getLogger("gen_nodes.runtime.steps")

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
        scope, fingerprint = f"{self.surface}:{client.identity}", self.records.fingerprint(spec.id, args)
        # A composite action's steps keep their own records: a retry resumes where the first try stopped.
        steps = step_records(self.records, scope=scope, key=step, fingerprint=fingerprint,
                             wait=self.wait) if spec.composite else None
        once = self.records.run_once(
            scope=scope, key=step, fingerprint=fingerprint, resumable=spec.composite,
            run=lambda: self._fresh(spec, args, client, steps), wait=self.wait, refusals=Refusals(
                conflict=lambda: IdempotencyConflict(
                    f"Step {step} already ran {spec.id} with other input; it is not run again with this one.",
                    hint="A retried step must keep its input. To create another key, run it as a new step "
                         "(a new DAG run or task, a new workflow run or activity)."),
                in_progress=lambda: RequestInProgress(
                    f"An earlier try of step {step} is still running {spec.id}; it is not run twice.",
                    hint="Try again later (the engine's retry does): once that try ends, a retry returns its result."),
                lost=lambda: self._lost(spec, args, client, step)))
        return once.output if once.replay is None else _replayed(once.replay, step)

    def _fresh(self, spec: Any, args: dict[str, Any], client: GenClient, steps: Any = None) -> dict[str, Any]:
        output = execute(spec, args, client, resolve=self.registry.get, once=steps)
        # Plain JSON (a Secret str becomes str again) for the engine's serializer and the store;
        # engines keep secrets out of logs their own way (Airflow's masker, Temporal's codec).
        return json.loads(json.dumps(self.deliver(output)))

    def _lost(self, spec: Any, args: dict[str, Any], client: GenClient, step: str) -> OutcomeUnknown:
        """An earlier try began and never finished (its worker died mid-request, say)."""
        error = OutcomeUnknown(
            f"An earlier try of step {step} began {spec.id} and never finished; "
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
                error.hint = (f"Matching key(s) never used: id {ids}. Their secret is lost: revoke them with "
                              "revoke_api_key, then run the step as a new one.")
        return error


def _replayed(begin: Any, step: str) -> dict[str, Any]:
    """The stored result of the step's first try: its output, or the same error again."""
    output = replayed_output(begin, f"step {step}")
    log.info("step %s: returning the stored result of its first try", step)
    return json.loads(json.dumps(output))


def engine_client(api_key: str | None = None, base_url: str | None = None, **options: Any) -> GenClient:
    """A client for an engine step: no retries of its own unless ``retry=`` says otherwise."""
    options.setdefault("retry", ENGINE_RETRY)
    return GenClient(api_key=api_key, base_url=base_url, **options)
