"""Shell completion (Typer's): the script for a shell, and the completion protocol it calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _tunelab(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("tunelab")
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_show_completion_bash_prints_the_script(tmp_path):
    result = _tunelab("--show-completion", "bash", env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _tunelab_completion tunelab" in result.stdout
    assert "_TUNELAB_COMPLETE=complete_bash" in result.stdout


def test_bash_completes_subcommands_and_options(tmp_path):
    def complete(words: str) -> list[str]:
        env = {
            "_TUNELAB_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        }
        result = _tunelab(env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("tunelab t") == ["track", "train", "tune"]
    everything = complete("tunelab ")
    for command in ("train", "tune", "report", "predict", "schema", "init", "data", "curve"):
        assert command in everything, everything
    assert "--trials" in complete("tunelab tune --tr")
    assert "download" in complete("tunelab data ")


def test_zsh_completion_describes_commands(tmp_path):
    env = {"_TUNELAB_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "tunelab rep"}
    result = _tunelab(env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "report" in result.stdout and "HTML report" in result.stdout
