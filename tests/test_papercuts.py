"""Newcomer papercuts (hardening item 16): the words a person meets first say what is meant.

The command line runs as a real subprocess (the prompt on a real terminal, a pty); an install
without the airflow extra is an ``airflow`` package on PYTHONPATH that fails to import as a
missing one does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gen_nodes.core.errors import InvalidInput
from gen_nodes.core.validation import bundled
from test_display import answer_the_prompt

REPO = Path(__file__).resolve().parents[1]


def gen_nodes_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gen_nodes.surfaces.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    clean["GEN_NODES_SANDBOX_DIR"] = str(tmp_path / "sandbox-state")
    return clean


def test_the_yes_hint_repeats_the_sandbox_option_the_user_gave(env, sandbox):
    done = gen_nodes_cli("run", "revoke_api_key", "--input", '{"id": 1}', "--sandbox", env=env)
    assert done.returncode == 6, done.stderr
    hint = json.loads(done.stderr)["error"]["hint"]
    assert "`gen-nodes run list_api_keys --sandbox`" in hint, hint
    done = gen_nodes_cli("run", "revoke_api_key", "--input", '{"id": 1}', "--base-url", sandbox.base_url,
                         env={**env, "GEN_API_KEY": sandbox.api_key})
    assert "`gen-nodes run list_api_keys`" in json.loads(done.stderr)["error"]["hint"]


def test_an_id_with_a_leading_zero_is_refused_saying_why(registry):
    with pytest.raises(InvalidInput) as info:
        registry.validate("revoke_api_key", {"id": "06"})
    [problem] = info.value.errors
    assert problem["path"] == "$.id" and "leading zero" in problem["message"], problem
    assert '"6", not "06"' in str(info.value)
    with pytest.raises(InvalidInput, match="from 1 to"):  # the number form says its own rule
        registry.validate("revoke_api_key", {"id": 0})


def test_missing_fields_are_listed_once(registry):
    with pytest.raises(InvalidInput) as info:
        registry.validate("update_api_key", {})
    assert info.value.errors == [{"path": "$", "message": 'missing required field "id", "name"'}]
    assert str(info.value).count("missing required field") == 1


def test_the_prompt_names_every_answer_that_confirms_and_y_does(sandbox):
    target = sandbox.store.create_key(sandbox.user["id"], "to revoke")[0]["id"]
    code, prompt = answer_the_prompt(sandbox, target, b"y")
    assert code == 0
    assert b"Type 'yes' or 'y' to go ahead: " in prompt, prompt
    assert sandbox.store.get_key(sandbox.user["id"], target)["status"] == "revoked"


def test_a_store_that_fails_at_start_prints_only_its_json_error(env, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    done = gen_nodes_cli("serve", "--port", "0", "--store", f"sqlite:///{tmp_path}/a-file/state.db", env=env)
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr, done.stderr
    error = json.loads(done.stderr)["error"]  # the whole of stderr is the one JSON error
    assert error["type"] == "cannot_serve" and "a-file" in error["message"] and "--store" in error["hint"]


@pytest.mark.parametrize("statement", ["from gen_nodes.airflow import GenHook",
                                       "from gen_nodes.airflow import GenActionOperator",
                                       "import gen_nodes.airflow.operators"])
def test_airflow_without_the_extra_names_the_extra(tmp_path, statement):
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'airflow'\", name='airflow')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", f"import gen_nodes.airflow\n{statement}"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: gen_nodes.airflow needs Apache Airflow 3"), last
    assert "pip install 'gen-nodes[airflow]'" in last


def test_the_n8n_credential_links_to_the_guide_on_api_keys_not_the_api(tmp_path, registry):
    from gen_nodes.surfaces.n8n.node import credential_description, write_package

    url = credential_description()["documentationUrl"]
    assert url == "https://api.gen.pro/guides/authentication/"
    write_package(registry, tmp_path / "package")
    [credential] = (tmp_path / "package" / "credentials").glob("*.credentials.js")
    [line] = [line for line in credential.read_text().splitlines() if "documentationUrl" in line]
    assert url in line


def _descriptions(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        own = [schema[k] for k in ("description", "title") if isinstance(schema.get(k), str)]
        return own + [text for value in schema.values() for text in _descriptions(value)]
    if isinstance(schema, list):
        return [text for item in schema for text in _descriptions(item)]
    return []


def test_user_facing_descriptions_do_not_name_gen_nodes(registry):
    """n8n, Discord and tool users read these; they know GEN, not the package in between."""
    texts = []
    for spec in registry:
        texts += [spec.title, spec.description]
        texts += _descriptions(bundled(spec.input_schema)) + _descriptions(bundled(spec.output_schema))
    assert len(texts) > 20
    assert [text for text in texts if "gen-nodes" in text.lower()] == []
