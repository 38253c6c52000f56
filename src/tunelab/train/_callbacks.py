"""Callbacks return decisions instead of reaching into the loop."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tunelab.errors import SpecError, did_you_mean

__all__ = ["Stop", "Prune", "EarlyStopping", "Callback", "check_monitors"]


@dataclass(frozen=True)
class Stop:
    """End training normally (e.g. early stopping), with a reason for the record."""

    reason: str


@dataclass(frozen=True)
class Prune:
    """End training because the run is not worth finishing (a tuning pruner said so)."""

    reason: str


class Callback:
    """The hooks ``fit`` calls; override the ones you need (every hook is optional)."""

    def on_validation(self, epoch: int, outputs: torch.Tensor) -> None:
        """The model's raw outputs on the validation part after ``epoch`` (before
        ``on_epoch_end``): the pass ``fit`` made for the epoch's val metrics, shared."""
        return None

    def on_epoch_end(
        self, epoch: int, logs: dict[str, float], model: torch.nn.Module
    ) -> Stop | Prune | None:
        return None

    def on_fit_end(self, model: torch.nn.Module) -> None:
        return None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best`` the model gets the weights of its best epoch back at the end.
    """

    def __init__(
        self,
        *,
        monitor: str,
        greater_is_better: bool,
        patience: int,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.sign = 1.0 if greater_is_better else -1.0
        self.restore_best = restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, epoch, logs, model):
        value = logs[self.monitor]  # checked before the first epoch (check_monitors)
        if self.best is None or self.sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if self.restore_best:
                self._best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return None
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            return Stop(
                f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                f"(best {self.best:.4g} at epoch {self.best_epoch})"
            )
        return None

    def on_fit_end(self, model):
        if self.restore_best and self._best_state is not None:
            model.load_state_dict(self._best_state)

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": copy.copy(self._best_state),
        }

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self._best_state = state["bad_epochs"], state["best_state"]


def check_monitors(callbacks: Sequence[Callback], logged: Sequence[str]) -> None:
    """Before training: every callback that watches a ``monitor`` watches a logged value."""
    for cb in callbacks:
        monitor = getattr(cb, "monitor", None)
        if isinstance(monitor, str) and monitor not in logged:
            raise SpecError(
                f"{type(cb).__name__}.monitor: {monitor!r} is not logged"
                f"{did_you_mean(monitor, logged)}; logged: {', '.join(logged)}"
            )
