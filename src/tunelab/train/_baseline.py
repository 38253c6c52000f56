"""The trivial baseline a run's diagnosis compares with, and a run's diagnosis over its folds.

The baseline predicts without looking at the inputs: the training part's mean (regression) or
its class shares, whose argmax is the majority class (classification). Its loss is the run's
loss on the run's scale (standardised when the target is), so it reads against the history.
"""

from __future__ import annotations

import numpy as np
import torch

from tunelab.evaluate import compute_metrics
from tunelab.models import Unscale
from tunelab.train._diagnosis import diagnose
from tunelab.train._fit import choose_epoch, maximize
from tunelab.train._fold import fold_target
from tunelab.train._losses import build_loss, on_target_scale, outputs_for, to_scores
from tunelab.train._plan import Prepared

__all__ = ["baseline_of", "diagnose_run"]


def baseline_of(
    prep: Prepared, train_idx: np.ndarray, val_idx: np.ndarray, *, metric: str | None = None
) -> dict:
    """``{what, train_loss, val_loss[, train_<metric>, val_<metric>]}`` of the trivial
    predictor fitted on ``train_idx``, on the training and the validation part."""
    plan, ds = prep.plan, prep.ds
    y_train = ds.y[train_idx]
    if ds.task == "regression":
        const = y_train.reshape(len(y_train), -1).astype(np.float64).mean(axis=0)
        what = "predicting the training part's mean"
    else:
        shares = np.bincount(y_train, minlength=ds.num_classes) / len(y_train)
        logits = np.log(np.clip(shares, 1e-12, None))
        if outputs_for(plan.loss, task=ds.task, out_features=len(shares)) == 1:
            logits = logits[1:] - logits[:1]  # bce's one logit: log(p1 / p0)
        const = logits
        top = int(shares.argmax())
        label = ds.classes[top] if ds.classes else top
        what = f"predicting the training part's class shares (majority class {label})"
    holder = torch.nn.Module()  # the loss on the scale the folds' models train on
    target = fold_target(prep, train_idx)
    if target is not None:
        holder.unscale = Unscale(torch.as_tensor(target.mean), torch.as_tensor(target.std))
    loss_fn = on_target_scale(build_loss(plan.loss, device=torch.device("cpu")), holder)
    out: dict = {"what": what}
    for part, idx in (("train", train_idx), ("val", val_idx)):
        y = torch.as_tensor(ds.y[idx])
        outputs = torch.as_tensor(np.tile(const, (len(idx), 1)), dtype=torch.float32)
        out[f"{part}_loss"] = float(loss_fn(outputs, y))
        if metric is not None:
            scores = to_scores(outputs, plan.loss, task=ds.task).numpy()
            value = compute_metrics(ds.task, ds.y[idx], scores, names=[metric])[metric]
            out[f"{part}_{metric}"] = float(value)
    return out


def diagnose_run(prep: Prepared, histories: list[list[dict]]) -> dict | None:
    """The run's diagnosis: on its one validation curve (holdout) or the mean curve of its
    folds (CV), with the best epoch chosen as the run chooses it (the summary's best epoch;
    the refit's epoch count for CV) and the folds' mean trivial baseline."""
    main = prep.metrics[0] if prep.metrics else None
    folds = prep.splits.folds[: len(histories)]
    bases = [baseline_of(prep, f.train, f.val, metric=main) for f in folds if f.val is not None]
    baseline = None
    if bases:
        keys = [k for k in bases[0] if k != "what"]
        baseline = {"what": bases[0]["what"]} | {
            k: float(np.mean([b[k] for b in bases])) for k in keys
        }
        if len(bases) > 1:
            baseline["what"] += f" (mean over {len(bases)} folds)"
    best = None
    if prep.plan.best is not None:
        choice = choose_epoch(histories, prep.plan.best.key, maximize=prep.plan.best.maximize)
        best = choice.epoch if choice else None
    return diagnose(
        _mean_curve(histories),
        metric=main,
        higher_is_better=maximize(main or "loss"),
        best_epoch=best,
        baseline=baseline,
    )


def _mean_curve(histories: list[list[dict]]) -> list[dict]:
    """Each epoch every fold reached, with the folds' mean of each value they all logged."""
    if len(histories) == 1:
        return list(histories[0])
    by_epoch = [{int(r["epoch"]): r for r in rows} for rows in histories]
    epochs = sorted(set.intersection(*(set(b) for b in by_epoch)))
    curve = []
    for e in epochs:
        rows = [b[e] for b in by_epoch]
        keys = set.intersection(*(set(r) for r in rows)) - {"epoch", "fold"}
        curve.append({"epoch": e} | {k: float(np.mean([r[k] for r in rows])) for k in keys})
    return curve
