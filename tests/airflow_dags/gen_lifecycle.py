"""The API-key lifecycle as a DAG: list, create, rename, revoke, list; values pass by XCom (Jinja)."""

from datetime import datetime, timedelta

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException

from gen_nodes.airflow import (
    GenActionOperator,
    GenCreateApiKeyOperator,
    GenListApiKeysOperator,
    GenRevokeApiKeyOperator,
    GenUpdateApiKeyOperator,
)


class CreateThenCrash(GenCreateApiKeyOperator):
    """A create whose first try dies after GEN answered (as a worker would): Airflow retries it."""

    def execute(self, context):
        result = super().execute(context)
        if context["ti"].try_number == 1:
            raise AirflowException("simulated crash after GEN made the key")
        return result


KEY_ID = "{{ ti.xcom_pull(task_ids='create')['id'] }}"

with DAG("gen_lifecycle", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    before = GenListApiKeysOperator(task_id="list_before", status="active")
    create = GenCreateApiKeyOperator(task_id="create", name="airflow-ci", expires_in="30d", retries=2)
    rename = GenUpdateApiKeyOperator(task_id="rename", id=KEY_ID, name="airflow-ci-renamed")
    revoke = GenRevokeApiKeyOperator(task_id="revoke", id=KEY_ID, confirm_destructive=True)
    after = GenListApiKeysOperator(task_id="list_after", status="revoked")
    before >> create >> rename >> revoke >> after

    # The time filters (tests/key_age_support.py seeded the keys and moved the clock 40 days on).
    GenListApiKeysOperator(task_id="list_expiring", expiring_within="7d")
    GenListApiKeysOperator(task_id="list_unused", input={"unused_for": "30d"})

    # The secret to an Airflow Variable, read back by the next task (which prints nothing of it).
    to_variable = GenCreateApiKeyOperator(task_id="create_to_variable", name="airflow-variable",
                                          secret_policy="variable")

    @task
    def use_variable(created: dict) -> dict:
        from airflow.sdk import Variable

        from gen_nodes import GenClient, run
        from gen_nodes.airflow import GenHook

        token = Variable.get(created["token_variable"])
        with GenClient(api_key=token, base_url=GenHook().get_conn().base_url) as client:
            return {"signed_in_as": run("get_me", client=client)["id"]}

    use_variable(to_variable.output)

    # Airflow retries a create that had succeeded: the retry gets the stored result, not a new key.
    CreateThenCrash(task_id="create_then_crash", name="crash-after-create", retries=2, retry_delay=timedelta(0))

    # One key per mapped task instance: the map index is part of the step's identity.
    GenCreateApiKeyOperator.partial(task_id="create_mapped").expand(name=["mapped-0", "mapped-1"])

    # Any action by id, as a plugin action would be called.
    GenActionOperator(task_id="whoami", action="get_me")
