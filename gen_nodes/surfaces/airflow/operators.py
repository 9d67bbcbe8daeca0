"""Airflow operators: ``GenActionOperator`` for any action, and one generated subclass per action.

``Gen<Action>Operator`` (``GenCreateApiKeyOperator``, ...) is built from the
action's spec: its keyword arguments and templated fields are the action's input
properties, so Jinja and XCom values work; its return value (XCom) is the
action's output. Every step runs through :class:`gen_nodes.runtime.steps.StepRunner`,
keyed by the task instance (dag, task, run, map index), so a create that Airflow
retries never makes a second key. A retryable failure (429, 5xx, network) that came
with GEN's ``Retry-After`` is retried after that wait (:class:`RetryAfterPolicy`, the
operators' default ``retry_policy``), not after the task's ``retry_delay``.
A composite action that ends ``partial`` (a rotation whose revoke failed after the new
key was made) ends its task ``skipped``, its output kept as the XCom (docs/airflow.md).
"""

from __future__ import annotations

import inspect
import json
import logging
from datetime import timedelta
from typing import Any, Sequence

from gen_nodes.airflow import require_airflow

require_airflow()  # before Airflow's own imports: a missing extra is named
from airflow.sdk import BaseOperator, RetryDecision, RetryPolicy, Variable
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.sdk.log import mask_secret

from gen_nodes.core.errors import GenError
from gen_nodes.core.redact import SECRET_FIELDS, holds_secrets, mask
from gen_nodes.core.registry import default_registry
from gen_nodes.safety.secret_delivery import deliver
from gen_nodes.core.spec import PARTIAL, ActionSpec
from gen_nodes.runtime.steps import StepRunner
from gen_nodes.surfaces.airflow.hooks import GenHook

log = logging.getLogger("gen_nodes.airflow")

#: How a created key's secret leaves the task. ``file`` (default): a 0600 file on the
#: worker; ``variable``: an Airflow Variable; ``mask``: nowhere; ``reveal``: in the XCom
#: itself, in plain text, only because the DAG asks for it.
SECRET_POLICIES = ("file", "variable", "mask", "reveal")


