"""The Airflow provider with a real Airflow 3: ``airflow db migrate`` on SQLite, DAGs run by ``dag.test()``.

Airflow runs in subprocesses (it configures logging and a database for its whole
process), in a temporary ``AIRFLOW_HOME``, against sandboxes served from this
process. One run of ``tests/airflow_runner.py`` executes ``gen_lifecycle`` and ``gen_failures`` of
``tests/airflow_dags/`` (about 40 s); the tests below read what it left: task
states and try numbers, XComs, the keys each sandbox holds, the secrets folder,
the task logs (``dag.test()`` runs tasks in its own process, so their log lines
are its output; any file under ``$AIRFLOW_HOME/logs`` is read too). The same provider under a
real scheduler, api-server and dag-processor: ``tests/test_airflow_scheduler.py``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gen_nodes.client.http import GenClient
from gen_nodes.sandbox import Sandbox
from key_age_support import names, seed_key_ages

HERE = Path(__file__).resolve().parent
DAGS = HERE / "airflow_dags"
RUNNER = HERE / "airflow_runner.py"
WRONG_KEY = "gen_pat_wrongwrongwrongwrongwrong00"


@dataclass
class AirflowRun:
    results: dict
    output: str
    log_files: dict[str, str]
    ok: Sandbox
    faulty: Sandbox
    secrets: Path

    def tasks(self, dag: str) -> dict:
        return self.results["dags"][dag]["tasks"]

    def keys(self, sandbox: Sandbox, name: str | None = None) -> list[dict]:
        listed = sandbox.store.list_keys(sandbox.user["id"])
        return [key for key in listed if name is None or key["name"] == name]

    def failure(self, action: str, error_type: str) -> dict:
        """The error JSON an operator logged for a failed ``action`` of type ``error_type``."""
        marker = f"GEN {action} failed: "
        for line in self.output.splitlines():
            if marker in line:
                text = line.split(marker, 1)[1]
                error, _ = json.JSONDecoder().raw_decode(text)
                if error["type"] == error_type:
                    return error
        raise AssertionError(f"no logged {error_type} failure of {action}")


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEN_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(root / "home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        GEN_NODES_SECRETS_DIR=str(root / "secrets"),
        XDG_STATE_HOME=str(root / "state"),
        PYTHONWARNINGS="ignore",
    )
    return env


def _connection(sandbox: Sandbox, records: Path, key: str | None = None) -> str:
    return json.dumps({"conn_type": "gen", "host": sandbox.base_url, "password": key or sandbox.api_key,
                       "extra": {"idempotency_store": f"sqlite:///{records}"}})


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """A fresh AIRFLOW_HOME with its SQLite metadata database migrated."""
    env = _env(tmp_path_factory.mktemp("airflow"))
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    return env


@pytest.fixture(scope="module")
def airflow(airflow_env) -> AirflowRun:
    root = Path(airflow_env["AIRFLOW_HOME"]).parent
    with Sandbox() as ok, Sandbox() as faulty:
        seed_key_ages(ok)
        # Matched in order, see tests/airflow_dags/gen_failures.py.
        faulty.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
        faulty.inject_fault(429, method="POST", path="/persisted_tokens", body={"error": "Slow down"},
                            headers={"Retry-After": "1"})
        faulty.inject_fault(503, method="GET", path="/me", body={"error": "Down for maintenance"})
        env = dict(
            airflow_env,
            AIRFLOW_CONN_GEN_DEFAULT=_connection(ok, root / "records.db"),
            AIRFLOW_CONN_GEN_FAULTY=_connection(faulty, root / "records.db"),
            AIRFLOW_CONN_GEN_WRONG_KEY=_connection(ok, root / "records.db", WRONG_KEY),
        )
        out = root / "results.json"
        done = subprocess.run(
            [sys.executable, str(RUNNER), str(out), str(DAGS / "gen_lifecycle.py"), str(DAGS / "gen_failures.py")],
            env=env, capture_output=True, text=True, timeout=900, cwd=root,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-5000:]
        logs = Path(env["AIRFLOW_HOME"]) / "logs"
        files = {str(p): p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()} if logs.exists() else {}
        yield AirflowRun(json.loads(out.read_text()), output, files, ok, faulty, root / "secrets")


def test_airflow_lists_the_provider_and_its_connection_type(airflow_env, airflow):
    listed = subprocess.run([sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
                            env=airflow_env, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(listed.stdout[listed.stdout.index("["):])}
    assert providers["gen-nodes"]["version"] == __import__("gen_nodes").__version__

    provider = airflow.results["provider"]
    assert provider["hook"] == "gen_nodes.airflow.hooks.GenHook" and provider["conn_id_attribute"] == "gen_conn_id"
    assert provider["field_behaviour"]["relabeling"] == {"password": "API key", "host": "Base URL"}


def test_connection_test_calls_get_me_and_explains_a_wrong_key(airflow):
    tested = airflow.results["connection_test"]
    assert tested["gen_default"] == [True, f"Connected to GEN as user {airflow.ok.user['id']}."]
    ok, message = tested["gen_wrong_key"]
    assert not ok and "connection 'gen_wrong_key'" in message and WRONG_KEY not in message


def test_lifecycle_runs_with_values_passed_by_xcom(airflow):
    tasks = airflow.tasks("gen_lifecycle")
    chain = ["list_before", "create", "rename", "revoke", "list_after"]
    assert {name: tasks[name]["state"] for name in chain} == dict.fromkeys(chain, "success")
    created = tasks["create"]["xcom"]
    key_id = created["id"]
    assert key_id not in [k["id"] for k in tasks["list_before"]["xcom"]["api_keys"]]
    assert tasks["rename"]["xcom"]["id"] == key_id and tasks["rename"]["xcom"]["name"] == "airflow-ci-renamed"
    assert tasks["revoke"]["xcom"] == {"id": str(key_id), "revoked": True}  # the id came through Jinja as text
    revoked = {k["id"]: k for k in tasks["list_after"]["xcom"]["api_keys"]}
    assert revoked[key_id]["name"] == "airflow-ci-renamed" and revoked[key_id]["status"] == "revoked"
    assert tasks["whoami"]["xcom"]["id"] == airflow.ok.user["id"]  # GenActionOperator(action="get_me")


def test_the_time_filters_run_as_operator_fields_or_input(airflow):
    tasks = airflow.tasks("gen_lifecycle")
    assert names(tasks["list_expiring"]["xcom"]) == ["soon"]
    assert names(tasks["list_unused"]["xcom"]) == ["old idle"]


def test_created_secret_goes_to_a_private_file_not_to_xcom(airflow):
    created = airflow.tasks("gen_lifecycle")["create_mapped[0]"]["xcom"]  # a key the DAG does not revoke
    path = Path(created["token_file"])
    assert path.parent == airflow.secrets and stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert token not in json.dumps(created) and created["token"].endswith(token[-4:]) and "…" in created["token"]
    with GenClient(api_key=token, base_url=airflow.ok.base_url) as client:  # the file holds the working key
        assert client.request("GET", "/me").data["id"] == airflow.ok.user["id"]


def test_variable_policy_puts_the_secret_in_an_airflow_variable(airflow):
    tasks = airflow.tasks("gen_lifecycle")
    created = tasks["create_to_variable"]["xcom"]
    name = created["token_variable"]
    assert name == f"gen_api_key_{created['id']}_token" and "token_file" not in created
    assert airflow.results["variables"][name] not in json.dumps(created)
    assert tasks["use_variable"]["xcom"] == {"signed_in_as": airflow.ok.user["id"]}  # the next task signed in with it


def test_a_create_retried_after_gen_acted_returns_the_stored_result(airflow):
    task = airflow.tasks("gen_lifecycle")["create_then_crash"]
    assert (task["state"], task["try_number"]) == ("success", 2)
    made = airflow.keys(airflow.ok, "crash-after-create")
    assert [key["id"] for key in made] == [task["xcom"]["id"]]  # one key, the first try's


def test_mapped_creates_make_one_key_per_map_index(airflow):
    tasks = airflow.tasks("gen_lifecycle")
    assert tasks["create_mapped[0]"]["state"] == tasks["create_mapped[1]"]["state"] == "success"
    assert tasks["create_mapped[0]"]["xcom"]["id"] != tasks["create_mapped[1]"]["xcom"]["id"]
    assert len(airflow.keys(airflow.ok, "mapped-0")) == len(airflow.keys(airflow.ok, "mapped-1")) == 1


def test_a_destructive_operator_needs_the_dags_confirmation(airflow):
    assert "pass confirm_destructive=True" in airflow.results["unconfirmed_revoke"]


def test_404_fails_the_task_without_retry(airflow):
    task = airflow.tasks("gen_failures")["revoke_missing"]
    assert (task["state"], task["try_number"]) == ("failed", 1)  # retries=2 were not used
    error = airflow.failure("revoke_api_key", "not_found")
    assert error["status"] == 404 and "list_api_keys" in error["hint"]


def test_a_create_dropped_after_gen_acted_makes_one_key_and_reports_it(airflow):
    task = airflow.tasks("gen_failures")["create_dropped"]
    assert (task["state"], task["try_number"]) == ("failed", 1)  # outcome_unknown is not retried
    [made] = airflow.keys(airflow.faulty, "dropped-create")
    error = airflow.failure("create_api_key", "outcome_unknown")
    assert [c["id"] for c in error["candidates"]] == [made["id"]]
    assert f"revoke_api_key (id {made['id']})" in error["hint"]


def test_429_and_503_are_retried_by_airflow(airflow):
    tasks = airflow.tasks("gen_failures")
    limited, unavailable = tasks["create_rate_limited"], tasks["me_unavailable"]
    assert (limited["state"], limited["try_number"]) == ("success", 2)
    assert [k["id"] for k in airflow.keys(airflow.faulty, "rate-limited-create")] == [limited["xcom"]["id"]]
    assert (unavailable["state"], unavailable["try_number"]) == ("success", 2)
    assert airflow.failure("create_api_key", "rate_limited")["retry_after"] == 1.0
    assert airflow.failure("get_me", "server_error")["status"] == 503


def test_gens_retry_after_is_airflows_retry_delay(airflow):
    tasks = airflow.tasks("gen_failures")  # both tasks have retry_delay=0
    [limited] = tasks["create_rate_limited"]["earlier_tries"]
    assert limited["retry_delay_override"] == 1.0  # the 429's Retry-After: 1
    assert limited["retry_reason"] == "GEN asked to wait 1 s (Retry-After)"
    [unavailable] = tasks["me_unavailable"]["earlier_tries"]
    assert unavailable["retry_delay_override"] is None  # a 503 without Retry-After keeps the task's retry_delay


def test_no_key_or_token_in_task_logs_or_xcom(airflow):
    tokens = [p.read_text().strip() for p in airflow.secrets.iterdir()]
    tokens += list(airflow.results["variables"].values())
    assert len(tokens) >= 5  # create, mapped x2, crash-after-create, rate-limited, and the Variable
    secrets = [airflow.ok.api_key, airflow.faulty.api_key, WRONG_KEY, *tokens]
    xcoms = json.dumps([task["xcom"] for dag in airflow.results["dags"].values() for task in dag["tasks"].values()])
    assert "GEN create_api_key failed" in airflow.output and "Pushing xcom" in airflow.output  # the logs are there
    for where, text in {"task output": airflow.output, "XCom": xcoms, **airflow.log_files}.items():
        leaked = [secret[-6:] for secret in secrets if secret in text]
        assert not leaked, f"secrets ending {leaked} in {where}"


@pytest.mark.parametrize("statement", ["from gen_nodes.airflow import GenHook",
                                       "from gen_nodes.airflow import GenActionOperator",
                                       "import gen_nodes.airflow.operators"])
def test_airflow_without_the_extra_names_the_extra(tmp_path, statement):
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'airflow'\", name='airflow')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", f"import gen_nodes.airflow\n{statement}"], env=env, cwd=HERE.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: gen_nodes.airflow needs Apache Airflow 3"), last
    assert "pip install 'gen-nodes[airflow]'" in last
