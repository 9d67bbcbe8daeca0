"""The documentation as the tests read it: README.md and every docs/*.md page, by heading.

Each page is split into its headings, each with the prose and the fenced code blocks under
it. ``snippet(heading)`` finds the one block of a language under a heading, on whichever page
holds that heading (exactly one may), so a test names what a block shows, not where it sits.

Until the package's new layout (issue 15) lands, the docs already name the new module paths
(``gen_nodes.surfaces.llm.openai``) and the public names ``gen_nodes`` will export
(``from gen_nodes import Dispatcher``). :func:`run_snippet` then maps them onto today's
modules (:data:`PRE_LAYOUT_MODULES`, :data:`PRE_LAYOUT_NAMES`), and only then: once
``gen_nodes.surfaces`` exists, nothing is mapped and a wrong path fails.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: New module path (issue 15's layout) -> the module that holds it today.
PRE_LAYOUT_MODULES = {
    "gen_nodes.surfaces.llm.openai": "gen_nodes.adapters.openai",
    "gen_nodes.surfaces.llm.anthropic": "gen_nodes.adapters.anthropic",
    "gen_nodes.surfaces.llm.langchain": "gen_nodes.adapters.langchain",
    "gen_nodes.surfaces.llm.langchain_hitl": "gen_nodes.adapters.langchain_hitl",
    "gen_nodes.surfaces.llm.openai_agents": "gen_nodes.adapters.openai_agents",
    "gen_nodes.surfaces.cli": "gen_nodes.cli",
}
#: Names the layout exports from ``gen_nodes`` -> the module that holds each today.
PRE_LAYOUT_NAMES = {"Dispatcher": "gen_nodes.dispatch", "ToolResult": "gen_nodes.dispatch",
                    "GenError": "gen_nodes.errors", "open_store": "gen_nodes.state",
                    "Sandbox": "gen_nodes.sandbox"}


def new_layout() -> bool:
    return importlib.util.find_spec("gen_nodes.surfaces") is not None


def module(path: str):
    """The module at ``path`` (a new-layout path), today's module before the layout lands."""
    return importlib.import_module(path if new_layout() else PRE_LAYOUT_MODULES.get(path, path))


def bridge_layout() -> None:
    """Before the layout lands, make the docs' new paths and public names importable."""
    if new_layout():
        return
    import gen_nodes

    for new, old in PRE_LAYOUT_MODULES.items():
        try:
            sys.modules.setdefault(new, importlib.import_module(old))
        except ImportError:  # its SDK is not installed: a snippet importing it fails as it would
            pass
    for name, where in PRE_LAYOUT_NAMES.items():
        if not hasattr(gen_nodes, name):
            setattr(gen_nodes, name, getattr(importlib.import_module(where), name))


def public(name: str) -> Any:
    """``gen_nodes.<name>``, as ``from gen_nodes import <name>`` gives it (bridged before the layout)."""
    import gen_nodes

    bridge_layout()
    return getattr(gen_nodes, name)


@dataclass
class Section:
    page: Path
    prose: list[str] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)  # (language, code)


def page_sections(page: Path) -> dict[str, Section]:
    """Every heading of ``page`` with the prose and the fenced blocks under it."""
    sections = {"": Section(page)}
    current, fence, code = sections[""], None, []
    for line in page.read_text(encoding="utf-8").splitlines():
        if fence is not None:  # inside a fenced block: `#` lines are comments, not headings
            if line.strip() == "```":
                current.blocks.append((fence, "\n".join(code)))
                fence = None
            else:
                code.append(line)
        elif line.startswith("```"):
            fence, code = line[3:].strip(), []
        elif heading := re.match(r"#+\s+(.*\S)", line):
            assert heading[1] not in sections, f"{page.name} has two headings {heading[1]!r}"
            current = sections[heading[1]] = Section(page)
        else:
            current.prose.append(line)
    assert fence is None, f"{page.name}: a fenced block is never closed"
    return sections


def section(heading: str) -> Section:
    """The section under ``heading``, on the one page that has it."""
    found = [s[heading] for s in map(page_sections, PAGES) if heading in s]
    assert len(found) == 1, f"expected one page with the heading {heading!r}, found {len(found)}"
    return found[0]


def all_blocks() -> list[tuple[str, str, str, str]]:
    """(page name, heading, language, code) of every fenced block of every page."""
    return [(page.name, heading, language, code)
            for page in PAGES for heading, sec in page_sections(page).items() for language, code in sec.blocks]


def snippet(heading: str, language: str = "python") -> str:
    """The one ```language block under ``heading``."""
    blocks = [code for lang, code in section(heading).blocks if lang == language]
    assert len(blocks) == 1, f"expected one ```{language} block under {heading!r}, found {len(blocks)}"
    return blocks[0]


def run_snippet(heading: str, **names: Any) -> dict[str, Any]:
    """Execute the Python block under ``heading`` in a fresh namespace holding ``names``."""
    bridge_layout()
    namespace: dict[str, Any] = {"__name__": "__docs__", **names}
    exec(compile(snippet(heading), f"{section(heading).page.name}: {heading}", "exec"), namespace)
    return namespace


@pytest.fixture
def gen_env(sandbox, monkeypatch):
    """GEN_API_KEY and GEN_BASE_URL point at the sandbox, as the snippets expect."""
    monkeypatch.setenv("GEN_API_KEY", sandbox.api_key)
    monkeypatch.setenv("GEN_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return sandbox