class GenRetryableError(AirflowException):
    """A failure Airflow may retry; ``retry_after`` is GEN's ``Retry-After`` in seconds, when it sent one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryAfterPolicy(RetryPolicy):
    """Airflow's next try waits GEN's ``Retry-After``; every other failure follows the task's own settings.

    It runs in the task's process, so the scheduler needs nothing from it: it only stores the
    delay on the task instance (``retry_delay_override``). The task's ``retries`` still bounds the tries.
    """

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:
        retry_after = exception.retry_after if isinstance(exception, GenRetryableError) else None
        if not retry_after:
            return RetryDecision.default()
        return RetryDecision.retry(timedelta(seconds=retry_after),
                                   reason=f"GEN asked to wait {retry_after:g} s (Retry-After)")


class GenActionOperator(BaseOperator):
    """Runs one GEN action; ``input`` is the action's input (templated).

    ``confirm_destructive=True`` is required for destructive actions (revokes): the
    DAG's author approves them where the DAG is written. ``secret_policy``: see
    :data:`SECRET_POLICIES`; ``secret_variable`` names the Variable for ``variable``
    (default ``gen_api_key_<id>_token``); ``secrets_folder`` the folder for ``file``.
    ``retry_policy`` defaults to :class:`RetryAfterPolicy` (GEN's ``Retry-After`` is the retry delay).
    """

    template_fields: Sequence[str] = ("input",)
    template_fields_renderers = {"input": "json"}
    ui_color = "#e6f0ff"

    def __init__(self, *, action: str, input: dict[str, Any] | None = None, gen_conn_id: str = GenHook.default_conn_name,
                 confirm_destructive: bool = False, secret_policy: str = "file", secret_variable: str | None = None,
                 secrets_folder: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retry_policy", RetryAfterPolicy())
        super().__init__(**kwargs)
        spec = default_registry().get(action)
        if spec.hints.destructive and not confirm_destructive:
            raise ValueError(
                f"{self.task_id}: {action} is destructive and irreversible; pass confirm_destructive=True "
                "to the operator to approve it in this DAG."
            )
        if secret_policy not in SECRET_POLICIES:
            raise ValueError(f"{self.task_id}: secret_policy must be one of {SECRET_POLICIES}, not {secret_policy!r}")
        self.action = action
        self.input = input
        self.gen_conn_id = gen_conn_id
        self.confirm_destructive = confirm_destructive
        self.secret_policy = secret_policy
        self.secret_variable = secret_variable
        self.secrets_folder = secrets_folder

    def arguments(self) -> dict[str, Any]:
        """The action's input after templating."""
        return dict(self.input or {})

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        step = f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{ti.map_index}"
        hook = GenHook(self.gen_conn_id)
        runner = StepRunner("airflow", hook.records(), deliver=self._deliver)
        try:
            output = runner.run(self.action, self.arguments(), hook.get_conn(), step=step)
        except GenError as exc:
            self.log.error("GEN %s failed: %s", self.action, json.dumps(exc.to_dict(hook.terms()), default=str))
            if exc.retryable:
                raise GenRetryableError(hook.describe(exc), exc.details.get("retry_after")) from None
            raise AirflowFailException(hook.describe(exc)) from None
        if default_registry().get(self.action).composite and output.get("status") == PARTIAL:
            self._end_partial(ti, output)  # only a composite's status is ours: another action's is GEN's data
        return output

    def _end_partial(self, ti: Any, output: dict[str, Any]) -> None:
        """A composite stopped after it changed something: keep its output, then end the task ``skipped``.

        Skipped is the one end state a task sets itself that is neither success nor failure, and
        trigger rules branch on it (``all_skipped``, ``none_failed``). The output, with what was made
        (a new key, its secret per ``secret_policy``), is pushed first: a skipped task returns no XCom.
        """
        ti.xcom_push(key="return_value", value=output)
        error = output.get("error") or {}
        self.log.warning("GEN %s ended partial: step %s failed (%s). Next: %s", self.action,
                         output.get("failed_step"), error.get("message"), output.get("next"))
        raise AirflowSkipException(f"GEN {self.action} ended partial at step {output.get('failed_step')}; "
                                   "its output (XCom return_value) says what was made and what to do next.")

    def _deliver(self, output: dict[str, Any]) -> dict[str, Any]:
        """The output the task returns: every created key's secret, at any depth, follows ``secret_policy``."""
        if not holds_secrets(output):
            return output  # most outputs (lists of keys) hold none: no walk that builds anything
        for value in _secrets(output):
            mask_secret(value)  # from now on Airflow's logs show *** for it
        if self.secret_policy == "variable":
            return self._to_variables(output)
        return deliver(output, self.secret_policy, self.secrets_folder)

    def _to_variables(self, output: Any) -> Any:
        """``output`` with each secret, at any depth, moved to an Airflow Variable (a rotation's ``new_key.token``)."""
        if isinstance(output, list):
            return [self._to_variables(item) for item in output]
        if not isinstance(output, dict):
            return output
        result = {}
        for field, value in output.items():
            if field not in SECRET_FIELDS or not isinstance(value, str):
                result[field] = self._to_variables(value)
                continue
            name = self.secret_variable or f"gen_api_key_{output.get('id')}_{field}"
            Variable.set(name, str.__str__(value),
                         description=f"Secret of GEN API key {output.get('id')}, set by {self.task_id}")
            result[field] = mask(value)
            result[f"{field}_variable"] = name
            result[f"{field}_note"] = f"The full secret is in the Airflow Variable {name}; it is not in this XCom."
        return result


def _secrets(data: Any) -> list[str]:
    """Every secret field's value in ``data``, at any depth."""
    if isinstance(data, list):
        return [secret for item in data for secret in _secrets(item)]
    if not isinstance(data, dict):
        return []
    found = [str.__str__(v) for k, v in data.items() if k in SECRET_FIELDS and isinstance(v, str)]
    return found + [secret for v in data.values() if isinstance(v, (dict, list)) for secret in _secrets(v)]


def operator_name(action_id: str) -> str:
    """``create_api_key`` -> ``GenCreateApiKeyOperator``."""
    return "Gen" + "".join(part[:1].upper() + part[1:] for part in action_id.split("_") if part) + "Operator"


def operator_class(spec: ActionSpec) -> type[GenActionOperator]:
    """A ``GenActionOperator`` subclass for ``spec``: its input properties are keyword arguments and templated fields."""
    reserved = set(inspect.signature(BaseOperator.__init__).parameters) | set(
        inspect.signature(GenActionOperator.__init__).parameters) | set(dir(GenActionOperator))
    # A property whose name Airflow already uses (``queue``, ``params``...) goes in ``input=`` instead.
    fields = tuple(p for p in spec.input_schema.get("properties", {}) if p not in reserved and p.isidentifier())

    def __init__(self: GenActionOperator, **kwargs: Any) -> None:
        values = {name: kwargs.pop(name, None) for name in fields}
        GenActionOperator.__init__(self, action=spec.id, **kwargs)
        for name, value in values.items():
            setattr(self, name, value)

    def arguments(self: GenActionOperator) -> dict[str, Any]:
        merged = dict(self.input or {})
        merged.update({name: getattr(self, name) for name in fields if getattr(self, name) is not None})
        return merged

    base = inspect.signature(GenActionOperator.__init__)
    params = [p for p in base.parameters.values() if p.name not in ("action", "kwargs")]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in fields]
    params.append(base.parameters["kwargs"])
    __init__.__signature__ = base.replace(parameters=params)  # type: ignore[attr-defined]

    name = operator_name(spec.id)
    cls = type(name, (GenActionOperator,), {
        "__init__": __init__,
        "arguments": arguments,
        "template_fields": ("input", *fields),
        "__doc__": f"{spec.title}: {spec.description}\n\nKeyword arguments (templated): {', '.join(fields) or 'none'}.",
        "__module__": "gen_nodes.airflow",
    })
    cls.__qualname__ = name
    return cls


_GENERATED: dict[str, type[GenActionOperator]] = {}


def generated_operators() -> dict[str, type[GenActionOperator]]:
    """``Gen<Action>Operator`` for every action in the registry, plugin actions included (built once)."""
    if not _GENERATED:
        for spec in default_registry():
            _GENERATED[operator_name(spec.id)] = operator_class(spec)
    return _GENERATED
