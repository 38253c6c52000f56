"""Splits: the sealed test part first, then holdout or CV folds, with content fingerprints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tunelab.data import Dataset, Splits, fingerprint, load_dataset, make_cv, make_splits
from tunelab.errors import DataError, TunelabError
from tunelab.spec import BuiltinData, CVSpec, SplitSpec


@pytest.fixture(scope="module")
def iris() -> Dataset:
    return load_dataset(BuiltinData(source="iris"))


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset(BuiltinData(source="digits"))


def table(
    n: int,
    *,
    task: str = "classification",
    y: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    source_test: np.ndarray | None = None,
) -> Dataset:
    """A small writable table whose rows are all different."""
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    if y is None:
        y = np.arange(n) % 3 if task == "classification" else rng.standard_normal(n)
    y = np.asarray(y, np.int64 if task == "classification" else np.float32)
    classes = [str(c) for c in range(int(y.max()) + 1)] if task == "classification" else None
    return Dataset(
        X=X, y=y, task=task, name="table", classes=classes, groups=groups, source_test=source_test
    )


def split(ds: Dataset, seed: int = 0, **spec) -> Splits:
    return make_splits(ds, SplitSpec(**spec), seed=seed)


def assert_partition(splits: Splits, n: int) -> None:
    """test and every fold's train/val are sorted, disjoint and together cover 0..n-1."""
    assert np.all(np.diff(splits.test) > 0)
    assert len(np.intersect1d(splits.test, splits.dev)) == 0
    assert np.array_equal(np.union1d(splits.test, splits.dev), np.arange(n))
    for fold in splits.folds:
        assert np.all(np.diff(fold.train) > 0) and np.all(np.diff(fold.val) > 0)
        assert len(np.intersect1d(fold.train, fold.val)) == 0
        assert len(np.intersect1d(fold.train, splits.test)) == 0
        assert len(np.intersect1d(fold.val, splits.test)) == 0
        assert np.array_equal(np.union1d(fold.train, fold.val), splits.dev)


def assert_val_covers_dev_once(splits: Splits) -> None:
    vals = np.concatenate([f.val for f in splits.folds])
    assert len(vals) == len(splits.dev)
    assert np.array_equal(np.sort(vals), splits.dev)


# ----------------------------------------------------------------------------------------------
# holdout


def test_holdout_sizes_and_disjoint_parts(iris):
    splits = split(iris, test=0.2, val=0.25)
    assert splits.kind == "holdout" and len(splits.folds) == 1
    assert len(splits.test) == 30
    assert len(splits.folds[0].val) == 30 and len(splits.folds[0].train) == 90
    assert_partition(splits, len(iris))


@pytest.mark.parametrize("test, val", [(0.1, 0.2), (0.33, 0.1), (0.05, 0.5)])
def test_holdout_sizes_follow_the_fractions(digits, test, val):
    splits = split(digits, test=test, val=val, stratify=False)
    n_test = int(np.ceil(test * len(digits)))
    assert len(splits.test) == n_test
    assert len(splits.folds[0].val) == int(np.ceil(val * (len(digits) - n_test)))
    assert_partition(splits, len(digits))


def test_no_test_part(iris):
    splits = split(iris, test=0, val=0.2)
    assert splits.test.dtype.kind == "i" and len(splits.test) == 0
    assert np.array_equal(splits.dev, np.arange(150))


@pytest.mark.parametrize("name", ["iris", "digits"])
def test_stratified_holdout_keeps_class_proportions(name, iris, digits):
    ds = {"iris": iris, "digits": digits}[name]
    splits = split(ds, test=0.2, val=0.25)
    full = np.bincount(ds.y, minlength=ds.num_classes)
    test = np.bincount(ds.y[splits.test], minlength=ds.num_classes)
    assert np.all(np.abs(test - 0.2 * full) <= 1.0)
    dev = full - test
    val = np.bincount(ds.y[splits.folds[0].val], minlength=ds.num_classes)
    assert np.all(np.abs(val - 0.25 * dev) <= 1.0)


def test_unstratified_holdout_drifts_from_class_proportions(digits):
    # the same fractions without stratification are further off for some class and seed
    worst = max(
        np.abs(
            np.bincount(digits.y[split(digits, seed, test=0.2, stratify=False).test], minlength=10)
            - 0.2 * np.bincount(digits.y)
        ).max()
        for seed in range(3)
    )
    assert worst > 2


def test_same_seed_same_indices_other_seed_other_indices(iris):
    a, b, c = split(iris, 3), split(iris, 3), split(iris, 4)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.folds[0].val, b.folds[0].val)
    assert not np.array_equal(a.test, c.test)
    assert a.seed == 3 and c.seed == 4


def test_spec_seed_wins_over_the_run_seed(iris):
    a = make_splits(iris, SplitSpec(seed=11), seed=0)
    b = make_splits(iris, SplitSpec(seed=11), seed=99)
    assert a.seed == b.seed == 11 and np.array_equal(a.test, b.test)
    assert np.array_equal(a.test, split(iris, 11).test)


