"""The documentation as the tests read it: README.md and every docs/*.md page, by heading.

Each page is split into its headings, each with the prose and the fenced code blocks under
it. ``snippet(heading)`` finds the one block of a language under a heading, on whichever page
holds that heading (exactly one may), so a test names what a block shows, not where it sits.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

def module(path: str):
    """The module at ``path``, as the docs name it."""
    return importlib.import_module(path)


def public(name: str) -> Any:
    """``gen_nodes.<name>``, as ``from gen_nodes import <name>`` gives it."""
    import gen_nodes

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
