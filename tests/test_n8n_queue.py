"""n8n in queue mode: ``n8n start`` and two ``n8n worker`` processes on one Redis and one PostgreSQL.

The setup docs/deployment.md ("n8n in queue mode") describes, run as containers run it: each
process has its own user folder (its own ``~/.n8n``) holding the generated node package, and
the three share one database, one Redis and one ``N8N_ENCRYPTION_KEY``, with task runners off.
The database is a private PostgreSQL server the test starts (``tests/postgres_support.py``):
n8n's SQLite file is not one that several processes may share.

A webhook workflow creates a key at the sandbox (served from this process) and renames it.
Twenty calls at once must each reach GEN exactly once per step and run on both workers (each
worker logs the executions it runs). The GEN key must be in no file of the database and in
none of the three folders; a created token in no folder, and in the database only among the
runs' data: n8n's worker writes every run whole, and in queue mode the workflow setting "Do not
save" does not reliably remove it afterwards (see docs/deployment.md). Booting the three
processes side by side takes about half a minute on two cores.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from n8n_support import N8nHome, N8nServer, N8nWorker, free_port, stop_processes, workflow
from postgres_support import DATABASE, SUPERUSER, PostgresServer
from setup_needs import or_fail
from test_n8n import credential, gen_node, package  # noqa: F401  (fixture: the generated package)

pytestmark = pytest.mark.deployment

CALLS = 20
RENAMED = "n8n-queue-renamed"
CREDENTIAL = "gen-queue"
ENQUEUED = re.compile(r"Enqueued execution (\d+) \(job")
STARTED = re.compile(r"Worker started execution (\d+) \(job")


@dataclass
class QueueSetup:
    """The running main process, its two workers, and the database they share."""

    main: N8nServer
    workers: list[N8nWorker]
    postgres: PostgresServer
    homes: list[N8nHome]


def queue_env(redis_url: str, postgres: PostgresServer, encryption_key: str) -> dict[str, str]:
    """What every process of the setup is given: queue mode, the one Redis, the one database, the one key."""
    redis = urlsplit(redis_url)
    return {
        "EXECUTIONS_MODE": "queue",
        "QUEUE_BULL_REDIS_HOST": redis.hostname, "QUEUE_BULL_REDIS_PORT": str(redis.port),
        "QUEUE_BULL_REDIS_DB": redis.path.lstrip("/") or "0",
        "N8N_ENCRYPTION_KEY": encryption_key,
        # With task runners on, each process starts a broker on port 5679: the second one on a machine fails.
        "N8N_RUNNERS_ENABLED": "false",
        "DB_TYPE": "postgresdb", "DB_POSTGRESDB_HOST": "127.0.0.1", "DB_POSTGRESDB_PORT": str(postgres.port),
        "DB_POSTGRESDB_DATABASE": DATABASE, "DB_POSTGRESDB_USER": SUPERUSER,
        "DB_POSTGRESDB_PASSWORD": postgres.password,
    }


@pytest.fixture
def made_tokens(sandbox) -> list[str]:
    """The plain text of every key the sandbox creates from now on (its store keeps only hashes)."""
    made: list[str] = []
    create_key = sandbox.store.create_key

    def recording(*args, **kwargs):
        key, plain = create_key(*args, **kwargs)
        made.append(plain)
        return key, plain

    sandbox.store.create_key = recording
    return made


@pytest.fixture
def postgres():
    server = or_fail(PostgresServer.start)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queue_setup(n8n, package, sandbox, redis_db, postgres, tmp_path):  # noqa: F811  (package: a fixture)
    env = queue_env(redis_db, postgres, secrets.token_hex(24))
    homes = [n8n.home(tmp_path / name, env) for name in ("main", "worker-1", "worker-2")]
    for home in homes:
        home.install_package(package)  # as each container has the package in its own ~/.n8n
    # Run once, before the processes: it creates the schema, which three processes booting at once would race on.
    homes[0].import_credentials([credential(CREDENTIAL, sandbox)])
    main, workers = N8nServer(homes[0], free_port()), [N8nWorker(home, concurrency=5) for home in homes[1:]]
    try:
        for process in (main, *workers):
            process.launch()
        for process in (main, *workers):
            process.wait_ready()
        yield QueueSetup(main, workers, postgres, homes)
    finally:
        stop_processes(main.process, *(worker.process for worker in workers))
        main.session.close()


def webhook_workflow(path: str, *, save_successes: str) -> dict:
    """Webhook (body ``{"name"}``) -> GEN create key -> GEN rename key -> respond with the renamed key."""
    trigger = {"name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2, "webhookId": str(uuid.uuid4()),
               "parameters": {"httpMethod": "POST", "path": path, "responseMode": "responseNode", "options": {}}}
    wf = workflow(
        gen_node("Create", "create_api_key", CREDENTIAL, name="={{ $json.body.name }}"),
        gen_node("Rename", "update_api_key", CREDENTIAL, id="={{ $('Create').item.json.id }}", name=RENAMED),
        {"name": "Respond", "type": "n8n-nodes-base.respondToWebhook", "typeVersion": 1.1,
         "parameters": {"respondWith": "firstIncomingItem", "options": {}}},
        trigger=trigger, name=f"queue {path}",
    )
    wf["settings"] = {"executionOrder": "v1", "saveDataSuccessExecution": save_successes}
    return wf


def activate(main: N8nServer, wf: dict) -> tuple[str, str]:
    """Save ``wf`` through the REST API as its owner and activate it; returns its id and production webhook URL."""
    saved = main.rest("POST", "/workflows", {**wf, "active": False})["data"]
    main.rest("POST", f"/workflows/{saved['id']}/activate", {"versionId": saved["versionId"]})
    return saved["id"], f"{main.url}/webhook/{wf['nodes'][0]['parameters']['path']}"


def wait_until(holds, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not holds():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


def outside_run_data(dump: bytes) -> bytes:
    """A pg_dump without the rows of ``execution_data`` (where n8n keeps each run's node outputs)."""
    return re.sub(rb"^COPY public\.execution_data .*?^\\\.$", b"", dump, flags=re.S | re.M)


def call_all(url: str, names: list[str]) -> list[requests.Response]:
    """POST each name to the webhook at once, one thread each."""
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(lambda name: requests.post(url, json={"name": name}, timeout=180), names))


