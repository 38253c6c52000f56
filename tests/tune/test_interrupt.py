"""Ctrl-C and SIGTERM during `tunelab tune`: the running trial says it was stopped, the command
says how many trials are kept and how to go on, and exits 130 / 143; --resume ends the study."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

SPEC = {
    "name": "stopped",
    "seed": 0,
    "data": {"source": "digits"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32]},
    "train": {"epochs": 40, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
    "tune": {
        "trials": 3,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-2, "log": True}},
    },
}


def _start(tmp_path: Path, *extra: str) -> subprocess.Popen:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    exe = Path(sys.executable).with_name("tunelab")
    return subprocess.Popen(
        [str(exe), "tune", "spec.yaml", "--out", "s", *extra],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    end = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.05)


def _trials(folder: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="stopped", storage=f"sqlite:///{folder / 'study.db'}")
    return study.get_trials()


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"),
                                                    (signal.SIGINT, 130, "SIGINT")])  # fmt: skip
def test_a_stopped_study_says_so_marks_its_trial_and_resumes(tmp_path, cli, sig, code, name):
    proc = _start(tmp_path)
    _wait_for(tmp_path / "s" / "trials" / "0" / "trial.json", proc)  # trial 0 finished
    _wait_for(tmp_path / "s" / "trials" / "1", proc)  # trial 1 running
    time.sleep(0.3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1] == (
        "interrupted: 1 finished trial(s) kept in s; continue with: "
        "tunelab tune spec.yaml --out s --resume"
    ), err
    assert "Traceback" not in err
    trials = _trials(tmp_path / "s")
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]
    assert trials[1].user_attrs["fail_reason"] == f"interrupted: {name} while it ran"

    done = cli("tune", "spec.yaml", "--out", "s", "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = _trials(tmp_path / "s")
    # the interrupted trial does not count: it is run once more, linked to it, and the study
    # ends with its total of 3 finished trials
    assert [t.state.name for t in after] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert after[2].user_attrs["retry_of"] == 1 and after[2].params == trials[1].params
    assert json.loads((tmp_path / "s" / "result.json").read_text())["counts"]["COMPLETE"] == 3
