"""The demo (``gen-nodes demo``) speaks to people: plain words and JSON, never Python reprs
(no True, None or dict reprs), and a result line under every step."""

from __future__ import annotations

import re

from gen_nodes.surfaces.demo import run_demo

PYTHON_LITERALS = re.compile(r"\bTrue\b|\bFalse\b|\bNone\b|\{'|\['")


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