def test_stratification_defaults_off_for_regression():
    ds = table(40, task="regression")
    splits = split(ds, test=0.25)
    assert len(splits.test) == 10
    assert_partition(splits, 40)


def test_stratify_true_on_continuous_targets_is_a_data_error():
    with pytest.raises(DataError, match="stratified split.test"):
        split(table(40, task="regression"), test=0.25, stratify=True)


def test_class_with_one_member_under_stratification():
    ds = table(10, y=[0] * 9 + [1])
    with pytest.raises(DataError) as info:
        split(ds, test=0.2)
    message = str(info.value)
    assert "smallest class has 1 sample" in message and "split.stratify: false" in message
    assert isinstance(info.value, TunelabError)
    assert len(split(ds, test=0.2, stratify=False).test) == 2


def test_fraction_that_leaves_one_side_empty():
    with pytest.raises(
        DataError, match="split.test=0.9 leaves no sample on one side.*has 3 samples"
    ):
        split(table(3), test=0.9, stratify=False)
    with pytest.raises(
        DataError, match="split.val=0.9 leaves no sample on one side.*has 1 samples"
    ):
        split(table(3), test=0.5, val=0.9, stratify=False)


# ----------------------------------------------------------------------------------------------
# cross-validation


def test_test_part_is_carved_before_the_folds(iris):
    holdout = split(iris, test=0.2)
    cv = split(iris, test=0.2, cv=CVSpec(folds=4))
    assert np.array_equal(holdout.test, cv.test)
    assert len(cv.folds) == 4
    assert_partition(cv, len(iris))
    assert_val_covers_dev_once(cv)


@pytest.mark.parametrize("kind", ["kfold", "stratified"])
def test_kfold_and_stratified(iris, kind):
    splits = split(iris, test=0.2, cv=CVSpec(kind=kind, folds=5))
    assert splits.kind == kind and len(splits.folds) == 5
    assert [len(f.val) for f in splits.folds] == [24] * 5
    assert_partition(splits, len(iris))
    assert_val_covers_dev_once(splits)


def test_stratified_folds_keep_class_proportions(digits):
    splits = split(digits, test=0.2, cv=CVSpec(kind="stratified", folds=5))
    dev_counts = np.bincount(digits.y[splits.dev], minlength=10)
    for fold in splits.folds:
        val = np.bincount(digits.y[fold.val], minlength=10)
        assert np.all(np.abs(val - dev_counts / 5) <= 1.0)


def test_cv_is_seeded(iris):
    spec = {"test": 0.2, "cv": CVSpec(kind="kfold", folds=3)}
    a, b, c = split(iris, 1, **spec), split(iris, 1, **spec), split(iris, 2, **spec)
    assert all(np.array_equal(f.val, g.val) for f, g in zip(a.folds, b.folds, strict=True))
    assert not all(np.array_equal(f.val, g.val) for f, g in zip(a.folds, c.folds, strict=True))


def test_unshuffled_kfold_takes_contiguous_blocks():
    ds = table(12, task="regression")
    splits = split(ds, test=0, cv=CVSpec(kind="kfold", folds=3, shuffle=False))
    assert [f.val.tolist() for f in splits.folds] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_group_cv_keeps_each_group_on_one_side():
    groups = np.repeat(np.arange(10), 6)
    ds = table(60, groups=groups)
    splits = split(ds, test=0.2, cv=CVSpec(kind="group", folds=4))
    assert splits.kind == "group" and len(splits.folds) == 4
    assert_partition(splits, 60)
    assert_val_covers_dev_once(splits)
    test_groups = set(groups[splits.test])
    assert len(test_groups) == 2 and not test_groups & set(groups[splits.dev])
    for fold in splits.folds:
        assert not set(groups[fold.train]) & set(groups[fold.val])


def test_group_cv_with_too_few_groups():
    ds = table(12, groups=np.repeat([0, 1, 2], 4))
    with pytest.raises(
        DataError, match="split.cv.folds is 5 but the non-test part has only 3 groups"
    ):
        split(ds, test=0, cv=CVSpec(kind="group", folds=5))


def test_group_cv_without_group_labels():
    with pytest.raises(DataError, match="no group labels"):
        split(table(12), test=0, cv=CVSpec(kind="group", folds=2))


def test_leave_one_out_on_a_tiny_set():
    ds = table(6, task="regression")
    splits = split(ds, test=0, cv="loo")
    assert splits.kind == "loo" and len(splits.folds) == 6
    assert [f.val.tolist() for f in splits.folds] == [[i] for i in range(6)]
    assert all(len(f.train) == 5 for f in splits.folds)
    assert_partition(splits, 6)


