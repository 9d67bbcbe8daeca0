"""The plugin registry: built-ins through entry points, and a real out-of-tree plugin.

``tests/plugin_example`` is a separate distribution (``gen-nodes-plugin-example``)
declaring two ``gen_nodes.actions`` entry points: ``get_me_again`` (GET /me, with its
own two schema files) and ``broken_example``, which fails to import on purpose. It is
installed for real into a temporary folder (``pip install --target`` when the build
backend is at hand offline; otherwise the same ``*.dist-info`` a wheel install writes,
generated from its ``pyproject.toml``), then used from fresh Python processes whose
``PYTHONPATH`` holds that folder. Nothing in the registry is patched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import gen_nodes
from gen_nodes.core.errors import AuthenticationError, InvalidInput, UnknownAction
from gen_nodes.core.registry import GROUP, PluginWarning, Registry, default_registry
from gen_nodes.core.spec import ActionSpec
from gen_nodes.core.validation import bundled

PLUGIN_SRC = Path(__file__).resolve().parent / "plugin_example"
BUILTINS = ["create_api_key", "get_me", "list_api_keys", "revoke_all_api_keys", "revoke_api_key", "rotate_api_key", "update_api_key"]


# -- the registry itself -------------------------------------------------------------


def test_builtins_register_through_the_entry_point_group():
    from importlib.metadata import entry_points

    ours = {ep.name: ep.value for ep in entry_points(group=GROUP) if ep.dist and ep.dist.name == "gen-nodes"}
    assert sorted(ours) == BUILTINS
    assert ours["get_me"] == "gen_nodes.core.actions:GET_ME"
    registry = Registry.discover()
    assert set(BUILTINS) <= set(registry.ids())
    assert "get_me_again" not in registry  # the plugin is not installed in this process


def test_default_registry_is_discovered_once():
    assert default_registry() is default_registry()
    assert set(BUILTINS) <= set(default_registry().ids())


def test_registry_lists_gets_and_validates():
    registry = default_registry()
    assert len(registry) >= 6 and "create_api_key" in registry and "nope" not in registry
    assert all(isinstance(spec, ActionSpec) for spec in registry)
    spec = registry.get("update_api_key")
    assert (spec.method, spec.path, spec.title) == ("PATCH", "/persisted_tokens/{id}", "Rename API key")
    assert registry.validate("update_api_key", {"id": "3", "name": "x"}) == {"id": "3", "name": "x"}
    with pytest.raises(InvalidInput) as caught:
        registry.validate("update_api_key", {"id": "3"})
    assert caught.value.errors[0]["path"] == "$"
    with pytest.raises(UnknownAction) as caught:
        registry.validate("update_api_keys", {})
    assert "Did you mean update_api_key" in caught.value.hint


def test_hints_are_as_documented():
    hints = {spec.id: spec.hints for spec in default_registry()}
    assert hints["get_me"].read_only and hints["list_api_keys"].read_only
    create = hints["create_api_key"]
    assert not (create.read_only or create.destructive or create.idempotent or create.safe_to_retry)
    assert hints["update_api_key"].idempotent and not hints["update_api_key"].destructive
    for action in ("revoke_api_key", "revoke_all_api_keys"):
        assert hints[action].destructive and hints[action].idempotent and not hints[action].read_only
    assert "including the key" in default_registry().get("revoke_all_api_keys").description


def test_a_registry_of_given_specs_and_type_checks():
    spec = default_registry().get("get_me")
    registry = Registry([spec])
    assert registry.ids() == ["get_me"] and list(registry) == [spec] and len(registry) == 1
    with pytest.raises(TypeError, match="expected an ActionSpec, got dict"):
        registry.add({"id": "x"})
    with pytest.raises(UnknownAction):
        registry.get("list_api_keys")


def test_discover_of_an_empty_group_is_empty():
    assert len(Registry.discover("gen_nodes.no_such_group")) == 0


def test_run_makes_and_closes_its_own_client(sandbox):
    out = default_registry().run("get_me", api_key=sandbox.api_key, base_url=sandbox.base_url)
    assert out["id"] == sandbox.user["id"]
    with pytest.raises(AuthenticationError):
        gen_nodes.run("get_me", api_key="wrong", base_url=sandbox.base_url)


# -- a real out-of-tree plugin -------------------------------------------------------


def _install_with_pip(target: Path) -> bool:
    """Build and install the plugin with its own build backend, offline. False if it cannot."""
    if importlib.util.find_spec("hatchling") is None:
        return False
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(PLUGIN_SRC)],
        capture_output=True, text=True, timeout=120,
    )
    return done.returncode == 0


def _install_by_hand(target: Path) -> None:
    """What installing the wheel writes: the package, and a dist-info with METADATA and entry points."""
    project = tomllib.loads((PLUGIN_SRC / "pyproject.toml").read_text())["project"]
    package = "gen_nodes_plugin_example"
    shutil.copytree(PLUGIN_SRC / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    info = target / f"{package}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
        f"Summary: {project['description']}\nRequires-Dist: gen-nodes\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (info / "INSTALLER").write_text("gen-nodes-tests\n")


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """Environment for a subprocess that sees the plugin installed in a temporary site folder."""
    site = tmp_path_factory.mktemp("plugin-site")
    if not _install_with_pip(site):
        shutil.rmtree(site)
        site.mkdir()
        _install_by_hand(site)
    infos = list(site.glob("gen_nodes_plugin_example-*.dist-info"))
    assert len(infos) == 1 and "get_me_again" in (infos[0] / "entry_points.txt").read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEN_") and k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(site)
    env["GEN_NODES_SANDBOX_DIR"] = str(tmp_path_factory.mktemp("sandbox-state"))
    return env


def python(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=60,
                          input=stdin, cwd=env["GEN_NODES_SANDBOX_DIR"])


DISCOVER = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from gen_nodes.core.registry import Registry
    registry = Registry.discover()
spec = registry.get("get_me_again")
print(json.dumps({
    "ids": registry.ids(),
    "revoke": [registry.get("revoke_api_key").method, registry.get("revoke_api_key").title],
    "warnings": [[w.category.__name__, str(w.message)] for w in caught],
    "spec": {"method": spec.method, "path": spec.path, "read_only": spec.hints.read_only,
             "input_id": spec.input_schema["$id"]},
}))
"""


