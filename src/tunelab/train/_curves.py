"""Learning and validation curves with cross-validation: mean ± std per point.

A learning curve trains on growing fractions of each fold's training part; a validation curve
trains with each value of one spec path. Both evaluate the fitted model (in eval mode) on the
training data it saw and on the fold's validation part, so the gap between the two curves shows
over-fitting (a wide gap) or under-fitting (both poor and close).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import SpecError
from tunelab.evaluate import get_metric, greater_is_better
from tunelab.runs import write_json
from tunelab.spec import Spec, load_spec, set_values
from tunelab.train._console import Console

__all__ = ["learning_curve", "validation_curve"]


def learning_curve(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    sizes: Sequence[float],
    metric: str | None = None,
    folds: int = 5,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    quiet: bool = False,
) -> dict[str, Any]:
    """Train/val score against the fraction of each fold's training part used."""
    if not sizes or any(not 0 < s <= 1 for s in sizes):
        raise SpecError(
            f"--sizes: expected fractions in (0, 1], e.g. 0.1,0.25,0.5,1.0; got {list(sizes)}"
        )
    spec = _with_cv(load_spec(spec, overrides=overrides), folds)
    points = [{"fraction": float(f)} for f in sorted(sizes)]
    return _curve(
        spec, "learning", points, [spec] * len(points), metric=metric, out=out, quiet=quiet
    )


def validation_curve(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    param: str,
    values: Sequence[Any],
    metric: str | None = None,
    folds: int = 5,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    quiet: bool = False,
) -> dict[str, Any]:
    """Train/val score against the values of one spec path (e.g. train.optimizer.lr)."""
    from tunelab.spec import parse_spec

    base = _with_cv(load_spec(spec, overrides=overrides), folds)
    specs = []
    for value in values:
        try:
            specs.append(parse_spec(set_values(base.model_dump(mode="json"), {param: value})))
        except SpecError as exc:
            raise SpecError(f"--param {param} = {value!r}: {exc}") from None
    points = [{"param": param, "value": v, "fraction": 1.0} for v in values]
    return _curve(base, "validation", points, specs, metric=metric, out=out, quiet=quiet)


def _with_cv(spec: Spec, folds: int) -> Spec:
    """Curves need folds: the spec's own CV, or ``folds``-fold CV of the non-test part."""
    from tunelab.spec import parse_spec

    if spec.split.cv is not None:
        return spec
    return parse_spec(set_values(spec.model_dump(mode="json"), {"split.cv": {"folds": folds}}))


def _curve(
    base: Spec, kind: str, points: list[dict], specs: list[Spec], *, metric, out, quiet
) -> dict:
    from tunelab.train._fold import evaluate_part, train_fold
    from tunelab.train._plan import prepare

    console = Console(quiet=quiet)
    prep0 = prepare(base)
    metric = metric or ("accuracy" if prep0.ds.task == "classification" else "rmse")
    if metric != "loss":
        get_metric(metric)
    rng = np.random.default_rng(base.seed)
    for point, spec in zip(points, specs, strict=True):
        prep = prepare(spec, reuse=prep0)
        train_scores, val_scores = [], []
        for k, fold in enumerate(prep.splits.folds):
            train_idx = _subsample(fold.train, point["fraction"], prep.ds, rng)
            model, history, stats = train_fold(prep, train_idx, fold.val, seed=spec.seed + k)
            if history.failure:
                train_scores.append(math.nan)
                val_scores.append(math.nan)
                continue
            train_scores.append(evaluate_part(prep, model, train_idx, stats=stats)[1][metric])
            val_scores.append(evaluate_part(prep, model, fold.val, stats=stats)[1][metric])
        point |= {
            "train_size": int(round(point["fraction"] * len(prep.splits.folds[0].train))),
            "train_mean": _nanmean(train_scores),
            "train_std": _nanstd(train_scores),
            "val_mean": _nanmean(val_scores),
            "val_std": _nanstd(val_scores),
            "train_folds": train_scores,
            "val_folds": val_scores,
        }
        if not quiet:
            label = (
                f"{point['fraction']:.0%} ({point['train_size']})"
                if kind == "learning"
                else f"{point['value']}"
            )
            console.note(
                f"{label}: train {point['train_mean']:.4f} ± {point['train_std']:.4f} | "
                f"val {point['val_mean']:.4f} ± {point['val_std']:.4f}"
            )
    higher = metric != "loss" and greater_is_better(metric)
    result = {
        "kind": kind,
        "metric": metric,
        "folds": len(prep0.splits.folds),
        "spec": base.name,
        "points": points,
        "diagnosis": _diagnose(kind, points, higher=higher),
    }
    path = Path(out) if out is not None else Path("runs") / f"{base.name}-{kind}-curve.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    _table(console, result)
    console.print(result["diagnosis"], markup=False)
    console.print(f"saved to {path}", markup=False)
    return result


def _subsample(idx: np.ndarray, fraction: float, ds, rng: np.random.Generator) -> np.ndarray:
    """A random (stratified for classification) ``fraction`` of ``idx``, at least one per class."""
    if fraction >= 1.0:
        return idx
    if ds.task != "classification":
        keep = rng.choice(len(idx), size=max(2, int(round(fraction * len(idx)))), replace=False)
        return np.sort(idx[keep])
    chosen = []
    for cls in np.unique(ds.y[idx]):
        members = idx[ds.y[idx] == cls]
        take = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _nanstd(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0


def _diagnose(kind: str, points: list[dict], *, higher: bool) -> str:
    last = points[-1]
    gap = (last["train_mean"] - last["val_mean"]) * (1 if higher else -1)
    if kind == "learning":
        rising = len(points) > 1 and (last["val_mean"] - points[-2]["val_mean"]) * (
            1 if higher else -1
        ) > max(last["val_std"], 1e-3)
        if gap > 0.05 and rising:
            return (
                f"high variance: a train/val gap of {gap:.3f} at full size and validation still "
                "rising; more data (or more regularisation) should help"
            )
        if gap > 0.05:
            return f"a train/val gap of {gap:.3f} at full size: the model overfits; regularise more"
        if rising:
            return "validation still improving with more data: more data should help"
        return "train and val are close and flat: bias dominates; a bigger model or longer training may help"
    best = (
        max(points, key=lambda p: p["val_mean"])
        if higher
        else min(points, key=lambda p: p["val_mean"])
    )
    best_gap = (best["train_mean"] - best["val_mean"]) * (1 if higher else -1)
    return (
        f"best validation at {best['param']} = {best['value']} ({best['val_mean']:.4f} ± "
        f"{best['val_std']:.4f}); train/val gap there {best_gap:.3f}"
    )


def _table(console: Console, result: dict) -> None:
    from rich.table import Table

    metric = result["metric"]
    table = Table(
        title=f"{result['kind']} curve: {metric}, mean ± std over {result['folds']} folds",
        show_edge=False,
        header_style="bold",
    )
    first = "train size" if result["kind"] == "learning" else result["points"][0]["param"]
    for col in (first, f"train {metric}", f"val {metric}"):
        table.add_column(col, justify="right")
    for p in result["points"]:
        label = (
            f"{p['train_size']} ({p['fraction']:.0%})"
            if result["kind"] == "learning"
            else str(p["value"])
        )
        table.add_row(
            label,
            f"{p['train_mean']:.4f} ± {p['train_std']:.4f}",
            f"{p['val_mean']:.4f} ± {p['val_std']:.4f}",
        )
    console.rich.print(table)
