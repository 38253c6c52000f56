"""The training loop: one function, read top to bottom."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from tunelab.evaluate import compute_metrics, greater_is_better
from tunelab.spec import TrainSpec
from tunelab.train._callbacks import Callback, Prune, Stop, check_monitors
from tunelab.train._checkpoint import Checkpoint
from tunelab.train._losses import build_loss, to_scores
from tunelab.train._optimizers import build_optimizer
from tunelab.train._schedules import Schedule

if TYPE_CHECKING:
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
    model: torch.nn.Module, X: torch.Tensor, *, batch_size: int, bf16: bool = False
) -> torch.Tensor:
    """Raw model outputs for ``X`` in eval mode, as float32, in batches."""
    model.eval()
    outs = []
    for start in range(0, X.shape[0], batch_size):
        with torch.autocast(X.device.type, dtype=torch.bfloat16, enabled=bf16):
            outs.append(model(X[start : start + batch_size]).float())
    return torch.cat(outs) if outs else torch.empty(0, device=X.device)


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
    """Train ``model`` in place on ``train = (X, y)`` (tensors on its device), validating on
    ``val`` (or None: a refit on all non-test data), as the :class:`~tunelab.train.Plan` says.

    ``seed`` seeds shuffling and augmentation; ``epochs`` overrides ``train.epochs``;
    ``callbacks`` come after the plan's own (early stopping) and may return ``Stop`` or
    ``Prune``; ``on_epoch`` gets each finished row; ``progress(done, total)`` the steps;
    ``checkpoint`` a :class:`Checkpoint` after every epoch that does not end training;
    ``resume`` (a checkpoint of this same training) continues after its epoch, every state
    and RNG restored, and ends as an uninterrupted run would.
    """
    # --- setup: batches, optimizer, schedule, callbacks, what is watched
    cfg, (X, y), has_val = plan.spec.train, train, val is not None
    device, n, epochs = X.device, X.shape[0], epochs or plan.spec.train.epochs
    batch_size = n if plan.full_batch else min(cfg.batch_size, n)
    # a lone last sample joins the batch before it (batch norm cannot train on one sample)
    steps = n // batch_size if n % batch_size == 1 else math.ceil(n / batch_size)
    gen = torch.Generator(device=device).manual_seed(seed)
    loss_fn = build_loss(plan.loss, device=device)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), device=device)
    plateau = plan.plateau_watch(has_val=has_val)
    schedule = Schedule(
        cfg.schedule,
        base_lrs=[plan.lr] * len(optimizer.param_groups),  # the plan's lr: never read back
        steps_per_epoch=steps,
        epochs=epochs,
        maximize=plateau is not None and plateau.maximize,
    )
    take_step = _stepper(model, optimizer, loss_fn, plan)
    callbacks = [*plan.callbacks(has_val=has_val), *callbacks]
    check_monitors(callbacks, plan.logged(has_val=has_val))  # before epoch 1, not inside it
    counted, count = plan.device_metrics, n * _target_dims(y)  # train_<m>, summed per batch
    watch, history, step, start = monitored(cfg, has_val=has_val), History(), 0, 1
    check_every = max(1, steps // 10)
    started = time.perf_counter()

    # --- resume: continue after the checkpoint's epoch (the RNG states are restored last)
    if resume is not None:
        resume.restore(
            model=model, optimizer=optimizer, schedule=schedule, generator=gen, callbacks=callbacks
        )
        start, step = resume.epoch + 1, resume.step
        history.rows, history.best_epoch = list(resume.rows), resume.best_epoch
        started -= resume.seconds  # history.seconds includes the time before the interruption

    for epoch in range(start, epochs + 1):
        # --- one epoch over shuffled batches (a batch is a slice of an index tensor)
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=device, generator=gen) if steps > 1 else None
        loss_sum = torch.zeros((), device=device)
        sums = torch.zeros(len(counted), device=device)
        bad_step = torch.full((), -1, device=device, dtype=torch.long)
        for s in range(steps):
            end = n if s == steps - 1 else (s + 1) * batch_size
            idx = order[s * batch_size : end] if order is not None else None
            xb, yb = (X, y) if idx is None else (X[idx], y[idx])
            if plan.augment is not None:
                xb = plan.augment(xb, gen)
            lr = schedule.apply(optimizer, step)
            out, data_loss = take_step(xb, yb)
            # on-device bookkeeping: no .item() inside the step
            loss_sum += data_loss * yb.shape[0]
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(data_loss), s, bad_step)
            if counted:  # the metrics' device forms (evaluate's registry)
                pred = plan.predictions(out, yb)
                sums += torch.stack([m.batch(pred, yb).float() for m in counted])
            step += 1
            if progress is not None and steps > 20 and s % max(1, steps // 50) == 0:
                progress(s + 1, steps)
            # rare sync point (about ten per epoch): a diverged run stops within its epoch
            if s % check_every == check_every - 1 and s + 1 < steps and bad_step.item() >= 0:
                break

        # --- sync point: read the epoch's numbers once
        loss_total, first_bad, *totals = torch.cat(
            [loss_sum.reshape(1), bad_step.reshape(1).float(), sums]
        ).tolist()
        row: dict[str, float] = {"epoch": epoch, "train_loss": loss_total / n}
        if not math.isfinite(row["train_loss"]):
            history.failure = f"non-finite loss at epoch {epoch}, step {int(first_bad) + 1}"
            row |= {"lr": lr, "seconds": time.perf_counter() - t0}
            history.rows.append(row)
            if on_epoch is not None:  # the failed epoch belongs in the record too
                on_epoch(row)
            break
        row |= {f"train_{m.name}": m.finish(t, count) for m, t in zip(counted, totals, strict=True)}

        # --- validation: loss and every logged metric
        if val is not None:
            row |= _validate(model, val, loss_fn, plan)
        row |= {"lr": lr, "seconds": time.perf_counter() - t0}
        history.rows.append(row)

        # --- bookkeeping and decisions: best epoch, schedule, callbacks
        best = _best_so_far(history, watch)
        schedule.epoch_end(row.get(plateau.key) if plateau is not None else None)
        if on_epoch is not None:
            on_epoch(row)
        decisions = [cb.on_epoch_end(epoch, row, model) for cb in callbacks]
        decision = next((d for d in decisions if isinstance(d, (Stop, Prune))), None)
        if decision is not None:
            history.stop_reason, history.pruned = decision.reason, isinstance(decision, Prune)
            break

        # --- checkpoint: the state to continue from after this epoch (cost: one file write)
        if checkpoint is not None:
            checkpoint(
                Checkpoint.capture(
                    epoch=epoch,
                    step=step,
                    best=best,
                    history=history,
                    seconds=time.perf_counter() - started,
                    model=model,
                    optimizer=optimizer,
                    schedule=schedule,
                    generator=gen,
                    callbacks=callbacks,
                )
            )

    for cb in callbacks:
        cb.on_fit_end(model)
    _best_so_far(history, watch)
    history.seconds = time.perf_counter() - started
    return history


def _stepper(model: torch.nn.Module, optimizer, loss_fn, plan: Plan):
    """``take_step(xb, yb) -> (outputs, data loss)``, both detached: forward, loss with the
    penalties, backward and one optimizer step (a closure for L-BFGS)."""
    cfg = plan.spec.train
    penalised = [p for p in model.parameters() if p.ndim > 1] if cfg.l1 else []

    def forward_loss(xb, yb) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=plan.bf16):
            out = model(xb)
        data_loss = loss_fn(out, yb)
        total = data_loss
        if penalised:
            total = total + cfg.l1 * sum(p.abs().sum() for p in penalised)
        if plan.l2:
            total = total + 0.5 * plan.l2 * sum(p.pow(2).sum() for p in model.parameters())
        return out, data_loss, total

    def closure_step(xb, yb) -> tuple[torch.Tensor, torch.Tensor]:
        kept: list = []

        def closure():
            optimizer.zero_grad(set_to_none=True)
            out, data_loss, total = forward_loss(xb, yb)
            total.backward()
            kept[:] = [out, data_loss]
            return total

        optimizer.step(closure)
        return kept[0].detach(), kept[1].detach()

    def plain_step(xb, yb) -> tuple[torch.Tensor, torch.Tensor]:
        out, data_loss, total = forward_loss(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        return out.detach(), data_loss.detach()

    return closure_step if plan.closure else plain_step


def _validate(model, val, loss_fn, plan: Plan) -> dict[str, float]:
    """``val_loss`` and ``val_<m>`` of every logged metric (evaluate's pure functions)."""
    out = predict(model, val[0], batch_size=plan.spec.train.eval_batch_size, bf16=plan.bf16)
    row = {"val_loss": float(loss_fn(out, val[1]))}
    if plan.metrics:
        scores = to_scores(out, plan.loss, task=plan.task).cpu().numpy()
        values = compute_metrics(plan.task, val[1].cpu().numpy(), scores, names=list(plan.metrics))
        row |= {f"val_{k}": v for k, v in values.items()}
    return row


def _best_so_far(history: History, watch: Watch | None) -> float | None:
    """Set ``history.best_epoch`` by the refit rule (one curve); return the best value."""
    choice = None
    if watch is not None:
        choice = choose_epoch([history.rows], watch.key, maximize=watch.maximize)
    history.best_epoch = choice.epoch if choice else None
    return choice.value if choice else None


def _target_dims(y: torch.Tensor) -> int:
    return 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
