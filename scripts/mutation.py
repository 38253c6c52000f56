"""Mutation testing of tunelab's honesty-critical code (splits, seal, nested CV, refit, bootstrap,
statistical tests, macro metrics) with mutmut 3.

Each module is mutated in its own scratch copy of the repository (``.mutation/<module>/``, git-ignored)
so that its tests are selected apart from the others' and nothing is written into ``src/``. mutmut
records which of the selected tests call each mutated function and runs only those per mutant.

    python scripts/mutation.py                 # every module
    python scripts/mutation.py --module splits --module leakage
    python scripts/mutation.py --list          # the modules, their functions and tests
    python scripts/mutation.py --module stats --survivors   # recheck survivors after new tests
    python scripts/mutation.py --module stats --keep --report-only   # the last run again

Prints the score per module (killed / total) and every surviving mutant with file:line and its
diff; exits 1 when a survivor is not listed in ``scripts/mutation_equivalent.txt`` (documented
equivalent mutants), 2 on a usage or setup error. A survivor that changes only the words of a
message fails the run like any other (it is marked "message text"): the messages are part of
what a user sees, so a test must check the exact text. Runs at ``nice 10`` with one worker.
Needs the ``mutation`` extra: ``pip install -e '.[test,mutation]'``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "scripts" / "mutation_equivalent.txt"


@dataclass(frozen=True)
class Module:
    """One mutated file: which of its functions (``None``: all) and which tests guard them."""

    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] | None = None
    select: tuple[str, ...] = field(default=())  # extra pytest arguments, e.g. ("-k", "refit")


MODULES: dict[str, Module] = {
    "splits": Module(
        "src/tunelab/data/_splits.py",
        ("tests/data/test_splits.py", "tests/data/test_leakage.py", "tests/data/test_splits_mutants.py",
         "tests/data/test_splits_outer_mutants.py"),
    ),
    "leakage": Module(
        "src/tunelab/data/_leakage.py",
        ("tests/data/test_leakage.py", "tests/data/test_leakage_mutants.py"),
    ),
    "runs-seal": Module(
        "src/tunelab/runs.py",
        ("tests/test_runs.py", "tests/test_runs_seal_mutants.py"),
        ("log_test_evaluation", "test_evaluations", "seal_of_run", "missing_seal",
         "log_unsealed_look"),
    ),
    "seal": Module("src/tunelab/tune/_seal.py", ("tests/tune/test_seal_mutants.py",)),
    "nested": Module(
        "src/tunelab/tune/_nested.py",
        ("tests/tune/test_nested_mutants.py",
         *(f"tests/tune/test_nested.py::{name}" for name in (
             "test_nested_without_refit_is_refused",
             "test_group_cv_keeps_every_patient_on_one_side_of_each_outer_fold",
             "test_outer_folds_follow_the_inner_kind",
             "test_too_few_groups_for_the_outer_folds_names_nested",
             "test_outer_test_rows_with_a_copy_in_outer_train_are_dropped",
             "test_the_outer_duplicate_check_counts_what_it_finds_and_can_stop",
         ))),
    ),
    "fit-refit": Module(
        "src/tunelab/train/_fit.py",
        ("tests/train/test_best_epoch.py", "tests/train/test_fit_mutants.py"),
        ("choose_epoch", "EpochChoice", "monitored"),
    ),
    "refit": Module(
        "src/tunelab/tune/_finish.py",
        ("tests/tune/test_winners_curse.py", "tests/tune/test_run_mutants.py"),
        ("_refit", "_refit_once", "_refit_epochs", "winners_curse"),
    ),
    "objective": Module(
        "src/tunelab/tune/_open.py",
        ("tests/tune/test_run_mutants.py", "tests/tune/test_objective.py"),
        ("objective_of",),
    ),
    "bootstrap": Module(
        "src/tunelab/evaluate/_bootstrap.py",
        ("tests/evaluate/test_bootstrap.py", "tests/evaluate/test_bootstrap_mutants.py",
         "tests/evaluate/test_bootstrap_interval_mutants.py", "tests/evaluate/test_features.py"),
    ),
    "features": Module(
        "src/tunelab/evaluate/_features.py",
        ("tests/evaluate/test_bootstrap.py", "tests/evaluate/test_bootstrap_mutants.py",
         "tests/evaluate/test_features.py"),
    ),
    "intervals": Module(
        "src/tunelab/evaluate/_intervals.py",
        ("tests/evaluate/test_bootstrap.py", "tests/evaluate/test_bootstrap_mutants.py",
         "tests/evaluate/test_bootstrap_interval_mutants.py"),
    ),
    "stats": Module(
        "src/tunelab/evaluate/_stats.py",
        ("tests/evaluate/test_stats.py", "tests/evaluate/test_stats_mutants.py"),
    ),
    "bbc": Module(
        "src/tunelab/evaluate/_bbc.py",
        ("tests/evaluate/test_bbc.py", "tests/evaluate/test_bbc_mutants.py"),
    ),
    "metrics": Module(
        "src/tunelab/evaluate/_classification.py",
        ("tests/evaluate/test_metrics.py", "tests/evaluate/test_metrics_mutants.py",
         "tests/evaluate/test_bootstrap.py"),
        ("_safe_divide", "_counts", "_label_counts", "_averaged", "_averaged_rows",
         "balanced_accuracy", "precision", "recall", "f1", "averaged_form", "_mean_of",
         "_balanced_accuracy_rows", "_accuracy_rows"),
        # mutmut's trampoline is an import of its own that this test (rightly) refuses
        ("--deselect",
         "tests/evaluate/test_metrics.py::test_evaluate_imports_only_numpy_scipy_and_errors"),
    ),
    "significance": Module(
        "src/tunelab/tune/_significance.py",
        ("tests/tune/test_significance_mutants.py",),
    ),
}  # fmt: skip

KILLED = {"killed", "timeout", "caught by type check"}


def dotted(path: str) -> str:
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def patterns(module: Module) -> list[str]:
    """mutmut mutant-name globs: ``pkg.mod.x_func__mutmut_*``, ``pkg.mod.xǁClassǁmethod__mutmut_*``."""
    base = dotted(module.path)
    if module.functions is None:
        return [f"{base}.*"]
    out = []
    for name in module.functions:
        out += [f"{base}.x_{name}__mutmut_*", f"{base}.xǁ{name}ǁ*"]
    return out


def prepare(name: str, module: Module, work: Path, fresh: bool) -> None:
    """A scratch copy: src/, tests/ and pyproject.toml with this module's [tool.mutmut]."""
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("src", "tests"):
        shutil.rmtree(work / part, ignore_errors=True)
        shutil.copytree(ROOT / part, work / part, ignore=ignore)
    missing = [t for t in module.tests if not (ROOT / t.partition("::")[0]).is_file()]
    tests = [t for t in module.tests if t not in missing]
    if missing:
        print(f"[{name}] note: not there (yet), left out: {', '.join(missing)}")
    if not tests:
        sys.exit(f"[{name}] none of its tests is there: {', '.join(module.tests)}")
    config = {
        "source_paths": ["src"],
        "only_mutate": [module.path],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-W", "ignore"],
        "pytest_add_cli_args_test_selection": [*tests, *module.select],
        "use_git_change_detection": False,
    }
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = text.split("\n[tool.mutmut]")[0]
    lines = [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in config.items()]
    (work / "pyproject.toml").write_text(
        text.rstrip() + "\n\n[tool.mutmut]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )


def mutmut(work: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    if not exe.is_file():
        sys.exit("mutmut is not installed: pip install -e '.[test,mutation]'")
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    cmd = ["nice", "-n", "10", str(exe), *args]
    return subprocess.run(cmd, cwd=work, env=env, text=True, capture_output=capture, check=False)


@dataclass
class Mutant:
    name: str
    status: str
    line: int | None = None
    diff: str = ""

    @property
    def key(self) -> str:
        """Stable across renumbering: the function's mangled name and a hash of the changed lines."""
        changed = [
            line
            for line in self.diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        digest = hashlib.sha256("\n".join(changed).encode()).hexdigest()[:10]
        return f"{self.name.partition('__mutmut_')[0]}@{digest}"


def results(work: Path, module: Module) -> list[Mutant]:
    sys.path.insert(0, str(work))
    from mutmut.stats import status_by_exit_code

    meta = work / "mutants" / (module.path + ".meta")
    data = json.loads(meta.read_text(encoding="utf-8"))
    import fnmatch

    globs = patterns(module)
    out = [
        Mutant(key, status_by_exit_code[code])
        for key, code in data["exit_code_by_key"].items()
        if any(fnmatch.fnmatchcase(key, g) for g in globs)
    ]
    return sorted(out, key=lambda m: (m.name.partition("__mutmut_")[0], _number(m.name)))


def _number(name: str) -> int:
    return int(name.rpartition("_")[2])


def describe(work: Path, module: Module, mutant: Mutant) -> None:
    """The mutant's diff (as ``mutmut show`` prints it) and the line it changes in the original."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    here = Path.cwd()
    os.chdir(work)
    try:
        mutant.diff = get_diff_for_mutant(mutant.name, path=module.path)
    finally:
        os.chdir(here)
    func, cls = _function_of(mutant.name)
    tree = ast.parse((ROOT / module.path).read_text(encoding="utf-8"))
    start = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and cls and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == func:
                    start = item.lineno
        elif not cls and isinstance(node, ast.FunctionDef) and node.name == func:
            start = start or node.lineno
    hunk = re.search(r"^@@ -(\d+)", mutant.diff, re.M)
    if start is None or hunk is None:
        return
    offset = int(hunk.group(1)) - 1
    for line in mutant.diff[hunk.end() :].splitlines()[1:]:
        if line.startswith("-"):
            break
        offset += 1
    mutant.line = start + offset  # the shown function starts at its `def` (no decorators)


def is_message_text(diff: str) -> bool:
    """A mutant that only rewrites the words of a message: one changed line, changed only inside
    a string literal that contains a space (mutmut's ``"XX..XX"``, upper and lower case)."""
    removed = [x[1:] for x in diff.splitlines() if x.startswith("-") and not x.startswith("---")]
    added = [x[1:] for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++")]
    if len(removed) != 1 or len(added) != 1:
        return False
    a, b = removed[0], added[0]
    if a == b or (b.replace("XX", "") != a and b.lower() != a.lower()):
        return False
    prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    suffix = next(
        (i for i, (x, y) in enumerate(zip(a[::-1], b[::-1], strict=False)) if x != y), len(a)
    )
    first, last = prefix, max(prefix, len(a) - suffix)
    return any(s <= first and last <= e and " " in a[s:e] for s, e in _string_spans(a))


def _string_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) columns of the string literals of one line of code."""
    indent = len(line) - len(line.lstrip())
    spans, start = [], None
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line.lstrip() + "\n").readline):
            if tok.type == tokenize.STRING:
                spans.append((tok.start[1] + indent, tok.end[1] + indent))
            elif tok.type == fstring_start and start is None:
                start = tok.start[1]
            elif tok.type == fstring_end and start is not None:
                spans.append((start + indent, tok.end[1] + indent))
                start = None
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return spans


def _function_of(name: str) -> tuple[str, str | None]:
    mangled = name.partition("__mutmut_")[0].rpartition(".")[2]
    if mangled.startswith("xǁ"):
        _, cls, func = mangled.split("ǁ")
        return func, cls
    return mangled.removeprefix("x_"), None


def equivalents() -> dict[str, str]:
    """``key  reason`` lines of scripts/mutation_equivalent.txt (``#`` starts a comment)."""
    out = {}
    if EQUIVALENT.is_file():
        for raw in EQUIVALENT.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                key, _, reason = line.partition(" ")
                out[key] = reason.strip()
    return out


def run_module(name: str, module: Module, args) -> tuple[list[Mutant], float]:
    work = args.workdir / name
    start = time.monotonic()
    if not args.report_only:
        names = patterns(module)
        if args.survivors:  # the last run's survivors again, with today's tests
            if not (work / "mutants" / (module.path + ".meta")).is_file():
                sys.exit(f"[{name}] --survivors needs an earlier run in {work}")
            names = [m.name for m in results(work, module) if m.status not in KILLED]
        before = (work / "pyproject.toml").read_text(encoding="utf-8") if args.survivors else ""
        prepare(name, module, work, fresh=not (args.keep or args.survivors))
        if args.survivors and (work / "pyproject.toml").read_text(encoding="utf-8") != before:
            # mutmut forgets every result when its configuration changes (e.g. a new test file
            # in the module's list): only a full run gives a score then
            sys.exit(f"[{name}] its tests or settings changed since the last run: run it in full")
        if not names:
            return results(work, module), time.monotonic() - start
        cmd = ["run", "--max-children", "1", *names]
        proc = mutmut(work, *cmd, capture=not args.verbose)
        if proc.returncode != 0:
            print((proc.stdout or "")[-4000:], (proc.stderr or "")[-4000:])
            sys.exit(f"[{name}] mutmut run failed (exit {proc.returncode}); rerun with --verbose")
    took = time.monotonic() - start
    mutants = results(work, module)
    for m in mutants:
        if m.status not in KILLED:
            describe(work, module, m)
    return mutants, took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="repeatable")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".mutation")
    parser.add_argument("--keep", action="store_true", help="reuse the scratch copy")
    parser.add_argument("--report-only", action="store_true", help="report the last run again")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="rerun only the last run's survivors, with the current tests (a quick check of new "
        "tests; the score to quote comes from a full run)",
    )
    parser.add_argument("--verbose", action="store_true", help="show mutmut's own output")
    parser.add_argument("--list", action="store_true", help="print the modules and exit")
    args = parser.parse_args(argv)
    names = args.module or [n for n in MODULES if n != "bootstrap-core"]
    if args.list:
        for n in MODULES:
            m = MODULES[n]
            funcs = ", ".join(m.functions) if m.functions else "all functions"
            print(f"{n}: {m.path} ({funcs}); tests: {' '.join(m.tests + m.select)}")
        return 0
    allowed = equivalents()
    failed = False
    totals = dict.fromkeys(("total", "killed", "equivalent"), 0)
    for name in names:
        path = MODULES[name].path
        mutants, took = run_module(name, MODULES[name], args)
        groups: dict[str, list[Mutant]] = {k: [] for k in ("killed", "equivalent", "unexplained")}
        for m in mutants:
            if m.status in KILLED:
                group = "killed"
            elif m.key in allowed:
                group = "equivalent"
            else:
                group = "unexplained"
            groups[group].append(m)
        totals["total"] += len(mutants)
        for key in ("killed", "equivalent"):
            totals[key] += len(groups[key])
        print(
            f"[{name}] {path}: {len(groups['killed'])} / {len(mutants)} killed, "
            f"{len(groups['equivalent'])} equivalent (listed), "
            f"{len(groups['unexplained'])} unexplained ({took:.0f} s)"
        )
        for group in ("equivalent", "unexplained"):
            for m in groups[group]:
                label = group
                if group == "unexplained":
                    # a message is part of the product: its survivor needs a test of the exact text
                    label = "SURVIVED (message text)" if is_message_text(m.diff) else "SURVIVED"
                print(f"  {label} [{m.status}] {path}:{m.line or '?'} {m.key}")
                if group == "unexplained":
                    print("    " + "\n    ".join(m.diff.splitlines()[2:]))
        failed |= bool(groups["unexplained"])
    total, killed = totals["total"], totals["killed"]
    if total:
        rest = total - totals["equivalent"]
        print(
            f"score: {killed} / {total} mutants killed ({killed / total:.1%}); "
            f"{totals['equivalent']} equivalent (listed); "
            f"{killed} / {rest} of the non-equivalent ({killed / max(rest, 1):.1%})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