def sandbox_requests(caplog, request_line: str) -> int:
    """How many requests the sandbox served whose request line starts with ``request_line``."""
    return sum(f'"{request_line}' in r.getMessage() for r in caplog.records if r.name == "gen_nodes.sandbox")


def logged_ids(log: Path, pattern: re.Pattern) -> set[str]:
    return set(pattern.findall(log.read_text(errors="replace")))


def files_holding(folder: Path, needle: str) -> list[Path]:
    """Every file under ``folder`` whose bytes contain ``needle``."""
    return [path for path in folder.rglob("*") if path.is_file() and needle.encode() in path.read_bytes()]


def test_twenty_webhook_calls_run_once_each_on_both_workers_and_the_key_stays_secret(
        queue_setup, sandbox, made_tokens, gen_log):
    # A run saved as n8n saves by default: it keeps the created token among its run data.
    _, kept_url = activate(queue_setup.main, webhook_workflow("gen-queue-kept", save_successes="all"))
    [kept] = call_all(kept_url, ["kept execution"])
    assert kept.status_code == 200, kept.text
    [kept_token] = made_tokens
    # The Respond to Webhook node answers mid-run; the worker writes the whole run when it ends.
    wait_until(lambda: kept_token.encode() in queue_setup.postgres.dump(), "the kept run's token in the database")
    assert kept_token.encode() not in outside_run_data(queue_setup.postgres.dump())
    before = logged_ids(queue_setup.main.log, ENQUEUED)

    _, url = activate(queue_setup.main, webhook_workflow("gen-queue", save_successes="none"))
    answers = call_all(url, [f"queue call {n}" for n in range(CALLS)])
    assert [a.status_code for a in answers] == [200] * CALLS, [a.text for a in answers if a.status_code != 200]
    renamed = [a.json() for a in answers]
    assert {k["name"] for k in renamed} == {RENAMED} and all("token" not in k for k in renamed)
    assert len({k["id"] for k in renamed}) == CALLS

    # Each step reached GEN exactly once per call (the first run's two requests aside).
    assert sandbox_requests(gen_log, "POST /v1/persisted_tokens ") == CALLS + 1
    assert sandbox_requests(gen_log, "PATCH /v1/persisted_tokens/") == CALLS + 1
    names = [k["name"] for k in sandbox.store.list_keys(sandbox.user["id"])]
    assert names.count(RENAMED) == CALLS + 1 and len(names) == CALLS + 2  # and the bootstrap key

    # The main process only enqueued; both workers ran some of the twenty, none ran one twice.
    calls = logged_ids(queue_setup.main.log, ENQUEUED) - before
    ran = [logged_ids(worker.log, STARTED) & calls for worker in queue_setup.workers]
    assert len(calls) == CALLS and ran[0] and ran[1], ran
    assert not ran[0] & ran[1] and ran[0] | ran[1] == calls
    assert not logged_ids(queue_setup.main.log, STARTED)

    assert_secrets_kept_out(queue_setup, sandbox.api_key, made_tokens)


def assert_secrets_kept_out(setup: QueueSetup, api_key: str, tokens: list[str]) -> None:
    """The GEN key is in no file of the database (n8n encrypts the credential before writing it)
    and no process's folder; a created token is in no folder, and in the database only among
    the runs' data (see docs/deployment.md: "Do not save" does not reliably keep it out)."""
    assert len(tokens) == CALLS + 1
    dump = setup.postgres.dump()
    assert b"queue gen-queue" in dump  # the dump holds the workflows: it is the database n8n used
    assert api_key.encode() not in dump and not files_holding(setup.postgres.data_dir, api_key)
    elsewhere = outside_run_data(dump)
    assert not [token for token in tokens if token.encode() in elsewhere]
    for home in setup.homes:
        assert files_holding(home.folder, "n8n-nodes-gen"), home.folder  # the walk reads the installed package
        for secret in (api_key, *tokens):
            assert not files_holding(home.folder, secret), home.folder