def test_plugin_action_is_discovered_and_broken_one_warns(plugin_env):
    done = python(plugin_env, "-c", DISCOVER)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(BUILTINS) <= set(out["ids"]) and "get_me_again" in out["ids"]
    assert "broken_example" not in out["ids"]
    assert out["spec"] == {"method": "GET", "path": "/me", "read_only": True,
                           "input_id": "urn:gen-nodes-plugin-example:schemas:get_me_again.input"}
    assert out["revoke"] == ["DELETE", "Revoke API key"]  # a plugin cannot replace a built-in action
    (category, message), (shadow_category, shadow) = sorted(out["warnings"], key=lambda w: "taken" in w[1])
    assert shadow_category == category == PluginWarning.__name__
    assert "'revoke_api_key'" in shadow and "already taken" in shadow
    assert "gen_nodes_plugin_example:IMPOSTOR (from gen-nodes-plugin-example)" in shadow
    assert "broken_example = gen_nodes_plugin_example.broken:ACTION" in message
    assert "gen-nodes-plugin-example" in message  # names the distribution
    assert "RuntimeError" in message and "broken on purpose" in message


RUN = """
import json, sys
import gen_nodes
from gen_nodes.core.errors import InvalidInput
out = gen_nodes.run("get_me_again", api_key=sys.argv[1], base_url=sys.argv[2])
try:
    gen_nodes.run("get_me_again", {"extra": 1}, api_key=sys.argv[1], base_url=sys.argv[2])
except InvalidInput as exc:
    paths = [e["path"] for e in exc.errors]
print(json.dumps({"out": out, "paths": paths}))
"""


def test_plugin_action_runs_from_python_against_the_sandbox(plugin_env, sandbox):
    done = python(plugin_env, "-W", "ignore", "-c", RUN, sandbox.api_key, sandbox.base_url)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["out"] == sandbox.user
    assert out["paths"] == ["$"]


def test_plugin_action_in_cli_actions(plugin_env):
    done = python(plugin_env, "-m", "gen_nodes.surfaces.cli", "actions", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert set(BUILTINS) <= set(rows)
    assert rows["get_me_again"]["title"] == "Get current user (plugin)"
    assert rows["get_me_again"]["hints"] == {"read_only": True, "destructive": False, "idempotent": True,
                                             "open_world": True}
    assert "broken_example" in done.stderr and "gen-nodes-plugin-example" in done.stderr

    table = python(plugin_env, "-W", "ignore", "-m", "gen_nodes.surfaces.cli", "actions")
    assert table.returncode == 0
    line = next(row for row in table.stdout.splitlines() if row.startswith("get_me_again"))
    assert "Get current user (plugin)" in line and "read_only" in line


def test_plugin_action_in_cli_describe_and_run(plugin_env, sandbox):
    done = python(plugin_env, "-W", "ignore", "-m", "gen_nodes.surfaces.cli", "describe", "get_me_again")
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["id"] == "get_me_again" and described["method"] == "GET" and described["path"] == "/me"
    assert described["input_schema"]["additionalProperties"] is False
    # The plugin's $ref into gen-nodes' shared definitions is resolved, offline.
    assert "$ref" not in done.stdout
    assert described["output_schema"]["properties"]["created_at"]["type"] == ["string", "null"]

    done = python(plugin_env, "-W", "ignore", "-m", "gen_nodes.surfaces.cli", "run", "get_me_again",
                  "--base-url", sandbox.base_url, "--api-key", sandbox.api_key)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == sandbox.user


def test_without_the_plugin_the_cli_does_not_know_it(plugin_env):
    env = {**plugin_env, "PYTHONPATH": ""}
    done = python(env, "-m", "gen_nodes.surfaces.cli", "describe", "get_me_again")
    assert done.returncode == 2
    error = json.loads(done.stderr)["error"]
    assert error["type"] == "invalid_input" and "get_me_again" in error["message"]
    assert "get_me" in error["hint"]
    assert "broken_example" not in done.stderr


def test_hand_written_dist_info_is_a_real_distribution_too(plugin_env, tmp_path):
    """The fallback install (no build backend offline) gives the same registry as the pip install."""
    _install_by_hand(tmp_path)
    done = python({**plugin_env, "PYTHONPATH": str(tmp_path)}, "-c", DISCOVER)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "get_me_again" in out["ids"] and set(BUILTINS) <= set(out["ids"])
    assert sorted("broken_example" in message for _, message in out["warnings"]) == [False, True]
    assert out["revoke"] == ["DELETE", "Revoke API key"]


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
