"""Nested CV's record and console, in process and small (two outer folds of iris, one epoch):
every field of nested.json and of the result, the exact lines a user reads, the outer-fold
leakage line, the refusal of one outer fold. Found unguarded by scripts/mutation.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from tunelab.data import describe_duplicates, load_dataset, make_splits, outer_folds
from tunelab.errors import DataError
from tunelab.spec import load_spec
from tunelab.tune import tune
from tunelab.tune._console import StudyConsole
from tunelab.tune._nested import (
    _outer_metric,
    _print_summary,
    _splitter_line,
    _t_interval,
    outer_splits,
)

SPEC = {
    "name": "nested_small",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.25},
    "model": {"name": "mlp", "hidden": [4]},
    "train": {"epochs": 1, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.02}},
    "tune": {
        "trials": 2,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
    },
}


def read(path):
    return json.loads(path.read_text())


def num(value: float) -> str:
    return f"{value:.4f}"


@pytest.fixture
def nested(tmp_path):
    # function-scoped on purpose: mutmut credits a module fixture's calls only to the first
    # test that sets it up, so the other tests would not be run against its mutants
    folder = tmp_path / "n"
    capture = pytest.MonkeyPatch()
    import io
    import sys

    out = io.StringIO()
    capture.setattr(sys, "stdout", out)
    try:
        result = tune(SPEC, out=folder, nested=2, quiet=True)
    finally:
        capture.undo()
    return folder, result, out.getvalue()


def test_nested_json_holds_the_outer_estimate_and_labels_the_inner_bests(nested):
    folder, result, _ = nested
    summary = read(folder / "nested.json")
    inner = [read(folder / f"outer_{k}" / "result.json") for k in range(2)]
    scores = [r["test"]["accuracy"]["value"] for r in inner]
    assert summary["outer_folds"] == 2
    assert summary["outer_splitter"] == {
        "kind": "stratified",
        "folds": 2,
        "shuffle": True,
        "note": None,
    }
    assert summary["metric"] == "accuracy"
    assert summary["estimate"] == "test.accuracy, mean over the outer folds"
    assert summary["scores"] == scores
    assert summary["mean"] == pytest.approx(np.mean(scores))
    assert summary["std"] == pytest.approx(np.std(scores, ddof=1))
    half = stats.t.ppf(0.975, 1) * np.std(scores, ddof=1) / np.sqrt(2)
    assert summary["ci95"] == pytest.approx([np.mean(scores) - half, np.mean(scores) + half])
    names = set(inner[0]["test"])
    assert set(summary["test_metrics_mean"]) == names
    for name in names:
        assert summary["test_metrics_mean"][name] == pytest.approx(
            np.mean([r["test"][name]["value"] for r in inner])
        )
    assert summary["best_params"] == [r["best_params"] for r in inner]
    assert summary["inner_best_values"] == [r["best_value"] for r in inner]
    assert summary["inner_best_note"] == (
        "each outer fold's best val.accuracy over its trials: optimistic (the best of N on the "
        "data it was chosen on), not an estimate of performance"
    )
    assert summary["folds"] == [
        {"test_size": 75, "dev_size": 75, "duplicates": summary["folds"][k]["duplicates"]}
        for k in range(2)
    ]
    for k in range(2):
        assert (
            summary["folds"][k]["duplicates"]
            == read(folder / f"outer_{k}" / "best" / "splits.json")["duplicates"]
        )


def test_the_result_is_the_outer_estimate(nested):
    folder, result, _ = nested
    summary = read(folder / "nested.json")
    assert result.path == folder
    assert result.best_number == -1
    assert result.best_value == summary["mean"]
    assert result.best_params == {}
    assert result.objective == "test.accuracy"
    assert result.direction == "maximize"
    assert result.counts["COMPLETE"] == 4
    assert sum(result.counts.values()) == 4
    assert {m: v["value"] for m, v in result.test_metrics.items()} == summary["test_metrics_mean"]
    inner = [read(folder / f"outer_{k}" / "result.json")["test"] for k in range(2)]
    for name, slot in result.test_metrics.items():
        low, high = _t_interval([t[name]["value"] for t in inner])
        assert slot["ci"] == {
            "low": pytest.approx(low),
            "high": pytest.approx(high),
            "level": 0.95,
            "method": "t over outer folds",
        }
    assert result.nested == summary


def test_the_console_says_how_it_split_and_what_the_result_is(nested):
    folder, _, out = nested
    summary = read(folder / "nested.json")
    lines = out.splitlines()
    assert lines[0] == "nested CV: 2 outer folds by stratified k-fold (inner: holdout)"
    for k in range(2):
        assert (
            f"outer fold {k + 1}/2: 75 held out as its test part; an inner study tunes on the "
            "other 75"
        ) in lines
    (low, high), (a, b) = summary["ci95"], summary["scores"]
    result = (
        f"nested CV result (2 outer folds, stratified): test accuracy {num(summary['mean'])} "
        f"± {num(summary['std'])}, 95% t-interval {num(low)} to {num(high)} "
        f"(per fold: {num(a)}, {num(b)})"
    )
    assert result in lines
    inner = "inner best val.accuracy per outer fold (optimistic, not the result): " + ", ".join(
        num(v) for v in summary["inner_best_values"]
    )
    assert lines[-1] == inner
    assert lines.index(result) == len(lines) - 2  # no leakage line: iris has no copies across
    # quiet: the inner studies print nothing, so these five lines are all there is
    assert len(lines) == 5


def test_a_minimised_objective_is_the_direction_of_the_result(tmp_path):
    tree = SPEC | {"tune": SPEC["tune"] | {"trials": 1, "objective": "val.log_loss"}}
    result = tune(tree, out=tmp_path / "n", nested=2, quiet=True)
    summary = read(tmp_path / "n" / "nested.json")
    assert result.direction == "minimize"
    assert result.objective == "test.log_loss"
    assert summary["metric"] == "log_loss"
    assert summary["inner_best_note"].startswith("each outer fold's best val.log_loss over")
    # log loss differs between the folds: the spread is the sample std (ddof 1)
    assert summary["std"] > 0
    assert summary["std"] == pytest.approx(np.std(summary["scores"], ddof=1))


def test_copies_across_an_outer_fold_are_printed_per_fold(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).round(3)
    y = np.arange(40) % 2
    X[20:30], y[20:30] = X[0:10], y[0:10]  # ten exact copies, rows 0-9 again
    lines = ["a,b,c,target"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, y, strict=True)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    tree = SPEC | {
        "data": {"source": "csv", "path": str(tmp_path / "d.csv"), "target": "target"},
        "tune": SPEC["tune"] | {"trials": 1},
    }
    tune(tree, out=tmp_path / "n", nested=2, quiet=True)
    out = capsys.readouterr().out.splitlines()
    summary = read(tmp_path / "n" / "nested.json")
    printed = 0
    for k, fold in enumerate(summary["folds"]):
        leak = describe_duplicates(fold["duplicates"]) if fold["duplicates"] else ""
        if leak:
            assert f"outer fold {k + 1}: {leak}" in out
            printed += 1
    assert printed >= 1


def test_one_outer_fold_is_refused():
    spec = load_spec(SPEC)
    from tunelab.data import load_dataset

    with pytest.raises(DataError) as err:
        outer_splits(spec, load_dataset(spec.data), 1)
    assert str(err.value) == "--nested: expected at least 2 outer folds; got 1"


def test_the_splitter_line_names_the_inner_cv_and_the_note():
    spec = load_spec(SPEC | {"split": {"test": 0.2, "cv": {"kind": "kfold", "folds": 3}}})
    line = _splitter_line({"folds": 4, "kind": "kfold", "note": None}, spec)
    assert line == "nested CV: 4 outer folds by kfold k-fold (inner: 3-fold kfold)"
    line = _splitter_line({"folds": 3, "kind": "stratified", "note": "why"}, spec)
    assert line == "nested CV: 3 outer folds by stratified k-fold (inner: 3-fold kfold); why"


def test_the_t_interval_of_the_outer_scores():
    scores = [0.7, 0.8, 0.9, 0.85]
    half = stats.t.ppf(0.95, 3) * np.std(scores, ddof=1) / 2
    assert _t_interval(scores, 0.9) == pytest.approx(
        (np.mean(scores) - half, np.mean(scores) + half)
    )
    half = stats.t.ppf(0.975, 3) * np.std(scores, ddof=1) / 2
    assert _t_interval(scores) == pytest.approx((np.mean(scores) - half, np.mean(scores) + half))


def test_an_outer_metric_is_the_mean_with_a_t_interval_only_when_every_fold_has_one():
    values = [0.5, 0.7, 0.9]
    low, high = _t_interval(values)
    assert _outer_metric(values) == {
        "value": pytest.approx(0.7),
        "ci": {"low": low, "high": high, "level": 0.95, "method": "t over outer folds"},
    }
    assert _outer_metric([0.5, float("nan")])["ci"] is None
    assert _outer_metric([0.5, float("inf")])["ci"] is None
    assert _outer_metric([0.25]) == {"value": 0.25, "ci": None}  # one fold: no interval


def test_outer_splits_are_made_with_the_spec_seed():
    """Called with a spec whose split has no seed of its own (a study fixes one first)."""
    spec = load_spec(SPEC)
    assert spec.split.seed is None
    ds = load_dataset(spec.data)
    splits = outer_splits(spec, ds, 2)
    _, tests, _ = outer_folds(ds, spec.split, folds=2, seed=spec.seed)
    inner = spec.split.model_copy(update={"test": 0.0})
    for got, test in zip(splits, tests, strict=True):
        want = make_splits(ds, inner, seed=spec.seed, test=test)
        assert got.test.tolist() == want.test.tolist()
        assert got.folds[0].val.tolist() == want.folds[0].val.tolist()
        assert got.seed == spec.seed


def test_an_outer_fold_too_small_for_the_inner_folds_names_no_test_fraction(tmp_path):
    """The outer fold is the test part, so the inner split's own split.test is 0: the message
    does not blame a split.test fraction that is not used."""
    lines = ["a,target"] + [f"{i},{i % 2}" for i in range(6)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    tree = SPEC | {
        "data": {"source": "csv", "path": str(tmp_path / "d.csv"), "target": "target"},
        "split": {"test": 0.2, "cv": {"kind": "kfold", "folds": 4}},
    }
    spec = load_spec(tree)
    with pytest.raises(DataError) as err:
        outer_splits(spec, load_dataset(spec.data), 2)
    assert str(err.value) == (
        "6 rows cannot make 4 folds: split.cv.folds is 4 but the non-test part has only 3 "
        "samples, and every fold needs at least one. Use at most 3 folds, `split.cv: loo`, "
        "a smaller split.test or more rows"
    )


def test_the_summary_prints_a_metric_name_with_brackets_as_written(capsys):
    """Plain text, not rich markup: a registered metric may be called ``hit[b]`` (``[b]`` is
    rich markup for bold)."""
    summary = {
        "metric": "hit[b]",
        "scores": [0.5, 0.7],
        "outer_splitter": {"kind": "kfold"},
        "ci95": [0.1, 0.9],
        "outer_folds": 2,
        "mean": 0.6,
        "std": 0.1414,
        "folds": [{"duplicates": None}, {"duplicates": {"pairs": []}}],
        "inner_best_values": [0.8, 0.9],
    }
    _print_summary(StudyConsole(), summary)
    assert capsys.readouterr().out.splitlines() == [
        "nested CV result (2 outer folds, kfold): test hit[b] 0.6000 ± 0.1414, 95% t-interval "
        "0.1000 to 0.9000 (per fold: 0.5000, 0.7000)",
        "inner best val.hit[b] per outer fold (optimistic, not the result): 0.8000, 0.9000",
    ]


@pytest.mark.slow
def test_every_inner_study_runs_with_the_workers_asked_for(tmp_path):
    tune(SPEC, out=tmp_path / "n", nested=2, workers=2, quiet=True)
    for k in range(2):
        assert read(tmp_path / "n" / f"outer_{k}" / "study.json")["workers"] == 2