def test_repeated_gives_folds_times_repeats(iris):
    splits = split(iris, test=0.2, cv=CVSpec(kind="repeated", folds=3, repeats=4))
    assert splits.kind == "repeated" and len(splits.folds) == 12
    assert_partition(splits, len(iris))
    for r in range(4):  # each repeat is a full k-fold of the dev part
        assert_val_covers_dev_once(Splits("kfold", splits.test, splits.folds[3 * r : 3 * r + 3], 0))
    first, second = splits.folds[0:3], splits.folds[3:6]
    assert not all(np.array_equal(f.val, g.val) for f, g in zip(first, second, strict=True))


def test_repeated_for_regression():
    splits = split(
        table(30, task="regression"), test=0, cv=CVSpec(kind="repeated", folds=3, repeats=2)
    )
    assert len(splits.folds) == 6 and np.array_equal(splits.dev, np.arange(30))


def test_auto_is_stratified_for_classification_and_kfold_for_regression(iris):
    assert split(iris, cv=CVSpec(folds=3)).kind == "stratified"
    assert split(table(30, task="regression"), cv=CVSpec(folds=3)).kind == "kfold"
    assert type(make_cv(CVSpec(), iris, seed=0)).__name__ == "StratifiedKFold"
    regression = table(30, task="regression")
    assert type(make_cv(CVSpec(), regression, seed=0)).__name__ == "KFold"


def test_more_folds_than_samples():
    with pytest.raises(DataError) as info:
        split(table(3), test=0, cv=CVSpec(kind="kfold", folds=5))
    message = str(info.value)
    assert "split.cv.folds is 5" in message and "only 3 samples" in message


def test_stratified_cv_with_a_rare_class():
    ds = table(12, y=[0] * 10 + [1] * 2)
    with pytest.raises(DataError, match="smallest class in the non-test part has 2"):
        split(ds, test=0, cv=CVSpec(kind="stratified", folds=3))
    assert len(split(ds, test=0, cv=CVSpec(kind="kfold", folds=3)).folds) == 3


# ----------------------------------------------------------------------------------------------
# the source's own test part


def test_source_test_part():
    ds = table(30, source_test=np.arange(20, 30)[::-1])
    splits = split(ds, test="source", val=0.2)
    assert splits.test.tolist() == list(range(20, 30))
    assert np.array_equal(splits.dev, np.arange(20))
    assert len(splits.folds[0].val) == 4
    assert_partition(splits, 30)


def test_source_test_part_missing():
    with pytest.raises(DataError, match="has no test part of its own"):
        split(table(30), test="source")


# ----------------------------------------------------------------------------------------------
# fingerprints


def test_fingerprint_depends_on_content_and_order():
    ds = table(20)
    idx = np.arange(5)
    assert fingerprint(ds, idx) == fingerprint(ds, idx.copy())
    assert len(fingerprint(ds, idx)) == 16 and int(fingerprint(ds, idx), 16) >= 0
    assert fingerprint(ds, idx) != fingerprint(ds, idx[::-1])
    assert fingerprint(ds, idx) != fingerprint(ds, np.arange(1, 6))


def test_json_round_trip(iris):
    splits = split(iris, test=0.2, cv=CVSpec(folds=3))
    data = json.loads(json.dumps(splits.to_json(iris)))
    assert data["n"] == 150 and data["dataset"] == "iris" and data["kind"] == "stratified"
    assert data["test"]["size"] == 30 and data["test"]["fingerprint"] == fingerprint(
        iris, splits.test
    )
    again = Splits.from_json(data, iris)
    assert again.kind == splits.kind and again.seed == splits.seed
    assert np.array_equal(again.test, splits.test)
    for a, b in zip(again.folds, splits.folds, strict=True):
        assert np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    assert np.array_equal(Splits.from_json(data).dev, splits.dev)  # without a data set: no check


@pytest.mark.parametrize("where", ["test", "train", "val"])
def test_changing_one_value_breaks_the_fingerprint(where):
    ds = table(40)
    splits = split(ds, test=0.25, val=0.2)
    data = splits.to_json(ds)
    index = {"test": splits.test, "train": splits.folds[0].train, "val": splits.folds[0].val}[where]
    ds.X[index[0], 1] += 1.0
    with pytest.raises(DataError, match="fingerprint no longer matches") as info:
        Splits.from_json(data, ds)
    assert where in str(info.value)


def test_changing_a_target_breaks_the_fingerprint():
    ds = table(40)
    splits = split(ds, test=0.25)
    data = splits.to_json(ds)
    ds.y[splits.test[0]] = (ds.y[splits.test[0]] + 1) % 3
    with pytest.raises(DataError, match="test part's content fingerprint"):
        Splits.from_json(data, ds)


def test_a_different_sample_count_is_caught():
    ds = table(40)
    data = split(ds, test=0.25).to_json(ds)
    with pytest.raises(DataError, match="now has 41 samples.*split over 40"):
        Splits.from_json(data, table(41))
