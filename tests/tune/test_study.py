"""Studies through the real `tunelab tune` command: totals, storage, failures, resume, workers."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState

import tunelab

ROOT = Path(__file__).resolve().parents[2]


def write_spec(folder: Path, name: str = "study", **changes) -> Path:
    """A quick iris study spec (holdout, 2 epochs); ``changes`` replace top-level sections."""
    tree = {
        "name": name,
        "seed": 0,
        "data": {"source": "iris"},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
        "tune": {
            "trials": 3,
            "sampler": "random",
            "pruner": "none",
            "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
        },
    }
    tree.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return path


def load(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name=None, storage=f"sqlite:///{folder / 'study.db'}")


def trials_by_number(folder: Path) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in load(folder).get_trials()}


@pytest.fixture(scope="module")
def done_study(tmp_path_factory):
    """One finished 4-trial study (made once); tests copy it before changing it."""
    import subprocess

    folder = tmp_path_factory.mktemp("done")
    spec = write_spec(folder)
    exe = Path(sys.executable).with_name("tunelab")
    proc = subprocess.run(
        [str(exe), "tune", str(spec), "--out", "s", "--trials", "4"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return folder, spec, proc


def copy_study(done_study, tmp_path) -> tuple[Path, Path]:
    folder, spec, _ = done_study
    shutil.copytree(folder / "s", tmp_path / "s")
    return tmp_path / "s", spec


def test_exact_total_wal_storage_and_outputs(done_study):
    folder, _, proc = done_study
    study = folder / "s"
    trials = load(study).get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    with sqlite3.connect(study / "study.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    result = json.loads((study / "result.json").read_text())
    best = max(trials, key=lambda t: t.value)
    assert result["best_trial"] == best.number
    assert result["best_value"] == best.value
    assert result["counts"] == {"COMPLETE": 4, "PRUNED": 0, "FAIL": 0}
    best_yaml = yaml.safe_load((study / "best.yaml").read_text())
    assert (
        best_yaml["train"]["optimizer"]["lr"]
        == best.user_attrs["result"]["values"]["train.optimizer.lr"]
    )
    assert "tune" not in best_yaml or best_yaml["tune"] is None
    assert json.loads((study / "study.json").read_text())["trials"] == 4
    assert "4 trials: 4 complete, 0 pruned, 0 failed" in proc.stdout
    assert load(study).metric_names == ["val.accuracy"]  # the dashboard's name, not "Objective 0"


def test_second_run_without_resume_is_refused(done_study, cli, tmp_path):
    study, spec = copy_study(done_study, tmp_path)
    before = (study / "study.db").read_bytes()
    proc = cli("tune", str(spec), "--out", str(study))
    assert proc.returncode == 2
    assert "already holds a study" in proc.stderr and "--resume" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(load(study).get_trials()) == 4
    assert (study / "study.db").read_bytes() == before


def test_resume_without_a_study_is_refused(cli, tmp_path):
    spec = write_spec(tmp_path)
    proc = cli("tune", str(spec), "--out", "nothing", "--resume")
    assert proc.returncode == 2
    assert "nothing to resume" in proc.stderr
    assert not (tmp_path / "nothing" / "study.db").exists()


def test_resume_with_a_changed_spec_names_the_path(done_study, cli, tmp_path):
    study, spec = copy_study(done_study, tmp_path)
    proc = cli("tune", str(spec), "--out", str(study), "--resume", "--set", "train.batch_size=32")
    assert proc.returncode == 2
    assert "train.batch_size" in proc.stderr
    assert len(load(study).get_trials()) == 4


@pytest.mark.slow
def test_resume_with_more_trials_continues_without_rerunning(done_study, cli, tmp_path):
    study, spec = copy_study(done_study, tmp_path)
    before = trials_by_number(study)
    records = {n: (study / "trials" / str(n) / "trial.json").read_bytes() for n in before}
    proc = cli("tune", str(spec), "--out", str(study), "--resume", "--trials", "6")
    assert proc.returncode == 0, proc.stderr
    assert "resuming: 4 trial(s) kept" in proc.stdout
    after = trials_by_number(study)
    assert sorted(after) == [0, 1, 2, 3, 4, 5]
    for n, trial in before.items():
        assert after[n].value == trial.value
        assert after[n].datetime_complete == trial.datetime_complete
        assert (study / "trials" / str(n) / "trial.json").read_bytes() == records[n]
    assert json.loads((study / "result.json").read_text())["counts"]["COMPLETE"] == 6
    # the seeded sampler moved on: a resumed study does not draw its first trials again
    drawn = [after[n].params["train.optimizer.lr"] for n in sorted(after)]
    assert len(set(drawn)) == 6, drawn


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_failures_are_results(cli, tmp_path):
    """A NaN-producing lr fails its trial with the reason; the study ends normally."""
    spec = write_spec(
        tmp_path,
        train={"epochs": 2, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 0.01}},
        tune={
            "sampler": "grid",
            "pruner": "none",
            "space": {"train.optimizer.lr": [0.05, 1.0e30]},
        },
    )
    proc = cli("tune", str(spec), "--out", "s")
    assert proc.returncode == 0, proc.stderr
    trials = load(tmp_path / "s").get_trials()
    assert len(trials) == 2
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1
    assert failed[0].user_attrs["result"]["values"] == {"train.optimizer.lr": 1.0e30}
    assert "non-finite loss at epoch" in failed[0].user_attrs["fail_reason"]
    record = json.loads(
        (tmp_path / "s" / "trials" / str(failed[0].number) / "trial.json").read_text()
    )
    assert record["state"] == "FAIL" and "non-finite loss at epoch" in record["reason"]
    assert "1 complete, 0 pruned, 1 failed" in proc.stdout
    refit = json.loads((tmp_path / "s" / "best" / "metrics.json").read_text())
    assert 0 <= refit["test"]["accuracy"]["value"] <= 1  # the surviving best was refit and tested


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_all_trials_failing_exits_1_with_the_reasons(cli, tmp_path):
    spec = write_spec(
        tmp_path,
        train={"epochs": 2, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 0.01}},
        tune={"sampler": "grid", "pruner": "none", "space": {"train.optimizer.lr": [1e30, 1e35]}},
    )
    proc = cli("tune", str(spec), "--out", "s")
    assert proc.returncode == 1
    assert "no trial of 2 completed" in proc.stderr
    assert "non-finite loss at epoch" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s" / "best").exists()


USER_MODULE = """
import torch
from torch import nn


