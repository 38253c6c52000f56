"""What people see: bars and colour in a real terminal (a pseudo-terminal here), plain text
when the output goes to a file or a pipe (--quiet is tested in test_cli.py)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("tunelab"))
ESCAPE = re.compile(r"\x1b\[")
RUN = {
    "name": "terminal",
    "seed": 0,
    "data": {"source": "digits"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32]},
    # 72 steps an epoch: enough for the in-epoch bar
    "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.003}},
    "evaluate": {"ci": {"resamples": 100}},
}
STUDY = RUN | {
    "name": "terminal_study",
    "tune": {
        "trials": 3,
        "sampler": "random",
        "pruner": "none",
        "refit": False,
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-2, "log": True}},
    },
}


def in_terminal(args: list[str], cwd: Path) -> str:
    """Run the real command with a pseudo-terminal as its stdout and stderr."""
    leader, follower = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [EXE, *args], cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def piped(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.fixture
def specs(tmp_path) -> Path:
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(RUN), encoding="utf-8")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(STUDY), encoding="utf-8")
    return tmp_path


def test_train_in_a_terminal_has_colour_and_a_bar(specs):
    out = in_terminal(["train", "run.yaml", "--out", "r"], specs)
    assert ESCAPE.search(out)
    assert "epoch 3/3" in out and "report:" in out


def test_train_into_a_pipe_is_plain_text(specs):
    out = piped(["train", "run.yaml", "--out", "r"], specs)
    assert not ESCAPE.search(out) and "\r" not in out
    assert [line for line in out.splitlines() if line.startswith("epoch")] == [
        line for line in out.splitlines() if re.match(r"epoch [123]/3 ", line)
    ]
    assert len([line for line in out.splitlines() if line.startswith("epoch")]) == 3


def test_tune_in_a_terminal_shows_best_so_far_and_eta(specs):
    out = in_terminal(["tune", "study.yaml", "--out", "s"], specs)
    assert ESCAPE.search(out)
    assert "ETA" in out and "best" in out


def test_tune_into_a_pipe_has_no_bar(specs):
    out = piped(["tune", "study.yaml", "--out", "s"], specs)
    assert not ESCAPE.search(out) and "ETA" not in out
    assert "3 trials: 3 complete" in out
