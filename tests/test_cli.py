"""The ``gen-nodes`` command line, run as a real subprocess against a sandbox on loopback.

Every test runs ``python -m gen_nodes.surfaces.cli`` in a fresh process with a clean
environment (no ``GEN_*`` variables from the caller, ``GEN_NODES_SANDBOX_DIR`` in a
temporary folder) and checks stdout, stderr and the exit code.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import gen_nodes
from gen_nodes.sandbox import Sandbox

from cli_support import gen_nodes_cli

BUILTINS = ["create_api_key", "get_me", "list_api_keys", "revoke_all_api_keys", "revoke_api_key", "rotate_api_key", "update_api_key"]
FULL_TOKEN = re.compile(r"gen_pat_[A-Za-z0-9]{12,}")


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    clean["GEN_NODES_SANDBOX_DIR"] = str(tmp_path / "sandbox-state")
    clean["PYTHONWARNINGS"] = "ignore"
    return clean


class Cli:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd

    def __call__(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gen_nodes.surfaces.cli", *args],
            env={**self.env, **(env or {})}, cwd=self.cwd, capture_output=True, text=True, timeout=timeout,
            input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        )


@pytest.fixture
def cli(env, tmp_path) -> Cli:
    return Cli(env, tmp_path)


@pytest.fixture
def on(sandbox) -> list[str]:
    """The connection options for the running sandbox."""
    return ["--base-url", sandbox.base_url, "--api-key", sandbox.api_key]


def ok(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, (done.returncode, done.stderr)
    return json.loads(done.stdout)


def failed(done: subprocess.CompletedProcess, code: int, error_type: str) -> dict:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    error = json.loads(done.stderr)["error"]
    assert error["type"] == error_type
    assert {"type", "message", "status", "error_code", "hint"} <= set(error)
    assert error["message"] and error["hint"]
    return error


def keys(sandbox: Sandbox) -> dict[int, dict]:
    return {k["id"]: k for k in sandbox.store.list_keys(sandbox.user["id"])}


def untouched(sandbox: Sandbox) -> bool:
    """True when the sandbox has seen no request: the only key was never used, nothing was made."""
    return [(k["name"], k["last_used_at"], k["status"]) for k in keys(sandbox).values()] == [
        ("sandbox bootstrap", None, "active")]


# -- actions and describe -------------------------------------------------------------


def test_actions_table(cli):
    done = cli("actions")
    assert done.returncode == 0 and done.stderr == ""
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert sorted(rows) == BUILTINS
    assert "Get current user" in rows["get_me"] and "read_only, idempotent" in rows["get_me"]
    assert "Revoke all API keys" in rows["revoke_all_api_keys"] and "destructive, idempotent" in \
        rows["revoke_all_api_keys"]
    assert rows["create_api_key"].rstrip().endswith("-")  # neither read-only, destructive nor idempotent
    assert "Rename API key" in rows["update_api_key"]


def test_actions_json(cli):
    rows = {row["id"]: row for row in ok(cli("actions", "--json"))}
    assert sorted(rows) == BUILTINS
    assert rows["revoke_api_key"]["hints"] == {"read_only": False, "destructive": True, "idempotent": True,
                                               "open_world": True}
    assert rows["create_api_key"]["hints"]["idempotent"] is False
    assert "token" in rows["create_api_key"]["description"]
    assert all(row["title"] and len(row["description"]) > 40 for row in rows.values())


@pytest.mark.parametrize("action", BUILTINS)
def test_describe_prints_self_contained_schemas(cli, action):
    done = cli("describe", action)
    described = ok(done)
    assert "$ref" not in done.stdout and "$defs" not in done.stdout
    assert described["id"] == action and described["description"] and described["title"]
    assert set(described["hints"]) == {"read_only", "destructive", "idempotent", "open_world"}
    if action == "rotate_api_key":  # a composite action: its steps instead of one request
        assert described["steps"] == [{"name": "old", "action": "list_api_keys"},
                                      {"name": "new", "action": "create_api_key"},
                                      {"name": "revoke", "action": "revoke_api_key"}]
    else:
        assert described["method"] in ("GET", "POST", "PATCH", "DELETE") and described["path"].startswith("/")
    assert described["input_schema"]["type"] == "object"
    assert described["input_schema"]["additionalProperties"] is False
    assert described["output_schema"]["type"] == "object"


def test_describe_key_id_and_created_key(cli):
    revoke = ok(cli("describe", "revoke_api_key"))
    id_schema = revoke["input_schema"]["properties"]["id"]
    assert {branch["type"] for branch in id_schema["anyOf"]} == {"integer", "string"}
    assert id_schema["description"] == "The id of the key to revoke (see list_api_keys)."
    create = ok(cli("describe", "create_api_key"))
    assert "token" in create["output_schema"]["required"]
    assert create["output_schema"]["properties"]["status"]["enum"] == ["active", "expired", "revoked"]


def test_describe_unknown_action(cli):
    error = failed(cli("describe", "list_keys"), 2, "invalid_input")
    assert "list_keys" in error["message"] and "list_api_keys" in error["hint"]


# -- run: every action --------------------------------------------------------------------


def test_run_every_action(cli, on, sandbox):
    me = ok(cli("run", "get_me", *on))
    assert me == sandbox.user

    created = ok(cli("run", "create_api_key", "--input", '{"name": "ci", "expires_in": "30d"}', *on))
    assert created["name"] == "ci" and created["status"] == "active" and created["expires_at"]
    token = created["token"]
    assert re.fullmatch(r"gen_pat_[A-Za-z0-9]{40}", token)  # the secret, in full, once
    assert ok(cli("run", "get_me", "--base-url", sandbox.base_url, "--api-key", token))["id"] == me["id"]

    listed = ok(cli("run", "list_api_keys", *on))
    assert [k["name"] for k in listed["api_keys"]] == ["sandbox bootstrap", "ci"]
    assert all("token" not in k for k in listed["api_keys"])

    renamed = ok(cli("run", "update_api_key", "-i", json.dumps({"id": str(created["id"]), "name": "ci-2"}), *on))
    assert renamed["id"] == created["id"] and renamed["name"] == "ci-2"

    revoked = ok(cli("run", "revoke_api_key", "--input", json.dumps({"id": created["id"]}), "--yes", *on))
    assert revoked == {"id": created["id"], "revoked": True}
    assert keys(sandbox)[created["id"]]["status"] == "revoked"
    assert ok(cli("run", "list_api_keys", "--input", '{"status": "revoked"}', *on))["api_keys"][0]["id"] \
        == created["id"]

    assert ok(cli("run", "revoke_all_api_keys", "-y", *on)) == {"revoked_all": True}
    assert {k["status"] for k in keys(sandbox).values()} == {"revoked"}


def test_global_options_before_the_command_and_from_the_environment(cli, sandbox):
    before = ok(cli("--base-url", sandbox.base_url, "--api-key", sandbox.api_key, "run", "get_me"))
    assert before["id"] == sandbox.user["id"]
    from_env = ok(cli("run", "get_me", env={"GEN_API_KEY": sandbox.api_key, "GEN_BASE_URL": sandbox.base_url}))
    assert from_env == before


def test_input_from_a_file_and_from_stdin(cli, on, sandbox, tmp_path):
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"name": "from file", "expires_in": 2592000}))
    from_file = ok(cli("run", "create_api_key", "--input", f"@{path}", *on))
    assert from_file["name"] == "from file" and from_file["expires_at"]

    from_stdin = ok(cli("run", "create_api_key", "--input", "-", *on, stdin='{"name": "from stdin"}'))
    assert from_stdin["name"] == "from stdin"
    assert [k["name"] for k in keys(sandbox).values()] == ["sandbox bootstrap", "from file", "from stdin"]


# -- run: failures and exit codes ----------------------------------------------------------


@pytest.mark.parametrize("raw", ['{"name": ', "name=ci", ""])
def test_input_that_is_not_json_exits_2(cli, on, sandbox, raw):
    error = failed(cli("run", "create_api_key", "--input", raw, *on), 2, "invalid_input")
    assert "not valid JSON" in error["message"]
    assert error["errors"][0]["path"] == "$"
    assert untouched(sandbox)


def test_input_file_missing_exits_2(cli, on, sandbox, tmp_path):
    error = failed(cli("run", "create_api_key", "--input", f"@{tmp_path / 'nope.json'}", *on), 2, "invalid_input")
    assert "nope.json" in error["message"]
    assert untouched(sandbox)


def test_invalid_input_exits_2_with_paths_and_sends_nothing(cli, on, sandbox):
    done = cli("run", "update_api_key", "--input", '{"id": "abc", "name": "", "colour": "red"}', *on)
    error = failed(done, 2, "invalid_input")
    assert sorted(e["path"] for e in error["errors"]) == ["$", "$.id", "$.name"]
    assert error["action"] == "update_api_key" and error["status"] is None
    assert "no request was sent" in error["hint"]
    assert untouched(sandbox)


def test_invalid_input_of_a_destructive_action_exits_2_not_6(cli, on, sandbox):
    error = failed(cli("run", "revoke_api_key", "--input", '{"id": -4}', *on), 2, "invalid_input")
    assert [e["path"] for e in error["errors"]] == ["$.id"]
    assert untouched(sandbox)


def test_unknown_action_exits_2(cli, on, sandbox):
    error = failed(cli("run", "create_key", *on), 2, "invalid_input")
    assert "create_api_key" in error["hint"]
    assert untouched(sandbox)


def test_wrong_key_exits_3(cli, sandbox):
    done = cli("run", "get_me", "--base-url", sandbox.base_url, "--api-key", "gen_pat_" + "n" * 40)
    error = failed(done, 3, "authentication")
    assert (error["status"], error["error_code"]) == (401, "unauthorized")
    assert "n" * 40 not in done.stderr


def test_missing_key_exits_3_without_a_request(cli, sandbox):
    error = failed(cli("run", "get_me", "--base-url", sandbox.base_url), 3, "authentication")
    assert error["status"] is None and "GEN_API_KEY" in error["hint"]
    assert untouched(sandbox)


def test_permission_denied_exits_3(cli, on, sandbox):
    sandbox.inject_fault(403, body={"error": "Forbidden", "error_code": "forbidden"})
    error = failed(cli("run", "list_api_keys", *on), 3, "permission")
    assert (error["status"], error["error_code"], error["message"]) == (403, "forbidden", "Forbidden")


def test_not_found_exits_4(cli, on):
    error = failed(cli("run", "update_api_key", "--input", '{"id": 777, "name": "x"}', *on), 4, "not_found")
    assert (error["status"], error["error_code"], error["message"]) == (404, "not_found", "Token not found")
    error = failed(cli("run", "revoke_api_key", "--input", '{"id": "777"}', "--yes", *on), 4, "not_found")
    assert error["status"] == 404


def test_rejected_exits_1(cli, on, sandbox):
    sandbox.inject_fault(422, method="POST", body={"error": "Name is reserved", "error_code": "validation_error"})
    error = failed(cli("run", "create_api_key", "--input", '{"name": "admin"}', *on), 1, "rejected")
    assert (error["status"], error["message"]) == (422, "Name is reserved")


def test_server_error_after_retries_exits_5(cli, on, sandbox):
    # Retry-After: 0 keeps the production back-off from slowing the test; 4 attempts by default.
    sandbox.inject_fault(503, times=4, method="GET", path="/me", body={"error": "down"}, headers={"Retry-After": "0"})
    error = failed(cli("run", "get_me", *on), 5, "server_error")
    assert (error["status"], error["attempts"], error["message"]) == (503, 4, "down")
    assert ok(cli("run", "get_me", *on))["id"] == sandbox.user["id"]  # every fault was used up by the retries


def test_rate_limited_exits_5_with_retry_after(cli, on, sandbox):
    sandbox.inject_fault(429, times=2, headers={"Retry-After": "600"}, body={"error": "Too many requests"})
    error = failed(cli("run", "list_api_keys", *on), 5, "rate_limited")
    assert error["retry_after"] == 600 and "600" in error["hint"]


def test_timeout_option_exits_5_on_a_slow_server(cli, on, sandbox):
    sandbox.inject_fault(429, times=3, headers={"Retry-After": "0"})  # fast retries...
    sandbox.inject_fault(delay=2.0, times=1, path="/me")  # ...then one answer too slow for --timeout 0.3
    error = failed(cli("run", "get_me", "--timeout", "0.3", *on, timeout=30), 5, "timeout")
    assert "0.3" in error["message"] and error["attempts"] == 4


@pytest.mark.parametrize(("action", "arguments"), [("revoke_api_key", '{"id": 1}'), ("revoke_all_api_keys", "{}")])
def test_destructive_without_yes_and_no_terminal_exits_6_and_sends_nothing(cli, on, sandbox, action, arguments):
    error = failed(cli("run", action, "--input", arguments, *on), 6, "confirmation_required")
    assert "--yes" in error["hint"] and error["action"] == action
    assert untouched(sandbox)
    # Input on stdin: stdin cannot also be the confirmation.
    failed(cli("run", action, "--input", "-", *on, stdin=arguments), 6, "confirmation_required")
    assert untouched(sandbox)


def test_outcome_unknown_exits_7_and_names_the_orphan(cli, on, sandbox):
    sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
    done = cli("run", "create_api_key", "--input", '{"name": "deploy bot"}', *on)
    error = failed(done, 7, "outcome_unknown")
    [orphan] = [k for k in keys(sandbox).values() if k["name"] == "deploy bot"]
    assert [c["id"] for c in error["candidates"]] == [orphan["id"]]
    assert f"id {orphan['id']}" in error["hint"]
    assert not FULL_TOKEN.search(done.stderr)


def test_post_503_exits_7_without_a_second_try(cli, on, sandbox):
    sandbox.inject_fault(503, times=2, method="POST", body={"error": "Service Unavailable"})
    error = failed(cli("run", "create_api_key", "--input", '{"name": "x"}', *on), 7, "outcome_unknown")
    assert error["status"] == 503 and error["candidates"] == []
    # The second fault is still queued: the POST was sent once.
    retry = cli("run", "create_api_key", "--input", '{"name": "x"}', *on)
    assert retry.returncode == 7
    assert ok(cli("run", "create_api_key", "--input", '{"name": "x"}', *on))["name"] == "x"


# -- the persistent --sandbox mode ---------------------------------------------------------

needs_reusable_key = pytest.mark.skipif(
    "api_key" not in inspect.signature(Sandbox).parameters,
    reason="Sandbox(db_path, api_key=stored) is not implemented yet; --sandbox cannot keep its key",
)


@needs_reusable_key
def test_sandbox_mode_keeps_state_between_processes(cli, env):
    state = Path(env["GEN_NODES_SANDBOX_DIR"])
    created = ok(cli("--sandbox", "run", "create_api_key", "--input", '{"name": "persisted"}'))
    assert created["token"].startswith("gen_pat_")
    assert (state / "sandbox.sqlite3").is_file() and (state / "bootstrap-key").is_file()
    assert (state / "bootstrap-key").stat().st_mode & 0o077 == 0  # private to the user
    first_key = (state / "bootstrap-key").read_text().strip()
    assert created["token"] not in (state / "sandbox.sqlite3").read_bytes().decode("latin-1")

    listed = ok(cli("run", "list_api_keys", "--sandbox"))
    assert [k["name"] for k in listed["api_keys"]] == ["sandbox bootstrap", "persisted"]
    assert (state / "bootstrap-key").read_text().strip() == first_key  # the stored key was reused

    # revoke_all revokes the stored key too; the next command makes a new one and still works.
    assert ok(cli("--sandbox", "run", "revoke_all_api_keys", "--yes")) == {"revoked_all": True}
    after = ok(cli("--sandbox", "run", "list_api_keys"))["api_keys"]
    assert [k["status"] for k in after[:2]] == ["revoked", "revoked"]
    assert after[-1]["name"] == "sandbox bootstrap" and after[-1]["status"] == "active"
    assert (state / "bootstrap-key").read_text().strip() != first_key

    done = cli("sandbox", "--reset")
    assert done.returncode == 0 and str(state) in done.stdout
    assert not (state / "sandbox.sqlite3").exists() and not (state / "bootstrap-key").exists()
    fresh = ok(cli("--sandbox", "run", "list_api_keys"))["api_keys"]
    assert [k["name"] for k in fresh] == ["sandbox bootstrap"]


def test_sandbox_mode_refuses_invalid_input_before_starting(cli, env):
    failed(cli("--sandbox", "run", "create_api_key", "--input", '{"expires_in": "soon"}'), 2, "invalid_input")
    assert not (Path(env["GEN_NODES_SANDBOX_DIR"]) / "sandbox.sqlite3").exists()


# -- the sandbox server command and the demo -------------------------------------------------


def test_sandbox_command_serves_and_prints_its_address_first(env, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gen_nodes.surfaces.cli", "sandbox", "--port", "0", "--db", str(tmp_path / "fg.sqlite3")],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "the sandbox printed nothing within 15 s"
        first = json.loads(proc.stdout.readline())
        assert set(first) == {"base_url", "api_key"}
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", first["base_url"])
        assert not first["base_url"].endswith(":0/v1")
        me = requests.get(first["base_url"] + "/me", headers={"X-API-Key": first["api_key"]}, timeout=5)
        assert me.status_code == 200 and me.json()["email"] == "user1@sandbox.local"
        assert requests.get(first["base_url"] + "/me", headers={"X-API-Key": "nope"}, timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.stderr.close()
    assert proc.returncode == 0


def test_demo_walks_through_eleven_steps_with_secrets_masked(cli):
    done = cli("demo")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    steps = re.findall(r"^(\d+)\. (.+?)  \[(\w+)\]$", out, flags=re.MULTILINE)
    assert [int(n) for n, _, _ in steps] == list(range(1, 12))
    assert [action for _, _, action in steps] == [
        "get_me", "create_api_key", "get_me", "list_api_keys", "update_api_key", "list_api_keys", "rotate_api_key",
        "get_me", "revoke_api_key", "revoke_all_api_keys", "list_api_keys"]
    assert "succeeded: new key id 3" in out and "old key id 2 revoked" in out
    assert "refused as expected: 401 authentication" in out
    assert "n8n staging" in out
    assert "gen_pat_…" in out  # shown masked ...
    assert not FULL_TOKEN.search(out + done.stderr)  # ... and never in full


def test_a_reader_that_stops_early_is_not_an_error():
    """`gen-nodes demo | head -1`: no traceback when the pipe closes."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "gen_nodes.surfaces.cli", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 0
    assert first.startswith(b"Embedded GEN sandbox") and "Traceback" not in stderr


