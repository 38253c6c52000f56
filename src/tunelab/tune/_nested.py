"""Nested cross-validation: the whole tuning procedure inside each of K outer folds.

Each outer fold is held out as the test part of an inner study; the inner study searches with
the spec's own split settings (holdout val or CV) on the rest, refits its best on all of the
rest, and evaluates the held-out outer fold once. The K outer scores (mean, std and a
t-interval) estimate what "tune, then refit" achieves on new data; the inner best values do
not: each is the best of N trials on the data it was chosen on, so it is optimistic.

The outer folds are made by the same kind of splitter as the inner ones
(:func:`tunelab.data.outer_cv`): group CV outside too when the inner CV is by group, so no
group is on both sides of an outer fold. Every outer fold's parts go through the same leakage
check as a normal split (``split.on_duplicates``: warn, error or drop).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tunelab.data import Dataset, Splits, describe_duplicates, make_splits, outer_folds
from tunelab.errors import DataError
from tunelab.runs import write_json
from tunelab.spec import Spec
from tunelab.train import prepare
from tunelab.tune._console import StudyConsole, _num
from tunelab.tune._finish import StudyResult, metric_values
from tunelab.tune._open import objective_of
from tunelab.tune._run import run_study
from tunelab.tune._space import Param

__all__ = ["nested_cv", "outer_splits", "outer_splitter"]


def outer_splitter(spec: Spec, ds: Dataset, outer: int) -> dict:
    """Which outer splitter nested CV uses: ``{"kind", "folds", "note"}`` (see ``outer_cv``)."""
    from tunelab.data import outer_cv

    cv, note = outer_cv(spec.split, ds, folds=outer)
    return {"kind": cv.kind, "folds": outer, "shuffle": cv.shuffle, "note": note}


def outer_splits(spec: Spec, ds: Dataset, outer: int) -> list[Splits]:
    """For each outer fold: that fold as the test part, inner folds made on the rest.

    Each outer fold's :class:`Splits` holds the leakage check's record (``duplicates``) of its
    test part against the rest and of each inner val against its train; with
    ``split.on_duplicates: drop`` the copies are removed from the outer test part and the inner
    val parts, with ``error`` a copy stops nested CV before any training.
    """
    if outer < 2:
        raise DataError(f"--nested: expected at least 2 outer folds; got {outer}")
    _, tests, _ = outer_folds(ds, spec.split, folds=outer, seed=spec.seed)
    inner_split = spec.split.model_copy(update={"test": 0.0})
    return [make_splits(ds, inner_split, seed=spec.seed, test=test) for test in tests]


def _t_interval(scores: list[float], level: float = 0.95) -> tuple[float, float]:
    """The t-interval of the mean of the outer scores (treated as independent: see README)."""
    from scipy import stats

    mean, k = float(np.mean(scores)), len(scores)
    half = float(stats.t.ppf(0.5 + level / 2, df=k - 1)) * float(np.std(scores, ddof=1)) / k**0.5
    return mean - half, mean + half


def nested_cv(
    spec: Spec, params: list[Param], folder: Path, *, outer: int, workers: int, quiet: bool
) -> StudyResult:
    """Run nested CV in ``folder`` (``outer_<k>/`` per outer fold, ``nested.json``).

    The returned :class:`StudyResult` presents the outer estimate: ``best_value`` is the mean
    of the outer test scores, ``objective`` is ``test.<metric>`` (outer), ``test_metrics`` the
    mean of each test metric over the outer folds with its t-interval (``{name: {"value",
    "ci"}}``, the shape of a run's metrics). No single trial is "the best" of nested CV
    (each outer fold chose its own), so ``best_number`` is -1 and ``best_params`` is ``{}``;
    the per-fold choices and inner best values are in ``nested``.
    """
    base = prepare(spec)
    metric, maximize = objective_of(spec, base.ds.task)
    splitter = outer_splitter(spec, base.ds, outer)
    console = StudyConsole()
    all_splits = outer_splits(spec, base.ds, outer)
    console.rich.print(_splitter_line(splitter, spec), markup=False)
    scores, results, folds = [], [], []
    for k, splits in enumerate(all_splits):
        prep = dataclasses.replace(base, splits=splits)
        console.rich.print(  # also when quiet: the inner study's summary follows
            f"outer fold {k + 1}/{outer}: {len(splits.test)} held out as its test part; "
            f"an inner study tunes on the other {len(splits.dev)}",
            markup=False,
        )
        result = run_study(
            spec, params, folder / f"outer_{k}", workers=workers, quiet=quiet, prep=prep
        )
        scores.append(float(result.test_metrics[metric]["value"]))
        results.append(result)
        folds.append(_fold_record(splits, base.ds))
    low, high = _t_interval(scores)
    tests = [metric_values(r.test_metrics) for r in results]
    names = [m for m in tests[0] if all(m in t for t in tests)]
    summary = {
        "outer_folds": outer,
        "outer_splitter": splitter,
        "metric": metric,
        "estimate": f"test.{metric}, mean over the outer folds",
        "scores": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores, ddof=1)),
        "ci95": [low, high],
        "test_metrics_mean": {m: float(np.mean([t[m] for t in tests])) for m in names},
        "best_params": [r.best_params for r in results],
        "inner_best_values": [r.best_value for r in results],
        "inner_best_note": (
            f"each outer fold's best val.{metric} over its trials: optimistic (the best of "
            "N on the data it was chosen on), not an estimate of performance"
        ),
        "folds": folds,
    }
    write_json(folder / "nested.json", summary)
    _print_summary(console, summary)
    return StudyResult(
        path=folder,
        best_number=-1,
        best_value=summary["mean"],
        best_params={},
        objective=f"test.{metric}",
        direction="maximize" if maximize else "minimize",
        counts={k: sum(r.counts[k] for r in results) for k in results[0].counts},
        test_metrics={m: _outer_metric([t[m] for t in tests]) for m in names},
        nested=summary,
    )


def _outer_metric(values: list[float]) -> dict:
    """One test metric over the outer folds: its mean and the t-interval of the mean."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    ci = None
    if len(finite) == len(values) and len(values) > 1:
        low, high = _t_interval(values)
        ci = {"low": low, "high": high, "level": 0.95, "method": "t over outer folds"}
    return {"value": float(np.mean(values)), "ci": ci}


def _fold_record(splits: Splits, ds: Dataset) -> dict:
    """One outer fold's parts for nested.json: sizes, groups on both sides, the leakage check."""
    record = {"test_size": int(len(splits.test)), "dev_size": int(len(splits.dev))}
    if ds.groups is not None:
        shared = np.intersect1d(ds.groups[splits.test], ds.groups[splits.dev])
        record["groups_in_test_and_dev"] = int(len(shared))
    record["duplicates"] = splits.duplicates
    return record


def _splitter_line(splitter: dict, spec: Spec) -> str:
    inner = spec.split.cv
    inner_text = "holdout" if inner is None else f"{inner.folds}-fold {inner.kind}"
    line = (
        f"nested CV: {splitter['folds']} outer folds by {splitter['kind']} k-fold "
        f"(inner: {inner_text})"
    )
    return line + (f"; {splitter['note']}" if splitter["note"] else "")


def _print_summary(console: StudyConsole, summary: dict) -> None:
    """The outer estimate first, as the result; the inner bests after it, labelled."""
    metric, scores = summary["metric"], summary["scores"]
    splitter = summary["outer_splitter"]
    low, high = summary["ci95"]
    console.rich.print(
        f"nested CV result ({summary['outer_folds']} outer folds, {splitter['kind']}): "
        f"test {metric} {_num(summary['mean'])} ± {_num(summary['std'])}, "
        f"95% t-interval {_num(low)} to {_num(high)} "
        f"(per fold: {', '.join(_num(s) for s in scores)})",
        markup=False,
    )
    for k, fold in enumerate(summary["folds"]):
        leak = describe_duplicates(fold["duplicates"]) if fold["duplicates"] else ""
        if leak:
            console.rich.print(f"outer fold {k + 1}: {leak}", markup=False)
    console.rich.print(
        f"inner best val.{metric} per outer fold (optimistic, not the result): "
        + ", ".join(_num(v) for v in summary["inner_best_values"]),
        markup=False,
    )
