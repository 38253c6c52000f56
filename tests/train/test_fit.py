"""The training loop on tiny in-memory problems."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tunelab
from tunelab.errors import SpecError
from tunelab.train import (
    Callback,
    DataShape,
    EarlyStopping,
    Prune,
    Stop,
    fit,
    predict,
    resolve,
)


def blobs(n=120, seed=0):
    """Three well separated classes in 4 dimensions."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    return centers[y] + 0.5 * torch.randn(n, 4, generator=g), y


def line(n=128, seed=0, features=3):
    """Noise-free ``y = 2 x0 - x1 + 0.5`` (other features irrelevant)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, features, generator=g)
    return X, 2 * X[:, 0] - X[:, 1] + 0.5


def classifier(seed=0, out=3, hidden=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, out))


def regressor(seed=0, features=3):
    torch.manual_seed(seed)
    return nn.Linear(features, 1)


def plan_of(train, *, task, augment=None, **cfg):
    """The plan of a train section for these tensors (on the CPU), with an own augmentation."""
    spec = tunelab.load_spec({"data": "iris", "model": "linear", "train": cfg})
    plan = resolve(spec, DataShape.of(*train, task=task), device="cpu")
    return dataclasses.replace(plan, augment=augment) if augment is not None else plan


def run_fit(model, train, val, *, task="classification", metrics=None, seed=0, **kw):
    cfg_keys = {
        k: kw.pop(k) for k in list(kw) if k not in ("augment", "callbacks", "epochs", "on_epoch")
    }
    if metrics is None:
        metrics = ["accuracy"] if task == "classification" else ["rmse"]
    plan = plan_of(train, task=task, augment=kw.pop("augment", None), metrics=metrics, **cfg_keys)
    return fit(model, train, val, plan, seed=seed, **kw)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


class Recorder(Callback):
    """Keeps each epoch's weights, as EarlyStopping sees them."""

    def __init__(self):
        self.states = {}

    def on_epoch_end(self, epoch, logs, model):
        self.states[epoch] = state(model)


# ---------------------------------------------------------------------------------------------
# learning at all, reproducibly


def test_loss_decreases_on_a_tiny_problem():
    (X, y), (Xv, yv) = blobs(), blobs(seed=1)
    history = run_fit(
        classifier(),
        (X, y),
        (Xv, yv),
        epochs=8,
        batch_size=16,
        optimizer={"name": "adam", "lr": 0.02},
    )
    losses = [r["train_loss"] for r in history.rows]
    assert len(losses) == 8 and history.failure is None
    assert losses[-1] < 0.3 * losses[0]
    assert history.rows[-1]["val_accuracy"] > 0.9
    assert history.best_epoch is not None and history.seconds > 0


def test_same_seed_same_weights_and_history_different_seed_differs():
    data, val = blobs(), blobs(seed=1)
    models = [classifier(), classifier(), classifier()]
    histories = [
        run_fit(m, data, val, seed=s, epochs=3, batch_size=16)
        for m, s in zip(models, (7, 7, 8), strict=True)
    ]
    assert same_state(state(models[0]), state(models[1]))
    assert without_seconds(histories[0].rows) == without_seconds(histories[1].rows)
    assert not same_state(state(models[0]), state(models[2]))
    assert without_seconds(histories[0].rows) != without_seconds(histories[2].rows)


