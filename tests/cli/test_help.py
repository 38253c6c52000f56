"""What `--help` and the other entry points show, from real processes: whole descriptions,
`--debug` listed, `python -m tunelab` the same as `tunelab`, whole words when piped."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

from tunelab.cli import app, curve_app, data_app


def run(*args: str, module: bool = False, columns: str | None = "80", cwd=None):
    """``tunelab ARGS`` (or ``python -m tunelab ARGS``) with stdout a pipe, as in a script."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    exe = [sys.executable, "-m", "tunelab"] if module else [str(_exe())]
    return subprocess.run(
        [*exe, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _exe():
    from pathlib import Path

    return Path(sys.executable).with_name("tunelab")


def _words(text: str) -> str:
    return " ".join(text.split())


def _cut(text: str) -> list[str]:
    """Lines that end as click ends a cut description."""
    return [ln for ln in text.splitlines() if ln.rstrip().endswith(("...", "…")) and "[" not in ln]


def _first_line(callback) -> str:
    return _words(inspect.cleandoc(callback.__doc__).split("\n\n")[0])


GROUPS = [((), app), (("data",), data_app), (("curve",), curve_app)]


@pytest.mark.parametrize(("prefix", "group"), GROUPS, ids=["root", "data", "curve"])
def test_help_lists_every_command_with_its_whole_description(prefix, group):
    result = run(*prefix, "--help")
    assert result.returncode == 0, result.stderr
    assert not _cut(result.stdout)
    listed = _words(result.stdout)
    for info in group.registered_commands:
        assert _first_line(info.callback) in listed, info.callback.__name__
    for sub in group.registered_groups:  # the root lists `data` and `curve` with their help
        assert _words(sub.typer_instance.info.help) in listed


@pytest.mark.slow  # about 10 s on the 2-core machine: the README's test command stays under 10 min
def test_each_command_help_is_whole():
    for prefix, group in GROUPS:
        for info in group.registered_commands:
            name = info.name or info.callback.__name__.replace("_", "-")
            result = run(*prefix, name, "--help")
            assert result.returncode == 0, (name, result.stderr)
            assert _first_line(info.callback) in _words(result.stdout), name
            assert not _cut(result.stdout), name


def test_root_help_lists_debug():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if "--debug" in ln]
    assert "traceback" in line.lower()


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_debug_is_accepted_anywhere(tmp_path):
    for args in (["--debug", "train", "nope.yaml"], ["train", "nope.yaml", "--debug"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback" in result.stderr and "spec file not found" in result.stderr
    result = run("train", "nope.yaml", cwd=tmp_path)  # without it: one line, exit 2
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["data", "--help"], ["trian"], ["train", "nope.yaml"]]
)
def test_python_m_tunelab_is_the_tunelab_command(args, tmp_path):
    command = run(*args, cwd=tmp_path)
    module = run(*args, module=True, cwd=tmp_path)
    assert (module.returncode, module.stdout, module.stderr) == (
        command.returncode,
        command.stdout,
        command.stderr,
    )


@pytest.mark.parametrize("columns", [None, "40"])
def test_datasets_piped_gives_whole_words(columns):
    from tunelab.data import BUILTINS

    result = run("datasets", columns=columns)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    lines = result.stdout.splitlines()
    for info in BUILTINS:  # one line per data set, every cell whole
        (line,) = [ln for ln in lines if ln.split() and ln.split()[0] == info.name]
        for cell in (info.task, info.samples, info.shape, info.classes, info.origin):
            assert cell in line, (info.name, cell, line)
    assert "data: {source: mnist, path: data/mnist}" in result.stdout


def test_plugins_piped_gives_whole_descriptions():
    from tunelab.plugins import KINDS, load_plugins

    load_plugins()
    result = run("plugins", columns=None)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for kind, registry in KINDS.items():  # every plug-in, its description whole on one line
        for name in registry.names():  # the listed ones (not the user-class routes)
            summary = registry.get(name).summary
            assert any(summary in ln for ln in lines), (kind, name)
    # the calibration metrics are built-ins too (not only after something imported them)
    assert any(ln.split()[:1] == ["ece"] for ln in lines)


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_quiet_drops_the_epoch_lines_and_keeps_the_results(root, tmp_path):
    spec = str(root / "examples/linear_gd.yaml")
    result = run("train", spec, "--out", "r", "--set", "train.epochs=2", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not [ln for ln in result.stdout.splitlines() if ln.startswith("epoch")]
    assert "rmse" in result.stdout and "saved to" in result.stdout  # the metrics and summary
