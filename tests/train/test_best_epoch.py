"""What `tunelab train` calls its best epoch, and what a refit says about its epochs."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

import tunelab
from tunelab.train import Console, choose_epoch

SPEC = {
    "name": "best_epoch",
    "seed": 0,
    "data": {"source": "iris"},
    "model": {"name": "mlp", "hidden": [16]},
    "train": {"epochs": 8, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.1}},
}


def printed(spec: dict, tmp_path, **kwargs) -> tuple[str, list[dict]]:
    buf = io.StringIO()
    tunelab.train(spec, out=tmp_path / "run", console=Console(file=buf), **kwargs)
    lines = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    return buf.getvalue(), [json.loads(line) for line in lines]


def test_choose_epoch_is_the_best_of_the_mean_curve_over_common_epochs():
    folds = [
        [{"epoch": 1, "v": 0.5}, {"epoch": 2, "v": 0.9}, {"epoch": 3, "v": 0.2}],
        [{"epoch": 1, "v": 0.7}, {"epoch": 2, "v": 0.4}],  # stopped early: epochs 1-2 shared
    ]
    choice = choose_epoch(folds, "v", maximize=True)
    assert (choice.epoch, choice.fold_values) == (2, [0.9, 0.4])
    assert choice.value == np.mean([0.9, 0.4])
    assert choose_epoch(folds, "v", maximize=False).epoch == 1
    ties = [[{"epoch": 1, "v": 1.0}, {"epoch": 2, "v": 1.0}, {"epoch": 3, "v": float("nan")}]]
    assert choose_epoch(ties, "v", maximize=True).epoch == 1  # earliest on ties, NaN skipped
    assert choose_epoch([[{"epoch": 1}]], "v", maximize=True) is None


def test_cv_train_refits_for_the_rule_epochs_and_says_so(tmp_path):
    # lr 0.1, 3-fold CV: the mean val_loss curve is lowest at epoch 5; the median of the
    # folds' own best epochs is 4
    out, history = printed(SPEC | {"split": {"test": 0.2, "cv": 3}}, tmp_path)
    folds = [[r for r in history if r.get("fold") == k] for k in range(3)]
    expected = choose_epoch(folds, "val_loss", maximize=False).epoch
    assert expected == 5
    refit = [r["epoch"] for r in history if r.get("fold") == "refit"]
    assert refit == list(range(1, expected + 1))
    assert f"trained {expected} epochs" in out
    assert re.search(r"best epoch \d", out) is None  # a refit has no val part to pick one on


def test_refit_only_run_says_what_it_trained_not_a_train_loss_best_epoch(tmp_path):
    out, history = printed(SPEC | {"split": {"test": 0.2, "val": 0.2}}, tmp_path, refit_epochs=3)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert re.search(r"best epoch \d", out) is None
    assert "trained 3 epochs" in out


def test_holdout_best_epoch_is_the_rule_on_the_monitored_value(tmp_path):
    spec = SPEC | {
        "split": {"test": 0.2, "val": 0.25},
        "train": SPEC["train"]
        | {"early_stopping": {"monitor": "val_accuracy", "patience": 20, "restore_best": False}},
    }
    out, history = printed(spec, tmp_path)
    best = choose_epoch([history], "val_accuracy", maximize=True).epoch
    assert f"best epoch {best} by val_accuracy" in out


def _final_val(tmp_path, early: dict) -> tuple[dict, list[dict]]:
    spec = SPEC | {
        "split": {"test": 0.2, "val": 0.25},
        "train": SPEC["train"]
        | {"epochs": 8, "optimizer": {"name": "adam", "lr": 0.3}, "early_stopping": early},
    }
    printed(spec, tmp_path)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    return metrics["val"], [json.loads(x) for x in open(tmp_path / "run" / "history.jsonl")]


def test_final_val_metrics_are_the_last_epochs_model_when_the_model_is_kept(tmp_path):
    # the final evaluation reuses the last epoch's validation outputs: the same numbers
    val, history = _final_val(
        tmp_path, {"monitor": "val_loss", "patience": 20, "restore_best": False}
    )
    assert val["loss"]["value"] == history[-1]["val_loss"]
    assert val["accuracy"]["value"] == history[-1]["val_accuracy"]


def test_final_val_metrics_are_the_restored_models_not_the_last_epochs(tmp_path):
    # lr 0.3: val_loss is lowest at epoch 5 of 8. restore_best puts that epoch's weights back: the last epoch's outputs must not be
    # reused, the final numbers are the restored model's (its epoch's row)
    val, history = _final_val(tmp_path, {"monitor": "val_loss", "patience": 20})
    best = min(history, key=lambda r: r["val_loss"])
    assert best["epoch"] != history[-1]["epoch"]
    assert val["loss"]["value"] == pytest.approx(best["val_loss"], rel=1e-6)
    assert val["loss"]["value"] != history[-1]["val_loss"]