@pytest.mark.parametrize("optimizer, per_epoch", [("gd", 1), ("lbfgs", 1), ("sgd", 4)])
def test_full_batch_optimizers_take_one_step_on_everything(optimizer, per_epoch):
    X, y = line(n=64)
    model = regressor()
    sizes = []
    model.register_forward_pre_hook(
        lambda m, args: sizes.append(len(args[0])) if m.training else None
    )
    steps = []

    class CountSteps(Callback):
        def on_epoch_end(self, epoch, logs, model):
            steps.append(len(sizes))

    run_fit(
        model,
        (X, y),
        line(n=16, seed=1),
        task="regression",
        epochs=3,
        batch_size=16,
        optimizer={"name": optimizer, "max_iter": 4} if optimizer == "lbfgs" else optimizer,
        callbacks=[CountSteps()],
    )
    if optimizer == "lbfgs":  # one step per epoch, which evaluates the full batch a few times
        assert set(sizes) == {64}
    else:
        assert sizes == [64 // per_epoch] * (3 * per_epoch)
        assert steps == [per_epoch, 2 * per_epoch, 3 * per_epoch]


def test_a_lone_last_sample_joins_the_previous_batch():
    # 41 samples in batches of 8: 5 steps, the last with 9 (batch norm cannot train on 1)
    X, y = blobs(n=41)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    sizes = []
    model.register_forward_pre_hook(
        lambda m, args: sizes.append(len(args[0])) if m.training else None
    )
    history = run_fit(model, (X, y), None, epochs=2, batch_size=8)
    assert sorted(sizes) == sorted([8, 8, 8, 8, 9] * 2)
    assert history.failure is None and len(history.rows) == 2
    sizes.clear()
    run_fit(model, blobs(n=42), None, epochs=1, batch_size=8)
    assert sorted(sizes) == [2, 8, 8, 8, 8, 8]


@pytest.mark.parametrize(
    "optimizer, epochs",
    [
        ({"name": "gd", "lr": 0.3}, 40),
        ({"name": "sgd", "lr": 0.05}, 15),
        ({"name": "adam", "lr": 0.1}, 25),
        ({"name": "adamw", "lr": 0.1, "weight_decay": 0.0}, 25),
        ({"name": "rmsprop", "lr": 0.02}, 25),
        ({"name": "adagrad", "lr": 0.5}, 25),
        ({"name": "lbfgs"}, 3),
    ],
)
def test_every_optimizer_fits_a_linear_regression(optimizer, epochs):
    model = regressor()
    X, y = line()
    assert float(F.mse_loss(predict(model, X, batch_size=1000).reshape(-1), y)) > 1.0
    history = run_fit(
        model,
        (X, y),
        line(n=32, seed=1),
        task="regression",
        epochs=epochs,
        batch_size=16,
        optimizer=optimizer,
    )
    assert history.rows[-1]["val_loss"] < 1e-2, history.rows[-1]
    torch.testing.assert_close(
        model.weight.detach(), torch.tensor([[2.0, -1.0, 0.0]]), atol=0.1, rtol=0
    )


# ---------------------------------------------------------------------------------------------
# losses, penalties, clipping, augmentation


@pytest.mark.parametrize(
    "loss, reference",
    [
        ({"name": "cross_entropy"}, lambda out, y: F.cross_entropy(out, y)),
        (
            {"name": "cross_entropy", "label_smoothing": 0.2},
            lambda out, y: F.cross_entropy(out, y, label_smoothing=0.2),
        ),
    ],
)
def test_classification_losses(loss, reference):
    (X, y), (Xv, yv) = blobs(), blobs(seed=1)
    model = classifier()
    history = run_fit(
        model, (X, y), (Xv, yv), epochs=3, loss=loss, optimizer={"name": "adam", "lr": 0.05}
    )
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"]
    expected = reference(predict(model, Xv, batch_size=1000), yv)
    assert history.rows[-1]["val_loss"] == pytest.approx(float(expected), rel=1e-6)


def test_label_smoothing_keeps_the_loss_away_from_zero():
    data, val = blobs(), blobs(seed=1)
    plain = run_fit(
        classifier(),
        data,
        val,
        epochs=15,
        loss="cross_entropy",
        optimizer={"name": "adam", "lr": 0.05},
    )
    smooth = run_fit(
        classifier(),
        data,
        val,
        epochs=15,
        optimizer={"name": "adam", "lr": 0.05},
        loss={"name": "cross_entropy", "label_smoothing": 0.3},
    )
    # with smoothing 0.3 over 3 classes the best possible loss is the targets' entropy, ~0.64
    assert plain.rows[-1]["train_loss"] < 0.1 < 0.6 < smooth.rows[-1]["train_loss"]


@pytest.mark.parametrize(
    "loss, reference",
    [
        ("mse", F.mse_loss),
        ("mae", F.l1_loss),
        ({"name": "huber", "delta": 0.5}, lambda a, b: F.huber_loss(a, b, delta=0.5)),
    ],
)
def test_regression_losses(loss, reference):
    model = regressor()
    Xv, yv = line(n=32, seed=1)
    history = run_fit(
        model,
        line(),
        (Xv, yv),
        task="regression",
        epochs=5,
        loss=loss,
        optimizer={"name": "adam", "lr": 0.05},
        batch_size=16,
    )
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"]
    expected = reference(predict(model, Xv, batch_size=1000).reshape(-1), yv)
    assert history.rows[-1]["val_loss"] == pytest.approx(float(expected), rel=1e-6)


def test_bce_for_binary_classification():
    X, y = blobs()
    keep = y < 2
    X, y = X[keep], y[keep]
    Xv, yv = X[::4], y[::4]
    model = classifier(out=1)
    history = run_fit(
        model,
        (X, y),
        (Xv, yv),
        epochs=5,
        loss={"name": "bce", "pos_weight": 2.0},
        optimizer={"name": "adam", "lr": 0.05},
        batch_size=16,
    )
    logits = predict(model, Xv, batch_size=1000).reshape(-1)
    expected = F.binary_cross_entropy_with_logits(logits, yv.float(), pos_weight=torch.tensor(2.0))
    assert history.rows[-1]["val_loss"] == pytest.approx(float(expected), rel=1e-6)
    assert history.rows[-1]["train_accuracy"] > 0.9
    assert history.rows[-1]["val_accuracy"] == pytest.approx(
        float(((logits > 0).long() == yv).float().mean())
    )


def test_l1_penalty_shrinks_the_weights():
    X, y = line(n=32, features=8)
    y = y + 0.3 * torch.randn(32, generator=torch.Generator().manual_seed(3))
    weights, biases = {}, {}
    for l1 in (0.0, 0.1):
        model = regressor(features=8)
        run_fit(
            model,
            (X, y),
            None,
            task="regression",
            epochs=300,
            l1=l1,
            optimizer={"name": "gd", "lr": 0.1},
        )
        weights[l1], biases[l1] = model.weight.detach().reshape(-1), float(model.bias.detach())
    # least squares fits the noise with the 6 irrelevant features; L1 pushes them to zero
    assert weights[0.1][2:].abs().sum() < 0.5 * weights[0.0][2:].abs().sum()
    assert weights[0.1].abs().sum() < weights[0.0].abs().sum()
    assert weights[0.1][0] < weights[0.0][0] - 0.02  # the relevant weights shrink too
    assert biases[0.1] == pytest.approx(biases[0.0], abs=0.1)  # biases are not penalised


def test_lbfgs_weight_decay_gives_the_ridge_solution():
    # L-BFGS has no weight_decay of its own: (wd / 2) * ||params||^2 enters the loss
    X, y = line(n=64)
    wd = 0.5
    model = regressor()
    run_fit(
        model,
        (X, y),
        None,
        task="regression",
        epochs=5,
        optimizer={"name": "lbfgs", "weight_decay": wd},
    )
    A = torch.cat([X, torch.ones(64, 1)], dim=1).double()  # the bias is a parameter too
    ridge = torch.linalg.solve(
        2 / 64 * A.T @ A + wd * torch.eye(4, dtype=torch.float64), 2 / 64 * A.T @ y.double()
    )
    fitted = torch.cat([model.weight.detach().reshape(-1), model.bias.detach()]).double()
    torch.testing.assert_close(fitted, ridge, atol=1e-4, rtol=0)
    assert fitted[0] < 1.9  # visibly shrunk from the true slope 2


def test_grad_clip_bounds_each_step():
    X, y = line()
    model = regressor()
    before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    history = run_fit(
        model,
        (X, 100 * y),
        None,
        task="regression",
        epochs=5,
        grad_clip=0.01,
        optimizer={"name": "gd", "lr": 1.0},
    )
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert history.failure is None
    assert 0 < (after - before).norm() <= 5 * 0.01 + 1e-6


def test_augmentation_is_applied_to_training_batches_only():
    (X, y), (Xv, yv) = blobs(), blobs(seed=1)
    seen = []

    def shift(xb, generator):
        assert isinstance(generator, torch.Generator)
        seen.append(len(xb))
        return xb + 3.0

    model = classifier()
    augmented = run_fit(model, (X, y), (Xv, yv), epochs=2, batch_size=40, augment=shift)
    assert seen == [40] * 6
    last = augmented.rows[-1]
    assert last["val_loss"] == pytest.approx(
        float(F.cross_entropy(predict(model, Xv, batch_size=1000), yv)), rel=1e-6
    )
    plain = run_fit(classifier(), (X, y), (Xv, yv), epochs=2, batch_size=40)
    assert plain.rows[0]["train_loss"] != augmented.rows[0]["train_loss"]


# ---------------------------------------------------------------------------------------------
# decisions: early stopping, pruning; failures


def flipped_val():
    """Validation labels that disagree with training: val loss rises as training succeeds."""
    Xv, yv = blobs(seed=1)
    return Xv, (yv + 1) % 3


def test_early_stopping_stops_with_a_reason_and_restores_the_best_weights():
    model, recorder = classifier(), Recorder()
    stopper = EarlyStopping(monitor="val_loss", greater_is_better=False, patience=2)
    history = run_fit(
        model,
        blobs(),
        flipped_val(),
        epochs=20,
        optimizer={"name": "adam", "lr": 0.05},
        callbacks=[recorder, stopper],
    )
    assert 2 < len(history.rows) < 20
    assert history.stop_reason.startswith("early stopping: val_loss did not improve for 2 epochs")
    assert not history.pruned
    best = min(history.rows, key=lambda r: r["val_loss"])["epoch"]
    assert history.best_epoch == stopper.best_epoch == best
    assert len(history.rows) == best + 2
    assert same_state(state(model), recorder.states[best])
    assert not same_state(state(model), recorder.states[len(history.rows)])


def test_early_stopping_without_restore_keeps_the_last_weights():
    model, recorder = classifier(), Recorder()
    stopper = EarlyStopping(
        monitor="val_loss", greater_is_better=False, patience=1, restore_best=False
    )
    history = run_fit(
        model,
        blobs(),
        flipped_val(),
        epochs=20,
        optimizer={"name": "adam", "lr": 0.05},
        callbacks=[recorder, stopper],
    )
    assert same_state(state(model), recorder.states[len(history.rows)])


def test_early_stopping_on_a_metric_to_maximise_and_its_state():
    stopper = EarlyStopping(
        monitor="val_accuracy", greater_is_better=True, patience=2, min_delta=0.05
    )
    model = nn.Linear(1, 1)
    decisions = [
        stopper.on_epoch_end(e, {"val_accuracy": v}, model)
        for e, v in enumerate([0.5, 0.6, 0.63, 0.64], start=1)
    ]
    assert decisions[:3] == [None, None, None]
    assert isinstance(decisions[3], Stop) and "best 0.6 at epoch 2" in decisions[3].reason
    clone = EarlyStopping(monitor="val_accuracy", greater_is_better=True, patience=2)
    clone.load_state_dict(stopper.state_dict())
    assert (clone.best, clone.best_epoch, clone.bad_epochs) == (0.6, 2, 2)


def test_early_stopping_on_an_unlogged_value_lists_what_is_logged():
    stopper = EarlyStopping(monitor="val_acuracy", greater_is_better=True, patience=2)
    with pytest.raises(
        SpecError, match=r"'val_acuracy' is not logged.*did you mean `val_accuracy`.*train_loss"
    ):
        run_fit(classifier(), blobs(), blobs(seed=1), epochs=2, callbacks=[stopper])


def test_a_callback_returning_prune_ends_training_as_pruned():
    class PruneAtTwo(Callback):
        def __init__(self):
            self.ended = False

        def on_epoch_end(self, epoch, logs, model):
            return Prune(f"pruned at epoch {epoch}") if epoch == 2 else None

        def on_fit_end(self, model):
            self.ended = True

    cb = PruneAtTwo()
    history = run_fit(classifier(), blobs(), blobs(seed=1), epochs=10, callbacks=[cb])
    assert history.pruned and history.stop_reason == "pruned at epoch 2"
    assert len(history.rows) == 2 and cb.ended and history.failure is None


def test_a_callback_returning_stop_is_not_a_prune():
    class StopAtOne(Callback):
        def on_epoch_end(self, epoch, logs, model):
            return Stop("enough")

    history = run_fit(classifier(), blobs(), blobs(seed=1), epochs=10, callbacks=[StopAtOne()])
    assert not history.pruned and history.stop_reason == "enough" and len(history.rows) == 1


def test_huge_learning_rate_is_a_recorded_failure():
    X, y = line()
    rows = []
    history = run_fit(
        regressor(),
        (X, 1e3 * y),
        line(n=16, seed=1),
        task="regression",
        epochs=50,
        batch_size=16,
        optimizer={"name": "sgd", "lr": 1e4},
        on_epoch=rows.append,
    )
    assert history.failure is not None and "non-finite loss at epoch" in history.failure
    epoch = int(history.failure.split("epoch ")[1].split(",")[0])
    assert len(history.rows) == epoch < 50
    assert not math.isfinite(history.rows[-1]["train_loss"])
    assert rows == history.rows  # the failed epoch is reported too


class NaNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) * float("nan")


