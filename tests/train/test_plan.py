"""Resolve once, at the door: every check before the first epoch, and a trial's plan reuses
the study's parts whose spec sections did not change."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
import torch
from torch import nn

import tunelab
from tunelab.errors import SpecError, TunelabError
from tunelab.evaluate import METRICS, register_metric
from tunelab.train import DataShape, EarlyStopping, fit, resolve


def blobs(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    return torch.randn(n, 4, generator=g) + 2 * nn.functional.one_hot(y, 4).float(), y


def spec_of(**train):
    return tunelab.load_spec({"data": "iris", "model": "linear", "train": train})


def plan_of(data, *, task="classification", **train):
    return resolve(spec_of(**train), DataShape.of(*data, task=task), device="cpu")


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_plateau_on_an_unlogged_metric_fails_before_any_training_naming_the_key():
    schedule = {"name": "plateau", "monitor": "val_f1_macro"}
    with pytest.raises(SpecError, match=r"train.schedule.monitor: 'val_f1_macro' is not logged"):
        plan_of(blobs(), schedule=schedule)
    # logged, it is watched: with a validation part and (as train_) without one
    plan = plan_of(blobs(), schedule=schedule, metrics=["accuracy", "f1_macro"])
    assert plan.plateau_watch(has_val=True) == ("val_f1_macro", True)
    assert plan.plateau_watch(has_val=False) is None  # f1_macro has no device form
    plan = plan_of(blobs(), schedule={"name": "plateau", "monitor": "val_accuracy"})
    assert plan.plateau_watch(has_val=False) == ("train_accuracy", True)


def test_an_early_stopping_callback_on_an_unlogged_value_fails_before_epoch_one():
    model, data = nn.Linear(4, 3), blobs()
    before = weights(model)
    stopper = EarlyStopping(monitor="val_f1_macro", greater_is_better=True, patience=2)
    with pytest.raises(SpecError, match=r"'val_f1_macro' is not logged.*val_accuracy"):
        fit(model, data, blobs(seed=1), plan_of(data, epochs=2), seed=0, callbacks=[stopper])
    assert all(torch.equal(before[k], v) for k, v in weights(model).items())  # not one step


def test_evaluate_metrics_of_the_other_task_fail_before_training(tmp_path):
    bad = {"data": "iris", "model": "linear", "evaluate": {"metrics": ["accuracy", "r2"]}}
    with pytest.raises(SpecError, match=r"evaluate.metrics: 'r2' is a regression metric"):
        tunelab.train(bad, out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_a_trial_plan_reuses_the_unchanged_parts_and_checks_the_changed_ones():
    data = DataShape("classification", "blobs", (4,), 3, 3)
    study = resolve(spec_of(augment=["noise"], metrics=["accuracy"]), data, device="cpu")
    trial = resolve(
        spec_of(augment=["noise"], metrics=["accuracy"], optimizer={"name": "sgd", "lr": 0.3}),
        data,
        device="cpu",
        reuse=study,
    )
    assert trial.augment is study.augment and trial.loss is study.loss  # not built again
    assert trial.lr == 0.3 and study.lr == 1e-3
    with pytest.raises(SpecError, match="bce is for two classes"):
        resolve(spec_of(augment=["noise"], loss="bce"), data, device="cpu", reuse=study)
    other = DataShape("classification", "images", (1, 4, 4), 3, 3)
    fresh = resolve(spec_of(augment=["noise"], metrics=["accuracy"]), other, reuse=study)
    assert fresh.augment is not study.augment  # another shape: nothing is taken over


def test_train_side_metrics_come_from_the_registered_device_forms():
    def neg_mae(y_true, y_pred):
        return -float(abs(y_true - y_pred).mean())

    with pytest.raises(TunelabError, match="needs both batch= and finish="):
        register_metric("neg_mae", neg_mae, task="regression", greater_is_better=True, batch=abs)
    register_metric(
        "neg_mae",
        neg_mae,
        task="regression",
        greater_is_better=True,
        batch=lambda pred, y: -(pred - y).abs().sum(),
        finish=lambda total, count: total / count,
    )
    try:
        g = torch.Generator().manual_seed(0)
        X = torch.randn(64, 3, generator=g)
        data = (X, X[:, 0] * 2.0)
        plan = plan_of(data, task="regression", epochs=2, metrics=["neg_mae", "mae"])
        assert [m.name for m in plan.device_metrics] == ["neg_mae", "mae"]
        torch.manual_seed(0)
        history = fit(nn.Linear(3, 1), data, None, plan, seed=0)
        for row in history.rows:
            assert row["train_neg_mae"] == pytest.approx(-row["train_mae"])
    finally:
        del METRICS["neg_mae"]


def test_the_plan_takes_an_own_augmentation_and_evaluate_is_evaluate_run():
    data = blobs()
    seen = []
    plan = dataclasses.replace(plan_of(data, epochs=1), augment=lambda x, g: seen.append(1) or x)
    fit(nn.Linear(4, 3), data, None, plan, seed=0)
    assert seen
    package = importlib.import_module("tunelab.train")  # tunelab.train is also the function
    assert package.evaluate is package.evaluate_run
