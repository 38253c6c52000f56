"""Optimizers by name and learning-rate schedules as closed-form factors of the step."""

from __future__ import annotations

import math

import torch

from tunelab.errors import SpecError, did_you_mean
from tunelab.spec import (
    GD,
    LBFGS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    CosineSchedule,
    ExponentialSchedule,
    LinearSchedule,
    OneCycleSchedule,
    OptimizerSpec,
    PlateauSchedule,
    RMSprop,
    ScheduleSpec,
    StepSchedule,
)

__all__ = ["build_optimizer", "Schedule"]


def build_optimizer(spec: OptimizerSpec, params, *, device: torch.device) -> torch.optim.Optimizer:
    """The torch optimizer a spec names; fused kernels on CUDA where torch has them."""
    params = list(params)
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if isinstance(spec, GD):
        return torch.optim.SGD(params, lr=spec.lr, weight_decay=spec.weight_decay, **fast)
    if isinstance(spec, SGD):
        return torch.optim.SGD(
            params,
            lr=spec.lr,
            momentum=spec.momentum,
            nesterov=spec.nesterov,
            dampening=spec.dampening,
            weight_decay=spec.weight_decay,
            **fast,
        )
    if isinstance(spec, (Adam, AdamW)):
        cls = torch.optim.Adam if isinstance(spec, Adam) else torch.optim.AdamW
        return cls(
            params,
            lr=spec.lr,
            betas=tuple(spec.betas),
            eps=spec.eps,
            weight_decay=spec.weight_decay,
            amsgrad=spec.amsgrad,
            **fast,
        )
    if isinstance(spec, RMSprop):
        return torch.optim.RMSprop(
            params,
            lr=spec.lr,
            alpha=spec.alpha,
            eps=spec.eps,
            momentum=spec.momentum,
            centered=spec.centered,
            weight_decay=spec.weight_decay,
            foreach=True,
        )
    if isinstance(spec, Adagrad):
        return torch.optim.Adagrad(
            params,
            lr=spec.lr,
            lr_decay=spec.lr_decay,
            eps=spec.eps,
            foreach=True,
            initial_accumulator_value=spec.initial_accumulator_value,
            weight_decay=spec.weight_decay,
        )
    if isinstance(spec, LBFGS):
        return torch.optim.LBFGS(
            params,
            lr=spec.lr,
            max_iter=spec.max_iter,
            history_size=spec.history_size,
            tolerance_grad=spec.tolerance_grad,
            tolerance_change=spec.tolerance_change,
            line_search_fn=None if spec.line_search == "none" else spec.line_search,
        )
    raise AssertionError(f"unhandled optimizer {spec!r}")  # the spec union is exhaustive


class Schedule:
    """lr(step) = base_lr * warm-up(step) * shape(step) * plateau factor.

    Every shape is a pure function of the optimizer step, so a schedule needs no state except
    the plateau's, and resuming is exact. ``step`` and ``exponential`` change once per epoch.
    """

    def __init__(
        self, spec: ScheduleSpec, *, base_lrs: list[float], steps_per_epoch: int, epochs: int
    ):
        self.spec = spec
        self.base_lrs = list(base_lrs)
        self.steps_per_epoch = steps_per_epoch
        self.total = max(1, steps_per_epoch * epochs)
        self.warmup = min(self.total, round(spec.warmup_epochs * steps_per_epoch))
        self.plateau = 1.0
        self._best: float | None = None
        self._bad = 0

    def factor(self, step: int) -> float:
        """The multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
        s = self.spec
        warm = 1.0
        if step < self.warmup:
            warm = s.warmup_start + (1.0 - s.warmup_start) * step / self.warmup
        # progress through the part of training after warm-up, in [0, 1]
        t = (
            (step - self.warmup) / max(1, self.total - self.warmup - 1)
            if step >= self.warmup
            else 0.0
        )
        t = min(max(t, 0.0), 1.0)
        epoch = step // self.steps_per_epoch
        if isinstance(s, LinearSchedule):
            shape = 1.0 + (s.final_factor - 1.0) * t
        elif isinstance(s, StepSchedule):
            shape = s.gamma ** (epoch // s.step_size)
        elif isinstance(s, ExponentialSchedule):
            shape = s.gamma**epoch
        elif isinstance(s, CosineSchedule):
            shape = s.min_factor + (1.0 - s.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
        elif isinstance(s, OneCycleSchedule):
            shape = self._onecycle(step)
        else:  # constant, plateau
            shape = 1.0
        return warm * shape * self.plateau

    def _onecycle(self, step: int) -> float:
        s = self.spec
        low, floor = 1.0 / s.div_factor, 1.0 / (s.div_factor * s.final_div_factor)
        peak = max(1, round(s.pct_start * self.total) - 1)
        if step <= peak:
            u = step / peak
            return low + (1.0 - low) * 0.5 * (1.0 - math.cos(math.pi * u))
        u = min(1.0, (step - peak) / max(1, self.total - 1 - peak))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * u))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set each group's lr for this step; returns the first group's lr."""
        f = self.factor(step)
        for group, base in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * f
        return self.base_lrs[0] * f

    def epoch_end(self, logs: dict[str, float], *, greater_is_better: bool) -> None:
        """Reduce-on-plateau: called once per epoch with that epoch's logged values."""
        s = self.spec
        if not isinstance(s, PlateauSchedule):
            return
        value = logs.get(s.monitor)
        if value is None and "val_loss" in logs:
            raise SpecError(
                f"train.schedule.monitor: {s.monitor!r} is not logged"
                f"{did_you_mean(s.monitor, logs)}; logged: {', '.join(sorted(logs))}"
            )
        if value is None:  # no validation part (a refit on all non-test data): the train side
            value = logs.get("train_" + s.monitor.removeprefix("val_"))
            if value is None:
                return
        sign = 1.0 if (s.mode == "max" or (s.mode == "auto" and greater_is_better)) else -1.0
        if self._best is None or sign * (value - self._best) > s.threshold * max(
            1.0, abs(self._best)
        ):
            self._best, self._bad = value, 0
            return
        self._bad += 1
        if self._bad > s.patience:
            self.plateau = max(s.min_factor, self.plateau * s.factor)
            self._bad = 0

    def state_dict(self) -> dict:
        return {"plateau": self.plateau, "best": self._best, "bad": self._bad}

    def load_state_dict(self, state: dict) -> None:
        self.plateau, self._best, self._bad = state["plateau"], state["best"], state["bad"]
