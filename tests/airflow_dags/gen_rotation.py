"""Key rotation as a DAG: one rotation that succeeds, one that ends partial, and the branches on each.

Run by ``tests/test_airflow_rotation.py`` on connection ``gen_rotation``; the keys to rotate come
from Airflow Variables the test sets (``AIRFLOW_VAR_GEN_ROTATE_ID``, ``..._PARTIAL_ID``, ``..._CRASH_ID``).
The test makes the sandbox answer 503 to the partial key's first revoke.

A partial rotation ends its task ``skipped`` with its output kept as the XCom: tasks that need the
whole rotation (default trigger rule) are skipped too, a task with ``all_skipped`` runs only then
(here: it revokes the old key again), and one with ``none_failed`` runs either way (the new key works).
"""

from datetime import datetime, timedelta

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException

from gen_nodes.airflow import GenRevokeApiKeyOperator, GenRotateApiKeyOperator

CONN = {"gen_conn_id": "gen_rotation"}


class RotateThenCrash(GenRotateApiKeyOperator):
    """A rotation whose first try dies after GEN answered both steps: Airflow's retry must send nothing."""

    def execute(self, context):
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise AirflowException("simulated crash after the rotation")
        return result


PARTIAL_OLD_ID = "{{ ti.xcom_pull(task_ids='rotate_partial')['old_key']['id'] }}"

with DAG("gen_rotation", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    rotate = GenRotateApiKeyOperator(task_id="rotate", id="{{ var.value.gen_rotate_id }}",
                                     confirm_destructive=True, **CONN)

    @task
    def sign_in_with_new_key(rotated: dict) -> dict:
        """What a deploy step does with the new key: reads its secret from the file and uses it."""
        from pathlib import Path

        from gen_nodes import GenClient, run
        from gen_nodes.airflow import GenHook

        token = Path(rotated["new_key"]["token_file"]).read_text().strip()
        with GenClient(api_key=token, base_url=GenHook("gen_rotation").get_conn().base_url) as client:
            return {"status": rotated["status"], "signed_in_as": run("get_me", client=client)["id"]}

    sign_in_with_new_key(rotate.output)

    partial = GenRotateApiKeyOperator(task_id="rotate_partial", id="{{ var.value.gen_rotate_partial_id }}",
                                      name="rotated-partial", secret_policy="variable", confirm_destructive=True,
                                      **CONN)
    # Only after a partial rotation: revoke the old key once more (the rotation's own revoke failed).
    finish = GenRevokeApiKeyOperator(task_id="revoke_old_after_partial", id=PARTIAL_OLD_ID, trigger_rule="all_skipped",
                                     confirm_destructive=True, **CONN)

    @task
    def after_full_rotation() -> str:
        """Needs the whole rotation (default trigger rule): skipped after a partial one."""
        return "rotated"

    @task(trigger_rule="none_failed")
    def new_key_either_way(rotated: dict) -> dict:
        """Runs after a succeeded or a partial rotation: the new key works in both."""
        return {"status": rotated["status"], "new_key_id": rotated["new_key"]["id"]}

    partial >> [finish, after_full_rotation()]
    new_key_either_way(partial.output)

    # Airflow retries a rotation that had finished: the retry gets the stored result, no second key or revoke.
    RotateThenCrash(task_id="rotate_then_crash", id="{{ var.value.gen_rotate_crash_id }}", retries=2,
                    retry_delay=timedelta(0), confirm_destructive=True, **CONN)
