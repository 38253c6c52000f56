"""Nested cross-validation: the whole tuning procedure inside each outer fold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tunelab.errors import SpecError
from tunelab.tune import tune

SPEC = {
    "name": "nested",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.25},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.02}},
    "tune": {
        "trials": 2,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
    },
}


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nested") / "n"
    result = tune(SPEC, out=folder, nested=3, quiet=True)
    return folder, result


def read(path):
    return json.loads(path.read_text())


def test_nested_json_has_one_score_per_outer_fold(nested):
    folder, result = nested
    summary = read(folder / "nested.json")
    assert summary["outer_folds"] == 3 and summary["metric"] == "accuracy"
    assert len(summary["scores"]) == 3
    assert summary["mean"] == pytest.approx(np.mean(summary["scores"]))
    assert summary["std"] == pytest.approx(np.std(summary["scores"], ddof=1))
    assert len(summary["best_params"]) == 3
    assert result.nested == summary
    assert result.counts["COMPLETE"] == 6


def test_each_outer_fold_is_a_study_with_its_own_seal_and_best(nested):
    folder, _ = nested
    summary = read(folder / "nested.json")
    fingerprints = set()
    for k in range(3):
        study = folder / f"outer_{k}"
        seal = read(study / "seal.json")
        assert len(seal["evaluations"]) == 1
        assert seal["test_size"] == 50  # one outer fold of 150
        fingerprints.add(seal["test_fingerprint"])
        assert (study / "best" / "metrics.json").is_file()
        assert len(list((study / "trials").iterdir())) == 2
        result = read(study / "result.json")
        assert result["test"]["accuracy"]["value"] == summary["scores"][k]
        assert seal["evaluations"][0]["metrics"]["accuracy"] == summary["scores"][k]
    assert len(fingerprints) == 3


def test_the_refit_of_each_outer_fold_is_tested_on_that_fold(nested):
    folder, _ = nested
    for k in range(3):
        study = folder / f"outer_{k}"
        splits = read(study / "best" / "splits.json")
        assert splits["test"]["fingerprint"] == read(study / "seal.json")["test_fingerprint"]


def test_nested_without_refit_is_refused(tmp_path):
    tree = SPEC | {"tune": SPEC["tune"] | {"refit": False}}
    with pytest.raises(SpecError, match="tune.refit"):
        tune(tree, out=tmp_path / "n", nested=3, quiet=True)
    assert not (tmp_path / "n").exists()


# ---------------------------------------------------------------------------------------------
# the outer folds: the same kind of splitter as the inner ones, and the leakage check


def wine_csv(path, *, copies: int = 0):
    """Wine as a CSV with a ``patient`` column (45 groups of 4 rows, the last of 2).

    ``copies``: that many rows are overwritten by exact copies (features and target) of rows
    of other patients, far from them in the file.
    """
    import pandas as pd
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["target"] = y
    if copies:
        rng = np.random.default_rng(1)
        src = rng.choice(len(frame) // 2, copies, replace=False)
        dst = len(frame) // 2 + rng.choice(len(frame) - len(frame) // 2, copies, replace=False)
        frame.iloc[dst] = frame.iloc[src].to_numpy()
    frame["patient"] = np.arange(len(frame)) // 4
    frame.to_csv(path, index=False)
    return frame


def wine_spec(path, split: dict) -> dict:
    return {
        "name": "wine_nested",
        "seed": 0,
        "data": {"source": "csv", "path": str(path), "target": "target", "groups": "patient"},
        "split": split,
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 1, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}},
        "tune": SPEC["tune"] | {"trials": 1},
    }


def test_group_cv_keeps_every_patient_on_one_side_of_each_outer_fold(tmp_path, capsys):
    """The reproduction of issue 10, defect 1: 36-40 of the ~40 outer-test patients were also
    in outer-train before the outer folds followed split.cv.kind."""
    frame = wine_csv(tmp_path / "wine.csv")
    spec = wine_spec(tmp_path / "wine.csv", {"test": 0.2, "cv": {"kind": "group", "folds": 3}})
    tune(spec, out=tmp_path / "n", nested=3, quiet=True)
    out = capsys.readouterr().out
    patients = frame["patient"].to_numpy()
    tested = []
    for k in range(3):
        splits = read(tmp_path / "n" / f"outer_{k}" / "best" / "splits.json")
        test = set(patients[splits["test"]["indices"]])
        assert splits["kind"] == "group" and len(splits["folds"]) == 3
        for fold in splits["folds"]:
            train = set(patients[fold["train"]["indices"]])
            val = set(patients[fold["val"]["indices"]])
            assert not test & train, f"outer fold {k}: patients {sorted(test & train)} in both"
            assert not test & val and not train & val
        tested.append(splits["test"]["indices"])
    # the outer test parts are disjoint and cover the data set: each row tested once
    assert sorted(np.concatenate(tested).tolist()) == list(range(len(frame)))
    summary = read(tmp_path / "n" / "nested.json")
    assert [f["groups_in_test_and_dev"] for f in summary["folds"]] == [0, 0, 0]
    assert summary["outer_splitter"] == {"kind": "group", "folds": 3, "shuffle": True, "note": None}
    assert "3 outer folds by group k-fold (inner: 3-fold group)" in out


def test_outer_folds_follow_the_inner_kind():
    from tunelab.data import Dataset, outer_cv, outer_folds
    from tunelab.spec import SplitSpec

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 3)
    ds = Dataset(
        X=rng.standard_normal((60, 2)).astype(np.float32),
        y=np.arange(60) % 2,
        task="classification",
        name="t",
        classes=["a", "b"],
        groups=groups,
    )
    kinds = {
        None: "stratified",
        "auto": "stratified",
        "kfold": "kfold",
        "stratified": "stratified",
        "group": "group",
        "loo": "stratified",
        "repeated": "stratified",
    }
    for inner, expected in kinds.items():
        spec = SplitSpec(cv=None if inner is None else {"kind": inner, "folds": 3})
        cv, note = outer_cv(spec, ds, folds=4)
        assert (cv.kind, cv.folds) == (expected, 4)
        assert (note is not None) == (inner in ("loo", "repeated"))
        kind, tests, _ = outer_folds(ds, spec, folds=4, seed=0)
        assert kind == expected and len(tests) == 4
        assert sorted(np.concatenate(tests).tolist()) == list(range(60))
        if expected == "group":
            for test in tests:
                assert not set(groups[test]) & set(np.delete(groups, test))
        if expected == "stratified":  # 15 of each class: 3 or 4 of each per outer fold
            assert all(set(np.bincount(ds.y[t]).tolist()) <= {7, 8} for t in tests)
    regression = Dataset(
        X=ds.X, y=rng.standard_normal(60).astype(np.float32), task="regression", name="r"
    )
    assert outer_cv(SplitSpec(), regression, folds=3)[0].kind == "kfold"
    assert outer_cv(SplitSpec(stratify=False), ds, folds=3)[0].kind == "kfold"


def test_too_few_groups_for_the_outer_folds_names_nested(tmp_path):
    from tunelab.errors import DataError

    frame = wine_csv(tmp_path / "wine.csv")
    frame["patient"] = np.arange(len(frame)) % 3  # three patients only
    frame.to_csv(tmp_path / "wine.csv", index=False)
    spec = wine_spec(tmp_path / "wine.csv", {"cv": {"kind": "group", "folds": 2}})
    with pytest.raises(
        DataError, match=r"--nested \(outer folds\) is 4 but the data set has only 3 groups"
    ):
        tune(spec, out=tmp_path / "n", nested=4, quiet=True)


def copies_across(X: np.ndarray, part, other) -> int:
    """Rows of ``part`` whose exact bytes occur in ``other`` (the check, done independently)."""
    seen = {X[i].tobytes() for i in other}
    return sum(X[i].tobytes() in seen for i in part)


def test_outer_test_rows_with_a_copy_in_outer_train_are_dropped(tmp_path):
    """Issue 10, defect 2: with 30 exact copies planted and on_duplicates: drop, 10-13 of ~80
    outer-test rows had a copy in outer-train and splits.json said `duplicates: null`."""
    frame = wine_csv(tmp_path / "wine.csv", copies=30)
    X = frame.drop(columns=["target", "patient"]).to_numpy()
    spec = wine_spec(tmp_path / "wine.csv", {"cv": {"kind": "stratified", "folds": 2}})
    spec["split"]["on_duplicates"] = "drop"
    tune(spec, out=tmp_path / "n", nested=2, quiet=True)
    summary = read(tmp_path / "n" / "nested.json")
    dropped = 0
    for k in range(2):
        splits = read(tmp_path / "n" / f"outer_{k}" / "best" / "splits.json")
        record = splits["duplicates"]
        assert record is not None and record["on_duplicates"] == "drop"
        assert record == summary["folds"][k]["duplicates"]
        test = splits["test"]["indices"]
        dev = [i for f in splits["folds"] for i in f["train"]["indices"] + f["val"]["indices"]]
        assert copies_across(X, test, dev) == 0
        for fold in splits["folds"]:
            assert copies_across(X, fold["val"]["indices"], fold["train"]["indices"]) == 0
        dropped += record["dropped"].get("test", 0)
    assert dropped > 0  # the planted copies did cross: the check had something to drop


def test_the_outer_duplicate_check_counts_what_it_finds_and_can_stop(tmp_path):
    frame = wine_csv(tmp_path / "wine.csv", copies=30)
    X = frame.drop(columns=["target", "patient"]).to_numpy()
    from tunelab.data import load_dataset, make_splits, outer_folds
    from tunelab.errors import DataError
    from tunelab.spec import SplitSpec, load_spec

    spec = load_spec(wine_spec(tmp_path / "wine.csv", {"cv": {"kind": "stratified", "folds": 2}}))
    ds = load_dataset(spec.data)
    inner = spec.split.model_copy(update={"test": 0.0})
    _, tests, _ = outer_folds(ds, spec.split, folds=2, seed=0)
    for test in tests:
        splits = make_splits(ds, inner, seed=0, test=test)  # on_duplicates: warn
        pair = next(p for p in splits.duplicates["pairs"] if p["part"] == "test")
        assert pair["other"] == "non-test"
        assert pair["count"] == copies_across(X, test, splits.dev) > 0
        assert np.array_equal(splits.test, test)  # warn keeps them
    with pytest.raises(DataError, match="exact copies"):
        make_splits(ds, SplitSpec(test=0.0, on_duplicates="error"), seed=0, test=tests[0])
    error = wine_spec(tmp_path / "wine.csv", {"on_duplicates": "error", "cv": 2})
    with pytest.raises(DataError, match="exact copies"):  # before any training
        tune(error, out=tmp_path / "n", nested=2, quiet=True)
    assert not (tmp_path / "n" / "outer_0").exists()


# ---------------------------------------------------------------------------------------------
# what nested CV presents as its result


def test_the_result_is_the_outer_estimate_not_the_largest_inner_best(nested):
    from scipy import stats

    folder, result = nested
    summary = read(folder / "nested.json")
    scores = summary["scores"]
    assert result.best_value == pytest.approx(np.mean(scores))
    assert result.objective == "test.accuracy"
    assert result.test_metrics["accuracy"]["value"] == pytest.approx(np.mean(scores))
    half = stats.t.ppf(0.975, 2) * np.std(scores, ddof=1) / np.sqrt(3)
    assert summary["ci95"] == pytest.approx([np.mean(scores) - half, np.mean(scores) + half])
    inner = [read(folder / f"outer_{k}" / "result.json")["best_value"] for k in range(3)]
    assert summary["inner_best_values"] == inner
    assert "optimistic" in summary["inner_best_note"]
    assert summary["outer_splitter"]["kind"] == "stratified"  # holdout inside, classification


def test_the_console_prints_the_outer_estimate_as_the_result(tmp_path, capsys):
    tree = SPEC | {"train": SPEC["train"] | {"epochs": 1}, "tune": SPEC["tune"] | {"trials": 1}}
    tune(tree, out=tmp_path / "n", nested=2, quiet=True)
    out = capsys.readouterr().out
    summary = read(tmp_path / "n" / "nested.json")
    low, high = summary["ci95"]
    result_line = next(line for line in out.splitlines() if line.startswith("nested CV result"))
    assert f"test accuracy {summary['mean']:.4f} ± {summary['std']:.4f}" in result_line
    assert f"95% t-interval {low:.4f} to {high:.4f}" in result_line
    inner_line = next(line for line in out.splitlines() if "inner best" in line)
    assert "optimistic, not the result" in inner_line
    assert out.index("nested CV result") < out.index("inner best val.accuracy")
    assert out.count("outer fold ") >= 2  # each inner summary is introduced by its outer fold


@pytest.mark.slow  # a real process and four HTML reports: about 11 s
def test_the_cli_reports_each_outer_fold_and_prints_the_outer_result(tmp_path, cli):
    import yaml

    tree = SPEC | {"train": SPEC["train"] | {"epochs": 1}, "tune": SPEC["tune"] | {"trials": 1}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(tree))
    done = cli("tune", "s.yaml", "--nested", "2", "--out", "st", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "no report written" not in done.stderr  # the nested folder is not a study
    for k in range(2):
        assert (tmp_path / "st" / f"outer_{k}" / "report.html").is_file()
        assert (tmp_path / "st" / f"outer_{k}" / "best" / "report.html").is_file()
    summary = read(tmp_path / "st" / "nested.json")
    assert f"nested CV result (2 outer folds, stratified): test accuracy {summary['mean']:.4f}" in (
        done.stdout
    )
