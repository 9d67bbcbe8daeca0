"""The key lifecycle under a real scheduler (``tests/test_airflow_scheduler.py``): create, rename, revoke.

Each run names its key after its conf's ``label``. ``create_and_print`` is a careless DAG
author's task: it logs and prints the API key and the token it made; Airflow's secrets masker
must show ``***``. A run triggered with ``{"hold": true}`` parks its create's first try once GEN
answered and the result is stored in the idempotency records: the try writes its process id to
``$GEN_TEST_HOLD_FILE`` and sleeps, so the test can SIGKILL it in exactly that window. Airflow
then retries the task, and the retry must return the stored result.
"""

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, BaseHook

from gen_nodes.airflow import GenCreateApiKeyOperator, GenRevokeApiKeyOperator, GenUpdateApiKeyOperator


class CreateThenHold(GenCreateApiKeyOperator):
    """A create whose first try, in a run that asks for it, hangs after GEN answered (the test kills it there)."""

    def execute(self, context):
        result = super().execute(context)
        if context["dag_run"].conf.get("hold") and context["ti"].try_number == 1:
            hold_file = os.environ["GEN_TEST_HOLD_FILE"]
            with open(f"{hold_file}.tmp", "w") as pid_file:
                pid_file.write(str(os.getpid()))
            os.rename(f"{hold_file}.tmp", hold_file)  # the test never reads a half-written pid
            time.sleep(3600)
        return result


class CreateAndPrint(GenCreateApiKeyOperator):
    """A create followed by what must never be done: the key and the new token, logged and printed."""

    def execute(self, context):
        result = super().execute(context)
        token = Path(result["token_file"]).read_text().strip()
        self.log.info("careless log: key %s, token %s", BaseHook.get_connection("gen_default").password, token)
        print(f"careless print: token {token}")
        return result


NAME = "scheduled-{{ dag_run.conf.get('label', 'plain') }}"
KEY_ID = "{{ ti.xcom_pull(task_ids='create')['id'] }}"
RETRY = {"retries": 1, "retry_delay": timedelta(seconds=1)}

with DAG("gen_scheduled", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, default_args=RETRY) as dag:
    create = CreateThenHold(task_id="create", name=NAME, expires_in="30d")
    rename = GenUpdateApiKeyOperator(task_id="rename", id=KEY_ID, name=NAME + "-renamed")
    revoke = GenRevokeApiKeyOperator(task_id="revoke", id=KEY_ID, confirm_destructive=True)
    create >> rename >> revoke
    CreateAndPrint(task_id="create_and_print", name="printed-{{ dag_run.conf.get('label', 'plain') }}")
