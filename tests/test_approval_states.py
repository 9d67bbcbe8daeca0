"""Approval states are compared through the constants of ``safety.approvals``, never as string
literals, and nobody but ``Approvals.wait`` polls an approval in a loop of its own."""

from __future__ import annotations

import ast
import pathlib

import gen_nodes
from gen_nodes.safety import approvals

STATES = {approvals.PENDING, approvals.APPROVED, approvals.DENIED, approvals.RUNNING, approvals.DONE,
          approvals.EXPIRED}
ROOT = pathlib.Path(gen_nodes.__file__).parent


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def _is_state(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "state"


def _literal_states(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & STATES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_literal_states(item) for item in node.elts)) if node.elts else set()
    return set()


def test_no_approval_state_is_compared_with_a_string_literal():
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(_is_state(side) for side in sides) and any(_literal_states(side) for side in sides):
                    found.append(f"{name}:{node.lineno}")
    assert found == []


def test_only_approvals_wait_polls_an_approval_in_a_loop():
    found = []
    for name, tree in _modules():
        if name == "safety/approvals.py":
            continue
        for loop in (n for n in ast.walk(tree) if isinstance(n, ast.While)):
            calls = {c.func.attr for c in ast.walk(loop) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)}
            if "get" in calls and "sleep" in calls:
                found.append(f"{name}:{loop.lineno}")
    assert found == []


def test_the_idle_decided_property_is_gone():
    assert not hasattr(approvals.Approval, "decided")


def test_a_running_call_is_taken_over_only_when_resumable_and_its_lease_passed():
    """A runner that died leaves its approval running; another caller may resume it only after
    RUN_LEASE, and only a call that is safe to run again (idempotent, or a composite's recorded steps)."""
    from gen_nodes.state import open_store

    now = [100.0]
    book = approvals.Approvals(open_store("memory://"), clock=lambda: now[0])
    pending = book.request(action="rotate_api_key", arguments={"id": 6}, principal="p")
    book.decide(pending.id, approve=True, by="a person")
    first = book.claim(pending.id)
    assert first is not None and first.state == approvals.RUNNING and first.claimed_at == 100.0
    assert book.claim(pending.id, resumable=True) is None  # its runner may still be at work
    now[0] += approvals.RUN_LEASE
    assert book.claim(pending.id) is None  # not resumable: never run twice
    again = book.claim(pending.id, resumable=True)
    assert again is not None and again.claimed_at == now[0]
    assert book.claim(pending.id, resumable=True) is None  # one caller takes it over, not two
