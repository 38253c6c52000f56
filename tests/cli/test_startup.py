"""Start-up stays cheap: `import tunelab` and `tunelab --help` load no heavy library (torch,
scipy.stats, matplotlib, optuna); they load when a command uses them. Checked in a fresh
process through sys.modules, not by the clock (benchmarks/cli_startup.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "scipy.stats", "matplotlib", "optuna", "optuna.visualization")

PROBE = """
import json, runpy, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(body: str) -> list[str]:
    code = PROBE.format(body=body, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


HELP = """
sys.argv = ["tunelab", {args}]
try:
    runpy.run_module("{module}", run_name="__main__")
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
"""


@pytest.mark.parametrize(
    "body",
    [
        "import tunelab",
        "from tunelab import __version__",
        "import tunelab.cli",
        "import tunelab; tunelab.train; tunelab.evaluate; tunelab.tune; dir(tunelab)",
        "import tunelab.evaluate, tunelab.data, tunelab.models, tunelab.report",
    ],
)
def test_importing_loads_nothing_heavy(body):
    assert loaded_after(body) == []


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("tunelab.cli", '"--help"'),
        ("tunelab", '"--help"'),  # python -m tunelab
        ("tunelab", '"--version"'),
        ("tunelab", '"data", "--help"'),
        ("tunelab", '"curve", "--help"'),
    ],
)
def test_help_loads_nothing_heavy(module, args):
    assert loaded_after(HELP.format(module=module, args=args)) == []


def test_using_a_name_loads_what_it_needs():
    assert "scipy.stats" in loaded_after("import tunelab.evaluate; tunelab.evaluate.bootstrap_ci")
    assert "torch" in loaded_after("import tunelab; tunelab.load_run")
