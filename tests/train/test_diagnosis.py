"""The fitting diagnosis: underfitting against a trivial baseline, and one best epoch.

A run that does not beat predicting the training part's mean (or its class shares) on train
and validation is underfitting whatever its train/val gap; the baseline's values are in
``diagnosis.json``. The best epoch there is the one the run's summary prints.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

import tunelab
from tunelab.train import Console, diagnose

DIABETES = {
    "name": "diabetes_lr0",
    "seed": 0,
    "data": {"source": "diabetes"},
    "model": {"name": "linear"},
    "train": {"epochs": 4, "optimizer": {"name": "adam", "lr": 1e-9}},
}


def _train(tree: dict, out) -> tuple[tunelab.Run, str]:
    buf = io.StringIO()
    run = tunelab.train(tree, out=out, console=Console(file=buf))
    return run, buf.getvalue()


def test_a_model_that_does_not_learn_is_underfitting_and_the_baseline_is_shown(tmp_path):
    run, printed = _train(DIABETES, tmp_path / "lr0")
    d = json.loads((run.path / "diagnosis.json").read_text())
    assert d["underfitting"] is True and d["verdict"].startswith("underfitting")
    assert "overfitting" not in d["verdict"].replace("underfitting", "")
    base = d["baseline"]
    assert base["what"] == "predicting the training part's mean"
    # on the standardised target the mean's train loss is the train part's variance: 1
    assert base["train_loss"] == pytest.approx(1.0, rel=1e-5)
    ds = tunelab.data.load_dataset(run.spec.data)
    fold = run.splits["folds"][0]
    y_tr, y_va = ds.y[fold["train"]["indices"]], ds.y[fold["val"]["indices"]]
    rmse = float(np.sqrt(np.mean((y_va - y_tr.mean()) ** 2)))
    assert base["val_rmse"] == pytest.approx(rmse, rel=1e-5)  # in the target's units
    assert f"{base['train_loss']:.4g}" in d["verdict"]
    assert "diagnosis: underfitting" in printed


def test_a_model_that_learns_is_not_underfitting(tmp_path):
    tree = {
        "name": "line",
        "data": {"source": "linear", "n": 200, "noise": 0.1},
        "model": {"name": "linear"},
        "train": {"epochs": 15, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.05}},
    }
    run, _ = _train(tree, tmp_path / "line")
    d = json.loads((run.path / "diagnosis.json").read_text())
    assert d["underfitting"] is False and not d["verdict"].startswith("underfitting")
    assert d["baseline"]["val_loss"] > 10 * run.history[-1]["val_loss"]


def test_the_classification_baseline_is_the_majority_class(tmp_path):
    tree = {
        "name": "bc",
        "data": {"source": "breast-cancer"},
        "model": {"name": "linear"},
        "train": {"epochs": 2, "metrics": ["accuracy"]},
        "evaluate": {"metrics": ["accuracy"]},
    }
    run, _ = _train(tree, tmp_path / "bc")
    d = json.loads((run.path / "diagnosis.json").read_text())
    ds = tunelab.data.load_dataset(run.spec.data)
    fold = run.splits["folds"][0]
    y_tr, y_va = ds.y[fold["train"]["indices"]], ds.y[fold["val"]["indices"]]
    majority = np.bincount(y_tr).argmax()
    assert d["baseline"]["val_accuracy"] == pytest.approx(np.mean(y_va == majority))
    shares = np.bincount(y_tr) / len(y_tr)
    entropy = -float(np.mean(np.log(shares[y_tr])))
    assert d["baseline"]["train_loss"] == pytest.approx(entropy, rel=1e-5)
    assert "majority class" in d["baseline"]["what"]


def test_the_summary_and_diagnosis_json_name_the_same_best_epoch(tmp_path):
    # early stopping on val_loss while the diagnosed metric is accuracy: two different
    # "best" epochs before; now the one the run chose, in both places
    tree = {
        "name": "iris_best",
        "seed": 1,
        "data": {"source": "iris"},
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 12, "optimizer": {"name": "adam", "lr": 0.05}},
    }
    run, printed = _train(tree, tmp_path / "holdout")
    d = json.loads((run.path / "diagnosis.json").read_text())
    said = re.search(r"best epoch (\d+) by (\S+)", printed)
    assert said is not None, printed
    assert int(said.group(1)) == d["best_epoch"]
    cv = {**tree, "split": {"test": 0.2, "cv": 3}}
    run, printed = _train(cv, tmp_path / "cv")
    d = json.loads((run.path / "diagnosis.json").read_text())
    said = re.search(r"refit: trained (\d+) epochs", printed)
    assert said is not None and int(said.group(1)) == d["best_epoch"]
    assert "mean over 3 folds" in d["baseline"]["what"]


def test_diagnose_with_a_baseline_and_the_runs_best_epoch():
    rows = [
        {"epoch": e, "train_loss": 0.95 + 0.01 * e, "val_loss": 1.0 - 0.001 * e} for e in (1, 2, 3)
    ]
    base = {"what": "predicting the training part's mean", "train_loss": 1.0, "val_loss": 1.0}
    d = diagnose(rows, metric=None, higher_is_better=False, best_epoch=2, baseline=base)
    assert d["best_epoch"] == 2 and d["underfitting"] and "barely beats" in d["verdict"]
    worse = {**base, "train_loss": 0.5, "val_loss": 0.5}
    d = diagnose(rows, metric=None, higher_is_better=False, baseline=worse)
    assert d["best_epoch"] == 3 and "worse than a trivial baseline" in d["verdict"]
    good = {**base, "train_loss": 10.0, "val_loss": 10.0}
    assert not diagnose(rows, metric=None, higher_is_better=False, baseline=good)["underfitting"]
