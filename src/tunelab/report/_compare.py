"""Is run B really better than run A? Paired tests on the same samples, one plain sentence.

Compute first (a :class:`Comparison` of plain numbers), then render (terminal or JSON).
Both runs must have been evaluated on the same part of the same data: the split fingerprints
in their ``splits.json`` must match, or the comparison is refused with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tunelab.errors import RunError, SpecError
from tunelab.evaluate import (
    METRICS,
    corrected_resampled_ttest,
    get_metric,
    mcnemar_exact,
    paired_bootstrap_diff,
    verdict,
)
from tunelab.runs import Run, log_test_evaluation, read_json, seal_of_run

__all__ = ["Comparison", "MetricComparison", "compare_runs"]


@dataclass
class MetricComparison:
    metric: str
    value_a: float
    value_b: float
    diff: float  # B - A
    low: float
    high: float
    p_value: float
    test: str
    verdict: str


@dataclass
class Comparison:
    run_a: str
    run_b: str
    split: str
    n: int
    level: float
    metrics: list[MetricComparison] = field(default_factory=list)
    folds: dict | None = None  # corrected resampled t-test over CV folds, when both have them
    looks: list[dict] = field(default_factory=list)  # {study, evaluations} per seal looked at

    def to_json(self) -> dict:
        return asdict(self)


def compare_runs(
    a: Run | str | Path,
    b: Run | str | Path,
    *,
    split: str = "test",
    metrics: list[str] | None = None,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare two runs on the same part: McNemar for accuracy, a paired bootstrap for every
    metric, and the Nadeau-Bengio corrected t-test when both carry results of the same folds.

    On the test part, the comparison is a look at it: logged in the seal of every study that
    seals either run (``result.looks``)."""
    run_a, run_b = (r if isinstance(r, Run) else Run(r) for r in (a, b))
    if split not in ("test", "val"):
        raise SpecError(f"--split: expected test or val; got {split!r}")
    _same_part(run_a, run_b, split)
    pa, pb = run_a.predictions(), run_b.predictions()
    for run, preds in ((run_a, pa), (run_b, pb)):
        if f"{split}_score" not in preds:
            raise RunError(
                f"{run.path} has no {split} predictions; run `tunelab evaluate "
                f"{run.path} --split {split}` first"
            )
    if not np.array_equal(pa[f"{split}_index"], pb[f"{split}_index"]):
        raise RunError(f"the two runs' {split} predictions cover different samples")
    y = pa[f"{split}_y"]
    sa, sb = pa[f"{split}_score"], pb[f"{split}_score"]
    task = (
        "classification"
        if sa.ndim == 2 and sa.shape[1] > 1 and y.dtype.kind in "iu"
        else "regression"
    )
    names = metrics or (["accuracy", "f1_macro"] if task == "classification" else ["rmse", "mae"])
    for name in names:
        if get_metric(name).task != task:
            raise SpecError(
                f"--metric {name} is a {get_metric(name).task} metric; these runs are {task}"
            )
    label_a, label_b = run_a.path.name or "A", run_b.path.name or "B"
    if label_a == label_b:
        label_a, label_b = "A", "B"
    result = Comparison(str(run_a.path), str(run_b.path), split, int(len(y)), level)
    for name in names:
        diff = paired_bootstrap_diff(
            task, y, sa, sb, name, n_resamples=n_resamples, level=level, seed=seed
        )
        value_a = float(METRICS[name].fn(y, sa))
        value_b = float(METRICS[name].fn(y, sb))
        p, test = diff.p_value, "paired bootstrap"
        if name == "accuracy":
            mc = mcnemar_exact(sa.argmax(axis=1) == y, sb.argmax(axis=1) == y)
            p, test = mc.p_value, "McNemar"
        sentence = verdict(
            label_a, label_b, name, diff.diff, diff.low, diff.high, p, test, level=level
        )
        result.metrics.append(
            MetricComparison(
                name, value_a, value_b, diff.diff, diff.low, diff.high, p, test, sentence
            )
        )
    result.folds = _fold_test(run_a, run_b, names[0], label_a, label_b, level)
    if split == "test":
        result.looks = _log_looks(run_a, run_b)
    return result


def _log_looks(a: Run, b: Run) -> list[dict]:
    """Log the comparison once in each seal that covers the runs' test part."""
    folders = dict.fromkeys(f.resolve() for f in (seal_of_run(a.path), seal_of_run(b.path)) if f)
    who = f"compare {a.path.resolve()} {b.path.resolve()}"
    return [{"study": str(f), "evaluations": log_test_evaluation(f, run=who)} for f in folders]


def _same_part(a: Run, b: Run, split: str) -> None:
    sa, sb = a.splits, b.splits
    if split == "test":
        fa, fb = sa["test"]["fingerprint"], sb["test"]["fingerprint"]
    else:
        if len(sa["folds"]) != 1 or len(sb["folds"]) != 1:
            fa = [f["val"]["fingerprint"] for f in sa["folds"]]
            fb = [f["val"]["fingerprint"] for f in sb["folds"]]
        else:
            fa, fb = sa["folds"][0]["val"]["fingerprint"], sb["folds"][0]["val"]["fingerprint"]
    if fa != fb:
        raise RunError(
            f"cannot compare: the two runs' {split} parts differ (fingerprints {fa} and {fb}), so "
            "their scores are not about the same samples. Train both with the same data, split "
            "and seed (split.seed) to compare them"
        )


def _fold_test(
    a: Run, b: Run, metric: str, label_a: str, label_b: str, level: float
) -> dict | None:
    """The corrected resampled t-test when both runs have per-fold results of the same folds."""
    fa, fb = a.path / "folds.json", b.path / "folds.json"
    if not (fa.is_file() and fb.is_file()):
        return None
    folds_a, folds_b = a.splits["folds"], b.splits["folds"]
    same = [x["val"]["fingerprint"] for x in folds_a] == [x["val"]["fingerprint"] for x in folds_b]
    if not same:
        return None
    va = [row[metric] for row in read_json(fa)["folds"]]
    vb = [row[metric] for row in read_json(fb)["folds"]]
    n_train = int(np.mean([f["train"]["size"] for f in folds_a]))
    n_test = int(np.mean([f["val"]["size"] for f in folds_a]))
    t = corrected_resampled_ttest(va, vb, n_train=n_train, n_test=n_test, level=level)
    low, high = t.low, t.high  # mean difference ± t quantile × corrected standard error
    sentence = verdict(
        label_a,
        label_b,
        metric,
        t.mean_diff,
        low,
        high,
        t.p_value,
        "corrected t-test over folds",
        level=level,
    )
    return {
        "metric": metric,
        "folds": len(va),
        "mean_diff": t.mean_diff,
        "low": low,
        "high": high,
        "t": t.t,
        "p_value": t.p_value,
        "df": t.df,
        "verdict": sentence,
    }
