"""House rules for tune/ (shared/STYLE.md, issue 11): small files and functions, warning filters
scoped, Optuna's log level left alone when tunelab is imported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

TUNE = Path(__file__).resolve().parents[2] / "src" / "tunelab" / "tune"


def _sources() -> list[Path]:
    found = sorted(TUNE.glob("*.py"))
    assert len(found) > 5
    return found


def test_no_file_over_400_lines_and_no_function_over_80():
    long_files, long_functions = [], []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 400:
            long_files.append(path.name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long_functions.append(f"{path.name}:{node.name} ({lines} lines)")
    assert long_files == [] and long_functions == []


def test_warning_filters_are_scoped():
    """``warnings.simplefilter`` / ``filterwarnings`` only inside ``with catch_warnings()``."""
    loose = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        scoped = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.With) and "catch_warnings" in ast.unparse(node.items[0]):
                scoped |= {id(n) for n in ast.walk(node)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("simplefilter", "filterwarnings")
                and id(node) not in scoped
            ):
                loose.append(f"{path.name}:{node.lineno}")
    assert loose == []


def test_importing_tune_leaves_optunas_log_level_alone():
    code = (
        "import importlib, optuna\n"
        "optuna.logging.set_verbosity(optuna.logging.DEBUG)\n"
        "import tunelab\n"
        f"for name in {sorted(p.stem for p in _sources())!r}:\n"
        "    importlib.import_module('tunelab.tune' + ('' if name == '__init__' else '.' + name))\n"
        "print(optuna.logging.get_verbosity())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == 10  # optuna.logging.DEBUG, as the caller set it
