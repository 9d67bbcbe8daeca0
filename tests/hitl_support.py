"""Shared by the agent frameworks' human-in-the-loop tests: what ran against GEN, and the key at stake."""

from __future__ import annotations

from typing import Any

import pytest

from gen_nodes.runtime.dispatch import Dispatcher

#: The key a scripted model asks to revoke: its name carries an ANSI escape the person must see as such.
TARGET_NAME = "ci \x1b[31mbot"
#: How the review text shows that key (escaped, not interpreted).
TARGET_SHOWN = '"ci \\x1b[31mbot" (active)'


class CountingDispatcher(Dispatcher):
    """The real dispatcher, noting every action it actually runs against GEN."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ran: list[tuple[str, dict]] = []

    def _run(self, action, args, client):
        self.ran.append((action, dict(args)))
        return super()._run(action, args, client)


def add_key(sandbox, name: str = TARGET_NAME) -> int:
    key, _ = sandbox.store.create_key(sandbox.user["id"], name)
    return key["id"]


def status(sandbox, key_id: int) -> str:
    return sandbox.store.get_key(sandbox.user["id"], key_id)["status"]


@pytest.fixture
def dispatcher(client):
    return CountingDispatcher(client=client)


@pytest.fixture
def target(sandbox):
    """The id of a fresh active key named :data:`TARGET_NAME`."""
    return add_key(sandbox)


def run_readme_block(heading: str, **names: Any) -> dict[str, Any]:
    """Execute the docs' Python block under ``heading`` with ``names`` (e.g. the scripted ``model``) defined."""
    from doc_support import run_snippet

    return run_snippet(heading, **names)


def seed_six(sandbox) -> None:
    """Keys 2..6 after the bootstrap key; key 6, "old ci", is the one the README asks to revoke."""
    for name in ("laptop", "deploy", "backup", "staging", "old ci"):
        add_key(sandbox, name)
