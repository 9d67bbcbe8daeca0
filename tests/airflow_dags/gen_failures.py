"""Failures and Airflow's retries, on a sandbox whose faults the test queued beforehand (conn gen_faulty).

The faults are matched in order (first POST: dropped after GEN acted; second POST: 429;
first GET /me: 503), so the two creates run one after the other whatever the first's end.
"""

from datetime import datetime, timedelta

from airflow.sdk import DAG

from gen_nodes.airflow import GenCreateApiKeyOperator, GenGetMeOperator, GenRevokeApiKeyOperator

FAST = {"retries": 2, "retry_delay": timedelta(0), "gen_conn_id": "gen_faulty"}

with DAG("gen_failures", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    # 404: fails at once, no retry.
    GenRevokeApiKeyOperator(task_id="revoke_missing", id=999999, confirm_destructive=True, **FAST)
    # The connection drops after GEN made the key: outcome_unknown, no retry, one key.
    dropped = GenCreateApiKeyOperator(task_id="create_dropped", name="dropped-create", **FAST)
    # A 429 on a create (GEN did not act): retried by Airflow, then made once.
    limited = GenCreateApiKeyOperator(task_id="create_rate_limited", name="rate-limited-create",
                                      trigger_rule="all_done", **FAST)
    # A 503: retried by Airflow, then answered.
    GenGetMeOperator(task_id="me_unavailable", **FAST)
    dropped >> limited
