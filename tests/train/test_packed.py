"""Packed training: K members trained as stacked parameters equal K sequential trainings.

Each packed member has its own seed (initial weights, batch order, dropout masks), learning
rate, weight decay and dropout rate; after 3 epochs its curve and weights equal those of the
same plan trained alone with ``train_fold`` within 1e-5. A member stopped early leaves the
pack and keeps its weights; the others train on.
"""

from __future__ import annotations

import pytest
import torch

from tunelab.spec import load_spec
from tunelab.train import EarlyStopping, Member, prepare, train_fold, train_packed, unpackable

BASE = {
    "name": "packed",
    "seed": 0,
    "data": {"source": "digits"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32, 16], "dropout": 0.2},
    "train": {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.001}},
}


def _spec(optimizer: dict, dropout: float, **train):
    tree = {**BASE, "model": {**BASE["model"], "dropout": dropout}}
    tree["train"] = {**BASE["train"], "optimizer": optimizer, **train}
    return load_spec(tree)


def _members(prep, optimizers, dropouts, **train):
    plans = [
        prepare(_spec(o, d, **train), reuse=prep).plan
        for o, d in zip(optimizers, dropouts, strict=True)
    ]
    return plans, [Member(plan, seed=10 + k) for k, plan in enumerate(plans)]


def _close(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_eight_packed_members_equal_eight_sequential_trainings(kind):
    prep = prepare(load_spec(BASE))
    fold = prep.splits.folds[0]
    lrs = [1e-3, 3e-3, 1e-2, 3e-4, 2e-3, 5e-3, 1e-3, 8e-3]
    wds = [0.0, 1e-4, 1e-3, 0.0, 1e-2, 0.0, 5e-4, 1e-3]
    extra = {"momentum": 0.9, "nesterov": kind == "sgd"} if kind == "sgd" else {}
    optimizers = [
        {"name": kind, "lr": lr, "weight_decay": wd, **extra}
        for lr, wd in zip(lrs, wds, strict=True)
    ]
    dropouts = [0.1, 0.2, 0.3, 0.1, 0.5, 0.2, 0.4, 0.1]
    plans, members = _members(prep, optimizers, dropouts, grad_clip=1.0)
    assert unpackable(plans) is None
    models = train_packed(prep, fold.train, fold.val, members)
    for plan, member, packed in zip(plans, members, models, strict=True):
        alone, history, _ = train_fold(prep, fold.train, fold.val, seed=member.seed, plan=plan)
        assert len(member.history.rows) == len(history.rows) == 3
        for a, b in zip(history.rows, member.history.rows, strict=True):
            for key in ("train_loss", "val_loss", "lr"):
                assert b[key] == pytest.approx(a[key], abs=1e-5), key
            # an accuracy counts argmaxes: outputs 1e-7 apart can flip one sample near a tie
            # (seen: 1 of 1,149 in epoch 3, weights 4e-8 apart), never more
            for key, n in (("train_accuracy", len(fold.train)), ("val_accuracy", len(fold.val))):
                assert abs(b[key] - a[key]) <= 1 / n + 1e-12, key
        assert member.history.best_epoch == history.best_epoch
        assert _close(alone, packed) < 1e-5


def test_a_member_stopped_early_leaves_the_pack_and_keeps_its_weights():
    prep = prepare(load_spec(BASE))
    fold = prep.splits.folds[0]
    optimizers = [{"name": "adam", "lr": lr} for lr in (1e-3, 1e-6, 2e-3)]
    plans, members = _members(prep, optimizers, [0.1, 0.1, 0.1], epochs=4)
    # the tiny learning rate barely moves: early stopping with no patience ends it after epoch 2
    stop = EarlyStopping(monitor="val_loss", greater_is_better=False, patience=0, min_delta=0.5)
    members[1].callbacks = [stop]
    models = train_packed(prep, fold.train, fold.val, members)
    assert len(members[1].history.rows) == 2 and members[1].history.stop_reason
    assert [len(m.history.rows) for m in (members[0], members[2])] == [4, 4]
    alone, history, _ = train_fold(
        prep,
        fold.train,
        fold.val,
        seed=members[1].seed,
        plan=plans[1],
        callbacks=[
            EarlyStopping(monitor="val_loss", greater_is_better=False, patience=0, min_delta=0.5)
        ],
    )
    assert len(history.rows) == 2
    assert _close(alone, models[1]) < 1e-5
    alone, _, _ = train_fold(prep, fold.train, fold.val, seed=members[2].seed, plan=plans[2])
    assert _close(alone, models[2]) < 1e-5


def test_what_cannot_be_packed_is_named():
    prep = prepare(load_spec(BASE))
    plans, _ = _members(prep, [{"name": "adam"}, {"name": "sgd"}], [0.1, 0.1])
    assert "adam" in unpackable(plans) and "sgd" in unpackable(plans)
    plans, _ = _members(prep, [{"name": "adam", "betas": [0.8, 0.9]}, {"name": "adam"}], [0.1, 0.1])
    assert "lr and weight_decay" in unpackable(plans)
    plans, _ = _members(prep, [{"name": "lbfgs"}, {"name": "lbfgs"}], [0.1, 0.1])
    assert "l-bfgs" in unpackable(plans)
    tree = {**BASE, "model": {**BASE["model"], "batch_norm": True}}
    plan = prepare(load_spec(tree), reuse=prep).plan
    assert "batch norm" in unpackable([plan, plan])
