"""The training loop: one function, read top to bottom."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from tunelab.evaluate import compute_metrics, greater_is_better
from tunelab.plugins import LOSSES, OPTIMIZERS
from tunelab.spec import LossSpec, TrainSpec
from tunelab.train._callbacks import Callback, Prune, Stop
from tunelab.train._checkpoint import Checkpoint
from tunelab.train._losses import build_loss, to_scores
from tunelab.train._optimizers import build_optimizer
from tunelab.train._schedules import Schedule

__all__ = [
    "fit",
    "predict",
    "History",
    "TRAIN_SIDE_METRICS",
    "EpochChoice",
    "choose_epoch",
    "monitored",
]

# metrics that can be accumulated on the device during the epoch, from the training batches
TRAIN_SIDE_METRICS = {"classification": ("accuracy",), "regression": ("mse", "rmse", "mae")}


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


def monitored(cfg: TrainSpec, *, has_val: bool) -> tuple[str, bool] | None:
    """``(key, maximize)`` of what ``tunelab train`` chooses its best epoch by: the early
    stopping monitor, else ``val_loss``; None without a validation part."""
    if not has_val:
        return None
    if cfg.early_stopping is None:
        return "val_loss", False
    mode, key = cfg.early_stopping.mode, cfg.early_stopping.monitor
    return key, mode == "max" or (mode == "auto" and greater_is_better(key))


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
    cfg: TrainSpec,
    *,
    task: str,
    loss: LossSpec,
    metrics: Sequence[str],
    seed: int,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    callbacks: Sequence[Callback] = (),
    bf16: bool = False,
    epochs: int | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    checkpoint: Callable[[Checkpoint], None] | None = None,
    resume: Checkpoint | None = None,
) -> History:
    """Train ``model`` in place on tensors that already live on its device.

    Args:
        model: the network (its parameters on the same device as the data).
        train: ``(X, y)`` of the training part.
        val: ``(X, y)`` of the validation part, or None (e.g. a refit on all non-test data).
        cfg: the ``train`` section of the spec.
        task: ``classification`` or ``regression``.
        loss: the resolved loss spec.
        metrics: metric names logged per epoch as ``train_<m>`` (where cheap) and ``val_<m>``.
        seed: seeds the shuffling and augmentation generator.
        augment: batched augmentation, applied to training batches only.
        callbacks: objects whose ``on_epoch_end`` may return ``Stop`` or ``Prune``.
        bf16: autocast to bfloat16 (CUDA).
        epochs: overrides ``cfg.epochs`` (e.g. a refit for the best epoch count).
        on_epoch: called with each finished epoch's row (printing, history files).
        progress: called as ``progress(done_steps, total_steps)`` every few steps.
        checkpoint: called with a :class:`Checkpoint` after every epoch that does not end
            training (e.g. ``lambda c: save_checkpoint(path, c)``).
        resume: a checkpoint of this same training (same data, settings and callbacks):
            training continues after its epoch with the model, optimizer, schedule,
            callbacks, history and every RNG state restored, and ends as an uninterrupted
            run would.
    """
    # --- setup: data, batches, optimizer, schedule
    X, y = train
    device, n = X.device, X.shape[0]
    epochs = epochs or cfg.epochs
    opt = OPTIMIZERS.get(cfg.optimizer.name).extra  # full_batch, closure, l2_in_loss
    full_batch = opt.get("full_batch", False)
    batch_size = n if full_batch else min(cfg.batch_size, n)
    # a lone last sample joins the batch before it (batch norm cannot train on one sample)
    steps = n // batch_size if n % batch_size == 1 else math.ceil(n / batch_size)
    gen = torch.Generator(device=device).manual_seed(seed)
    loss_fn = build_loss(loss, device=device)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), device=device)
    schedule = Schedule(
        cfg.schedule,
        base_lrs=[g["lr"] for g in optimizer.param_groups],
        steps_per_epoch=steps,
        epochs=epochs,
    )
    penalised = [p for p in model.parameters() if p.ndim > 1] if cfg.l1 else []
    # torch's L-BFGS has no weight_decay: its L2 enters the loss as (wd / 2) * ||w||^2
    l2 = cfg.optimizer.weight_decay if opt.get("l2_in_loss") else 0.0
    train_side = [m for m in metrics if m in TRAIN_SIDE_METRICS[task]]
    binary_logit = LOSSES.for_options(type(loss)).extra.get("outputs") == 1
    monitor = monitored(cfg, has_val=val is not None)
    history, step = History(), 0
    check_every = max(1, steps // 10)
    started = time.perf_counter()

    def forward_loss(
        xb: torch.Tensor, yb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model(xb)
        data_loss = loss_fn(out, yb)
        total = data_loss
        if penalised:
            total = total + cfg.l1 * sum(p.abs().sum() for p in penalised)
        if l2:
            total = total + 0.5 * l2 * sum(p.pow(2).sum() for p in model.parameters())
        return out, data_loss, total

    # --- resume: continue after the checkpoint's epoch (the RNG states are restored last)
    start = 1
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
        stat_sum = torch.zeros(2, device=device)  # correct | squared error, absolute error
        bad_step = torch.full((), -1, device=device, dtype=torch.long)
        for s in range(steps):
            end = n if s == steps - 1 else (s + 1) * batch_size
            idx = order[s * batch_size : end] if order is not None else None
            xb, yb = (X, y) if idx is None else (X[idx], y[idx])
            if augment is not None:
                xb = augment(xb, gen)
            lr = schedule.apply(optimizer, step)
            if opt.get("closure"):
                kept: list = []

                def closure(xb=xb, yb=yb, kept=kept):
                    optimizer.zero_grad(set_to_none=True)
                    out, data_loss, total = forward_loss(xb, yb)
                    total.backward()
                    kept[:] = [out, data_loss]
                    return total

                optimizer.step(closure)
                out, data_loss = kept[0].detach(), kept[1].detach()
            else:
                out, data_loss, total = forward_loss(xb, yb)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                out, data_loss = out.detach(), data_loss.detach()
            # on-device bookkeeping: no .item() inside the step
            loss_sum += data_loss * yb.shape[0]
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(data_loss), s, bad_step)
            if train_side:
                stat_sum += _batch_stats(out, yb, task, binary_logit)
            step += 1
            if progress is not None and steps > 20 and s % max(1, steps // 50) == 0:
                progress(s + 1, steps)
            # rare sync point (about ten per epoch): a diverged run stops within its epoch
            if s % check_every == check_every - 1 and s + 1 < steps and bad_step.item() >= 0:
                break

        # --- sync point: read the epoch's numbers once
        loss_total, stat0, stat1, first_bad = torch.cat(
            [loss_sum.reshape(1), stat_sum, bad_step.reshape(1).float()]
        ).tolist()
        row: dict[str, float] = {"epoch": epoch, "train_loss": loss_total / n}
        if not math.isfinite(row["train_loss"]):
            history.failure = f"non-finite loss at epoch {epoch}, step {int(first_bad) + 1}"
            row |= {"lr": lr, "seconds": time.perf_counter() - t0}
            history.rows.append(row)
            if on_epoch is not None:  # the failed epoch belongs in the record too
                on_epoch(row)
            break
        row |= _train_metrics(train_side, stat0, stat1, n * _target_dims(y))

        # --- validation: loss and every logged metric
        if val is not None:
            val_out = predict(model, val[0], batch_size=cfg.eval_batch_size, bf16=bf16)
            row["val_loss"] = float(loss_fn(val_out, val[1]))
            scores = to_scores(val_out, loss, task=task).cpu().numpy()
            if metrics:
                values = compute_metrics(task, val[1].cpu().numpy(), scores, names=list(metrics))
                row |= {f"val_{k}": v for k, v in values.items()}
        row["lr"] = lr
        row["seconds"] = time.perf_counter() - t0
        history.rows.append(row)

        # --- bookkeeping and decisions: best epoch, schedule, callbacks
        best = _best_so_far(history, monitor)
        schedule.epoch_end(
            row, greater_is_better=greater_is_better(getattr(cfg.schedule, "monitor", "val_loss"))
        )
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
    _best_so_far(history, monitor)
    history.seconds = time.perf_counter() - started
    return history


def _best_so_far(history: History, monitor: tuple[str, bool] | None) -> float | None:
    """Set ``history.best_epoch`` by the refit rule (one curve); return the best value."""
    choice = None
    if monitor is not None:
        choice = choose_epoch([history.rows], monitor[0], maximize=monitor[1])
    history.best_epoch = choice.epoch if choice else None
    return choice.value if choice else None


def _target_dims(y: torch.Tensor) -> int:
    return 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))


def _batch_stats(
    out: torch.Tensor, yb: torch.Tensor, task: str, binary_logit: bool
) -> torch.Tensor:
    """(correct, 0) for classification; (squared error, absolute error) sums for regression."""
    if task == "classification":
        pred = (out.reshape(-1) > 0).long() if binary_logit else out.argmax(dim=1)
        correct = (pred == yb).sum().float()
        return torch.stack([correct, torch.zeros_like(correct)])
    err = out.float().reshape(yb.shape) - yb
    return torch.stack([(err * err).sum(), err.abs().sum()])


def _train_metrics(
    names: Sequence[str], stat0: float, stat1: float, count: int
) -> dict[str, float]:
    values = {
        "accuracy": stat0 / count,
        "mse": stat0 / count,
        "rmse": math.sqrt(max(stat0, 0.0) / count),
        "mae": stat1 / count,
    }
    return {f"train_{m}": values[m] for m in names}
