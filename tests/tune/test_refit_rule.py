"""The refit rule: a trial's value is the value at the epoch count its refit trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

import tunelab
from tunelab.evaluate import log_loss

IRIS = {
    "seed": 0,
    "data": {"source": "iris"},
    "model": {"name": "mlp", "hidden": [16]},
    "train": {"epochs": 8, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.05}},
}


def study_spec(name: str, split: dict, lr: float) -> dict:
    return IRIS | {
        "name": name,
        "split": split,
        "train": IRIS["train"] | {"optimizer": {"name": "adam", "lr": lr}},
        "tune": {
            "trials": 1,
            "sampler": "random",
            "pruner": "none",
            "objective": "val.loss",
            "space": {"train.optimizer.lr": [lr]},
        },
    }


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def only_trial(folder: Path) -> optuna.trial.FrozenTrial:
    (trial,) = optuna.load_study(
        study_name=None, storage=f"sqlite:///{folder / 'study.db'}"
    ).get_trials()
    return trial


# lr 0.2, 3-fold CV: the mean val_loss curve is lowest at its last epoch (8) while the median
# of the folds' own best epochs is 7; lr 0.05 holdout: val_loss is lowest at epoch 7 of 8
@pytest.mark.parametrize(
    ("split", "lr"), [({"test": 0.2, "cv": 3}, 0.2), ({"test": 0.2, "val": 0.25}, 0.05)]
)
def test_trial_value_is_the_mean_curve_at_the_epochs_the_refit_trains(tmp_path, split, lr):
    folder = tmp_path / "s"
    result = tunelab.tune_study(study_spec("rule", split, lr), out=folder, quiet=True)
    history = rows(folder / "trials" / "0" / "history.jsonl")
    folds = sorted({r.get("fold", 0) for r in history})
    curve = {
        e: float(np.mean([r["val_loss"] for r in history if r["epoch"] == e])) for e in range(1, 9)
    }
    refit = json.loads((folder / "result.json").read_text())["refit_epochs"]

    # the refit rule: the best epoch of the mean-over-folds curve, and its value
    assert refit == min(curve, key=lambda e: (curve[e], e))
    assert result.best_value == pytest.approx(curve[refit], rel=1e-12)
    stored = only_trial(folder).user_attrs["result"]
    assert stored["refit_epochs"] == refit
    assert stored["fold_values"] == [r["val_loss"] for r in history if r["epoch"] == refit]
    assert stored["epochs_trained"] == [8] * len(folds)
    # the refit trains exactly that many epochs
    refit_rows = [r for r in rows(folder / "best" / "history.jsonl") if r.get("fold") == "refit"]
    assert [r["epoch"] for r in refit_rows] == list(range(1, refit + 1))


def test_trial_predictions_are_those_of_the_chosen_epoch(tmp_path):
    folder = tmp_path / "s"
    result = tunelab.tune_study(
        study_spec("preds", {"test": 0.2, "val": 0.25}, 0.05), out=folder, quiet=True
    )
    refit = json.loads((folder / "result.json").read_text())["refit_epochs"]
    history = rows(folder / "trials" / "0" / "history.jsonl")
    assert refit < len(history)  # lowest at epoch 7 of 8: the last epoch's model is not it
    at_refit = next(r["val_loss"] for r in history if r["epoch"] == refit)
    with np.load(folder / "trials" / "0" / "predictions.npz") as f:
        index, score = f["val_index"], f["val_score"]
        saved_epoch = int(f["epoch"]) if "epoch" in f.files else None
    y = np.asarray(tunelab.data.load_dataset(tunelab.spec.parse_spec(IRIS | {"name": "x"}).data).y)
    # the saved scores are those of the chosen epoch: their loss is that epoch's val_loss
    assert log_loss(y[index], score) == pytest.approx(at_refit, rel=1e-4)
    assert result.best_value == pytest.approx(at_refit, rel=1e-12)
    assert saved_epoch == refit
