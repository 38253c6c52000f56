"""train() and evaluate() end to end on tiny built-in data sets, writing real run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn import datasets

import tunelab
from tunelab.errors import RunError, SpecError
from tunelab.evaluate import DEFAULT_METRICS, compute_metrics
from tunelab.train import evaluate, train

EXAMPLES = Path(__file__).parents[2] / "examples"
RUN_FILES = (
    "spec.yaml",
    "env.json",
    "splits.json",
    "history.jsonl",
    "model.safetensors",
    "predictions.npz",
    "metrics.json",
    "preprocess.json",
)


def spec(data, model, **train):
    return {"data": data, "model": model, "train": {"epochs": 3, **train}}


def history_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "history.jsonl").read_text().splitlines()]


def split_indices(run, part="train", fold=0):
    return np.asarray(run.splits["folds"][fold][part]["indices"])


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "iris"
    return train(spec("iris", {"name": "mlp", "hidden": [16]}), out=out, quiet=True)


# ---------------------------------------------------------------------------------------------
# what a run folder holds


def test_a_run_writes_every_file(iris_run):
    assert all((iris_run.path / name).is_file() for name in RUN_FILES)
    assert not (iris_run.path / "folds.json").exists()  # holdout: no folds
    saved = tunelab.load_spec(iris_run.path / "spec.yaml")
    assert saved == tunelab.load_spec(spec("iris", {"name": "mlp", "hidden": [16]}))
    env = iris_run.env
    assert env["seed"] == 0 and env["device"] == "cpu" and env["packages"]["torch"]


def test_metrics_json_maps_split_to_metric_to_value_and_ci(iris_run):
    metrics = json.loads((iris_run.path / "metrics.json").read_text())
    assert set(metrics) == {"val", "test"}
    for part in metrics.values():
        assert list(part) == ["loss", *DEFAULT_METRICS["classification"]]
        for slot in part.values():
            assert set(slot) == {"value", "ci"}
            assert isinstance(slot["value"], float) and np.isfinite(slot["value"])
        assert part["loss"]["ci"] is None  # the loss is for reading curves, not for comparing
        acc = part["accuracy"]["ci"]
        assert acc["low"] <= part["accuracy"]["value"] <= acc["high"] and acc["level"] == 0.95


def test_history_has_one_line_per_epoch(iris_run):
    rows = history_lines(iris_run.path)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert {
            "epoch",
            "train_loss",
            "val_loss",
            "train_accuracy",
            "val_accuracy",
            "lr",
            "seconds",
        } <= set(row)
    assert iris_run.history == rows


def test_predictions_match_the_splits_and_the_metrics(iris_run):
    pred = iris_run.predictions()
    test_idx = np.asarray(iris_run.splits["test"]["indices"])
    np.testing.assert_array_equal(pred["test_index"], test_idx)
    np.testing.assert_array_equal(pred["val_index"], split_indices(iris_run, "val"))
    assert pred["test_score"].shape == (len(test_idx), 3)
    np.testing.assert_allclose(pred["test_score"].sum(axis=1), 1.0, rtol=1e-5)
    values = compute_metrics("classification", pred["test_y"], pred["test_score"])
    stored = iris_run.metrics["test"]
    assert values == {k: pytest.approx(stored[k]["value"]) for k in values}


def test_preprocessing_statistics_come_from_the_training_part_alone(iris_run):
    stats = json.loads((iris_run.path / "preprocess.json").read_text())
    X = datasets.load_iris().data.astype(np.float64)
    train_idx = split_indices(iris_run)
    assert stats["kind"] == "features"
    np.testing.assert_allclose(stats["mean"], X[train_idx].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["std"], X[train_idx].std(axis=0), rtol=1e-5)
    assert not np.allclose(stats["mean"], X.mean(axis=0), rtol=1e-5)
    # the same statistics travel with the weights
    weights = load_file(iris_run.path / "model.safetensors")
    np.testing.assert_allclose(weights["norm.mean"].reshape(-1), stats["mean"], rtol=1e-6)
    np.testing.assert_allclose(weights["norm.std"].reshape(-1), stats["std"], rtol=1e-6)


def test_evaluate_reproduces_the_stored_metrics_and_updates_metrics_json(iris_run, capsys):
    stored = iris_run.metrics
    weights = load_file(iris_run.path / "model.safetensors")
    assert weights["net.1.weight"].shape == (16, 4) and weights["net.3.weight"].shape == (3, 16)
    metrics_file = iris_run.path / "metrics.json"
    tampered = json.loads(metrics_file.read_text())
    tampered["test"] = {"accuracy": {"value": -1.0, "ci": None}}
    metrics_file.write_text(json.dumps(tampered))
    capsys.readouterr()

    values = evaluate(iris_run, split="test", quiet=True)
    assert capsys.readouterr().out == ""  # quiet: nothing printed (the CLI's --json relies on it)
    assert values == {k: slot["value"] for k, slot in stored["test"].items()}
    assert iris_run.metrics == stored

    val = evaluate(iris_run.path, split="val", quiet=True)
    assert val == pytest.approx({k: slot["value"] for k, slot in stored["val"].items()})
    train_values = evaluate(str(iris_run.path), split="train", quiet=True)
    assert set(iris_run.metrics) == {"val", "test", "train"}
    assert iris_run.metrics["train"]["accuracy"]["value"] == train_values["accuracy"]
    assert len(iris_run.predictions()["train_index"]) == len(split_indices(iris_run))


def test_evaluate_rejects_an_unknown_split(iris_run):
    with pytest.raises(SpecError, match="expected test, val or train; got 'tset'"):
        evaluate(iris_run, split="tset")


# ---------------------------------------------------------------------------------------------
# the textbook systems and other tasks


def test_linear_example_learns_the_slope(tmp_path):
    """Textbook system 1: y = 2x by full-batch gradient descent."""
    run = train(EXAMPLES / "linear_gd.yaml", out=tmp_path / "linear", quiet=True)
    weights = load_file(run.path / "model.safetensors")
    assert set(weights) == {"net.1.weight", "net.1.bias"}  # preprocess none: no Normalize layer
    assert abs(float(weights["net.1.weight"].reshape(())) - 2.0) < 0.05
    assert abs(float(weights["net.1.bias"].reshape(()))) < 0.05
    assert len(run.history) == 100
    assert run.metrics["test"]["rmse"]["value"] < 0.15  # the noise is 0.1


def test_digits_mlp_on_images(tmp_path):
    run = train(
        spec("digits", {"name": "mlp", "hidden": [32]}, optimizer={"name": "adam", "lr": 0.01}),
        out=tmp_path / "digits",
        quiet=True,
    )
    assert run.metrics["test"]["accuracy"]["value"] > 0.8
    stats = json.loads((run.path / "preprocess.json").read_text())
    X = datasets.load_digits().data / 16.0
    train_idx = split_indices(run)
    assert stats["kind"] == "channels" and len(stats["mean"]) == 1
    assert stats["mean"][0] == pytest.approx(X[train_idx].mean(), rel=1e-5)
    assert stats["std"][0] == pytest.approx(X[train_idx].std(), rel=1e-5)
    assert load_file(run.path / "model.safetensors")["norm.mean"].shape == (1, 1, 1, 1)


def test_cross_validation_writes_folds_and_out_of_fold_metrics(tmp_path):
    # a plateau schedule watches val_loss, which the refit (no val part) does not have
    run = train(
        spec("iris", "linear", optimizer={"name": "adam", "lr": 0.05}, schedule="plateau"),
        out=tmp_path / "cv",
        overrides=["split.cv=3"],
        quiet=True,
    )
    folds = json.loads((run.path / "folds.json").read_text())
    assert len(folds["folds"]) == 3 and set(folds) == {"folds", "mean", "std"}
    keys = ["loss", *DEFAULT_METRICS["classification"]]
    assert all(list(f) == keys for f in folds["folds"])
    for k in keys:
        per_fold = [f[k] for f in folds["folds"]]
        assert folds["mean"][k] == pytest.approx(np.mean(per_fold))
        assert folds["std"][k] == pytest.approx(np.std(per_fold, ddof=1))

    # val metrics come from the out-of-fold predictions, which cover the whole non-test part
    pred = run.predictions()
    val_sets = [split_indices(run, "val", k) for k in range(3)]
    np.testing.assert_array_equal(pred["val_index"], np.sort(np.concatenate(val_sets)))
    oof = compute_metrics("classification", pred["val_y"], pred["val_score"])
    assert {k: run.metrics["val"][k]["value"] for k in oof} == pytest.approx(oof)
    assert "loss" not in run.metrics["val"]

    rows = run.history
    for k in range(3):
        assert [r["epoch"] for r in rows if r["fold"] == k] == [1, 2, 3]
    refit = [r for r in rows if r["fold"] == "refit"]
    assert refit and all("val_loss" not in r for r in refit)
    with pytest.raises(RunError, match="out-of-fold"):
        evaluate(run, split="val")


def test_bce_binary_classification_on_breast_cancer(tmp_path):
    run = train(
        spec("breast-cancer", "linear", loss="bce", optimizer={"name": "adam", "lr": 0.05}),
        out=tmp_path / "bc",
        quiet=True,
    )
    weights = load_file(run.path / "model.safetensors")
    assert weights["net.1.weight"].shape == (1, 30)  # one logit
    assert run.metrics["test"]["accuracy"]["value"] > 0.9
    assert run.metrics["test"]["roc_auc"]["value"] > 0.95
    assert run.predictions()["test_score"].shape[1] == 2
    assert {"train_accuracy", "val_accuracy"} <= set(run.history[-1])


def test_regression_on_diabetes(tmp_path):
    run = train(
        spec("diabetes", {"name": "mlp", "hidden": [16]}, optimizer={"name": "adam", "lr": 0.05}),
        out=tmp_path / "diabetes",
        quiet=True,
    )
    test = run.metrics["test"]
    assert list(test) == ["loss", *DEFAULT_METRICS["regression"]]
    # the loss is on the standardised target (data.target_scale: auto), the metrics in y's units
    std = json.loads((run.path / "target_scale.json").read_text())["std"][0]
    assert test["loss"]["value"] == pytest.approx(test["mse"]["value"] / std**2, rel=1e-4)
    assert test["rmse"]["value"] == pytest.approx(np.sqrt(test["mse"]["value"]))
    assert {"train_rmse", "val_rmse"} <= set(run.history[0])
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]


# ---------------------------------------------------------------------------------------------
# errors, and the out folder


@pytest.mark.parametrize(
    "data, loss, message",
    [
        ("iris", "mse", r"train.loss is mse but iris is a classification task; use cross_entropy"),
        ("iris", "bce", r"bce is for two classes; iris has 3"),
        ("diabetes", "cross_entropy", r"is a regression task; use mse, mae or huber"),
    ],
)
def test_loss_task_mismatch(tmp_path, data, loss, message):
    with pytest.raises(SpecError, match=message):
        train(spec(data, "linear", loss=loss), out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_unknown_metric_is_reported_before_any_data_is_loaded(tmp_path):
    missing = {"source": "csv", "path": str(tmp_path / "missing.csv"), "target": "y"}
    bad = {"data": missing, "model": "linear", "evaluate": {"metrics": ["acuracy"]}}
    with pytest.raises(SpecError, match=r"unknown metric `acuracy`.*did you mean `accuracy`"):
        train(bad, out=tmp_path / "run", quiet=True)
    with pytest.raises(SpecError, match=r"unknown metric `rsme`"):
        train({**bad, "evaluate": {}, "train": {"metrics": ["rsme"]}}, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_unlogged_monitor_is_reported_before_training(tmp_path):
    bad = spec("iris", "linear", schedule={"name": "plateau", "monitor": "val_f1_macro"})
    with pytest.raises(
        SpecError, match=r"train.schedule.monitor: 'val_f1_macro' is not logged.*train.metrics"
    ):
        train(bad, out=tmp_path / "run", quiet=True)
    bad = spec("iris", "linear", early_stopping={"monitor": "train_roc_auc"})
    with pytest.raises(SpecError, match=r"early_stopping.monitor: 'train_roc_auc' is not logged"):
        train(bad, out=tmp_path / "run", quiet=True)


def test_a_spec_error_leaves_an_earlier_run_in_the_folder_alone(tmp_path):
    out = tmp_path / "run"
    train(spec("iris", "linear", epochs=1), out=out, quiet=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SpecError):
        train(spec("iris", "linear", loss="mse"), out=out, quiet=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_diverging_training_is_a_run_error_and_recorded(tmp_path):
    bad = spec("diabetes", "linear", epochs=20, optimizer={"name": "sgd", "lr": 100.0})
    with pytest.raises(RunError, match="training failed: non-finite loss at epoch"):
        train(bad, out=tmp_path / "run", quiet=True)
    rows = history_lines(tmp_path / "run")
    assert rows and not np.isfinite(rows[-1]["train_loss"])


def test_rerunning_into_the_same_folder_overwrites_cleanly(tmp_path):
    out = tmp_path / "run"
    first = train(spec("iris", "linear"), out=out, quiet=True)
    old_weights = load_file(out / "model.safetensors")
    second = train(
        spec("iris", {"name": "mlp", "hidden": [8]}),
        out=out,
        overrides=["train.epochs=2"],
        quiet=True,
    )
    assert first.path == second.path
    assert [r["epoch"] for r in history_lines(out)] == [1, 2]
    weights = load_file(out / "model.safetensors")
    assert set(weights) != set(old_weights) and "net.1.weight" in weights
    assert second.spec.train.epochs == 2 and second.spec.model.name == "mlp"
    values = evaluate(second, split="test", quiet=True)
    assert values["accuracy"] == second.metrics["test"]["accuracy"]["value"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.txt").write_text("keep me")
    with pytest.raises(RunError, match="not empty and does not hold a tunelab run"):
        train(spec("iris", "linear", epochs=1), out=out, quiet=True)
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="is a file"):
        train(spec("iris", "linear", epochs=1), out=tmp_path / "file", quiet=True)


def test_the_run_reproduces_with_the_same_seed(tmp_path):
    a = train(spec("iris", "linear", epochs=2), out=tmp_path / "a", quiet=True)
    b = train(spec("iris", "linear", epochs=2), out=tmp_path / "b", quiet=True)
    wa, wb = load_file(a.path / "model.safetensors"), load_file(b.path / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.metrics == b.metrics
