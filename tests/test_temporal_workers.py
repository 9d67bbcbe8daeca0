"""Two Temporal worker processes on one task queue, sharing a Redis store, one killed mid-create.

The deployment docs/deployment.md describes: two real OS processes (``tests/temporal_worker.py``)
poll one task queue of a real Temporal dev server, with ``GEN_NODES_STORE=redis://...`` and
the same ``GEN_NODES_STATE_SECRET``. The worker whose create has reached GEN and stored its
result is SIGKILLed before it answers Temporal; the retry runs on the other worker and must
return that stored result, leaving exactly one key at GEN. The event history must hold no
plain-text token, whether the token goes to a file (no payload codec) or is revealed under
the encrypting payload codec (``GEN_NODES_TEMPORAL_SECRET``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.history.v1 import History
from temporalio.client import Client

from gen_nodes.temporal import data_converter
from test_temporal import key_names, loop, temporal  # noqa: F401  (fixtures: one dev server per module)

pytestmark = pytest.mark.deployment

WORKER = Path(__file__).with_name("temporal_worker.py")
CODEC_SECRET = "a codec secret of more than sixteen characters"


def start_worker(tmp_path: Path, address: str, queue: str, name: str, env: dict) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")
    env = dict(env, GEN_NODES_SECRETS_FOLDER=str(tmp_path / f"secrets-{name}"))
    return subprocess.Popen([sys.executable, str(WORKER), address, queue, name], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def wait_for(path: Path, workers: list[subprocess.Popen], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        assert all(w.poll() is None for w in workers), f"a worker exited early; its log: {path.parent}/worker-*.log"
        time.sleep(0.05)
    raise AssertionError(f"no worker finished a create within {timeout} s")


def worker_env(sandbox, redis_db: str, hold_file: Path, codec: bool) -> dict:
    env = dict(os.environ, GEN_API_KEY=sandbox.api_key, GEN_BASE_URL=sandbox.base_url, GEN_NODES_STORE=redis_db,
               GEN_NODES_STATE_SECRET="one state secret shared by every worker",
               GEN_NODES_SECRET_POLICY="reveal" if codec else "file", GEN_TEST_HOLD_FILE=str(hold_file))
    env.pop("GEN_NODES_TEMPORAL_SECRET", None)
    if codec:
        env["GEN_NODES_TEMPORAL_SECRET"] = CODEC_SECRET
    return env


def redis_bytes(url: str) -> bytes:
    """Every value in the shared store, to look for a plain-text token there too."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return b"".join(client.dump(key) or b"" for key in client.scan_iter())
    finally:
        client.close()


@pytest.mark.parametrize("codec", [False, True], ids=["token-to-file", "token-revealed-under-codec"])
def test_a_create_retried_on_the_other_worker_after_a_kill_returns_the_stored_result(
        loop, temporal, tmp_path, sandbox, redis_db, codec):  # noqa: F811
    address = temporal.client.service_client.config.target_host
    queue, run_id, hold_file = f"gen-{uuid.uuid4().hex}", f"wf-{uuid.uuid4().hex}", tmp_path / "held-by"
    env = worker_env(sandbox, redis_db, hold_file, codec)
    workers = {name: start_worker(tmp_path, address, queue, name, env) for name in ("worker-a", "worker-b")}
    try:
        client = Client(temporal.client.service_client, namespace=temporal.client.namespace,
                        data_converter=data_converter(CODEC_SECRET)) if codec else temporal.client
        handle = loop.run(client.start_workflow("GenCreateOnce", "two-workers", id=run_id, task_queue=queue))
        held_pid = int(wait_for(hold_file, list(workers.values())))
        [held] = [name for name, proc in workers.items() if proc.pid == held_pid]
        assert len(key_names(sandbox, "two-workers")) == 1  # GEN acted before the kill
        os.kill(held_pid, signal.SIGKILL)
        result = loop.run(handle.result(), timeout=90)
        history = loop.run(handle.fetch_history())
    finally:
        for proc in workers.values():
            proc.kill()
            proc.wait(10)

    [made] = key_names(sandbox, "two-workers")  # exactly one key, though the create ran on two workers
    assert result["id"] == made["id"]
    started = [e.activity_task_started_event_attributes for e in history.events
               if e.HasField("activity_task_started_event_attributes")]
    [finished] = started
    assert finished.attempt == 2 and finished.identity != held  # the retry ran on the other worker
    assert finished.last_failure.timeout_failure_info.timeout_type  # ... after the killed try timed out

    if codec:
        token = result["token"]
        assert "token_file" not in result
    else:
        token = Path(result["token_file"]).read_text().strip()
        assert token not in json.dumps(result)  # the result shows it masked
    assert len(token) > 20
    raw = History(events=history.events).SerializeToString() + history.to_json().encode()
    assert token.encode() not in raw and sandbox.api_key.encode() not in raw
    assert (b"two-workers" in raw) is not codec  # under the codec every payload is encrypted
    assert token.encode() not in redis_bytes(redis_db)  # sealed with GEN_NODES_STATE_SECRET in the store
    logs = b"".join((tmp_path / f"{name}.log").read_bytes() for name in workers)
    assert token.encode() not in logs and sandbox.api_key.encode() not in logs
