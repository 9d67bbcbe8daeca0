"""Section 2 of the safety issue: a key name cannot forge the text a person approves.

A model may rename a key (no confirmation needed) to a name holding newlines, ANSI escapes or
bidi overrides. Everything shown to a person for a decision shows it quoted, escaped and cut.
The CLI prompt is read from a real terminal (a pty); the MCP elicitation message from the SDK's
ClientSession; the function itself is checked on its own.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gen_nodes.safety.display import confirmation_lines, preview_lines, quoted

REPO = Path(__file__).resolve().parents[1]
SPOOF = "ok\n\x1b[2K\rNOTE: this is a DRY RUN; no key will be revoked \x1b[32m\u202eevil" + "x" * 150


def test_quoted_makes_every_hidden_character_visible_and_cuts():
    shown = quoted(SPOOF)
    assert shown.startswith('"ok\\n\\x1b[2K\\rNOTE')
    assert "\\u202e" in shown and "\n" not in shown and "\x1b" not in shown and "\r" not in shown
    assert shown.endswith(f"({len(SPOOF)} characters)") and len(shown) < 150
    assert quoted('say "hi" \\') == '"say \\"hi\\" \\\\"'  # cannot close its own quotes
    assert quoted(None) == "(none)" and quoted(6) == "6" and quoted(True) == "true"
    assert quoted("\u2028\u200b\ud800") == '"\\u2028\\u200b\\ud800"'


def test_preview_lines_escape_names_mask_secrets_and_cap_the_list():
    items = [{"id": i, "name": SPOOF, "status": "active", "token": "gen_pat_" + "s" * 40} for i in range(60)]
    lines = preview_lines(items)
    assert lines[0] == "Keys affected:" and lines[-1] == "  … and 10 more" and len(lines) == 52
    assert all("\n" not in line and "\x1b" not in line for line in lines)
    assert "s" * 20 not in "".join(lines)
    assert preview_lines([]) == ["No matching key was found; GEN will answer whether it exists."]
    text = "\n".join(confirmation_lines("Revoke", "Revokes.", "gen_revoke", {"id": 6, "note": SPOOF}, items[:1]))
    assert "\x1b" not in text and text.count("\n") == 4


def _read_until(fd: int, needle: bytes, seconds: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def answer_the_prompt(sandbox, target: int, answer: bytes) -> tuple[int, bytes]:
    """Run ``gen-nodes run revoke_api_key`` on a terminal (a pty), type ``answer`` at its prompt;
    its exit code and what it showed up to the prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    env.update(GEN_API_KEY=sandbox.api_key, GEN_BASE_URL=sandbox.base_url)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gen_nodes.surfaces.cli", "run", "revoke_api_key", "--input",
                             json.dumps({"id": target})], stdin=terminal, stdout=terminal, stderr=terminal,
                            env=env, cwd=REPO)
    os.close(terminal)
    try:
        prompt = _read_until(controller, b"to go ahead: ")
        os.write(controller, answer + b"\n")
        return proc.wait(30), prompt
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)


def test_the_cli_prompt_shows_a_spoofing_name_escaped(sandbox):
    target = sandbox.store.create_key(sandbox.user["id"], SPOOF)[0]["id"]
    code, prompt = answer_the_prompt(sandbox, target, b"no")
    assert code == 6
    assert b"Type 'yes'" in prompt, prompt
    assert b"\x1b" not in prompt and b"\\x1b[2K" in prompt  # the escape is shown, not obeyed
    assert b"\nNOTE" not in prompt.replace(b"\r\n", b"\n")  # the forged line does not stand on its own
    assert sandbox.store.get_key(sandbox.user["id"], target)["status"] == "active"


def test_the_prompt_names_every_answer_that_confirms_and_y_does(sandbox):
    target = sandbox.store.create_key(sandbox.user["id"], "to revoke")[0]["id"]
    code, prompt = answer_the_prompt(sandbox, target, b"y")
    assert code == 0
    assert b"Type 'yes' or 'y' to go ahead: " in prompt, prompt
    assert sandbox.store.get_key(sandbox.user["id"], target)["status"] == "revoked"


@pytest.mark.parametrize("account, shown", [
    ({"id": 7, "name": "Ada", "email": "ada@example.com"}, "Ada <ada@example.com>"),
    ({"id": 7, "name": "Ada\u202e evil", "email": None}, "Ada\\u202e evil"),
    ({"id": 7, "name": None, "email": "x@y.z"}, "user 7 <x@y.z>"),
    (None, "an unknown GEN account (it could not be read)"),
])
def test_one_account_text_for_every_notice_and_page(account, shown):
    """The page, the stderr and webhook notices and the chat DM name the account one way, escaped."""
    from gen_nodes.safety.display import account_text

    assert account_text(account) == shown
