"""Composite actions: declared actions run one after another as steps, each at most once.

A composite :class:`~gen_nodes.core.spec.ActionSpec` (``spec.steps``) sends no request
of its own. Each :class:`~gen_nodes.core.spec.Step` runs another action through the
engine, with an input mapped from the composite's input and earlier steps' outputs;
a step with a ``pick`` keeps the one list item it must find. A failure stops the run:

- before anything was changed, it is the composite's failure (the same error);
- at a step marked ``partial``, after an earlier step changed something, the run ends
  ``partial``: the output keeps what the earlier steps made (a new key and its secret),
  names the failed step, its error, and what to do next. Nothing made is lost.

Exactly once across retries: a surface that has a key for the whole call (an
``Idempotency-Key``, an engine's step identity) passes ``once``, which runs each step
under its own record (``gen_nodes.safety.idempotency.step_records``), so a retry
replays the steps that finished and runs only the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from gen_nodes.core.errors import GenError, NotFound, Rejected, unexpected_failure
from gen_nodes.core.times import moment
from gen_nodes.core.spec import PARTIAL, SUCCEEDED, ActionSpec, FirstOf, Input, Lifetime, Output, Pick, Step

if TYPE_CHECKING:
    from gen_nodes.client.http import GenClient

#: What a pick says (message, hint) when it finds no item, or one it may not use; ``{action}`` in the hint is the
#: list action, named in the caller's terms. Surfaces that run steps themselves (the n8n node) word them from these.
PICK_NOT_FOUND = ("No {noun} with {wanted} was found; {title} changed nothing.",
                  "Call ${{{action}}} to see which ones exist, then try again with one of them.")
PICK_REJECTED = ("The {noun} with {wanted} cannot be used: its {now} (needed: {needed}). {title} changed nothing.",
                 "Call ${{{action}}} to find one that qualifies.")

Resolve = Callable[[str], ActionSpec]
#: Runs one action: the engine's ``execute(spec, arguments, client, resolve=...)``.
Execute = Callable[..., dict[str, Any]]
#: Runs ``run()`` for ``step`` (running ``action`` with ``arguments``) at most once, or hands back
#: what it returned before.
StepOnce = Callable[[Step, ActionSpec, dict[str, Any], Callable[[], dict[str, Any]]], dict[str, Any]]


def run_steps(spec: ActionSpec, args: Mapping[str, Any], client: GenClient, resolve: Resolve, execute: Execute,
              once: StepOnce | None = None) -> dict[str, Any]:
    """The composite's output: every step run in order, or ``partial`` at a step that says so."""
    outputs: dict[str, dict[str, Any]] = {}
    changed = False
    for step in spec.steps:
        action = resolve(step.action)
        step_args = step_input(step, args, outputs)

        def run(step: Step = step, action: ActionSpec = action, step_args: dict[str, Any] = step_args) -> dict[str, Any]:
            return _run_step(spec, step, action, step_args, args, outputs, client, resolve, execute)

        try:
            outputs[step.name] = once(step, action, step_args, run) if once is not None else run()
        except (Exception, KeyboardInterrupt) as exc:  # a bug or Ctrl-C too: what was made must be handed back
            if step.partial is None or not changed:
                raise
            return _partial(spec, step, exc if isinstance(exc, GenError) else unexpected_failure(exc), args, outputs)
        changed = changed or not action.hints.read_only
    return _result(spec, outputs, SUCCEEDED)


