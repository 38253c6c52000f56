"""Regression targets standardised on the training part (``data.target_scale``).

The model trains on the standardised target and carries the inverse as its last layer, so
predictions, ``predictions.npz``, metrics, ``Run.predict`` and ``evaluate_run`` are all in the
target's own units; ``target_scale: none`` keeps the raw target and the old files.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error

import tunelab
from tunelab.data import fit_target_scale, load_dataset
from tunelab.runs import load_weights
from tunelab.spec import load_spec
from tunelab.train import Console, Member, prepare, train_fold, train_packed

QUIET = {"console": Console(quiet=True, file=io.StringIO())}

# y = 1000 x + 5000 + noise: raw targets in the thousands, far from a fresh model's outputs
BIG = {
    "name": "big_target",
    "seed": 0,
    "data": {"source": "linear", "w": 1000.0, "b": 5000.0, "noise": 10.0, "n": 300},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "linear"},
    "train": {"epochs": 40, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.05}},
}


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    return tunelab.train(BIG, out=tmp_path_factory.mktemp("big") / "run", **QUIET)


def _data(run):
    return load_dataset(run.spec.data, seed=run.spec.seed)


def test_a_big_target_is_learnt_and_its_metrics_are_in_its_own_units(big_run):
    ds, splits = _data(big_run), big_run.splits
    train = np.array(splits["folds"][0]["train"]["indices"])
    scale = json.loads((big_run.path / "target_scale.json").read_text())
    assert scale["mean"][0] == pytest.approx(ds.y[train].mean(), rel=1e-5)
    assert scale["std"][0] == pytest.approx(ds.y[train].std(), rel=1e-5)
    assert "standardised" in scale["note"]
    saved = big_run.predictions()
    assert np.array_equal(saved["test_y"], ds.y[saved["test_index"]])  # the raw targets
    mae = big_run.metrics["test"]["mae"]["value"]
    assert mae == pytest.approx(mean_absolute_error(saved["test_y"], saved["test_score"]))
    assert 2.0 < mae < 30.0  # noise 10: MAE about 8 in y's units (0.01 on the scaled one)
    ci = big_run.metrics["test"]["mae"]["ci"]
    assert ci["low"] < mae < ci["high"] and ci["high"] < 30.0
    # the per-epoch loss is on the standardised scale, the metrics in y's units
    last = big_run.history[-1]
    assert last["val_loss"] == pytest.approx(last["val_rmse"] ** 2 / scale["std"][0] ** 2, rel=1e-3)
    assert big_run.metrics["test"]["loss"]["value"] < 0.01


def test_predict_and_evaluate_give_the_saved_predictions_in_original_units(big_run):
    saved = big_run.predictions()
    X = _data(big_run).X
    got = big_run.predict(X[saved["test_index"]])
    assert np.array_equal(got.scores, saved["test_score"])
    assert abs(float(np.mean(got.scores)) - 5000.0) < 300.0
    weights = load_weights(big_run.path / "model.safetensors")
    assert {"unscale.mean", "unscale.std"} <= set(weights)
    before = big_run.metrics["val"]
    again = tunelab.evaluate_run(big_run, split="val", quiet=True)
    assert again["mae"] == pytest.approx(before["mae"]["value"], rel=1e-6)
    assert again["loss"] == pytest.approx(before["loss"]["value"], rel=1e-5)  # the scaled loss


def test_target_scale_none_trains_on_the_raw_target_as_before(tmp_path):
    tree = {**BIG, "data": {**BIG["data"], "target_scale": "none"}, "train": {**BIG["train"]}}
    tree["train"]["epochs"] = 3
    run = tunelab.train(tree, out=tmp_path / "raw", **QUIET)
    assert not (run.path / "target_scale.json").exists()
    assert not any(k.startswith("unscale") for k in load_weights(run.path / "model.safetensors"))
    last = run.history[-1]
    assert last["val_loss"] == pytest.approx(last["val_rmse"] ** 2, rel=1e-4)  # raw units
    # three epochs of Adam from near zero towards 5000: far from the target, and said so
    diagnosis = json.loads((run.path / "diagnosis.json").read_text())
    assert diagnosis["underfitting"] and diagnosis["verdict"].startswith("underfitting")


def test_classification_is_never_scaled(tmp_path):
    assert fit_target_scale(np.array([0, 1, 1]), "auto", task="classification") is None
    assert fit_target_scale(np.array([1.0, 3.0]), "none", task="regression") is None
    scale = fit_target_scale(np.array([[1.0, 5.0], [3.0, 5.0]]), "auto", task="regression")
    assert scale.mean.tolist() == [2.0, 5.0] and scale.std.tolist() == [1.0, 1.0]  # constant: 1
    tree = {
        "name": "iris",
        "data": {"source": "iris"},
        "model": {"name": "linear"},
        "train": {"epochs": 2},
    }
    run = tunelab.train(tree, out=tmp_path / "iris", **QUIET)
    assert not (run.path / "target_scale.json").exists()


def test_each_cv_fold_and_the_refit_fit_their_own_scale(tmp_path):
    tree = {**BIG, "split": {"test": 0.2, "cv": 3}, "train": {**BIG["train"], "epochs": 2}}
    prep = prepare(load_spec(tree))
    stds = []
    for fold in prep.splits.folds:
        model, _, _ = train_fold(prep, fold.train, fold.val, seed=0, epochs=1)
        assert float(model.unscale.mean) == pytest.approx(prep.ds.y[fold.train].mean(), rel=1e-5)
        stds.append(float(model.unscale.std))
    assert len(set(stds)) == 3
    run = tunelab.train(tree, out=tmp_path / "cv", **QUIET)
    scale = json.loads((run.path / "target_scale.json").read_text())
    dev = np.array(sorted(set(range(len(prep.ds.y))) - set(prep.splits.test.tolist())))
    assert scale["mean"][0] == pytest.approx(prep.ds.y[dev].mean(), rel=1e-5)


def test_packed_members_train_on_the_scaled_target_like_fit(tmp_path):
    tree = {**BIG, "model": {"name": "mlp", "hidden": [8]}, "train": {**BIG["train"]}}
    tree["train"]["epochs"] = 2
    prep = prepare(load_spec(tree))
    fold = prep.splits.folds[0]
    members = [Member(prep.plan, seed=3), Member(prep.plan, seed=4)]
    models = train_packed(prep, fold.train, fold.val, members)
    for member, packed in zip(members, models, strict=True):
        alone, history, _ = train_fold(prep, fold.train, fold.val, seed=member.seed)
        assert torch.equal(packed.unscale.mean, alone.unscale.mean)
        for a, b in zip(history.rows, member.history.rows, strict=True):
            assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
            assert b["val_rmse"] == pytest.approx(a["val_rmse"], rel=1e-4)
        assert history.rows[-1]["val_loss"] < 5.0  # the standardised scale, not 1e7


@pytest.mark.slow
def test_two_processes_train_a_scaled_target_as_one_does(cli, tmp_path):
    spec = (
        "name: ddp_reg\nseed: 1\ndata: {source: diabetes}\nsplit: {test: 0.2, val: 0.2}\n"
        "model: {name: mlp, hidden: [16]}\n"
        "train: {epochs: 2, batch_size: 63, optimizer: {name: adam, lr: 0.01}}\n"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    one = cli("train", "spec.yaml", "--out", "one", "-q")
    assert one.returncode == 0, one.stderr
    two = cli("train", "spec.yaml", "--out", "two", "--nproc", "2", "-q")
    assert two.returncode == 0, two.stdout + two.stderr
    a, b = (
        load_weights(tmp_path / "one/model.safetensors"),
        load_weights(tmp_path / "two/model.safetensors"),
    )
    assert a.keys() == b.keys() and "unscale.mean" in a
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    m1 = json.loads((tmp_path / "one/metrics.json").read_text())["test"]
    m2 = json.loads((tmp_path / "two/metrics.json").read_text())["test"]
    assert m2["mae"]["value"] == pytest.approx(m1["mae"]["value"], rel=1e-4)
    assert (tmp_path / "two/target_scale.json").is_file()