class Fragile(nn.Module):
    def __init__(self, in_features, num_classes, width=8):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x):
        if self.width == 13:
            raise ValueError("width 13 is unlucky")
        return self.fc(x.flatten(1))
"""


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_user_model_raising_fails_the_trial_with_its_traceback(cli, tmp_path, monkeypatch):
    (tmp_path / "fragile_models.py").write_text(USER_MODULE, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    spec = write_spec(
        tmp_path,
        model={"target": "fragile_models:Fragile", "kwargs": {"width": 8}},
        tune={"sampler": "grid", "pruner": "none", "space": {"model.kwargs.width": [8, 13]}},
    )
    proc = cli("tune", str(spec), "--out", "s")
    assert proc.returncode == 0, proc.stderr
    trials = load(tmp_path / "s").get_trials()
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert failed.user_attrs["result"]["values"] == {"model.kwargs.width": 13}
    assert failed.user_attrs["fail_reason"] == "ValueError: width 13 is unlucky"
    tb = (tmp_path / "s" / "trials" / str(failed.number) / "traceback.txt").read_text()
    assert "Traceback" in tb and "fragile_models.py" in tb and "width 13 is unlucky" in tb
    (ok,) = [t for t in trials if t.state == TrialState.COMPLETE]
    assert not (tmp_path / "s" / "trials" / str(ok.number) / "traceback.txt").exists()


@pytest.mark.slow
def test_two_workers_share_sqlite_for_exactly_40_trials(cli, tmp_path):
    spec = write_spec(
        tmp_path,
        train={"epochs": 1, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}},
    )
    proc = cli("tune", str(spec), "--out", "s", "--trials", "40", "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "database is locked" not in output
    trials = load(tmp_path / "s").get_trials()
    assert sorted(t.number for t in trials) == list(range(40))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(pids) == 2
    assert sorted(p.name for p in (tmp_path / "s" / "trials").iterdir()) == sorted(
        str(n) for n in range(40)
    )


def test_best_versus_runner_up_is_tested_and_saved(tmp_path):
    spec = {
        "name": "bvr",
        "data": {"source": "iris"},
        "split": {"test": 0.2, "cv": 3},
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 3, "batch_size": 16},
        "tune": {
            "trials": 3,
            "sampler": "random",
            "pruner": "none",
            "space": {"train.optimizer.lr": [0.001, 0.01, 0.05]},
        },
    }
    result = tunelab.tune_study(spec, out=tmp_path / "s", quiet=True)
    record = result.best_vs_runner_up
    assert record["best"] == result.best_number and record["test"] == "corrected t-test over folds"
    assert record["low"] <= record["diff"] <= record["high"]
    assert json.loads((tmp_path / "s" / "result.json").read_text())["best_vs_runner_up"] == record
    holdout = spec | {"split": {"test": 0.2, "val": 0.25}, "name": "bvr2"}
    result = tunelab.tune_study(holdout, out=tmp_path / "h", quiet=True)
    assert result.best_vs_runner_up["test"] == "paired bootstrap"
    with np.load(tmp_path / "h" / "trials" / "0" / "predictions.npz") as preds:
        assert len(preds["val_index"]) == len(preds["val_score"]) > 0  # what the test compared