# -- limits and settings: a clear message, never a traceback ---------------------------------


@pytest.mark.parametrize("option", ["--timeout", "--deadline"])
@pytest.mark.parametrize("value", ["-5", "nan", "inf", "0", "soon"])
def test_a_nonsense_time_limit_is_refused_with_a_message(cli, option, value):
    done = cli(option, value, "run", "get_me", "--api-key", "k")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{option}: must be a number of seconds above 0" in done.stderr


def test_time_limits_are_used(cli, on, sandbox):
    sandbox.inject_fault(delay=1.0, times=5, method="GET", path="/me")
    error = failed(cli(*on, "--timeout", "20", "--deadline", "0.3", "run", "get_me"), 5, "timeout")
    assert "deadline of 0.3s" in error["message"] and "--deadline" in error["hint"]


def test_a_nonsense_setting_in_the_environment_is_refused_with_a_message(cli, on):
    error = failed(cli(*on, "run", "get_me", env={"GEN_NODES_MAX_RESPONSE_BYTES": "lots"}), 2, "invalid_setting")
    assert "GEN_NODES_MAX_RESPONSE_BYTES" in error["message"]


@pytest.mark.parametrize("depth", [50, 5000])
def test_input_nested_too_deeply_exits_2_without_a_traceback(cli, on, sandbox, depth):
    deep = '{"name": ' + "[" * depth + "]" * depth + "}"
    error = failed(cli(*on, "run", "create_api_key", "--input", deep), 2, "invalid_input")
    assert "nested more than 32 levels deep" in error["message"] + json.dumps(error["errors"])
    assert untouched(sandbox)


