"""What a new user hit: every command answers with help or a message, never a traceback, and
user-facing text speaks JSON and plain words, not Python (no True, None or dict reprs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gen_nodes
from gen_nodes.surfaces.demo import run_demo

ROOT = Path(__file__).resolve().parent.parent
PYTHON_LITERALS = re.compile(r"\bTrue\b|\bFalse\b|\bNone\b|\{'|\['")


def gen_nodes_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gen_nodes.surfaces.cli", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=env)


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


def test_the_demo_speaks_no_python_and_every_step_has_a_result_line():
    lines: list[str] = []
    assert run_demo(lines.append) == 0
    text = "\n".join(lines)
    assert not PYTHON_LITERALS.search(text), [line for line in lines if PYTHON_LITERALS.search(line)]
    steps = [i for i, line in enumerate(lines) if re.match(r"^\d+\. ", line)]
    for start, end in zip(steps, steps[1:] + [len(lines)]):
        assert any(line.startswith("   ") for line in lines[start + 1:end]), f"no result line after {lines[start]}"
    revoke_all = next(i for i in steps if "[revoke_all_api_keys]" in lines[i])
    assert "revoked" in lines[revoke_all + 1]


def test_an_unnamed_key_is_not_shown_as_none(sandbox, client, registry):
    registry.run("create_api_key", {}, client=client)
    from gen_nodes.surfaces.demo import _table

    lines: list[str] = []
    _table(lines.append, registry.run("list_api_keys", {}, client=client)["api_keys"])
    assert any("(unnamed)" in line for line in lines)
    assert not any(PYTHON_LITERALS.search(line) for line in lines)


def test_an_unknown_action_is_named_in_json_words(cli_env=None):
    done = gen_nodes_cli("run", "get_mee")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    error = json.loads(done.stderr)["error"]
    assert '"get_mee"' in error["message"] and "get_me" in error["hint"]


def test_the_readme_stands_alone():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)]+)\)|`(\.\./[^`]+)`", readme):
        link = next(t for t in target if t)
        assert not link.startswith("../"), link
        if not re.match(r"[a-z]+://", link) and not link.startswith("#"):
            assert (ROOT / link.split("#")[0]).exists(), link
    assert "../shared" not in readme
    assert "(docs/gen-documents.md)" in readme  # where GEN's documents disagree


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "0"])
def test_the_mcp_servers_timeout_is_checked_before_it_starts(value):
    pytest.importorskip("mcp")
    done = gen_nodes_cli("mcp", "--timeout", value)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--timeout" in done.stderr and "positive number" in done.stderr
