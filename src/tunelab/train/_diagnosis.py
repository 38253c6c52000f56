"""Over- and under-fitting, read off a run's per-epoch history and a trivial baseline."""

from __future__ import annotations

import math

__all__ = ["diagnose", "UNDERFIT_MARGIN"]

# underfitting: neither train nor val loss beats the trivial baseline's by more than this share
UNDERFIT_MARGIN = 0.1


def diagnose(
    rows: list[dict],
    *,
    metric: str | None,
    higher_is_better: bool,
    best_epoch: int | None = None,
    baseline: dict | None = None,
) -> dict | None:
    """Train/val gap at the end and at the best epoch, where validation stopped improving, and
    whether the model beats a trivial baseline at all.

    ``metric`` is a logged metric (e.g. ``accuracy``) or None for the loss. Train values are
    measured during the epoch (with dropout and augmentation on), so a small negative gap is
    normal; a large positive one is overfitting. ``best_epoch``: the epoch the run chose (its
    summary's "best epoch"); default the best of ``metric``. ``baseline``: the trivial
    predictor's ``train_loss`` and ``val_loss`` (same loss, same scale as the history) and
    ``what`` it predicts (see :func:`tunelab.train._baseline.baseline_of`): when neither the
    train nor the best validation loss beats it by :data:`UNDERFIT_MARGIN`, the run is
    underfitting, whatever the gap says.
    """
    name = metric or "loss"
    higher = higher_is_better if metric else False
    rows = [r for r in rows if _finite(r, f"val_{name}") and _finite(r, f"train_{name}")]
    if not rows:
        return None

    def gap(row: dict) -> float:  # positive = train looks better than validation
        diff = row[f"train_{name}"] - row[f"val_{name}"]
        return diff if higher else -diff

    pick = max if higher else min
    chosen = [r for r in rows if r["epoch"] == best_epoch]
    best = chosen[0] if chosen else pick(rows, key=lambda r: r[f"val_{name}"])
    last = rows[-1]
    # a stall, not a one-epoch dip: at least 2 epochs and a tenth of the run past the best
    stall = last["epoch"] - best["epoch"]
    stopped = best["epoch"] if stall >= max(2, round(0.1 * last["epoch"])) else None
    end_gap, best_gap = gap(last), gap(best)
    scale = max(abs(last[f"val_{name}"]), 1e-12) if not higher else 1.0
    under = _underfitting(rows, baseline)
    verdict = under or _verdict(name, best["epoch"], end_gap / scale, end_gap, stopped)
    out = {
        "metric": name,
        "best_epoch": best["epoch"],
        "last_epoch": last["epoch"],
        "gap_at_end": end_gap,
        "gap_at_best": best_gap,
        "stopped_improving_at": stopped,
        "underfitting": under is not None,
        "verdict": verdict,
    }
    return out | ({"baseline": baseline} if baseline else {})


def _finite(row: dict, key: str) -> bool:
    return key in row and math.isfinite(row[key])


def _underfitting(rows: list[dict], baseline: dict | None) -> str | None:
    """The underfitting verdict, or None: the last train loss and the best validation loss
    both fail to beat the trivial baseline's by :data:`UNDERFIT_MARGIN` of it."""
    keys = ("train_loss", "val_loss")
    if not baseline or not all(math.isfinite(baseline.get(k, math.nan)) for k in keys):
        return None
    losses = [r for r in rows if _finite(r, "train_loss") and _finite(r, "val_loss")]
    if not losses:
        return None
    train = losses[-1]["train_loss"]
    val = min(r["val_loss"] for r in losses)
    b_train, b_val = baseline["train_loss"], baseline["val_loss"]
    if train < (1 - UNDERFIT_MARGIN) * b_train or val < (1 - UNDERFIT_MARGIN) * b_val:
        return None
    shown = (
        f"train loss {train:.4g} and best val loss {val:.4g}; {baseline['what']} gives "
        f"{b_train:.4g} / {b_val:.4g}"
    )
    if train > b_train and val > b_val:
        return (
            f"underfitting: the model is worse than a trivial baseline on both parts ({shown}): "
            "train longer or with a higher learning rate; for a regression, keep "
            "data.target_scale: auto"
        )
    return (
        f"underfitting: the model barely beats a trivial baseline on both parts ({shown}): "
        "a larger model, more epochs or a higher learning rate may help, unless the "
        "features carry little signal"
    )


def _verdict(name: str, best: int, relative: float, end_gap: float, stopped: int | None) -> str:
    """The over-fitting verdict of a model that beats the trivial baseline."""
    if stopped is not None and relative > 0.05:
        return (
            f"overfitting: validation {name} was best at epoch {best} and the "
            f"train/val gap grew to {end_gap:.4g}; stop earlier or regularise more"
        )
    if relative > 0.05:
        return (
            f"a train/val gap of {end_gap:.4g} at the end: some overfitting, though "
            "validation was still improving"
        )
    if stopped is not None:
        return (
            f"validation {name} stopped improving at epoch {best} without a large "
            "gap: more epochs will not help; a lower learning rate or a larger model might"
        )
    return (
        f"no sign of overfitting: validation {name} was still improving at the last "
        "epoch; more epochs may help"
    )
