"""Two Temporal worker processes on one task queue, sharing a Redis store, one killed mid-create.

The deployment docs/deployment.md describes: two real OS processes (``tests/temporal_worker.py``)
poll one task queue of a real Temporal dev server, with ``GEN_NODES_STORE=redis://...`` and
the same ``GEN_NODES_STATE_SECRET``. The worker whose create has reached GEN and stored its
result is SIGKILLed before it answers Temporal; the retry runs on the other worker and must
return that stored result, leaving exactly one key at GEN. The event history must hold no
plain-text token, whether the token goes to a file (no payload codec) or is revealed under
the encrypting payload codec (``GEN_NODES_TEMPORAL_SECRET``).

The rotation (issue 17's done-when): the worker running ``gen.rotate_api_key`` is SIGKILLed
between its create and its revoke (the sandbox holds the revoke); the other worker's retry
resumes from the per-step records and ends with one new key and the old one revoked.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from temporalio.api.history.v1 import History
from temporalio.client import Client

from gen_nodes.client.http import GenClient
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


@contextlib.contextmanager
def two_workers(tmp_path: Path, address: str, queue: str, env: dict) -> Iterator[dict[str, subprocess.Popen]]:
    """``worker-a`` and ``worker-b`` polling ``queue``; both are gone when the block ends."""
    workers = {name: start_worker(tmp_path, address, queue, name, env) for name in ("worker-a", "worker-b")}
    try:
        yield workers
    finally:
        for proc in workers.values():
            proc.kill()
            proc.wait(10)


def kill_then_finish(loop: Any, handle: Any, pid: int) -> tuple[dict, Any]:
    """SIGKILL the worker ``pid`` mid-activity, then the workflow's result and event history."""
    os.kill(pid, signal.SIGKILL)
    return loop.run(handle.result(), timeout=90), loop.run(handle.fetch_history())


def sealed_client(temporal: Any, codec: bool) -> Client:
    """The test server's client, with the encrypting payload codec when ``codec``."""
    if not codec:
        return temporal.client
    return Client(temporal.client.service_client, namespace=temporal.client.namespace,
                  data_converter=data_converter(CODEC_SECRET))


def wait_until(found: Callable[[], Any], workers: list[subprocess.Popen], what: str, timeout: float = 60) -> Any:
    """``found()`` once it is truthy; fails if a worker exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := found():
            return value
        assert all(w.poll() is None for w in workers), "a worker exited early; see its log worker-*.log"
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def wait_for(path: Path, workers: list[subprocess.Popen], timeout: float = 60) -> str:
    return wait_until(lambda: path.exists() and path.read_text(), workers, "no worker finished a create", timeout)


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
    with two_workers(tmp_path, address, queue, env) as workers:
        handle = loop.run(sealed_client(temporal, codec).start_workflow("GenCreateOnce", "two-workers", id=run_id, task_queue=queue))
        held_pid = int(wait_for(hold_file, list(workers.values())))
        [held] = [name for name, proc in workers.items() if proc.pid == held_pid]
        assert len(key_names(sandbox, "two-workers")) == 1  # GEN acted before the kill
        result, history = kill_then_finish(loop, handle, held_pid)

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


@pytest.mark.parametrize("codec", [False, True], ids=["token-to-file", "token-revealed-under-codec"])
def test_a_rotation_killed_between_its_create_and_its_revoke_ends_with_one_new_key_and_the_old_revoked(
        loop, temporal, tmp_path, sandbox, redis_db, codec):  # noqa: F811
    address = temporal.client.service_client.config.target_host
    queue, run_id = f"gen-{uuid.uuid4().hex}", f"wf-{uuid.uuid4().hex}"
    old = sandbox.store.create_key(sandbox.user["id"], "rotated-twice-over", expires_in=7 * 86400)[0]
    revoke = f"/persisted_tokens/{old['id']}/revoke"
    sandbox.inject_fault(method="DELETE", path=revoke, delay=30)  # the first revoke hangs; the kill comes first
    env = worker_env(sandbox, redis_db, tmp_path / "no-hold", codec)
    with two_workers(tmp_path, address, queue, env) as workers:
        handle = loop.run(sealed_client(temporal, codec).start_workflow("GenRotateOnce", old["id"], id=run_id,
                                                                        task_queue=queue))
        wait_until(lambda: sandbox.requests_seen("DELETE", revoke), list(workers.values()), "no revoke began")
        assert len(sandbox.requests_seen("POST", "/persisted_tokens")) == 1  # the new key exists; the revoke hangs
        [pending] = loop.run(handle.describe()).raw_description.pending_activities
        killed = pending.last_worker_identity
        result, history = kill_then_finish(loop, handle, workers[killed].pid)

    assert result["status"] == "succeeded" and result["old_key"]["id"] == old["id"]
    assert result["revoked"] == {"id": old["id"], "revoked": True}
    assert len(sandbox.requests_seen("POST", "/persisted_tokens")) == 1  # the retry made no second key
    # The retry sent the revoke again: the dead try's may never have reached GEN, and a revoke is idempotent.
    assert len(sandbox.requests_seen("DELETE", revoke)) == 2
    keys = {key["id"]: key for key in sandbox.store.list_keys(sandbox.user["id"]) if key["name"] == old["name"]}
    new_id = result["new_key"]["id"]
    assert set(keys) == {old["id"], new_id}
    assert (keys[old["id"]]["status"], keys[new_id]["status"]) == ("revoked", "active")
    [finished] = [e.activity_task_started_event_attributes for e in history.events
                  if e.HasField("activity_task_started_event_attributes")]
    assert finished.attempt == 2 and finished.identity != killed  # the retry ran on the other worker

    # The new secret was delivered by the worker that finished: to its own file, or in the sealed result.
    if codec:
        token = result["new_key"]["token"]
        assert "token_file" not in result["new_key"]
    else:
        token_file = Path(result["new_key"]["token_file"])
        assert token_file.parent.name == f"secrets-{finished.identity}"
        token = token_file.read_text().strip()
    with GenClient(api_key=token, base_url=sandbox.base_url) as client:
        assert client.request("GET", "/me").data["id"] == sandbox.user["id"]
    raw = History(events=history.events).SerializeToString() + history.to_json().encode()
    assert token.encode() not in raw and sandbox.api_key.encode() not in raw  # never in the event history
    assert (old["name"].encode() in raw) is not codec  # under the codec every payload is encrypted
    assert token.encode() not in redis_bytes(redis_db)
    logs = b"".join((tmp_path / f"{name}.log").read_bytes() for name in workers)
    assert token.encode() not in logs and sandbox.api_key.encode() not in logs
