"""Runs DAG files with Airflow's ``dag.test()`` and writes what happened as JSON.

Run by ``test_airflow.py`` in a subprocess, with ``AIRFLOW_HOME`` and the ``gen``
connections in its environment (Airflow's global state stays out of pytest)::

    python tests/airflow_runner.py OUT.json DAG_FILE...

For each DAG: every task instance's state, try number and XCom return value, and
its earlier tries (with the retry delay a retry policy set, ``retry_delay_override``).
Also the ``gen_default`` connection's test (``GenHook.test_connection``) and one
with a wrong key (``gen_wrong_key``), what the providers manager knows of the
``gen`` connection type, a revoke operator made without confirmation, and the
Variables the DAGs set (the test needs their values to look for leaks).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path


def run_dag(path: str) -> tuple[str, dict]:
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    run = dag.test()
    return dag.dag_id, {"state": str(run.state), "run_id": run.run_id, "tasks": _tasks(run)}


def _tasks(run) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = {
            (row.task_id, row.map_index): XComModel.deserialize_value(row)
            for row in session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, key="return_value")
        }
        tasks = {}
        for ti in run.get_task_instances(session=session):
            name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tasks[name] = {"state": str(ti.state), "try_number": ti.try_number,
                           "xcom": xcoms.get((ti.task_id, ti.map_index)),
                           "earlier_tries": _earlier_tries(session, ti)}
    return tasks


def _earlier_tries(session, ti) -> list[dict]:
    from airflow.models.taskinstancehistory import TaskInstanceHistory

    rows = session.query(TaskInstanceHistory).filter_by(
        dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index)
    return [{"try_number": row.try_number, "state": str(row.state), "retry_delay_override": row.retry_delay_override,
             "retry_reason": row.retry_reason} for row in sorted(rows, key=lambda row: row.try_number)]


def _variables() -> dict:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        return {row.key: row.val for row in session.query(Variable)}


def _unconfirmed_revoke() -> str:
    from gen_nodes.airflow import GenRevokeApiKeyOperator

    try:
        GenRevokeApiKeyOperator(task_id="revoke_unconfirmed", id=1)
    except ValueError as exc:
        return str(exc)
    return "accepted"


def _provider() -> dict:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    hook = manager.hooks["gen"]
    return {"hook": f"{hook.hook_class_name}", "package": hook.package_name, "conn_id_attribute": hook.connection_id_attribute_name,
            "field_behaviour": manager.field_behaviours.get("gen")}


def main(out: str, *dag_files: str) -> None:
    from gen_nodes.airflow import GenHook

    results = {
        "connection_test": {conn: list(GenHook(conn).test_connection()) for conn in ("gen_default", "gen_wrong_key")},
        "unconfirmed_revoke": _unconfirmed_revoke(),
        "provider": _provider(),
        "dags": dict(run_dag(path) for path in dag_files),
    }
    results["variables"] = _variables()
    Path(out).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:])
