"""The layers (issue 15): the import rule holds, the top level stays small, one error tree.

The import rule is checked by import-linter's own command (``lint-imports``, contracts in
pyproject's ``[tool.importlinter]``), run as CI runs it, from the repository root. A contract
that could never break would prove nothing, so one test also runs it on a reversed rule and
expects it to fail.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import gen_nodes
from gen_nodes.core import errors

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "gen_nodes"
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
LOWER_LAYERS = ("core", "client", "state", "safety", "runtime", "net", "web", "sandbox")


def _lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINT_IMPORTS, "--no-cache", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_every_import_contract_is_kept() -> None:
    done = _lint_imports()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_lint_imports_fails_on_a_broken_rule(tmp_path: Path) -> None:
    reversed_rule = tmp_path / "reversed.ini"
    reversed_rule.write_text("[importlinter]\nroot_package = gen_nodes\n\n"
                             "[importlinter:contract:reversed]\nname = core above surfaces (wrong on purpose)\n"
                             "type = layers\nlayers =\n    gen_nodes.core\n    gen_nodes.surfaces\n")
    done = _lint_imports("--config", str(reversed_rule))
    assert done.returncode != 0 and "BROKEN" in done.stdout


def test_no_lower_layer_names_a_surface_even_as_a_string() -> None:
    """importlib.import_module("gen_nodes.surfaces...") would slip past the linter: not here either."""
    offenders = [str(path.relative_to(REPO)) for layer in LOWER_LAYERS for path in (PACKAGE / layer).rglob("*.py")
                 if "gen_nodes.surfaces" in path.read_text(encoding="utf-8")]
    assert offenders == []


def test_at_most_ten_modules_at_the_top_level() -> None:
    modules = sorted(path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
    assert len(modules) <= 10, modules


def _class_bases(tree: ast.AST) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases]
            found.append((node.name, bases))
    return found


def test_every_gen_error_lives_in_the_errors_module() -> None:
    """Walk every module's source: a class deriving from any GenError class is defined in core/errors.py."""
    error_names = {name for name, value in vars(errors).items()
                   if isinstance(value, type) and issubclass(value, errors.GenError)}
    elsewhere: dict[str, str] = {}
    sources = {path: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")
               if path != PACKAGE / "core" / "errors.py"}
    grew = True
    while grew:  # a subclass of a subclass defined outside counts too
        grew = False
        for path, tree in sources.items():
            for name, bases in _class_bases(tree):
                if name not in elsewhere and error_names.union(elsewhere).intersection(bases):
                    elsewhere[name] = str(path.relative_to(REPO))
                    grew = True
    assert elsewhere == {}


def test_the_public_api_is_lazy_and_complete() -> None:
    names = ["ActionSpec", "Hints", "Input", "Lookup", "Response", "Chat", "Registry", "default_registry",
             "GenClient", "RetryPolicy", "Dispatcher", "ToolResult", "open_store", "Sandbox", "__version__",
             *sorted(n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.GenError))]
    assert set(names) <= set(gen_nodes.__all__) and set(names) <= set(dir(gen_nodes))
    for name in names:
        assert getattr(gen_nodes, name) is not None
    fresh = subprocess.run([sys.executable, "-c", "import sys, gen_nodes.sandbox; "
                            "print(sorted(m for m in sys.modules if m.startswith('gen_nodes.')))"],
                           capture_output=True, text=True, check=True, timeout=60)
    loaded = fresh.stdout
    assert "gen_nodes.sandbox" in loaded
    for layer in ("client", "state", "safety", "runtime", "web", "surfaces"):
        assert f"'gen_nodes.{layer}" not in loaded, loaded


#: Functions still over the limit, each owned by another change that will shorten it and empty this.
LONG_FUNCTIONS_TO_SHORTEN: set[str] = set()  # cli._parser was the last; keep it empty
MAX_FUNCTION_LINES = 60


def _long_functions(root: Path) -> dict[str, int]:
    """``path::name`` -> line count of every function or method in ``root`` longer than the limit."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found[f"{path.relative_to(root.parent).as_posix()}::{node.name}"] = lines
    return found


def test_no_function_over_sixty_lines() -> None:
    """Counted from ``def`` to the last line (``end_lineno - lineno + 1``), nested functions included."""
    assert set(_long_functions(PACKAGE)) - LONG_FUNCTIONS_TO_SHORTEN == set()


def test_the_long_function_check_sees_a_long_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))  # def + 60 lines: 61
    (package / "mod.py").write_text(f"class A:\n    def long(self):\n{body}\n\ndef short():\n    return 1\n")
    assert _long_functions(package) == {"pkg/mod.py::long": MAX_FUNCTION_LINES + 1}


def test_the_allowlist_of_long_functions_holds_only_long_functions() -> None:
    """A function shortened leaves the allowlist too, so the list only shrinks."""
    assert LONG_FUNCTIONS_TO_SHORTEN <= set(_long_functions(PACKAGE))


#: Words that name when or why a test was written, not what it tests.
NOT_A_SUBJECT = ("review", "fixes", "papercut", "new_user", "hardening", "regression", "misc", "bugs")


def test_test_modules_are_named_by_subject() -> None:
    tests = REPO / "tests"
    named_otherwise = [path.name for path in tests.glob("test_*.py") if any(w in path.stem for w in NOT_A_SUBJECT)]
    assert named_otherwise == []


def test_helpers_come_from_support_modules_not_conftest() -> None:
    """conftest.py keeps only fixtures; a helper lives in an importable ``tests/*_support.py``."""
    importing_conftest = [path.name for path in (REPO / "tests").glob("*.py") if path.name != Path(__file__).name
                          and re.search(r"^\s*(from conftest import|import conftest)", path.read_text(encoding="utf-8"),
                                        re.MULTILINE)]
    assert importing_conftest == []


def test_no_module_sits_beside_a_folder_of_its_name() -> None:
    """``schemas.py`` beside ``schemas/`` (now ``core/validation.py``): one name, one thing."""
    repo_folders = {path.name for path in REPO.iterdir() if path.is_dir() and not path.name.startswith(".")}
    modules = [path for path in PACKAGE.rglob("*.py") if path.stem != "__init__"]
    beside = [str(path.relative_to(REPO)) for path in modules
              if (path.parent / path.stem).is_dir() or path.stem in repo_folders]
    assert beside == []
