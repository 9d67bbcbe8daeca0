"""The documentation site and the landing page: built strictly, linked, and up to date.

``mkdocs build --strict`` runs here as a subprocess from the repository's root, so a broken
link, a missing anchor or a page left out of the nav fails the test command; a copy of the
docs with one broken link proves the build really refuses it. The configuration page must be
what ``docs/gen_config.py`` writes from the variables the package reads today.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The pages issue 15 asks for, by subject.
SUBJECT_PAGES = ["getting-started.md", "llm-tools.md", "mcp.md", "gateway.md", "n8n.md", "chatops.md",
                 "airflow.md", "temporal.md", "approvals.md", "deployment.md", "configuration.md",
                 "errors.md", "plugins.md", "gen-documents.md", "benchmarks.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mkdocs", reason="needs mkdocs: pip install '.[docs]'")
    pytest.importorskip("material", reason="needs mkdocs-material: pip install '.[docs]'")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=root,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_the_site_builds_strictly(tmp_path):
    built = mkdocs_build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr
    for page in SUBJECT_PAGES:
        assert (tmp_path / "site" / page.removesuffix(".md") / "index.html").exists(), page


@pytest.mark.parametrize("broken", ["[gone](no-such-page.md)", "[gone](mcp.md#no-such-heading)"])
def test_a_broken_link_fails_the_build(tmp_path, broken):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "benchmarks.md"
    page.write_text(page.read_text() + f"\nSee {broken}.\n")
    built = mkdocs_build(copy, tmp_path / "site")
    assert built.returncode != 0 and "benchmarks.md" in built.stderr, built.stderr


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert set(SUBJECT_PAGES) <= set(pages)
    assert [p for p in pages if f": {p}" not in nav] == []


def test_the_readme_is_a_landing_page_whose_links_work_on_github():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    links = LINK.findall(text)
    into_docs = {link.split("#")[0] for link in links if link.startswith("docs/")}
    for subject in ("getting-started", "llm-tools", "mcp", "gateway", "n8n", "chatops", "airflow", "temporal",
                    "approvals", "deployment", "configuration", "errors", "plugins", "gen-documents", "benchmarks"):
        assert f"docs/{subject}.md" in into_docs, f"the README does not link docs/{subject}.md"
    assert_links_work_on_github(README)
    assert 'pip install ".[dev]" && pytest -q' in text


@pytest.mark.parametrize("page", ["README.md", "CONTRIBUTING.md"])
def test_the_pages_outside_the_site_link_what_exists(page):
    assert_links_work_on_github(ROOT / page)


def assert_links_work_on_github(page: Path) -> None:
    """Every link of ``page`` is relative to it, to a file that exists and a heading it has."""
    for link in LINK.findall(page.read_text(encoding="utf-8")):
        assert not re.match(r"[a-z]+:|/|\.\./", link), f"{page.name} links {link!r}: use a path relative to it"
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else page
        assert target.exists(), f"{page.name} links {link!r}: no such file"
        assert not anchor or anchor in heading_anchors(target), f"{page.name} links {link!r}: no such heading"


def heading_anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings, made as MkDocs and GitHub make them."""
    from markdown.extensions.toc import slugify

    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slugify(heading, "-") for heading in re.findall(r"^#+\s+(.*\S)", text, re.M)}


def test_no_page_points_outside_the_repository():
    for page in [README, ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        assert "../" not in "".join(LINK.findall(text)) and "/work/" not in text, page.name


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_config", ROOT / "docs" / "gen_config.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    return generator


def test_the_configuration_page_is_up_to_date():
    done = subprocess.run([sys.executable, "docs/gen_config.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_configuration_page_lists_every_variable_the_package_reads():
    generator = load_generator()
    read = generator.read_variables()
    assert {"GEN_API_KEY", "GEN_NODES_STORE", "GEN_NODES_TEMPORAL_SECRET"} <= read
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert all(f"`{name}`" in page for name in read)
    with pytest.raises(SystemExit, match="GEN_NODES_SOMETHING_NEW"):
        generator.render(read | {"GEN_NODES_SOMETHING_NEW"})  # read but not described
    with pytest.raises(SystemExit, match="GEN_NODES_DEADLINE"):
        generator.render(read - {"GEN_NODES_DEADLINE"})  # described but no longer read


def test_an_edited_configuration_page_is_out_of_date(tmp_path, monkeypatch):
    generator = load_generator()
    stale = tmp_path / "configuration.md"
    stale.write_text(generator.render(generator.read_variables()).replace("64 MiB", "32 MiB"))
    monkeypatch.setattr(generator, "PAGE", stale)
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0 and generator.main(["--check"]) == 0


def test_the_readme_stands_alone():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)]+)\)|`(\.\./[^`]+)`", readme):
        link = next(t for t in target if t)
        assert not link.startswith("../"), link
        if not re.match(r"[a-z]+://", link) and not link.startswith("#"):
            assert (ROOT / link.split("#")[0]).exists(), link
    assert "../shared" not in readme
    assert "(docs/gen-documents.md)" in readme  # where GEN's documents disagree
