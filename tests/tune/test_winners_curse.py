"""A study says that its best of N is optimistic, with a BBC-CV estimate beside it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunelab
from tunelab.report import study_info


def spec(split: dict, trials: int) -> dict:
    return {
        "name": "curse",
        "seed": 0,
        "data": {"source": "iris"},
        "split": split,
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 4, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
        "tune": {
            "trials": trials,
            "sampler": "random",
            "pruner": "none",
            "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
        },
    }


def test_holdout_study_prints_and_stores_the_caveat_and_the_bbc_estimate(tmp_path, capsys):
    folder = tmp_path / "s"
    result = tunelab.tune_study(spec({"test": 0.2, "val": 0.3}, trials=6), out=folder)
    out = capsys.readouterr().out
    stored = json.loads((folder / "result.json").read_text())["winners_curse"]
    bbc = stored["bbc"]
    assert stored["n_trials"] == 6 and stored["caveat"] == "best of 6: optimistic"
    assert bbc["metric"] == "accuracy" and bbc["n_configs"] == 6 and len(bbc["trials"]) == 6
    assert bbc["low"] <= bbc["estimate"] <= bbc["high"]
    # holdout: the pooled rows are the val part, so the apparent best is the best trial's value
    # (its saved predictions are those of the epoch its value was taken at)
    assert bbc["apparent"] == pytest.approx(result.best_value, abs=1e-9)
    assert result.winners_curse == stored
    line = next(line for line in out.splitlines() if line.startswith("best: trial"))
    assert (
        f"(best of 6: optimistic; bias-corrected BBC-CV estimate {bbc['estimate']:.4f} "
        f"[{bbc['low']:.4f}, {bbc['high']:.4f}])" in line
    )
    # the top-trials table says what each number is
    header = next(line for line in out.splitlines() if "rank" in line and "trial" in line)
    assert "epochs trained" in header and "refit epochs" in header
    info = study_info(folder)
    assert info.winners_curse == stored
    row = next(r for r in info.trials if r.number == result.best_number)
    assert row.epochs_trained == [4]
    assert row.refit_epochs == json.loads((folder / "result.json").read_text())["refit_epochs"]


def test_cv_study_pools_the_out_of_fold_predictions_of_every_trial(tmp_path):
    folder = tmp_path / "s"
    result = tunelab.tune_study(spec({"test": 0.2, "cv": 3}, trials=3), out=folder, quiet=True)
    bbc = result.winners_curse["bbc"]
    n_dev = 150 - 30
    assert bbc["n_samples"] == n_dev and bbc["n_configs"] == 3
    with np.load(folder / "trials" / str(result.best_number) / "predictions.npz") as f:
        assert sorted(f["val_index"].tolist()) == sorted(set(f["val_index"].tolist()))
        assert len(f["val_index"]) == n_dev
    assert bbc["low"] <= bbc["estimate"] <= bbc["high"]
