"""The settings module: every environment variable declared once, read once, documented from it."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from gen_nodes.core import settings
from gen_nodes.core.actions import LIST_API_KEYS
from gen_nodes.core.errors import InvalidSetting
from gen_nodes.core.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
OFF_SCHEMA_LIST = [{"id": 1, "status": "paused"}]  # not a status GEN documents


def test_unset_and_blank_variables_take_their_defaults():
    empty = settings.Settings.from_env({"GEN_NODES_STORE": "  ", "GEN_API_KEY": ""})
    assert empty.store is None and empty.api_key is None and empty.deadline is None
    assert empty.approval_notify == () and empty.allowed_hosts == () and empty.check_output == ""


def test_values_are_read_with_their_type():
    read = settings.Settings.from_env({
        "GEN_NODES_DEADLINE": "12.5", "GEN_NODES_MAX_RESPONSE_BYTES": "1000",
        "GEN_NODES_ALLOWED_HOSTS": " a.example , ,b.example:8080", "GEN_NODES_APPROVAL_NOTIFY": "stderr,slack",
        "GEN_BASE_URL": " http://127.0.0.1:9/v1\n",
    })
    assert (read.deadline, read.max_response_bytes) == (12.5, 1000.0)
    assert read.allowed_hosts == ("a.example", "b.example:8080")
    assert read.approval_notify == ("stderr", "slack")
    assert read.base_url == "http://127.0.0.1:9/v1"
    assert read.value("GEN_NODES_DEADLINE") == 12.5


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan", "inf"])
def test_a_number_that_makes_no_sense_is_refused_naming_the_variable(raw):
    read = settings.Settings.from_env({"GEN_NODES_DEADLINE": raw, "GEN_NODES_STORE": "memory://"})
    assert read.store == "memory://"  # the other settings stay usable: only what reads the deadline fails
    with pytest.raises(InvalidSetting, match="GEN_NODES_DEADLINE must be a finite number above 0") as caught:
        read.deadline
    assert caught.value.hint


def test_secrets_never_show_in_the_repr():
    secret = "gen_pat_" + "s" * 40
    shown = repr(settings.Settings.from_env({"GEN_API_KEY": secret, "SLACK_BOT_TOKEN": "xoxb-secret",
                                             "GEN_NODES_STORE": "memory://"}))
    assert secret not in shown and "xoxb-secret" not in shown and "memory://" in shown


def test_the_environment_is_read_once_and_again_on_reload(monkeypatch):
    monkeypatch.setitem(os.environ, "GEN_NODES_STORE", "memory://")
    settings.current.cache_clear()
    assert settings.current().store == "memory://"
    monkeypatch.setitem(os.environ, "GEN_NODES_STORE", "sqlite://")
    assert settings.current().store == "memory://"  # kept: no call reads the environment again
    assert settings.reload().store == "sqlite://"


def test_the_output_check_policy_is_not_read_on_every_call(monkeypatch, sandbox, client, caplog):
    """It used to be read from os.environ on each answer; now the process's settings decide."""
    monkeypatch.setitem(os.environ, "GEN_NODES_CHECK_OUTPUT", "never")
    settings.reload()
    monkeypatch.setitem(os.environ, "GEN_NODES_CHECK_OUTPUT", "always")  # not seen without a reload
    sandbox.inject_fault(200, body=OFF_SCHEMA_LIST, method="GET", path="/persisted_tokens")
    with caplog.at_level("WARNING", logger="gen_nodes.core.engine"):
        Registry([replace(LIST_API_KEYS)]).run("list_api_keys", {}, client=client)
    assert not [r for r in caplog.records if r.name == "gen_nodes.core.engine"]


def test_of_reads_a_given_mapping_and_else_the_process_settings():
    assert settings.of({"GEN_NODES_NOTIFY_SECRET": " s "}).notify_secret == "s"
    assert settings.of(None) is settings.current()


def test_every_variable_is_declared_once_and_described():
    names = [variable.name for variable in settings.VARIABLES]
    attributes = [variable.attribute for variable in settings.VARIABLES]
    assert len(set(names)) == len(names) and len(set(attributes)) == len(attributes)
    assert all(variable.meaning.strip() and variable.kind and variable.shown_default
               for variable in settings.VARIABLES)


def test_no_module_but_the_settings_reads_the_environment():
    readers = [str(path.relative_to(ROOT)) for path in (ROOT / "gen_nodes").rglob("*.py")
               if path.name != "settings.py" and re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text())]
    assert readers == []


def test_the_configuration_page_holds_the_generated_table():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page.endswith(settings.markdown())
    assert all(f"| `{variable.name}` |" in page for variable in settings.VARIABLES)
