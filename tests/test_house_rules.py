"""House rules over the whole package (shared/STYLE.md, issue 11): no source file over 400 lines,
no function over 80, warning filters scoped to a ``with warnings.catch_warnings()`` block, and
Optuna's log level left alone when tunelab is imported (changed only while a study runs)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tunelab"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def _sources() -> dict[str, ast.Module]:
    found = {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    assert len(found) > 50 and "tune/_run.py" in found and "cli/__init__.py" in found
    return found


def _calls(tree: ast.AST, owner: str, names: tuple[str, ...]) -> list[ast.Call]:
    """Calls of ``<something ending in owner>.<one of names>(...)``, e.g. ``warnings.simplefilter``
    or ``optuna.logging.set_verbosity``."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in names
        and ast.unparse(node.func.value).endswith(owner)
    ]


def _module(name: str) -> str:
    """``tune/_study.py`` -> ``tunelab.tune._study``; ``tune/__init__.py`` -> ``tunelab.tune``."""
    parts = Path(name).with_suffix("").parts
    return ".".join(("tunelab", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def test_no_file_over_400_lines():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            long[str(path.relative_to(PACKAGE))] = lines
    assert long == {}, f"split these files by what they own (at most {MAX_FILE_LINES} lines)"


def test_no_function_over_80_lines():
    long = [
        f"{name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, tree in _sources().items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == [], f"at most {MAX_FUNCTION_LINES} lines a function (decorators not counted)"


def test_warning_filters_are_scoped():
    """``warnings.simplefilter`` / ``filterwarnings`` only inside ``with catch_warnings()``: a
    global filter would change the warnings of the user's whole program."""
    loose = []
    for name, tree in _sources().items():
        scoped = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.With)
            and any("catch_warnings" in ast.unparse(item.context_expr) for item in node.items)
            for inner in ast.walk(node)
        }
        calls = _calls(tree, "warnings", ("simplefilter", "filterwarnings"))
        loose += [f"{name}:{call.lineno}" for call in calls if id(call) not in scoped]
    assert loose == []


def test_optunas_log_level_is_not_set_at_module_level():
    """Read from the source: no ``optuna.logging.set_verbosity`` outside a function, so importing
    a module never changes it (``tune._study.quiet_optuna`` sets it while a study runs)."""
    found = []
    for name, tree in _sources().items():
        in_functions = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for inner in ast.walk(node)
        }
        calls = _calls(tree, "logging", ("set_verbosity", "disable_default_handler"))
        found += [f"{name}:{call.lineno}" for call in calls if id(call) not in in_functions]
    assert found == []


def test_importing_tunelab_leaves_optunas_log_level_alone():
    """And at run time: every module that names optuna, imported after the caller set the level."""
    modules = sorted(
        _module(name)
        for name in _sources()
        if "optuna" in (PACKAGE / name).read_text(encoding="utf-8").lower()
        and "__main__" not in name
    )
    assert "tunelab.tune._study" in modules and "tunelab.tune" in modules
    code = (
        "import importlib, optuna\n"
        "optuna.logging.set_verbosity(optuna.logging.DEBUG)\n"
        "import tunelab\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(optuna.logging.get_verbosity())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == 10  # optuna.logging.DEBUG, as the caller set it
