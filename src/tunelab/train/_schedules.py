"""Learning-rate schedules: closed-form factors of the optimizer step, one plug-in each.

``lr = base_lr * warm-up(step) * shape(step) * plateau``, written to the param groups and never
read back. A schedule plug-in is its options class and its ``shape`` function; warm-up and
reduce-on-plateau are shared by all.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from tunelab.plugins import SCHEDULES, NonNegFloat, Options

__all__ = [
    "Schedule",
    "ConstantSchedule",
    "LinearSchedule",
    "StepSchedule",
    "ExponentialSchedule",
    "CosineSchedule",
    "OneCycleSchedule",
    "PlateauSchedule",
]

Factor = Annotated[float, Field(ge=0.0, le=1.0)]


class _ScheduleBase(Options):
    warmup_epochs: NonNegFloat = Field(0.0, description="linear warm-up length (may be fractional)")
    warmup_start: Factor = Field(0.01, description="warm-up starts at lr * warmup_start")


class ConstantSchedule(_ScheduleBase):
    """The same learning rate throughout (after any warm-up)."""

    name: Literal["constant"] = "constant"


class LinearSchedule(_ScheduleBase):
    """Linear decay from lr to lr * final_factor over training."""

    name: Literal["linear"]
    final_factor: Factor = 0.0
    """lr at the end, as a factor of lr"""


class StepSchedule(_ScheduleBase):
    """lr * gamma ** (epoch // step_size)."""

    name: Literal["step"]
    step_size: int = Field(10, ge=1, description="epochs between decays")
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    """factor applied every step_size epochs"""


class ExponentialSchedule(_ScheduleBase):
    """lr * gamma ** epoch."""

    name: Literal["exponential"]
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    """factor applied every epoch"""


class CosineSchedule(_ScheduleBase):
    """Cosine annealing from lr to lr * min_factor over training."""

    name: Literal["cosine"]
    min_factor: Factor = 0.0
    """lr at the end, as a factor of lr"""


class OneCycleSchedule(_ScheduleBase):
    """One-cycle: from lr/div_factor up to lr (at pct_start), then cosine down to
    lr/(div_factor*final_div_factor). It has its own warm-up."""

    name: Literal["onecycle"]
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    """fraction of training spent rising"""
    div_factor: Annotated[float, Field(ge=1.0)] = 25.0
    """starting lr is lr / div_factor"""
    final_div_factor: Annotated[float, Field(ge=1.0)] = 1e4
    """final lr is lr / (div_factor * final_div_factor)"""

    @model_validator(mode="after")
    def _no_extra_warmup(self) -> OneCycleSchedule:
        if self.warmup_epochs:
            raise ValueError("onecycle has its own warm-up (pct_start); set warmup_epochs to 0")
        return self


class PlateauSchedule(_ScheduleBase):
    """Multiply lr by factor when `monitor` has not improved for `patience` epochs."""

    name: Literal["plateau"]
    monitor: str = "val_loss"
    """the logged value to watch, e.g. val_loss or val_accuracy"""
    mode: Literal["auto", "min", "max"] = "auto"
    """auto: max for accuracy-like values, min for losses"""
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    """lr multiplier on a plateau"""
    patience: int = Field(5, ge=0)
    """epochs without improvement before the lr drops"""
    threshold: NonNegFloat = 1e-4
    """smallest change that counts as improvement"""
    min_factor: Factor = 0.0
    """lr never drops below lr * min_factor"""


# shape(options, *, step, t, epoch, total): t is the progress after warm-up, in [0, 1]
def _flat(s, *, step, t, epoch, total) -> float:
    return 1.0


def _linear(s: LinearSchedule, *, step, t, epoch, total) -> float:
    return 1.0 + (s.final_factor - 1.0) * t


def _step(s: StepSchedule, *, step, t, epoch, total) -> float:
    return s.gamma ** (epoch // s.step_size)


def _exponential(s: ExponentialSchedule, *, step, t, epoch, total) -> float:
    return s.gamma**epoch


def _cosine(s: CosineSchedule, *, step, t, epoch, total) -> float:
    return s.min_factor + (1.0 - s.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))


def _onecycle(s: OneCycleSchedule, *, step, t, epoch, total) -> float:
    low, floor = 1.0 / s.div_factor, 1.0 / (s.div_factor * s.final_div_factor)
    peak = max(1, round(s.pct_start * total) - 1)
    if step <= peak:
        u = step / peak
        return low + (1.0 - low) * 0.5 * (1.0 - math.cos(math.pi * u))
    u = min(1.0, (step - peak) / max(1, total - 1 - peak))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * u))


SCHEDULES.register("constant", ConstantSchedule, _flat)
SCHEDULES.register("linear", LinearSchedule, _linear)
SCHEDULES.register("step", StepSchedule, _step)
SCHEDULES.register("exponential", ExponentialSchedule, _exponential)
SCHEDULES.register("cosine", CosineSchedule, _cosine)
SCHEDULES.register("onecycle", OneCycleSchedule, _onecycle)
SCHEDULES.register("plateau", PlateauSchedule, _flat, plateau=True)


class Schedule:
    """lr(step) = base_lr * warm-up(step) * shape(step) * plateau factor.

    Every shape is a pure function of the optimizer step, so a schedule needs no state except
    the plateau's, and resuming is exact. ``step`` and ``exponential`` change once per epoch.
    ``base_lrs`` are the plan's learning rates (one per param group); ``maximize`` is the
    direction of the value a plateau schedule watches (the plan resolves both).
    """

    def __init__(
        self,
        spec,
        *,
        base_lrs: list[float],
        steps_per_epoch: int,
        epochs: int,
        maximize: bool = False,
    ):
        self.spec = spec
        self.maximize = maximize
        self.shape = SCHEDULES.for_options(type(spec)).build
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
        shape = self.shape(s, step=step, t=t, epoch=epoch, total=self.total)
        return warm * shape * self.plateau

    def apply(self, optimizer, step: int) -> float:
        """Set each group's lr for this step; returns the first group's lr."""
        f = self.factor(step)
        for group, base in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * f
        return self.base_lrs[0] * f

    def epoch_end(self, value: float | None) -> None:
        """Reduce-on-plateau: called once per epoch with the watched value (None: not logged
        by this training, e.g. a refit without a validation part; nothing changes)."""
        s = self.spec
        if not isinstance(s, PlateauSchedule) or value is None:
            return
        sign = 1.0 if self.maximize else -1.0
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