def test_an_id_with_a_trailing_newline_exits_2_and_sends_nothing(cli, on, sandbox):
    error = failed(cli(*on, "run", "revoke_api_key", "--input", '{"id": "6\\n"}', "--yes"), 2, "invalid_input")
    assert error["errors"][0]["path"] == "$.id"
    assert untouched(sandbox)


# -- the sandbox command: clear messages, and no silent non-loopback bind ---------------------


@pytest.mark.parametrize("args, code, words", [
    (["--host", "0.0.0.0"], 2, "--allow-remote"),
    (["--host", "8.8.8.8"], 2, "--allow-remote"),
    (["--host", "0.0.0.0", "--allow-remote"], 2, "--allowed-host"),
    (["--host", "8.8.8.8", "--allow-remote", "--allowed-host", "gen.test:*"], 1, "Cannot listen on 8.8.8.8"),
    (["--port", "99999"], 1, "out of range"),
    (["--db", "/nonexistent/dir/x.db"], 1, "/nonexistent/dir/x.db"),
])
def test_the_sandbox_command_explains_what_it_cannot_do(cli, args, code, words):
    done = cli("sandbox", *args, timeout=30)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert words in json.loads(done.stderr)["error"]["message"] + json.loads(done.stderr)["error"]["hint"]


