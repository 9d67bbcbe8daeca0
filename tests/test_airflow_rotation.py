"""``GenRotateApiKeyOperator`` in a real Airflow 3: a rotation, a partial one and the DAG's branches on it.

``tests/airflow_dags/gen_rotation.py`` runs through ``tests/airflow_runner.py`` (``dag.test()``, in a
subprocess, as in ``test_airflow.py``, whose migrated ``AIRFLOW_HOME`` fixture this module reuses) against
one sandbox. The sandbox counts the requests it receives, so each rotation is seen to send one create
and one revoke; a 503 on the second key's revoke makes that rotation partial.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gen_nodes.client.http import GenClient
from gen_nodes.core.times import moment
from gen_nodes.sandbox import Sandbox
from test_airflow import DAGS, RUNNER, WRONG_KEY, _connection, airflow_env  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def rotation(airflow_env):  # noqa: F811
    root = Path(airflow_env["AIRFLOW_HOME"]).parent
    with Sandbox() as sandbox:
        user = sandbox.user["id"]
        old = sandbox.store.create_key(user, "rotated-ok", expires_in=30 * 86400)[0]
        partial_old = sandbox.store.create_key(user, "rotated-partial-old")[0]
        crash_old = sandbox.store.create_key(user, "rotated-then-crashed")[0]
        sandbox.inject_fault(503, method="DELETE", path=f"/persisted_tokens/{partial_old['id']}/revoke",
                             body={"error": "Down for maintenance"})
        env = dict(airflow_env, AIRFLOW_CONN_GEN_ROTATION=_connection(sandbox, root / "rotation-records.db"),
                   AIRFLOW_CONN_GEN_DEFAULT=_connection(sandbox, root / "rotation-records.db"),
                   AIRFLOW_CONN_GEN_WRONG_KEY=_connection(sandbox, root / "rotation-records.db", WRONG_KEY),
                   AIRFLOW_VAR_GEN_ROTATE_ID=str(old["id"]), AIRFLOW_VAR_GEN_ROTATE_PARTIAL_ID=str(partial_old["id"]),
                   AIRFLOW_VAR_GEN_ROTATE_CRASH_ID=str(crash_old["id"]))
        out = root / "rotation-results.json"
        done = subprocess.run([sys.executable, str(RUNNER), str(out), str(DAGS / "gen_rotation.py")],
                              env=env, capture_output=True, text=True, timeout=900, cwd=root)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-5000:]
        results = json.loads(out.read_text())
        logs = Path(env["AIRFLOW_HOME"]) / "logs"
        files = {str(p): p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()} if logs.exists() else {}
        yield {"log_files": files, "tasks": results["dags"]["gen_rotation"]["tasks"], "variables": results["variables"],
               "output": output, "sandbox": sandbox, "old": old, "partial_old": partial_old, "crash_old": crash_old,
               "secrets": Path(env["GEN_NODES_SECRETS_DIR"])}


def statuses(sandbox: Sandbox) -> dict:
    return {key["id"]: key for key in sandbox.store.list_keys(sandbox.user["id"])}


def test_a_rotation_sends_one_create_and_one_revoke_and_the_new_key_works(rotation):
    sandbox, old, tasks = rotation["sandbox"], rotation["old"], rotation["tasks"]
    rotated = tasks["rotate"]
    assert rotated["state"] == "success" and rotated["xcom"]["status"] == "succeeded"
    new = rotated["xcom"]["new_key"]
    keys = statuses(sandbox)
    assert keys[old["id"]]["status"] == "revoked" and keys[new["id"]]["status"] == "active"
    assert keys[new["id"]]["name"] == "rotated-ok"  # the old key's name, and its 30-day lifetime
    assert moment(keys[new["id"]]["expires_at"]) - moment(keys[new["id"]]["created_at"]) == timedelta(days=30)
    creates = [k for k in keys.values() if k["name"] == "rotated-ok"]
    assert len(creates) == 2  # the old key and exactly one new one
    assert sandbox.requests_seen("DELETE", f"/persisted_tokens/{old['id']}/revoke") == [
        ("DELETE", f"/persisted_tokens/{old['id']}/revoke")]
    # The secret went to a private file (the default policy); the next task signed in with it.
    token = Path(new["token_file"]).read_text().strip()
    assert token not in json.dumps(rotated["xcom"])
    assert tasks["sign_in_with_new_key"]["xcom"] == {"status": "succeeded", "signed_in_as": sandbox.user["id"]}
    with GenClient(api_key=token, base_url=sandbox.base_url) as client:
        assert client.request("GET", "/me").data["id"] == sandbox.user["id"]


def test_a_partial_rotation_ends_skipped_keeps_the_new_key_and_the_dag_branches_on_it(rotation):
    sandbox, partial_old, tasks = rotation["sandbox"], rotation["partial_old"], rotation["tasks"]
    partial = tasks["rotate_partial"]
    assert partial["state"] == "skipped"  # neither success nor failure
    out = partial["xcom"]
    assert out["status"] == "partial" and out["failed_step"] == "revoke" and out["error"]["status"] == 503
    assert f"revoke key {partial_old['id']}" in out["next"]
    # The new secret is not lost: the variable policy put it in an Airflow Variable, found at any depth.
    new = out["new_key"]
    variable = new["token_variable"]
    assert variable == f"gen_api_key_{new['id']}_token" and "…" in new["token"]
    with GenClient(api_key=rotation["variables"][variable], base_url=sandbox.base_url) as client:
        assert client.request("GET", "/me").data["id"] == sandbox.user["id"]
    # The branches: only the all_skipped task revoked the old key; none_failed ran; all_success did not.
    assert tasks["revoke_old_after_partial"]["state"] == "success"
    assert tasks["revoke_old_after_partial"]["xcom"] == {"id": str(partial_old["id"]), "revoked": True}
    assert tasks["after_full_rotation"]["state"] == "skipped"
    assert tasks["new_key_either_way"]["xcom"] == {"status": "partial", "new_key_id": new["id"]}
    assert statuses(sandbox)[partial_old["id"]]["status"] == "revoked"
    assert [k["name"] for k in statuses(sandbox).values()].count("rotated-partial") == 1
    revokes = sandbox.requests_seen("DELETE", f"/persisted_tokens/{partial_old['id']}/revoke")
    assert len(revokes) == 2  # the rotation's (503), then the branch's
    # The task log says partial, the failed step and what to do next.
    lines = rotation["output"].splitlines()
    [logged] = [line for line in lines if "GEN rotate_api_key ended partial:" in line]
    assert "step revoke failed (Down for maintenance)" in logged and f"revoke key {partial_old['id']}" in logged
    assert any("Skipping task" in line and "ended partial at step revoke" in line for line in lines)


def test_a_rotation_retried_by_airflow_after_it_finished_returns_the_stored_result(rotation):
    sandbox, crash_old = rotation["sandbox"], rotation["crash_old"]
    task = rotation["tasks"]["rotate_then_crash"]
    assert (task["state"], task["try_number"]) == ("success", 2) and task["xcom"]["status"] == "succeeded"
    made = [k for k in statuses(sandbox).values() if k["name"] == "rotated-then-crashed"]
    assert {k["id"]: k["status"] for k in made} == {crash_old["id"]: "revoked", task["xcom"]["new_key"]["id"]: "active"}
    assert len(sandbox.requests_seen("DELETE", f"/persisted_tokens/{crash_old['id']}/revoke")) == 1


def test_every_rotation_sent_exactly_one_create_and_no_token_reached_the_logs(rotation):
    sandbox = rotation["sandbox"]
    assert len(sandbox.requests_seen("POST", "/persisted_tokens")) == 3  # one per rotation, none retried
    tokens = [p.read_text().strip() for p in rotation["secrets"].iterdir()] + list(rotation["variables"].values())
    assert len(tokens) == 3
    xcoms = json.dumps([task["xcom"] for task in rotation["tasks"].values()])
    for where, text in {"task output": rotation["output"], "XCom": xcoms, **rotation["log_files"]}.items():
        leaked = [secret[-6:] for secret in [sandbox.api_key, *tokens] if secret in text]
        assert not leaked, f"secrets ending {leaked} in {where}"


def test_a_rotation_operator_needs_the_dags_confirmation(airflow_env):  # noqa: F811
    made = subprocess.run([sys.executable, "-c", "from gen_nodes.airflow import GenRotateApiKeyOperator\n"
                           "GenRotateApiKeyOperator(task_id='rotate', id=1)"],
                          env=airflow_env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 1
    assert "rotate_api_key is destructive and irreversible; pass confirm_destructive=True" in made.stderr
