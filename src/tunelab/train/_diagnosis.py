"""Over- and under-fitting, read off a run's per-epoch history."""

from __future__ import annotations

import math

__all__ = ["diagnose"]


def diagnose(rows: list[dict], *, metric: str | None, higher_is_better: bool) -> dict | None:
    """Train/val gap at the end and at the best epoch, and where validation stopped improving.

    ``metric`` is a logged metric (e.g. ``accuracy``) or None for the loss. Train values are
    measured during the epoch (with dropout and augmentation on), so a small negative gap is
    normal; a large positive one is overfitting.
    """
    name = metric or "loss"
    higher = higher_is_better if metric else False
    rows = [
        r
        for r in rows
        if f"val_{name}" in r
        and f"train_{name}" in r
        and math.isfinite(r[f"val_{name}"])
        and math.isfinite(r[f"train_{name}"])
    ]
    if not rows:
        return None

    def gap(row: dict) -> float:  # positive = train looks better than validation
        diff = row[f"train_{name}"] - row[f"val_{name}"]
        return diff if higher else -diff

    pick = max if higher else min
    best = pick(rows, key=lambda r: r[f"val_{name}"])
    last = rows[-1]
    # a stall, not a one-epoch dip: at least 2 epochs and a tenth of the run past the best
    stall = last["epoch"] - best["epoch"]
    stopped = best["epoch"] if stall >= max(2, round(0.1 * last["epoch"])) else None
    end_gap, best_gap = gap(last), gap(best)
    scale = max(abs(last[f"val_{name}"]), 1e-12) if not higher else 1.0
    relative = end_gap / scale
    if stopped is not None and relative > 0.05:
        verdict = (
            f"overfitting: validation {name} was best at epoch {best['epoch']} and the "
            f"train/val gap grew to {end_gap:.4g}; stop earlier or regularise more"
        )
    elif relative > 0.05:
        verdict = (
            f"a train/val gap of {end_gap:.4g} at the end: some overfitting, though "
            "validation was still improving"
        )
    elif stopped is not None:
        verdict = (
            f"validation {name} stopped improving at epoch {best['epoch']} without a large "
            "gap: more epochs will not help; a lower learning rate or a larger model might"
        )
    else:
        verdict = (
            f"no sign of overfitting: validation {name} was still improving at the last "
            "epoch; more epochs may help"
        )
    return {
        "metric": name,
        "best_epoch": best["epoch"],
        "last_epoch": last["epoch"],
        "gap_at_end": end_gap,
        "gap_at_best": best_gap,
        "stopped_improving_at": stopped,
        "verdict": verdict,
    }