def test_a_model_producing_nan_is_a_recorded_failure():
    history = run_fit(NaNNet(), blobs(), blobs(seed=1), epochs=5, batch_size=30)
    assert history.failure == "non-finite loss at epoch 1, step 1"
    assert len(history.rows) == 1 and history.best_epoch is None


def test_a_diverged_epoch_stops_within_the_epoch():
    batches = []

    def count(xb, generator):  # augmentation runs once per training batch
        batches.append(len(xb))
        return xb

    history = run_fit(NaNNet(), blobs(n=300), blobs(seed=1), epochs=3, batch_size=3, augment=count)
    assert history.failure == "non-finite loss at epoch 1, step 1"
    assert len(batches) < 100  # 100 steps in the epoch; it stopped at the first check (10)
    assert len(history.rows) == 1


# ---------------------------------------------------------------------------------------------
# what a history row holds


def test_classification_rows():
    X, y = blobs()
    history = run_fit(
        classifier(),
        (X, y),
        blobs(seed=1),
        epochs=2,
        batch_size=32,
        metrics=["accuracy", "f1_macro"],
    )
    for i, row in enumerate(history.rows, start=1):
        assert set(row) == {
            "epoch",
            "train_loss",
            "val_loss",
            "lr",
            "seconds",
            "train_accuracy",
            "val_accuracy",
            "val_f1_macro",
        }
        assert row["epoch"] == i and 0 <= row["train_accuracy"] <= 1 and row["seconds"] >= 0
        assert all(isinstance(v, (int, float)) for v in row.values())


