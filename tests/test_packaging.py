"""The installed distribution carries what an installed copy needs: schemas and entry points."""

from __future__ import annotations

from importlib.metadata import distribution
from pathlib import Path

import pytest

import gen_nodes
from gen_nodes.core.validation import schema_dir

REPO_SCHEMAS = sorted(p.name for p in (Path(__file__).parent.parent / "schemas").glob("*.json"))


def test_the_wheel_ships_every_schema_file():
    files = distribution("gen-nodes").files or []
    shipped = sorted(Path(str(f)).name for f in files if str(f).startswith("gen_nodes/schemas/"))
    if not shipped:
        pytest.skip("gen-nodes is installed in editable mode: its schemas come from the source tree")
    assert shipped == REPO_SCHEMAS


def test_schemas_are_found_next_to_the_imported_package():
    found = sorted(p.name for p in schema_dir().glob("*.json"))
    assert found == REPO_SCHEMAS
    package_dir = Path(gen_nodes.__file__).parent
    assert schema_dir() in (package_dir / "schemas", package_dir.parent / "schemas")


def test_the_built_in_actions_are_registered_as_entry_points():
    eps = {ep.name: ep.value for ep in distribution("gen-nodes").entry_points if ep.group == "gen_nodes.actions"}
    assert eps == {
        "get_me": "gen_nodes.core.actions:GET_ME",
        "list_api_keys": "gen_nodes.core.actions:LIST_API_KEYS",
        "create_api_key": "gen_nodes.core.actions:CREATE_API_KEY",
        "update_api_key": "gen_nodes.core.actions:UPDATE_API_KEY",
        "revoke_api_key": "gen_nodes.core.actions:REVOKE_API_KEY",
        "revoke_all_api_keys": "gen_nodes.core.actions:REVOKE_ALL_API_KEYS",
        "rotate_api_key": "gen_nodes.core.actions:ROTATE_API_KEY",
    }