def plan(spec: ActionSpec, args: Mapping[str, Any], client: GenClient, resolve: Resolve,
         execute: Execute, lookup: Callable[..., list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """What the composite would change, nothing changed: the read-only steps run, and for each other
    step the items its own preview names, or its planned input; each item's ``change`` is the title
    of the step's action (``"Revoke API key"``)."""
    outputs: dict[str, dict[str, Any]] = {}
    items: list[dict[str, Any]] = []
    for step in spec.steps:
        action = resolve(step.action)
        step_args = step_input(step, args, outputs)
        if action.hints.read_only:
            outputs[step.name] = _run_step(spec, step, action, step_args, args, outputs, client, resolve, execute)
        elif action.preview is not None:
            items += [{**item, "change": action.title} for item in lookup(action.preview, step_args, client, resolve)]
        else:
            items.append({**step_args, "change": action.title})
    return items


def step_input(step: Step, args: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The step's input: each declared value resolved; a value that resolves to nothing is left out."""
    values = {name: value_of(ref, args, outputs) for name, ref in step.input.items()}
    return {name: value for name, value in values.items() if value is not None}


def value_of(ref: Any, args: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """A declared value: an input, an earlier output (or one of its fields), the first of several, a
    lifetime, or a constant."""
    if isinstance(ref, Input):
        return args.get(ref.name)
    if isinstance(ref, Output):
        output = outputs.get(ref.step)
        return output if ref.field is None or output is None else output.get(ref.field)
    if isinstance(ref, FirstOf):
        return next((v for v in (value_of(r, args, outputs) for r in ref.values) if v is not None), None)
    if isinstance(ref, Lifetime):
        return _lifetime(outputs.get(ref.step) or {}, ref)
    return ref


def _lifetime(item: Mapping[str, Any], ref: Lifetime) -> str | None:
    start, end = moment(item.get(ref.start)), moment(item.get(ref.end))
    if start is None or end is None:
        return None
    return f"{max(1, round((end - start).total_seconds() / 86400))}d"


def _run_step(spec: ActionSpec, step: Step, action: ActionSpec, step_args: dict[str, Any], args: Mapping[str, Any],
              outputs: Mapping[str, Any], client: GenClient, resolve: Resolve, execute: Execute) -> dict[str, Any]:
    output = execute(action, step_args, client, resolve=resolve)
    if step.pick is None:
        return output
    return _picked(spec, step, step.pick, output, args, outputs)


def _picked(spec: ActionSpec, step: Step, pick: Pick, output: Mapping[str, Any], args: Mapping[str, Any],
            outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The one item ``pick`` must find in a list output; an error that changes nothing otherwise."""
    match = {field: value_of(ref, args, outputs) for field, ref in pick.match.items()}
    wanted = ", ".join(f"{field} {value}" for field, value in match.items())
    found = [item for item in output.get(pick.items) or () if isinstance(item, dict)
             and all(str(item.get(field)) == str(value) for field, value in match.items())]
    if not found:
        message, hint = PICK_NOT_FOUND
        raise NotFound(message.format(noun=pick.noun, wanted=wanted, title=spec.title),
                       hint=hint.format(action=step.action))
    item = found[0]
    wrong = {field: item.get(field) for field, allowed in pick.require.items() if item.get(field) not in allowed}
    if wrong:
        now = ", ".join(f"{field} is {value}" for field, value in wrong.items())
        needed = "; ".join(f"{field} {' or '.join(map(str, allowed))}" for field, allowed in pick.require.items())
        message, hint = PICK_REJECTED
        raise Rejected(message.format(noun=pick.noun, wanted=wanted, now=now, needed=needed, title=spec.title),
                       hint=hint.format(action=step.action))
    return item


def _result(spec: ActionSpec, outputs: Mapping[str, Any], status: str) -> dict[str, Any]:
    result = {name: value_of(ref, {}, outputs) for name, ref in spec.result.items()}
    return {"status": status, **{name: value for name, value in result.items() if value is not None}}


def _partial(spec: ActionSpec, step: Step, error: GenError, args: Mapping[str, Any],
             outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The output of a run stopped at ``step`` after earlier steps changed something."""
    return {**_result(spec, outputs, PARTIAL), "failed_step": step.name, "error": error.to_dict(),
            "next": (step.partial or "").format_map(_Blank(args))}


class _Blank(dict):
    """Fills a ``partial`` text from the input; a field not given reads as ``?``."""

    def __missing__(self, key: str) -> str:
        return "?"