def test_regression_rows_and_train_rmse_is_the_root_of_the_mse_loss():
    history = run_fit(
        regressor(),
        line(),
        line(n=32, seed=1),
        task="regression",
        epochs=3,
        batch_size=16,
        metrics=["rmse", "mae", "r2"],
    )
    for row in history.rows:
        assert set(row) == {
            "epoch",
            "train_loss",
            "val_loss",
            "lr",
            "seconds",
            "train_rmse",
            "train_mae",
            "val_rmse",
            "val_mae",
            "val_r2",
        }
        assert row["train_rmse"] == pytest.approx(math.sqrt(row["train_loss"]), rel=1e-5)
        assert row["val_rmse"] == pytest.approx(math.sqrt(row["val_loss"]), rel=1e-5)


def test_without_validation_rows_have_train_values_only():
    history = run_fit(regressor(), line(), None, task="regression", epochs=3, batch_size=16)
    assert all("val_loss" not in r and "train_rmse" in r for r in history.rows)
    # no val part (a refit): nothing to choose a best epoch by; the lowest train loss is not one
    assert history.best_epoch is None


def test_rows_log_the_scheduled_lr_and_epochs_overrides_the_spec():
    history = run_fit(
        regressor(),
        line(n=64),
        None,
        task="regression",
        epochs=4,
        batch_size=16,
        optimizer={"name": "sgd", "lr": 0.1},
        schedule={"name": "step", "step_size": 1, "gamma": 0.5},
    )
    assert [r["lr"] for r in history.rows] == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_plateau_schedule_without_validation_follows_the_training_loss():
    # a refit on all non-test data has no val part; the plateau must not crash on val_loss
    history = run_fit(
        regressor(),
        line(n=64),
        None,
        task="regression",
        epochs=4,
        batch_size=16,
        schedule={"name": "plateau", "patience": 0},
    )
    assert len(history.rows) == 4 and history.failure is None


def test_fit_does_not_touch_the_callers_model_copy():
    model = classifier()
    original = copy.deepcopy(model)
    run_fit(model, blobs(), None, epochs=1)
    assert not same_state(state(model), state(original))
