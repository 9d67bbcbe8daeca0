"""The gateway as users run it: ``gen-nodes serve`` processes (uvicorn) in front of a real sandbox.

- The first stdout line is ``{"url": ...}`` with the real port.
- schemathesis, from the live ``/openapi.json``, over every operation but ``revoke_all_api_keys``:
  no server error, no answer off the document, no undocumented status.
- Idempotency under concurrency: threads sending one create with one ``Idempotency-Key`` make
  one key at GEN.
- Open WebUI's own code (its wheel, cached in ``.cache/``): every parameter its converter shows
  the model is one its tool-server call delivers, and two creates with one key make one key.
- Two gateway processes on one real ``redis-server``: a create made through one is replayed by the
  other (its secret once), and an approval asked on one is decided and polled on the other.
- Every server logs at debug level into files that are searched for keys and secrets.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

import requests  # noqa: E402

from gen_nodes.core.registry import default_registry  # noqa: E402
from gen_nodes.sandbox import Sandbox  # noqa: E402
from gen_nodes.sandbox.store import TOKEN_ALPHABET, TOKEN_LENGTH, TOKEN_PREFIX  # noqa: E402
from gateway_support import SERVE, START_TIMEOUT, GatewayProcess, keys_named  # noqa: E402,F401

FULL_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + f"[{TOKEN_ALPHABET}]{{{TOKEN_LENGTH}}}")
#: Cases per operation and generation mode.
FUZZ_EXAMPLES = 100


def post(url: str, action: str, key: str, body: dict[str, Any] | None = None, idem: str | None = None,
         session: Any = requests) -> requests.Response:
    headers = {"X-API-Key": key, **({"Idempotency-Key": idem} if idem else {})}
    return session.post(f"{url}/actions/{action}", json=body, headers=headers, timeout=30)




@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp("gateway-logs")


@pytest.fixture(scope="module")
def gateway(sb, logs, tmp_path_factory):
    store = tmp_path_factory.mktemp("gateway-store") / "gateway.db"
    process = GatewayProcess("--base-url", sb.base_url, "--store", f"sqlite:///{store}", log=logs / "direct.log")
    yield process
    process.stop()


def test_the_first_stdout_line_is_the_real_url_and_the_document_names_it(gateway):
    assert re.fullmatch(r'\{"url": "http://127\.0\.0\.1:\d+"\}', gateway.first_line)
    assert not gateway.url.endswith(":0")
    doc = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert doc["servers"] == [{"url": gateway.url}]


def test_a_live_call_acts_with_the_requests_own_key(gateway, sb):
    user, key = sb.create_user(email="live@example.com")
    answer = post(gateway.url, "get_me", key)
    assert answer.status_code == 200 and answer.json()["id"] == user["id"]
    assert post(gateway.url, "get_me", "").status_code == 401


def test_concurrent_repeats_of_one_create_make_one_key(gateway, sb):
    _, key = sb.create_user()
    idem = secrets.token_hex(8)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(gateway.url, "create_api_key", key, {"name": "raced"}, idem),
                                range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(keys_named(sb, key, "raced")) == 1
    full = [a.json()["token"] for a in answers if FULL_TOKEN.fullmatch(a.json()["token"])]
    # The first answer and one replay carry the secret; every other replay only its masked form.
    assert len(full) == 2 and len(set(full)) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 7


def test_the_readmes_curl_sends_a_fresh_idempotency_key_on_any_machine_with_python(gateway, sb):
    from doc_support import snippet

    block = snippet("HTTP gateway and OpenAPI: workflow runners and tool importers", "sh")
    command = block[block.index("curl "):].replace("http://127.0.0.1:8080", gateway.url)
    _, key = sb.create_user()
    # xtrace shows the command as run, its substitutions made: the header must carry a key.
    done = subprocess.run(["bash", "-c", "set -x\n" + command], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "GEN_API_KEY": key})
    assert done.returncode == 0 and json.loads(done.stdout)["name"] == "n8n"
    sent = re.search(r"Idempotency-Key: ([^'\n]*)", done.stderr)
    assert sent and re.fullmatch(r"[0-9a-f-]{36}", sent.group(1)), "the README's key command printed nothing"


# -- Open WebUI's importer, its own code --------------------------------------------------------------

OPEN_WEBUI = "open-webui==0.12.4"
OPEN_WEBUI_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "open-webui"
#: What the converter and the tool-server call use from open_webui/utils/tools.py.
OPEN_WEBUI_NAMES = {"OPENAPI_HTTP_METHODS", "resolve_schema", "convert_openapi_to_tool_payload", "execute_tool_server"}


@pytest.fixture(scope="module")
def open_webui() -> dict[str, Any]:
    """Open WebUI 0.12.4's ``convert_openapi_to_tool_payload`` and ``execute_tool_server``, the source
    from its wheel. Importing ``open_webui`` needs its whole server's dependencies, so only these
    definitions run, with the few names they use (its settings at their defaults)."""
    import ast
    import logging
    import zipfile

    wheels = sorted(OPEN_WEBUI_CACHE.glob("open_webui-0.12.4-*.whl"))
    if not wheels:  # once per machine: about 100 MB
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", OPEN_WEBUI,
                        "-d", str(OPEN_WEBUI_CACHE)], check=True, timeout=600)
        wheels = sorted(OPEN_WEBUI_CACHE.glob("open_webui-0.12.4-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        source = wheel.read("open_webui/utils/tools.py").decode()
    module = ast.parse(source)
    kept = [node for node in module.body
            if isinstance(node, ast.ImportFrom) and node.module == "__future__"
            or getattr(node, "name", None) in OPEN_WEBUI_NAMES
            or isinstance(node, ast.Assign) and {getattr(t, "id", None) for t in node.targets} & OPEN_WEBUI_NAMES]
    import aiohttp
    import base64
    import copy
    from urllib.parse import quote, urlencode

    names: dict[str, Any] = {
        "Any": Any, "aiohttp": aiohttp, "base64": base64, "copy": copy, "quote": quote, "urlencode": urlencode,
        "log": logging.getLogger("open_webui.utils.tools"), "ENABLE_TOOL_SERVERS": True,
        "AIOHTTP_CLIENT_TIMEOUT_TOOL_SERVER": 30, "AIOHTTP_CLIENT_SESSION_TOOL_SERVER_SSL": True,
        "AIOHTTP_CLIENT_ALLOW_REDIRECTS": False,
    }
    exec(compile(ast.Module(body=kept, type_ignores=[]), "open_webui/utils/tools.py", "exec"), names)
    assert OPEN_WEBUI_NAMES <= set(names)
    return names


class _Recorder:
    """A loopback HTTP server that answers {} and keeps each request's path, query and JSON body."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                url = urlsplit(self.path)
                seen.append({"path": url.path, "query": {k: v[-1] for k, v in parse_qs(url.query).items()},
                             "body": json.loads(raw or b"{}")})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _sample(name: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    return {"integer": 7, "number": 7, "boolean": True, "array": [], "object": {}}.get(kind, f"value-of-{name}")


def test_open_webui_delivers_every_parameter_it_shows_the_model(gateway, open_webui):
    import asyncio

    document = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    tools = open_webui["convert_openapi_to_tool_payload"](document)
    assert sorted(tool["name"] for tool in tools) == sorted(default_registry().ids())
    recorder = _Recorder()
    try:
        for tool in tools:
            shown = tool["parameters"]["properties"]
            arguments = {name: _sample(name, schema) for name, schema in shown.items()}
            asyncio.run(open_webui["execute_tool_server"](recorder.url, {}, {}, tool["name"], arguments,
                                                          {"openapi": document}))
            sent = recorder.seen.pop()
            assert sent["path"] == f"/actions/{tool['name']}"
            delivered = {**sent["query"], **sent["body"]}
            assert set(delivered) == set(shown), tool["name"]  # nothing shown is dropped, nothing added
            if "idempotency_key" in shown:
                assert sent["query"]["idempotency_key"] == "value-of-idempotency_key"
    finally:
        recorder.close()


def test_two_creates_with_one_key_through_open_webui_make_one_key(gateway, sb, open_webui):
    import asyncio

    _, key = sb.create_user()
    document = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    call = open_webui["execute_tool_server"]
    arguments = {"name": "from-open-webui", "idempotency_key": secrets.token_hex(8)}  # as the model fills them
    answers = [asyncio.run(call(gateway.url, {"Authorization": f"Bearer {key}"}, {}, "create_api_key",
                                dict(arguments), {"openapi": document})) for _ in range(2)]
    (first, _), (again, headers) = answers
    assert "error" not in first and again["id"] == first["id"]
    assert headers["Idempotent-Replayed"] == "true"
    assert len(keys_named(sb, key, "from-open-webui")) == 1


def test_a_public_bind_needs_the_opt_in_and_ends_with_a_clear_error(tmp_path):
    done = subprocess.run([*SERVE, "--host", "0.0.0.0", "--port", "0", "--store", "memory://"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    error = json.loads(done.stderr)["error"]
    assert error["type"] == "invalid_input" and "--allow-remote" in error["hint"]


def test_the_sandbox_option_serves_the_persistent_sandbox(tmp_path):
    env = {"GEN_NODES_SANDBOX_DIR": str(tmp_path / "sandbox"), "GEN_NODES_STATE_DIR": str(tmp_path / "state")}
    process = GatewayProcess("--store", "sqlite://", log=tmp_path / "sandbox-serve.log", env=env,
                             command=[sys.executable, "-m", "gen_nodes.surfaces.cli", "--sandbox", "serve"])
    try:
        key = (tmp_path / "sandbox" / "bootstrap-key").read_text().strip()
        assert post(process.url, "get_me", key).status_code == 200
        assert (tmp_path / "state" / "state.db").exists()  # sqlite:// is the state dir's file
    finally:
        process.stop()
    assert "persistent sandbox" in (tmp_path / "sandbox-serve.log").read_text()


# -- schemathesis ---------------------------------------------------------------------------------

#: Every operation the gateway documents, but revoke_all_api_keys (it would end each user's keys).
FUZZED = sorted(spec_id for spec_id in default_registry().ids() if spec_id != "revoke_all_api_keys")
#: In approval mode, what differs: the 202 of a destructive call, and polling.
FUZZED_APPROVAL = ["get_approval", "revoke_api_key"]


@pytest.fixture(scope="module")
def approval_gateway(sb, logs, tmp_path_factory):
    store = tmp_path_factory.mktemp("gateway-approval") / "gateway.db"
    process = GatewayProcess("--base-url", sb.base_url, "--store", f"sqlite:///{store}", "--confirmation", "approval",
                             log=logs / "approval.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def live_schemas(gateway, approval_gateway):
    import schemathesis

    schemas = {"direct": schemathesis.openapi.from_url(f"{gateway.url}/openapi.json"),
               "approval": schemathesis.openapi.from_url(f"{approval_gateway.url}/openapi.json")}
    for confirmation, schema in schemas.items():
        documented = sorted(op.ok().definition.raw["operationId"] for op in schema.get_all_operations())
        extra = ["get_approval"] if confirmation == "approval" else []
        assert documented == sorted([*FUZZED, "revoke_all_api_keys", *extra])
    return schemas


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("confirmation, operation_id",
                         [("direct", op) for op in FUZZED] + [("approval", op) for op in FUZZED_APPROVAL])
def test_schemathesis_finds_nothing_against_the_live_gateway(live_schemas, sb, confirmation, operation_id, mode):
    """schemathesis' default checks (no server error, status codes, content types, headers and bodies
    as documented, bad input refused, good input accepted) on cases generated from the live document.

    Driven through hypothesis here rather than the schemathesis pytest plugin, whose lazy fixture
    loader does not run under pytest 9.2.
    """
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    operation = live_schemas[confirmation].find_operation_by_id(operation_id)
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode))

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case):
        # A fresh user per case: a generated revoke may hit the key in use, and must not end the run.
        _, key = sb.create_user()
        headers = {"X-API-Key": key}
        response = case.call(headers=headers, timeout=30)
        excluded = []
        if response.status_code == 422 and response.json()["error"]["type"] == "rejected":
            # GEN itself refused a value the schema allows (say, an expiry past the year 9999): the
            # gateway passed it on, as documented. The gateway's own refusals stay checked.
            excluded.append(positive_data_acceptance)
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    check()


# -- two processes, one Redis ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair(sb, logs, redis_url):
    """Two gateways sharing one redis-server (and the encryption secret of what they keep there)."""
    env = {"GEN_NODES_STATE_SECRET": secrets.token_hex(32)}
    common = ("--base-url", sb.base_url, "--store", redis_url, "--confirmation", "approval")
    first = GatewayProcess(*common, log=logs / "redis-a.log", env=env)
    try:
        second = GatewayProcess(*common, log=logs / "redis-b.log", env=env)
    except BaseException:
        first.stop()
        raise
    yield first, second, redis_url
    first.stop()
    second.stop()


def test_a_create_made_through_one_gateway_is_replayed_by_the_other(pair, sb):
    a, b, _ = pair
    _, key = sb.create_user()
    idem = secrets.token_hex(8)
    made = post(a.url, "create_api_key", key, {"name": "across"}, idem)
    assert made.status_code == 200 and FULL_TOKEN.fullmatch(made.json()["token"])
    replayed = post(b.url, "create_api_key", key, {"name": "across"}, idem)
    assert replayed.status_code == 200 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == made.json()
    spent = post(a.url, "create_api_key", key, {"name": "across"}, idem)
    assert not FULL_TOKEN.search(spent.text) and spent.json()["id"] == made.json()["id"]
    conflict = post(b.url, "create_api_key", key, {"name": "elsewhere"}, idem)
    assert conflict.status_code == 422 and conflict.json()["error"]["type"] == "idempotency_conflict"
    assert len(keys_named(sb, key, "across")) == 1


def test_an_approval_asked_on_one_gateway_is_run_when_polled_on_the_other(pair, sb):
    a, b, _ = pair
    _, key = sb.create_user()
    target = post(a.url, "create_api_key", key, {"name": "to revoke"}).json()
    asked = post(a.url, "revoke_api_key", key, {"id": target["id"]})
    assert asked.status_code == 202
    approval = asked.json()["approval"]
    poll_on_b = approval["poll"].replace(a.url, b.url)
    assert requests.get(poll_on_b, headers={"X-API-Key": key}, timeout=10).status_code == 202
    # The person's link: A's default notify target, one line on its stderr (never in the answer).
    assert "/approve/" not in asked.text
    link = re.findall(r"open (http://\S+/approve/\S+) ", a.log.read_text())[-1]
    # A person's browser: the page served by A, the button's POST answered by B (behind one balancer).
    with requests.Session() as browser:
        page = browser.get(link, timeout=10)
        assert page.status_code == 200 and str(target["id"]) in page.text
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
        decided = browser.post(link.replace(a.url, b.url), data={"csrf": token, "decision": "approve"},
                               allow_redirects=False, timeout=10)
        assert decided.status_code == 303, decided.text
    done = requests.get(poll_on_b, headers={"X-API-Key": key}, timeout=30)
    assert done.status_code == 200 and done.json() == {"id": target["id"], "revoked": True}
    again = requests.get(approval["poll"], headers={"X-API-Key": key}, timeout=10)
    assert again.status_code == 200 and again.json() == done.json()
    assert keys_named(sb, key, "to revoke")[0]["status"] == "revoked"


def test_the_readmes_multi_worker_deployment_shares_one_redis(sb, logs, redis_url):
    """``uvicorn --factory gen_nodes.surfaces.gateway.app:app_from_env --workers 2`` as the README shows it."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GEN_NODES_STORE": redis_url, "GEN_NODES_STATE_SECRET": secrets.token_hex(32),
           "GEN_BASE_URL": sb.base_url, "GEN_NODES_ALLOWED_HOSTS": f"127.0.0.1:{port}"}
    with open(logs / "uvicorn-workers.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "gen_nodes.surfaces.gateway.app:app_from_env",
                                 "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=log, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    if requests.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, "uvicorn did not start"
                time.sleep(0.2)
            _, key = sb.create_user()
            idem = secrets.token_hex(8)
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda _: post(url, "create_api_key", key, {"name": "workers"}, idem),
                                        range(6)))
            assert [a.status_code for a in answers] == [200] * 6
            assert len({a.json()["id"] for a in answers}) == 1 and len(keys_named(sb, key, "workers")) == 1
            foreign = requests.get(f"{url}/openapi.json", headers={"Host": "evil.example"}, timeout=5)
            assert foreign.status_code == 421
        finally:
            proc.terminate()
            proc.wait(timeout=20)


# -- last: what the servers logged ------------------------------------------------------------------


def test_zz_no_server_log_holds_a_key_or_a_secret(gateway, logs, sb):
    # Runs after the others in this module (pytest keeps file order); every server logged at debug.
    texts = {path.name: path.read_text(errors="replace") for path in logs.glob("*.log")}
    assert texts and any("create_api_key" in text for text in texts.values())
    for name, text in texts.items():
        assert not FULL_TOKEN.search(text), f"{name} holds a key or a secret"
        assert sb.api_key not in text
