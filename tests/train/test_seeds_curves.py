"""Seeds, learning/validation curves and the overfitting diagnosis, on small real data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

import tunelab
from tunelab.train import diagnose, learning_curve, seed_summary, train_seeds, validation_curve

IRIS = {
    "name": "iris",
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.25},
    "model": {"name": "mlp", "hidden": [16]},
    "train": {"epochs": 5, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.02}},
}


def test_seed_summary_is_a_student_t_interval():
    values = [0.91, 0.93, 0.92, 0.95, 0.90]
    s = seed_summary(values)
    low, high = stats.t.interval(0.95, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert s["mean"] == pytest.approx(np.mean(values))
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    assert (s["low"], s["high"]) == pytest.approx((low, high))
    assert seed_summary([0.5])["std"] == 0.0 and math.isnan(seed_summary([0.5])["low"])


def test_train_seeds_keeps_every_run_and_summarises(tmp_path):
    result = train_seeds(IRIS, seeds=3, out=tmp_path / "s", quiet=True)
    assert result["seeds"] == [0, 1, 2]
    for seed in (0, 1, 2):
        assert (tmp_path / "s" / f"seed_{seed}" / "model.safetensors").is_file()
    stored = json.loads((tmp_path / "s" / "seeds.json").read_text())
    accs = [r["metrics"]["test"]["accuracy"] for r in stored["runs"]]
    assert stored["summary"]["test"]["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert stored["summary"]["test"]["accuracy"]["n"] == 3
    with pytest.raises(tunelab.SpecError, match="at least 2 seeds"):
        train_seeds(IRIS, seeds=1, out=tmp_path / "one")


def test_learning_curve_points_and_gap(tmp_path):
    result = learning_curve(IRIS, sizes=[0.3, 1.0], folds=3, out=tmp_path / "lc.json", quiet=True)
    assert [p["fraction"] for p in result["points"]] == [0.3, 1.0]
    for p in result["points"]:
        assert len(p["train_folds"]) == 3 and len(p["val_folds"]) == 3
        assert p["val_mean"] == pytest.approx(np.mean(p["val_folds"]))
    assert result["points"][0]["train_size"] < result["points"][1]["train_size"]
    assert json.loads((tmp_path / "lc.json").read_text())["kind"] == "learning"
    assert isinstance(result["diagnosis"], str) and result["diagnosis"]
    with pytest.raises(tunelab.SpecError, match="fractions"):
        learning_curve(IRIS, sizes=[0.0, 2.0])


def test_validation_curve_over_learning_rates(tmp_path):
    result = validation_curve(
        IRIS,
        param="train.optimizer.lr",
        values=[1e-5, 0.05],
        folds=3,
        out=tmp_path / "vc.json",
        quiet=True,
    )
    tiny, good = result["points"]
    assert tiny["value"] == 1e-5 and good["value"] == 0.05
    assert good["val_mean"] > tiny["val_mean"]  # lr 1e-5 for 5 epochs barely moves
    assert "best validation at train.optimizer.lr = 0.05" in result["diagnosis"]
    with pytest.raises(tunelab.SpecError, match="train.optimizer.lr"):
        validation_curve(IRIS, param="train.optimizer.lr", values=[-1.0], quiet=True)


def test_diagnose_reads_overfitting_from_history():
    rows = [
        {
            "epoch": e,
            "train_accuracy": 0.6 + 0.04 * e,
            "val_accuracy": min(0.6 + 0.04 * e, 0.8) - 0.01 * max(0, e - 5),
        }
        for e in range(1, 11)
    ]
    d = diagnose(rows, metric="accuracy", higher_is_better=True)
    assert d["best_epoch"] == 5 and d["stopped_improving_at"] == 5
    assert d["gap_at_end"] == pytest.approx(rows[-1]["train_accuracy"] - rows[-1]["val_accuracy"])
    assert d["verdict"].startswith("overfitting")
    still = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.05 / e} for e in range(1, 6)]
    assert diagnose(still, metric=None, higher_is_better=False)["verdict"].startswith("no sign")


def test_run_writes_its_diagnosis(tmp_path):
    run = tunelab.train(IRIS, out=tmp_path / "r", quiet=True)
    d = json.loads((run.path / "diagnosis.json").read_text())
    assert d["metric"] == "accuracy" and d["last_epoch"] == 5
