"""Nested cross-validation: the whole tuning procedure inside each of K outer folds.

Each outer fold is held out as the test part of an inner study; the inner study searches with
the spec's own split settings (holdout val or CV) on the rest, refits its best on all of the
rest, and evaluates the held-out outer fold once. The K outer scores (mean ± std) estimate
what "tune, then refit" achieves on new data; the inner best values do not.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tunelab.data import Dataset, Fold, Splits, make_splits
from tunelab.errors import DataError
from tunelab.runs import write_json
from tunelab.spec import Spec
from tunelab.train import prepare
from tunelab.tune._console import StudyConsole, _num
from tunelab.tune._space import Param

__all__ = ["nested_cv", "outer_splits"]


def outer_splits(spec: Spec, ds: Dataset, outer: int) -> list[Splits]:
    """For each outer fold: that fold as the test part, inner folds made on the rest."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if outer < 2:
        raise DataError(f"--nested: expected at least 2 outer folds; got {outer}")
    if ds.task == "classification":
        splitter = StratifiedKFold(outer, shuffle=True, random_state=spec.seed)
    else:
        splitter = KFold(outer, shuffle=True, random_state=spec.seed)
    inner_split = spec.split.model_copy(update={"test": 0.0})
    result = []
    for dev, test in splitter.split(np.zeros(len(ds)), ds.y):
        sub = dataclasses.replace(
            ds,
            X=ds.X[dev],
            y=ds.y[dev],
            source_test=None,
            groups=None if ds.groups is None else ds.groups[dev],
        )
        inner = make_splits(sub, inner_split, seed=spec.seed)
        folds = [Fold(np.sort(dev[f.train]), np.sort(dev[f.val])) for f in inner.folds]
        result.append(Splits(inner.kind, np.sort(test), folds, inner.seed))
    return result


def nested_cv(
    spec: Spec, params: list[Param], folder: Path, *, outer: int, workers: int, quiet: bool
):
    from tunelab.tune._run import StudyResult, objective_of, run_study

    base = prepare(spec)
    metric, maximize = objective_of(spec, base.ds.task)
    scores, results = [], []
    for k, splits in enumerate(outer_splits(spec, base.ds, outer)):
        prep = dataclasses.replace(base, splits=splits)
        if not quiet:
            StudyConsole().note(f"outer fold {k + 1}/{outer}: test {len(splits.test)} held out")
        result = run_study(
            spec, params, folder / f"outer_{k}", workers=workers, quiet=quiet, prep=prep
        )
        scores.append(float(result.test_metrics[metric]))
        results.append(result)
    summary = {
        "outer_folds": outer,
        "metric": metric,
        "scores": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores, ddof=1)),
        "best_params": [r.best_params for r in results],
    }
    write_json(folder / "nested.json", summary)
    console = StudyConsole()
    console.rich.print(
        f"nested CV ({outer} outer folds): test {metric} {_num(summary['mean'])} ± "
        f"{_num(summary['std'])} (per fold: {', '.join(_num(s) for s in scores)})",
        markup=False,
    )
    best = (
        max(results, key=lambda r: r.best_value)
        if maximize
        else min(results, key=lambda r: r.best_value)
    )
    return StudyResult(
        path=folder,
        best_number=best.best_number,
        best_value=best.best_value,
        best_params=best.best_params,
        objective=best.objective,
        direction=best.direction,
        counts={k: sum(r.counts[k] for r in results) for k in best.counts},
        nested=summary,
    )
