"""Every metric of a run comes with its interval; classification runs record calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunelab
from tunelab.evaluate import bootstrap_ci, expected_calibration_error

IRIS = {
    "data": {"source": "iris"},
    "split": {"test": 0.3, "val": 0.2},
    "model": {"name": "mlp", "hidden": [16]},
    "train": {"epochs": 10, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.02}},
}


def test_metrics_json_carries_bootstrap_intervals(tmp_path):
    run = tunelab.train(IRIS, out=tmp_path / "r", quiet=True)
    metrics = json.loads((run.path / "metrics.json").read_text())
    for split in ("val", "test"):
        assert metrics[split]["loss"]["ci"] is None
        acc = metrics[split]["accuracy"]
        assert acc["ci"]["level"] == 0.95 and acc["ci"]["n_resamples"] == 2000
        assert acc["ci"]["low"] <= acc["value"] <= acc["ci"]["high"]
    # the same interval as computing it directly from the saved predictions
    preds = run.predictions()
    direct = bootstrap_ci(
        "classification", preds["test_y"], preds["test_score"], names=["accuracy"], seed=0
    )
    assert metrics["test"]["accuracy"]["ci"]["low"] == pytest.approx(direct["accuracy"].low)
    assert metrics["test"]["accuracy"]["ci"]["high"] == pytest.approx(direct["accuracy"].high)


def test_intervals_can_be_switched_off(tmp_path):
    run = tunelab.train(IRIS, out=tmp_path / "r", overrides=["evaluate.ci.resamples=0"], quiet=True)
    assert all(slot["ci"] is None for slot in run.metrics["test"].values())


def test_calibration_record_and_temperature(tmp_path):
    run = tunelab.train(
        IRIS, out=tmp_path / "r", overrides=["evaluate.temperature=true"], quiet=True
    )
    cal = json.loads((run.path / "calibration.json").read_text())
    preds = run.predictions()
    assert cal["test"]["ece"] == pytest.approx(
        expected_calibration_error(preds["test_y"], preds["test_score"])
    )
    assert len(cal["test"]["reliability"]["count"]) > 0 and cal["temperature"] > 0
    assert set(cal["test_calibrated"]) >= {"ece", "brier", "log_loss"}


def test_evaluate_recomputes_the_interval(tmp_path):
    run = tunelab.train(IRIS, out=tmp_path / "r", quiet=True)
    before = run.metrics["test"]["accuracy"]
    tunelab.evaluate_run(run, split="test", quiet=True)
    after = json.loads((run.path / "metrics.json").read_text())["test"]["accuracy"]
    assert after["value"] == pytest.approx(before["value"]) and after["ci"] == before["ci"]
    assert np.isfinite(after["ci"]["low"])


def test_the_metrics_table_says_why_an_interval_should_not_be_read_as_it_stands():
    import io

    from tunelab.train import Console

    out = io.StringIO()
    slot = {
        "value": 0.03,
        "ci": {"low": 0.035, "high": 0.09, "warning": "the interval excludes its estimate"},
    }
    plain = {"value": 0.9, "ci": {"low": 0.85, "high": 0.95}}
    Console(file=out).metrics_table({"test": {"ece": slot, "accuracy": plain}})
    text = out.getvalue()
    assert "0.0300 [0.0350, 0.0900] *" in text
    assert "* test ece: the interval excludes its estimate" in text
    assert "0.9000 [0.8500, 0.9500] *" not in text and text.count("*") == 2
