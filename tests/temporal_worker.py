"""One Temporal worker process, as an operator runs several of them on one task queue.

Started by ``test_temporal_workers.py`` (twice, on one queue) as a real OS process::

    python tests/temporal_worker.py TEMPORAL_ADDRESS TASK_QUEUE WORKER_NAME

The rest comes from the environment, as on a deployed worker: ``GEN_API_KEY`` and
``GEN_BASE_URL``, ``GEN_NODES_STORE`` (a shared ``redis://`` store),
``GEN_NODES_STATE_SECRET`` (the same on every worker), ``GEN_NODES_SECRET_POLICY``
(``file`` or ``reveal``), ``GEN_NODES_SECRETS_FOLDER``, and ``GEN_NODES_TEMPORAL_SECRET``
when payloads are encrypted.

``GEN_TEST_HOLD_FILE``, the test's one hook: the first worker to finish a create (GEN
acted and the result is stored) writes its process id there and then hangs before it
answers Temporal, so the test can SIGKILL it in exactly that window. Every other try
answers at once. ``GenRotateOnce`` has no hook: the test delays the rotation's revoke in the
sandbox and kills the worker that sent it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from gen_nodes.temporal import activities, data_converter

CREATE = "gen.create_api_key"
#: One try's deadline: a killed worker's try is retried elsewhere this soon after it started.
TRY_TIMEOUT = timedelta(seconds=3)
RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=3)


@workflow.defn(name="GenCreateOnce")
class CreateOnce:
    """One create; a try that hears nothing for 3 s is retried (on whichever worker polls first)."""

    @workflow.run
    async def run(self, name: str) -> dict:
        return await workflow.execute_activity(CREATE, {"name": name}, start_to_close_timeout=TRY_TIMEOUT,
                                               retry_policy=RETRY)


@workflow.defn(name="GenRotateOnce")
class RotateOnce:
    """One rotation (create, then revoke), retried like the create above when a try hears nothing."""

    @workflow.run
    async def run(self, key_id: int) -> dict:
        return await workflow.execute_activity("gen.rotate_api_key", {"id": key_id}, start_to_close_timeout=TRY_TIMEOUT,
                                               retry_policy=RETRY)


def _hold_once_after_create(create: Any) -> Any:
    """``create``, except that the first finished try anywhere parks its worker before answering."""

    @activity.defn(name=CREATE)
    async def create_then_maybe_hold(input: dict[str, Any]) -> dict[str, Any]:
        output = await create(input)
        try:
            fd = os.open(os.environ["GEN_TEST_HOLD_FILE"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return output  # another try already held: this one answers
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        await asyncio.sleep(3600)  # the test kills this process here
        return output

    return create_then_maybe_hold


async def serve(address: str, queue: str, name: str) -> None:
    sealed = {"data_converter": data_converter()} if "GEN_NODES_TEMPORAL_SECRET" in os.environ else {}
    client = await Client.connect(address, **sealed)
    acts = activities(store=os.environ["GEN_NODES_STORE"], secret_policy=os.environ["GEN_NODES_SECRET_POLICY"],
                      secrets_folder=os.environ["GEN_NODES_SECRETS_FOLDER"])
    acts = [_hold_once_after_create(act) if activity._Definition.must_from_callable(act).name == CREATE else act
            for act in acts]
    worker = Worker(client, task_queue=queue, workflows=[CreateOnce, RotateOnce], activities=acts, identity=name,
                    workflow_runner=UnsandboxedWorkflowRunner())
    print(f"{name} polling {queue}", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(serve(*sys.argv[1:4]))
