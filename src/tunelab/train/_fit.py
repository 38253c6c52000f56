"""The training loop: one function, read top to bottom."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from tunelab.evaluate import compute_metrics, greater_is_better
from tunelab.spec import TrainSpec
from tunelab.train._batches import (
    batches_of,
    cut_to_longest,
    epoch_runner,
    is_sequences,
    sequence_lengths,
)
from tunelab.train._callbacks import Callback, Prune, Stop, check_monitors
from tunelab.train._checkpoint import Checkpoint
from tunelab.train._losses import build_loss, on_target_scale, to_scores
from tunelab.train._optimizers import build_optimizer
from tunelab.train._ranks import ranks
from tunelab.train._schedules import Schedule

if TYPE_CHECKING:
    from tunelab.data._lazy import LazyPart
    from tunelab.train._plan import Plan

__all__ = [
    "fit",
    "predict",
    "History",
    "EpochChoice",
    "Watch",
    "choose_epoch",
    "maximize",
    "monitored",
]


@dataclass
class History:
    """Per-epoch rows plus how training ended.

    ``best_epoch`` is :func:`choose_epoch` of the monitored value (see :func:`monitored`) over
    these rows; None without a validation part (a refit), where there is nothing to choose by.
    """

    rows: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    stop_reason: str | None = None  # early stopping, pruning
    failure: str | None = None  # e.g. "non-finite loss at epoch 3, step 12"
    pruned: bool = False
    seconds: float = 0.0
    # the model's outputs on the validation part at the last epoch, kept only while the
    # model is still that epoch's (no callback changed it since): the final evaluation
    # reuses them instead of a second identical pass
    val_output: torch.Tensor | None = field(default=None, repr=False, compare=False)
    val_versions: list[int] = field(default_factory=list, repr=False, compare=False)


@dataclass(frozen=True)
class EpochChoice:
    """The epoch count the refit rule picks, and the value that goes with it."""

    epoch: int
    value: float  # the mean over folds of the curve at ``epoch``
    fold_values: list[float]  # each fold's value at ``epoch``


def choose_epoch(
    histories: Sequence[Sequence[Mapping[str, float]]], key: str, *, maximize: bool
) -> EpochChoice | None:
    """The refit rule: the epoch count to train for, and the value a configuration reports.

    ``histories`` holds one list of per-epoch rows per fold (one list for a holdout split).
    The curve is the mean over folds of ``key`` at each epoch that every fold reached with a
    finite value; the chosen epoch ``E`` is the best point of that curve (the earliest on
    ties), and the value is the curve at ``E``. A refit on all non-test data trains exactly
    ``E`` epochs, so the value a trial reports is the value measured at the epoch count its
    refit uses: the same number of weight updates per sample, the same point of the schedule
    (scaled to the refit's size).

    Why this rule: the epoch count is tuned like any other hyperparameter, and it has to be one
    number for the refit (which has no validation part to stop on). Each fold's own best epoch
    (and a median of them) is a different, noisier choice whose value was never measured; the
    last epoch wastes what the curve shows. The best of the mean curve is the epoch count whose
    cross-validated value is known, and it is what gets trained. Early stopping ends folds at
    different epochs: the curve stops where the shortest fold stopped, which lies past that
    fold's own best by the patience, so the peak is inside it. With early stopping but no
    restore the rule is the same: what is reported is what is refit.

    Returns None when no epoch has a finite value in every fold.

    Example:
        >>> folds = [[{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.7}],
        ...          [{"epoch": 1, "val_acc": 0.6}, {"epoch": 2, "val_acc": 0.5}]]
        >>> choose_epoch(folds, "val_acc", maximize=True).epoch
        2
    """
    curves = [
        {int(r["epoch"]): float(r[key]) for r in rows if key in r and math.isfinite(r[key])}
        for rows in histories
    ]
    if not curves:
        return None
    common = sorted(set.intersection(*(set(c) for c in curves)))
    if not common:
        return None
    means = {e: float(np.mean([c[e] for c in curves])) for e in common}
    best = (max if maximize else min)(means.values())
    epoch = min(e for e, v in means.items() if v == best)
    return EpochChoice(epoch, best, [c[epoch] for c in curves])


class Watch(NamedTuple):
    """A logged value and its direction: ``maximize`` when a larger value is better."""

    key: str
    maximize: bool


def maximize(key: str, mode: str = "auto") -> bool:
    """The one direction rule: ``max``/``min`` as written, else the metric registry's
    direction of ``key`` (``val_accuracy`` up, ``val_loss`` down)."""
    return mode == "max" or (mode == "auto" and greater_is_better(key))


def monitored(cfg: TrainSpec, *, has_val: bool) -> Watch | None:
    """``(key, maximize)`` of what ``tunelab train`` chooses its best epoch by: the early
    stopping monitor, else ``val_loss``; None without a validation part."""
    if not has_val:
        return None
    if cfg.early_stopping is None:
        return Watch("val_loss", False)
    key = cfg.early_stopping.monitor
    return Watch(key, maximize(key, cfg.early_stopping.mode))


@torch.inference_mode()
def predict(
    model: torch.nn.Module, X: torch.Tensor | LazyPart, *, batch_size: int, bf16: bool = False
) -> torch.Tensor:
    """Raw model outputs for ``X`` (a tensor, or a lazy part read through its DataLoader) in
    eval mode, as float32, in batches."""
    model.eval()
    outs = []
    if is_sequences(X):  # token ids: by length, each batch cut to its longest, then unsorted
        lengths = sequence_lengths(X)
        order = np.argsort(lengths, kind="stable")
        out = predict(model, _sorted(X, lengths, order), batch_size=batch_size, bf16=bf16)
        return out[torch.as_tensor(np.argsort(order), device=out.device)]
    if isinstance(X, torch.Tensor):
        device, chunks = X.device, (X[s : s + batch_size] for s in range(0, len(X), batch_size))
    else:  # a lazy part, or sorted sequences
        device, chunks = X.device, X.chunks(batch_size)
    for xb in chunks:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            outs.append(model(xb).float())
    return torch.cat(outs) if outs else torch.empty(0, device=device)


class _SortedSequences:
    """Token sequences in length order, read in batches each cut to its longest."""

    def __init__(self, X: torch.Tensor, lengths: np.ndarray) -> None:
        self.X, self.lengths, self.device = X, lengths, X.device

    def chunks(self, size: int):
        for s in range(0, len(self.X), size):
            yield cut_to_longest(self.X[s : s + size], self.lengths[s : s + size])


def _sorted(X: torch.Tensor, lengths: np.ndarray, order: np.ndarray) -> _SortedSequences:
    return _SortedSequences(X[torch.as_tensor(order, device=X.device)], lengths[order])


def fit(
    model: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    plan: Plan,
    *,
    seed: int,
    epochs: int | None = None,
    callbacks: Sequence[Callback] = (),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[Checkpoint], None] | None = None,
    resume: Checkpoint | None = None,
) -> History:
    """Train ``model`` in place on ``train = (X, y)`` (on its device) as ``plan`` says; validate
    on ``val`` (None: a refit). ``callbacks`` follow the plan's own (early stopping);
    ``checkpoint`` gets the state after each epoch, ``resume`` continues from one exactly."""
    # --- setup: optimizer, schedule (plan lr x factor, never read back), callbacks, watches
    cfg, has_val, device = plan.spec.train, val is not None, train[1].device
    epochs, gen = epochs or cfg.epochs, torch.Generator(device=device).manual_seed(seed)
    loss_fn = on_target_scale(build_loss(plan.loss, device=device), model)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), device=device)
    batches, plateau = batches_of(train, plan, gen, ranks()), plan.plateau_watch(has_val=has_val)
    lrs, up = [plan.lr] * len(optimizer.param_groups), plateau is not None and plateau.maximize
    schedule = Schedule(
        cfg.schedule, base_lrs=lrs, steps_per_epoch=batches.steps, epochs=epochs, maximize=up
    )
    run_epoch = epoch_runner(model, optimizer, loss_fn, schedule, batches, plan, progress)
    callbacks = [*plan.callbacks(has_val=has_val), *callbacks]
    check_monitors(callbacks, plan.logged(has_val=has_val))  # before epoch 1, not inside it
    watch, history, step, start = monitored(cfg, has_val=has_val), History(), 0, 1
    on_epoch = on_epoch or (lambda row: None)
    started = time.perf_counter()

    # --- resume: continue after the checkpoint's epoch (the RNG states are restored last)
    states = {"model": model, "optimizer": optimizer, "schedule": schedule, "generator": gen}
    capture = functools.partial(Checkpoint.capture, callbacks=callbacks, **states)
    if resume is not None:
        start, step, started = _resumed(resume, history, states, callbacks, started)

    for epoch in range(start, epochs + 1):
        # --- one epoch over shuffled batches, then the sync point: its numbers read once
        t0 = time.perf_counter()
        sums, lr, step = run_epoch(step)
        loss_total, first_bad, *totals = sums.tolist()  # sync point
        row: dict[str, float] = {"epoch": epoch, "train_loss": loss_total / batches.n}
        if not math.isfinite(row["train_loss"]):
            history.failure = f"non-finite loss at epoch {epoch}, step {int(first_bad) + 1}"
            history.rows.append(row | {"lr": lr, "seconds": time.perf_counter() - t0})
            on_epoch(history.rows[-1])  # the failed epoch belongs in the record too
            break
        counted = zip(plan.device_metrics, totals, strict=True)
        row |= {f"train_{m.name}": m.finish(t, batches.count) for m, t in counted}

        # --- validation: loss and every logged metric
        row |= _validate(model, val, loss_fn, plan, history, callbacks, epoch) if has_val else {}
        row |= {"lr": lr, "seconds": time.perf_counter() - t0}
        history.rows.append(row)

        # --- bookkeeping and decisions: best epoch, schedule, callbacks
        best = _best_so_far(history, watch)
        schedule.epoch_end(row.get(plateau.key) if plateau is not None else None)
        on_epoch(row)
        decision = _decision([cb.on_epoch_end(epoch, row, model) for cb in callbacks])
        if decision is not None:
            history.stop_reason, history.pruned = decision.reason, isinstance(decision, Prune)
            break

        # --- checkpoint: the state to continue from after this epoch (cost: one file write)
        if checkpoint is not None:
            seconds = time.perf_counter() - started
            checkpoint(capture(epoch=epoch, step=step, best=best, history=history, seconds=seconds))

    for cb in callbacks:
        cb.on_fit_end(model)
    if _versions(model) != history.val_versions:  # e.g. restore_best changed the weights
        history.val_output = None
    _best_so_far(history, watch)
    history.seconds = time.perf_counter() - started
    return history


def _validate(model, val, loss_fn, plan: Plan, history: History, callbacks, epoch: int) -> dict:
    """``val_loss`` and ``val_<m>`` of every logged metric (evaluate's pure functions). The
    outputs go to each callback's ``on_validation`` and stay in ``history.val_output`` with
    the weights' versions they came from. Under data parallelism the val part is sharded
    like a batch and the outputs gathered, so every rank computes the same numbers."""
    (X, y), batch = val, plan.spec.train.eval_batch_size
    shared = ranks()
    if shared is None:
        out = predict(model, X, batch_size=batch, bf16=plan.bf16)
    else:  # data-parallel: each rank predicts its share, every rank gets all the outputs
        start, end = shared.share(len(X))
        out = shared.gather(predict(model, X[start:end], batch_size=batch, bf16=plan.bf16), len(X))
    history.val_output, history.val_versions = out, _versions(model)
    for cb in callbacks:
        cb.on_validation(epoch, out)
    row = {"val_loss": float(loss_fn(out, y))}
    if plan.metrics:
        scores = to_scores(out, plan.loss, task=plan.task).cpu().numpy()
        values = compute_metrics(plan.task, y.cpu().numpy(), scores, names=list(plan.metrics))
        row |= {f"val_{k}": v for k, v in values.items()}
    return row


def _versions(model: torch.nn.Module) -> list[int]:
    """The version counter of every parameter and buffer: any in-place change (an optimizer
    step, ``load_state_dict``) moves one, so equal lists mean the same weights."""
    return [t._version for t in (*model.parameters(), *model.buffers())]


def _resumed(resume: Checkpoint, history: History, states: dict, callbacks, started: float):
    """Restore a checkpoint's state into this training: ``(first epoch, step, started)``.

    The RNG states are restored last; ``started`` moves back by the time trained before the
    interruption (``history.seconds`` includes it)."""
    resume.restore(**states, callbacks=callbacks)
    history.rows, history.best_epoch = list(resume.rows), resume.best_epoch
    return resume.epoch + 1, resume.step, started - resume.seconds


def _decision(decisions: list) -> Stop | Prune | None:
    """The first ``Stop`` or ``Prune`` of the callbacks' answers (each callback was asked)."""
    return next((d for d in decisions if isinstance(d, (Stop, Prune))), None)


def _best_so_far(history: History, watch: Watch | None) -> float | None:
    """Set ``history.best_epoch`` by the refit rule (one curve); return the best value."""
    choice = None
    if watch is not None:
        choice = choose_epoch([history.rows], watch.key, maximize=watch.maximize)
    history.best_epoch = choice.epoch if choice else None
    return choice.value if choice else None
