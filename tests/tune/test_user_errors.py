"""Exceptions in the user's own model code fail that trial, with its record, and the study goes on.

A user module (written to a temporary folder on PYTHONPATH, imported by ``model.target`` as a
user's package would be) fails in different ways depending on a sampled hyperparameter: in its
constructor, in ``forward`` with the user's own exception class, with a real torch shape error,
and in the third epoch. Each failed trial stores the exception's type, message and traceback
in the storage (user attribute ``error``), in ``trials/<n>/traceback.txt`` and ``trial.json``.
Spec-level user data code does not exist in tunelab (data comes from built-in sources and
files); the user's code that touches the data is the model's ``forward``.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

USER_MODULE = '''
import torch
from torch import nn


class UserBug(Exception):
    """The user's own exception class."""


class Fickle(nn.Module):
    def __init__(self, in_features, num_classes, mode="ok"):
        super().__init__()
        if mode == "init":
            raise ValueError("hidden width must be even, got 7")
        self.mode, self.steps = mode, 0
        self.fc = nn.Linear(in_features, 16)
        self.out = nn.Linear(17 if mode == "shape" else 16, num_classes)  # a real bug

    def forward(self, x):
        if self.training:
            self.steps += 1
        if self.mode == "forward":
            raise UserBug(f"cannot handle a batch of {len(x)}")
        if self.mode == "late" and self.steps == 15:  # 6 steps an epoch: in the third
            raise UserBug("ran out of patience at step 15")
        return self.out(torch.relu(self.fc(x.flatten(1))))
'''

MODES = ["ok", "forward", "init", "shape", "late"]


def write(tmp_path: Path, modes: list[str]) -> Path:
    (tmp_path / "fickle_models.py").write_text(USER_MODULE, encoding="utf-8")
    spec = {
        "name": "fickle",
        "seed": 0,
        "data": {"source": "iris"},
        "split": {"test": 0.2, "val": 0.2},  # 96 training samples: 6 steps of 16 an epoch
        "model": {"target": "fickle_models:Fickle", "kwargs": {"mode": "ok"}},
        "train": {"epochs": 4, "batch_size": 16},
        "tune": {
            "sampler": "grid",
            "pruner": "none",
            "refit": False,
            "space": {"model.kwargs.mode": modes},
        },
    }
    path = tmp_path / "fickle.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def by_mode(folder: Path) -> dict[str, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="fickle", storage=f"sqlite:///{folder / 'study.db'}")
    return {t.user_attrs["result"]["values"]["model.kwargs.mode"]: t for t in study.get_trials()}


def test_user_exceptions_fail_their_trials_with_type_message_and_traceback(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    spec = write(tmp_path, MODES)
    proc = cli("tune", str(spec), "--out", "s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr  # tracebacks are stored, not printed

    trials = by_mode(tmp_path / "s")
    assert sorted(trials) == sorted(MODES)  # every trial ran: the study went on after failures
    assert trials["ok"].state == TrialState.COMPLETE
    assert "error" not in trials["ok"].user_attrs
    expected = {  # mode: (type, message, the user's line in the traceback)
        "forward": (
            "fickle_models.UserBug",
            "cannot handle a batch of 16",
            'raise UserBug(f"cannot handle a batch of {len(x)}")',
        ),
        "init": (
            "ValueError",
            "hidden width must be even, got 7",
            'raise ValueError("hidden width must be even, got 7")',
        ),
        "shape": (
            "RuntimeError",
            "mat1 and mat2 shapes cannot be multiplied",
            "return self.out(torch.relu(self.fc(x.flatten(1))))",
        ),
        "late": (
            "fickle_models.UserBug",
            "ran out of patience at step 15",
            'raise UserBug("ran out of patience at step 15")',
        ),
    }
    for mode, (kind, message, line) in expected.items():
        trial = trials[mode]
        assert trial.state == TrialState.FAIL, mode
        error = trial.user_attrs["error"]
        assert error["type"] == kind, mode
        assert message in error["message"], mode
        assert message in trial.user_attrs["fail_reason"], mode
        folder = tmp_path / "s" / "trials" / str(trial.number)
        stored = (folder / "traceback.txt").read_text(encoding="utf-8")
        for text in (error["traceback"], stored):
            assert text.startswith("Traceback (most recent call last)"), mode
            assert "fickle_models.py" in text and line in text and message in text, mode
        record = json.loads((folder / "trial.json").read_text())
        assert record["state"] == "FAIL" and record["error"] == error
        # the console shows the failure in one line, with its reason
        assert f"trial {trial.number:>3}  FAIL" in proc.stdout, mode

    # the wrapped constructor error keeps tunelab's words in the reason, the user's in `error`
    assert trials["init"].user_attrs["fail_reason"].startswith("SpecError: model.target:")
    # the late failure kept the two epochs that finished
    late = tmp_path / "s" / "trials" / str(trials["late"].number) / "history.jsonl"
    assert len(late.read_text().splitlines()) == 2
    assert json.loads((tmp_path / "s" / "result.json").read_text())["counts"] == {
        "COMPLETE": 1,
        "PRUNED": 0,
        "FAIL": 4,
    }


def test_when_every_trial_fails_the_user_errors_are_the_message(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    spec = write(tmp_path, ["forward", "init"])
    proc = cli("tune", str(spec), "--out", "s", "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no trial of 2 completed (0 pruned, 2 failed)" in proc.stderr
    assert "UserBug: cannot handle a batch of 16" in proc.stderr
    assert "hidden width must be even, got 7" in proc.stderr
    assert "Traceback" not in proc.stderr
    for trial in by_mode(tmp_path / "s").values():
        assert trial.state == TrialState.FAIL and trial.user_attrs["error"]["traceback"]