def test_a_second_sandbox_on_a_port_in_use_is_a_clear_error(cli, sandbox):
    done = cli("sandbox", "--port", str(sandbox.port), timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "already in use" in json.loads(done.stderr)["error"]["message"]


def test_version():
    done = gen_nodes_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"gen-nodes {gen_nodes.__version__}"


def test_run_help_lists_the_actions():
    done = gen_nodes_cli("run", "--help")
    assert done.returncode == 0
    for action in ("get_me", "list_api_keys", "create_api_key", "update_api_key", "revoke_api_key",
                   "revoke_all_api_keys"):
        assert action in done.stdout
    assert "destructive" in done.stdout


def test_mcp_help_without_the_mcp_extra_prints_the_help(tmp_path):
    # Shadow the SDK with packages that fail to import, as on an install without the extra.
    for name in ("mcp", "mcp_types"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"raise ImportError('No module named {name}', name={name!r})\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = gen_nodes_cli("mcp", "--help", env=env)
    assert done.returncode == 0, done.stderr
    assert "--transport" in done.stdout and "--confirmation" in done.stdout
    assert "pip install 'gen-nodes[mcp]'" in done.stdout
    # Running it still says what to install.
    done = gen_nodes_cli("mcp", env=env)
    assert done.returncode == 1 and "gen-nodes[mcp]" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_action_is_named_in_json_words(cli_env=None):
    done = gen_nodes_cli("run", "get_mee")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    error = json.loads(done.stderr)["error"]
    assert '"get_mee"' in error["message"] and "get_me" in error["hint"]


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "0"])
def test_the_mcp_servers_timeout_is_checked_before_it_starts(value):
    pytest.importorskip("mcp")
    done = gen_nodes_cli("mcp", "--timeout", value)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--timeout" in done.stderr and "positive number" in done.stderr


def test_the_yes_hint_repeats_the_sandbox_option_the_user_gave(env, sandbox):
    done = gen_nodes_cli("run", "revoke_api_key", "--input", '{"id": 1}', "--sandbox", env=env)
    assert done.returncode == 6, done.stderr
    hint = json.loads(done.stderr)["error"]["hint"]
    assert "`gen-nodes run list_api_keys --sandbox`" in hint, hint
    done = gen_nodes_cli("run", "revoke_api_key", "--input", '{"id": 1}', "--base-url", sandbox.base_url,
                         env={**env, "GEN_API_KEY": sandbox.api_key})
    assert "`gen-nodes run list_api_keys`" in json.loads(done.stderr)["error"]["hint"]


def test_a_store_that_fails_at_start_prints_only_its_json_error(env, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    done = gen_nodes_cli("serve", "--port", "0", "--store", f"sqlite:///{tmp_path}/a-file/state.db", env=env)
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr, done.stderr
    error = json.loads(done.stderr)["error"]  # the whole of stderr is the one JSON error
    assert error["type"] == "cannot_serve" and "a-file" in error["message"] and "--store" in error["hint"]
