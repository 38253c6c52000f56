"""Optimizers by name and the closed-form learning-rate schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import tunelab
from tunelab.train import Schedule, build_optimizer

CPU = torch.device("cpu")


def train_spec(**train):
    return tunelab.load_spec({"data": "iris", "model": "linear", "train": train}).train


def schedule(spec, *, steps_per_epoch=10, epochs=10, lr=1.0, maximize=False):
    return Schedule(
        train_spec(schedule=spec).schedule,
        base_lrs=[lr],
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        maximize=maximize,
    )


def factors(sched: Schedule) -> list[float]:
    return [sched.factor(s) for s in range(sched.total)]


# ---------------------------------------------------------------------------------------------
# optimizers


@pytest.mark.parametrize(
    "spec, cls, expected",
    [
        ({"name": "gd", "lr": 0.3}, torch.optim.SGD, {"lr": 0.3, "momentum": 0}),
        (
            {"name": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3},
            torch.optim.SGD,
            {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3},
        ),
        (
            {"name": "adam", "lr": 2e-3, "betas": [0.8, 0.99], "eps": 1e-6, "amsgrad": True},
            torch.optim.Adam,
            {"lr": 2e-3, "betas": (0.8, 0.99), "eps": 1e-6, "amsgrad": True},
        ),
        (
            {"name": "adamw", "weight_decay": 0.05},
            torch.optim.AdamW,
            {"lr": 1e-3, "weight_decay": 0.05},
        ),
        (
            {"name": "rmsprop", "lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True},
            torch.optim.RMSprop,
            {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True},
        ),
        (
            {"name": "adagrad", "lr_decay": 0.1, "initial_accumulator_value": 0.2},
            torch.optim.Adagrad,
            {"lr": 1e-2, "lr_decay": 0.1, "initial_accumulator_value": 0.2},
        ),
        (
            {"name": "lbfgs", "lr": 0.5, "max_iter": 7, "history_size": 11},
            torch.optim.LBFGS,
            {"lr": 0.5, "max_iter": 7, "history_size": 11, "line_search_fn": "strong_wolfe"},
        ),
        (
            {"name": "lbfgs", "line_search": "none"},
            torch.optim.LBFGS,
            {"line_search_fn": None},
        ),
    ],
)
def test_every_optimizer_builds_the_right_torch_class(spec, cls, expected):
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = build_optimizer(train_spec(optimizer=spec).optimizer, params, device=CPU)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["params"] == params
    for key, value in expected.items():
        assert group[key] == pytest.approx(value), key


def test_adam_is_the_default_optimizer():
    opt = build_optimizer(train_spec().optimizer, [torch.nn.Parameter(torch.zeros(1))], device=CPU)
    assert type(opt) is torch.optim.Adam and opt.param_groups[0]["lr"] == 1e-3


# ---------------------------------------------------------------------------------------------
# schedules


def test_constant_schedule():
    sched = schedule("constant")
    assert factors(sched) == [1.0] * 100


def test_linear_schedule_ends_at_final_factor():
    f = factors(schedule({"name": "linear", "final_factor": 0.1}))
    assert f[0] == 1.0 and f[-1] == pytest.approx(0.1)
    assert (np.diff(f) < 0).all()
    assert f[len(f) // 2] == pytest.approx(1 - 0.9 * 50 / 99)


def test_step_schedule_decays_every_step_size_epochs():
    sched = schedule({"name": "step", "step_size": 3, "gamma": 0.5})
    per_epoch = [sched.factor(e * 10) for e in range(10)]
    assert per_epoch == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125])
    # constant within an epoch
    assert {sched.factor(30 + i) for i in range(10)} == {0.5}


def test_exponential_schedule_is_gamma_to_the_epoch():
    sched = schedule({"name": "exponential", "gamma": 0.9})
    assert [sched.factor(e * 10 + 9) for e in range(10)] == pytest.approx(
        [0.9**e for e in range(10)]
    )


def test_cosine_schedule_midpoint_and_end():
    f = factors(schedule({"name": "cosine", "min_factor": 0.2}, steps_per_epoch=1, epochs=101))
    assert f[0] == pytest.approx(1.0)
    assert f[50] == pytest.approx(0.2 + 0.8 * 0.5)
    assert f[-1] == pytest.approx(0.2)
    zero_floor = factors(schedule("cosine", steps_per_epoch=1, epochs=101))
    assert zero_floor[50] == pytest.approx(0.5) and zero_floor[-1] == pytest.approx(0.0, abs=1e-12)


def test_onecycle_rises_to_one_at_pct_start_then_falls_to_the_floor():
    spec = {"name": "onecycle", "pct_start": 0.3, "div_factor": 25, "final_div_factor": 1e4}
    f = factors(schedule(spec))
    peak = max(range(len(f)), key=f.__getitem__)
    assert f[0] == pytest.approx(1 / 25)
    assert f[peak] == pytest.approx(1.0)
    assert abs(peak - 0.3 * len(f)) <= 1
    assert (np.diff(f[: peak + 1]) >= 0).all()
    assert (np.diff(f[peak:]) <= 0).all()
    assert f[-1] == pytest.approx(1 / (25 * 1e4))


def test_onecycle_matches_torch_onecycle_lr():
    # pct_start * total is a whole step here, so torch's peak and ours fall on the same step
    total = 50
    f = factors(schedule({"name": "onecycle", "pct_start": 0.3}, steps_per_epoch=5, epochs=10))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1.0, total_steps=total, pct_start=0.3, anneal_strategy="cos"
    )
    ref = []
    for _ in range(total):
        ref.append(opt.param_groups[0]["lr"])
        opt.step()
        ref_sched.step()
    assert f == pytest.approx(ref, abs=1e-6)


def test_warmup_starts_low_and_reaches_one_after_warmup_epochs():
    sched = schedule({"name": "constant", "warmup_epochs": 2, "warmup_start": 0.1})
    f = factors(sched)
    assert f[0] == pytest.approx(0.1)
    assert f[10] == pytest.approx(0.1 + 0.9 * 10 / 20)
    assert (np.diff(f[:21]) > 0).all()
    assert f[20:] == [1.0] * 80


def test_warmup_then_cosine_decays_over_the_rest():
    sched = schedule({"name": "cosine", "warmup_epochs": 1, "warmup_start": 0.0})
    f = factors(sched)
    assert f[0] == 0.0 and f[10] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(0.0, abs=1e-12)


def test_fractional_warmup_epochs():
    sched = schedule({"name": "constant", "warmup_epochs": 0.5}, steps_per_epoch=10)
    assert sched.warmup == 5 and sched.factor(5) == 1.0 and sched.factor(4) < 1.0


def test_apply_sets_every_group_and_returns_the_first_lr():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.01}])
    sched = Schedule(
        train_spec(schedule={"name": "linear", "final_factor": 0.5}).schedule,
        base_lrs=[0.1, 0.01],
        steps_per_epoch=1,
        epochs=3,
    )
    assert sched.apply(opt, 2) == pytest.approx(0.05)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.005])


def test_plateau_reduces_after_patience_epochs_without_improvement():
    sched = schedule({"name": "plateau", "patience": 2, "factor": 0.5})
    losses = [1.0, 0.9, 0.95, 0.92]  # two bad epochs: not yet
    for v in losses:
        sched.epoch_end(v)
    assert sched.factor(0) == 1.0
    sched.epoch_end(0.91)  # third bad epoch
    assert sched.factor(0) == 0.5 and sched.factor(99) == 0.5
    for v in (0.93, 0.94, 0.95):
        sched.epoch_end(v)
    assert sched.factor(0) == 0.25
    sched.epoch_end(0.5)  # improvement resets the count
    for v in (0.6, 0.6):
        sched.epoch_end(v)
    assert sched.factor(0) == 0.25


def test_plateau_in_max_mode_and_min_factor():
    sched = schedule(
        {
            "name": "plateau",
            "monitor": "val_accuracy",
            "patience": 0,
            "factor": 0.1,
            "min_factor": 0.05,
        },
        maximize=True,
    )
    sched.epoch_end(0.5)
    sched.epoch_end(0.6)
    assert sched.plateau == 1.0
    sched.epoch_end(0.55)
    assert sched.plateau == pytest.approx(0.1)
    sched.epoch_end(0.55)
    assert sched.plateau == pytest.approx(0.05)  # floored at min_factor


def test_plateau_state_dict_round_trip():
    spec = {"name": "plateau", "patience": 1, "factor": 0.5}
    a = schedule(spec)
    for v in (1.0, 1.1, 1.2, 0.8, 0.9):
        a.epoch_end(v)
    b = schedule(spec)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() == {"plateau": 0.5, "best": 0.8, "bad": 1}
    for s in (a, b):
        s.epoch_end(0.85)
    assert a.factor(0) == b.factor(0) == 0.25


def test_non_plateau_schedules_ignore_epoch_end():
    sched = schedule("cosine")
    for _ in range(20):
        sched.epoch_end(1.0)
    assert sched.plateau == 1.0


def test_factor_is_pure_in_the_step():
    sched = schedule({"name": "onecycle"}, steps_per_epoch=7, epochs=3)
    assert factors(sched) == factors(sched)
    assert math.isclose(
        sched.factor(5), schedule("onecycle", steps_per_epoch=7, epochs=3).factor(5)
    )
