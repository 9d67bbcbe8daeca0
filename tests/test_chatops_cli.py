"""``gen-nodes chatops`` as real subprocesses: the servers (first stdout line, signed requests,
audit lines on stderr), bind/unbind from a shell, Discord's command JSON, and two Slack
processes sharing bindings and approvals through a real redis-server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import pytest
import requests

pytest.importorskip("slack_bolt")
pytest.importorskip("nacl")

from chat_support import (  # noqa: E402
    CLI, REPO, DiscordSigner, Recorder, button_payload, chatops_server, discord_command, interaction_form, slack_post,
    slack_signed, slash_form)

SIGNING_SECRET = "cli-signing-secret"
CHATOPS_SECRET = "cli-chatops-secret-0123456789"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DISCORD_", "GEN_API_KEY", "GEN_BASE_URL", "GEN_NODES_CHATOPS"))}
    env.update({"GEN_NODES_CHATOPS_SECRET": CHATOPS_SECRET, **extra})
    return env


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=60,
                          env=env or _env(), cwd=REPO, stdin=None if stdin is not None else subprocess.DEVNULL)


@pytest.fixture
def web():
    with Recorder() as recorder:
        yield recorder


@pytest.fixture
def sandbox_log(caplog):
    caplog.set_level(logging.DEBUG, logger="gen_nodes.sandbox")
    return caplog


def _deletes(caplog) -> int:
    return sum('"DELETE ' in r.getMessage() for r in caplog.records if r.name == "gen_nodes.sandbox")


def _approval(message: dict) -> str:
    return next(b for b in message["blocks"] if b["type"] == "actions")["elements"][0]["value"]


def test_discord_commands_json_is_printed_from_the_registry():
    done = run_cli("chatops", "discord", "commands")
    assert done.returncode == 0, done.stderr
    [command] = json.loads(done.stdout)
    keys = next(o for o in command["options"] if o["name"] == "keys")
    assert [o["name"] for o in keys["options"]] == ["list", "create", "rename", "revoke-all", "revoke", "rotate"]


def test_missing_configuration_is_a_clear_error():
    done = run_cli("chatops", "slack", env={k: v for k, v in _env().items() if k != "GEN_NODES_CHATOPS_SECRET"})
    assert done.returncode == 2
    error = json.loads(done.stderr)["error"]
    assert error["message"] == "SLACK_SIGNING_SECRET is not set." and "Signing Secret" in error["hint"]
    done = run_cli("chatops", "discord", env=_env(DISCORD_PUBLIC_KEY="00" * 32, GEN_NODES_CHATOPS_SECRET=""))
    assert done.returncode == 2 and "GEN_NODES_CHATOPS_SECRET" in json.loads(done.stderr)["error"]["message"]
    done = run_cli("chatops", "discord", "--host", "0.0.0.0", env=_env(DISCORD_PUBLIC_KEY="00" * 32))
    assert done.returncode == 2 and "--allow-remote" in json.loads(done.stderr)["error"]["hint"]
    done = run_cli("chatops", "unbind", "--platform", "slack", "--user", "U1", "--store", "memory://",
                   env=_env(GEN_NODES_CHATOPS_SECRET="short"))
    assert done.returncode == 2 and "at least 16 characters" in json.loads(done.stderr)["error"]["message"]
    done = run_cli("chatops", "unbind", "--platform", "slack", "--user", "U1", "--store", "redis://127.0.0.1:1/0")
    assert done.returncode == 1 and "Cannot reach Redis" in json.loads(done.stderr)["error"]["message"]


def test_bind_and_unbind_from_a_shell(sandbox, tmp_path):
    store = f"sqlite:///{tmp_path / 'chatops.db'}"
    bad = run_cli("chatops", "bind", "--platform", "slack", "--user", "U7", "--store", store,
                  "--base-url", sandbox.base_url, stdin="gen_pat_wrongwrongwrongwrongwrong\n")
    assert bad.returncode == 3 and json.loads(bad.stderr)["error"]["type"] == "authentication"
    done = run_cli("chatops", "bind", "--platform", "slack", "--user", "U7", "--store", store,
                   "--base-url", sandbox.base_url, stdin=sandbox.api_key + "\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"platform": "slack", "user": "U7", "gen_user": 1,
                                       "email": "user1@sandbox.local"}
    assert sandbox.api_key not in done.stdout + done.stderr
    assert sandbox.api_key.encode() not in (tmp_path / "chatops.db").read_bytes()  # sealed at rest

    from gen_nodes.surfaces.chatops.core import ChatOps
    from gen_nodes.surfaces.chatops.messages import ChatUser
    from gen_nodes.core.registry import default_registry
    from gen_nodes.state import open_store
    from gen_nodes.state.secretbox import SecretBox

    opened = open_store(store)
    try:
        chat = ChatOps(default_registry(), opened, SecretBox(CHATOPS_SECRET), base_url=sandbox.base_url)
        assert "user1@sandbox.local" in chat.run(ChatUser("slack", "T1", "U7"), chat.parse("me")).text
        gone = run_cli("chatops", "unbind", "--platform", "slack", "--user", "U7", "--store", store)
        assert json.loads(gone.stdout)["unbound"] is True
        assert "run `/gen login`" in chat.run(ChatUser("slack", "T1", "U7"), chat.parse("me")).text
    finally:
        opened.close()


def test_the_slack_server_from_the_cli(sandbox, web, tmp_path):
    store = f"sqlite:///{tmp_path / 'chatops.db'}"
    assert run_cli("chatops", "bind", "--platform", "slack", "--user", "U1", "--store", store,
                   "--base-url", sandbox.base_url, stdin=sandbox.api_key).returncode == 0
    env = _env(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN="xoxb-cli-test", SLACK_API_URL=web.url + "/api/")
    log = tmp_path / "slack.log"
    with chatops_server("slack", "--store", store, "--base-url", sandbox.base_url, env=env, log=log) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/slack/events")
        assert web.matching("/api/auth.test")  # the bot token was checked at start
        made = slack_post(url, SIGNING_SECRET, slash_form("keys create from the cli", web.url + "/r/1/"))
        assert made.status_code == 200
        token = next(w.strip("`") for w in web.wait_for("/r/1/")[0].body["text"].split()
                     if w.strip("`").startswith("gen_pat_"))
        assert slack_post(url, "wrong", slash_form("me", web.url + "/r/2/")).status_code == 401
    logged = log.read_text()
    audit = [json.loads(line.split("gen_nodes.chatops.audit: ", 1)[1]) for line in logged.splitlines()
             if "gen_nodes.chatops.audit: " in line]
    assert audit == [{"platform": "slack", "workspace": "T1", "user": "U1", "action": "create_api_key",
                      "ids": [audit[0]["ids"][0]], "outcome": "ok"}]
    for secret in (token, sandbox.api_key, "xoxb-cli-test", SIGNING_SECRET):
        assert secret not in logged
    assert "will be unused" not in logged and "Traceback" not in logged


def test_the_discord_server_from_the_cli(tmp_path):
    signer = DiscordSigner()
    env = _env(DISCORD_PUBLIC_KEY=signer.public_key)
    with chatops_server("discord", "--store", f"sqlite:///{tmp_path / 'c.db'}", env=env, log=tmp_path / "d.log") as url:
        assert url.endswith("/interactions")
        assert signer.post(url, {"type": 1}).json() == {"type": 1}
        assert DiscordSigner().post(url, {"type": 1}).status_code == 401


def test_two_processes_share_bindings_and_approvals_through_redis(redis_db, sandbox, web, tmp_path, sandbox_log):
    redis_url = redis_db
    env = _env(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN="xoxb-cli-test", SLACK_API_URL=web.url + "/api/")
    bound = run_cli("chatops", "bind", "--platform", "slack", "--user", "U1", "--store", redis_url,
                    "--base-url", sandbox.base_url, stdin=sandbox.api_key, env=env)
    assert bound.returncode == 0, bound.stderr
    common = ("slack", "--store", redis_url, "--base-url", sandbox.base_url)
    with chatops_server(*common, env=env, log=tmp_path / "a.log") as first, \
            chatops_server(*common, env=env, log=tmp_path / "b.log") as second:
        assert first != second
        slack_post(first, SIGNING_SECRET, slash_form("keys revoke 1", web.url + "/a/1/"))
        approval = _approval(web.wait_for("/a/1/")[0].body)
        assert _deletes(sandbox_log) == 0

        pressed = slack_post(second, SIGNING_SECRET, interaction_form(
            button_payload("gen_approve", approval, web.url + "/b/1/")))
        assert pressed.status_code == 200
        assert "revoked: yes" in web.wait_for("/b/1/")[0].body["text"]
        for url, reply in ((first, "/a/2/"), (second, "/b/2/")):  # again, on either process: nothing more
            slack_post(url, SIGNING_SECRET, interaction_form(button_payload("gen_approve", approval, web.url + reply)),
                       headers={"X-Slack-Retry-Num": "1"})
            assert "already used" in web.wait_for(reply)[0].body["text"]
        assert _deletes(sandbox_log) == 1
    for name in ("a.log", "b.log"):
        assert sandbox.api_key not in (tmp_path / name).read_text()


def test_discord_commands_print_without_the_discord_extra():
    """The command JSON is generated from the registry: printing it needs no PyNaCl."""
    code = ("import sys; sys.modules['nacl'] = None\n"
            "from gen_nodes.surfaces.cli import main\n"
            "sys.exit(main(['chatops', 'discord', 'commands']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    commands = json.loads(done.stdout)
    assert commands[0]["name"] == "gen" and commands[0]["options"]


# -- hardening: replays across processes, --sandbox, start-up failures -----------------------


def _keys_made(caplog) -> int:
    return sum('"POST /v1/persisted_tokens' in r.getMessage() for r in caplog.records if r.name == "gen_nodes.sandbox")


def test_a_slack_replay_to_another_process_does_not_act(redis_db, sandbox, web, tmp_path, sandbox_log):
    env = _env(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN="xoxb-cli-test", SLACK_API_URL=web.url + "/api/")
    assert run_cli("chatops", "bind", "--platform", "slack", "--user", "U1", "--store", redis_db,
                   "--base-url", sandbox.base_url, stdin=sandbox.api_key, env=env).returncode == 0
    common = ("slack", "--store", redis_db, "--base-url", sandbox.base_url)
    body, headers = slack_signed(SIGNING_SECRET, slash_form("keys create once", web.url + "/replay/"))
    with chatops_server(*common, env=env, log=tmp_path / "a.log") as first, \
            chatops_server(*common, env=env, log=tmp_path / "b.log") as second:
        assert requests.post(first, data=body, headers=headers, timeout=15).status_code == 200
        web.wait_for("/replay/")
        again = requests.post(second, data=body, headers=headers, timeout=15)
        assert again.status_code == 200 and not again.text
        time.sleep(1)  # a wrongly started run on the second process would show itself here
    assert len(web.matching("/replay/")) == 1 and _keys_made(sandbox_log) == 1
    assert "replayed slack request" in (tmp_path / "b.log").read_text()


def test_a_discord_replay_to_another_process_does_not_act(sandbox, web, tmp_path, sandbox_log):
    signer = DiscordSigner()
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    env = _env(DISCORD_PUBLIC_KEY=signer.public_key, DISCORD_API_URL=web.url + "/api/v10")
    assert run_cli("chatops", "bind", "--platform", "discord", "--user", "111", "--store", store,
                   "--base-url", sandbox.base_url, stdin=sandbox.api_key, env=env).returncode == 0
    common = ("discord", "--store", store, "--base-url", sandbox.base_url)
    body, headers = signer.signed(discord_command(["keys", "create"], {"name": "once"}, token="replay"))
    with chatops_server(*common, env=env, log=tmp_path / "a.log") as first, \
            chatops_server(*common, env=env, log=tmp_path / "b.log") as second:
        assert requests.post(first, data=body, headers=headers, timeout=15).json()["type"] == 5
        web.wait_for("/api/v10/webhooks/APP1/replay")
        again = requests.post(second, data=body, headers=headers, timeout=15).json()
        assert "already handled" in again["data"]["content"]
        time.sleep(1)
    assert len(web.matching("/api/v10/webhooks/APP1/replay")) == 1 and _keys_made(sandbox_log) == 1


def test_sandbox_flag_binds_and_serves_against_the_persistent_sandbox(web, tmp_path):
    env = _env(GEN_NODES_SANDBOX_DIR=str(tmp_path / "sandbox"), SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_BOT_TOKEN="xoxb-cli-test", SLACK_API_URL=web.url + "/api/")
    bound = run_cli("--sandbox", "chatops", "bind", "--platform", "slack", "--user", "U1", stdin="", env=env)
    assert bound.returncode == 0, bound.stderr
    assert json.loads(bound.stdout)["email"].endswith("@sandbox.local")
    assert (tmp_path / "sandbox" / "chatops.sqlite3").exists()  # its own store, beside the sandbox's
    with chatops_server("slack", env=env, log=tmp_path / "s.log", before=("--sandbox",)) as url:
        slack_post(url, SIGNING_SECRET, slash_form("me", web.url + "/me/"))
        assert "@sandbox.local" in web.wait_for("/me/")[0].body["text"]
    gone = run_cli("--sandbox", "chatops", "unbind", "--platform", "slack", "--user", "U1", env=env)
    assert json.loads(gone.stdout)["unbound"] is True
    again = run_cli("--sandbox", "chatops", "unbind", "--platform", "slack", "--user", "U1", env=env)
    assert json.loads(again.stdout)["unbound"] is False


class RefusingSlack(Recorder):
    def answer(self, entry):
        if entry.path.startswith("/api/auth.test"):
            return 200, {"ok": False, "error": "invalid_auth"}
        return super().answer(entry)


def test_slack_unreachable_or_a_bad_token_is_one_json_error(tmp_path):
    store = f"sqlite:///{tmp_path / 'c.db'}"
    unreachable = _env(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN="xoxb-cli-test",
                       SLACK_API_URL="http://127.0.0.1:1/api/")
    done = run_cli("chatops", "slack", "--port", "0", "--store", store, env=unreachable)
    error = json.loads(done.stderr)["error"]
    assert done.returncode == 5 and error["type"] == "connection" and "Cannot reach Slack" in error["message"]
    assert "network" in error["hint"] and "Traceback" not in done.stderr
    with RefusingSlack() as slack:
        refused = _env(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN="xoxb-bad-token",
                       SLACK_API_URL=slack.url + "/api/")
        done = run_cli("chatops", "slack", "--port", "0", "--store", store, env=refused)
    error = json.loads(done.stderr)["error"]
    assert done.returncode == 3 and error["type"] == "authentication" and "SLACK_BOT_TOKEN" in error["message"]
    assert "OAuth" in error["hint"] and "Traceback" not in done.stderr and "xoxb-bad-token" not in done.stderr
