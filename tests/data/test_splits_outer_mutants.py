"""The outer folds of nested CV (``outer_cv``, ``outer_folds``) at their edges, found unguarded
by scripts/mutation.py: the exact notes when the outer kind differs, the inner shuffle and split
seed carried outside, and the messages for data that cannot make the outer folds."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.data import Dataset, outer_cv, outer_folds
from tunelab.errors import DataError
from tunelab.spec import SplitSpec


def table(n: int, *, task: str = "classification", groups=None) -> Dataset:
    X = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n) % 2 if task == "classification" else np.arange(n, dtype=np.float32)
    return Dataset(X=X, y=y, task=task, name="t", groups=groups)


@pytest.mark.parametrize(
    ("task", "kind"), [("classification", "stratified"), ("regression", "kfold")]
)
def test_leave_one_out_and_repeated_inner_folds_say_why_the_outer_kind_differs(task, kind):
    ds = table(20, task=task)
    cv, note = outer_cv(SplitSpec(cv={"kind": "loo"}), ds, folds=4)
    assert (cv.kind, cv.folds, cv.shuffle) == (kind, 4, True)
    assert note == (
        f"split.cv.kind is loo: the outer folds are 4-fold {kind} (leave-one-out cannot make 4 "
        "outer folds); the inner folds stay loo"
    )
    spec = SplitSpec(cv={"kind": "repeated", "folds": 3, "shuffle": False})
    cv, note = outer_cv(spec, ds, folds=5)
    assert (cv.kind, cv.folds, cv.shuffle) == (kind, 5, False)
    assert note == (
        f"split.cv.kind is repeated: the outer folds are 5-fold {kind} (a repeated outer k-fold "
        "would test each sample several times); the inner folds stay repeated"
    )


def test_the_inner_shuffle_is_the_outer_shuffle():
    ds = table(20)
    for kind in ("kfold", "stratified", "auto"):
        cv, note = outer_cv(SplitSpec(cv={"kind": kind, "shuffle": False}), ds, folds=3)
        assert (cv.shuffle, note) == (False, None)
    cv, _ = outer_cv(SplitSpec(), ds, folds=3)  # holdout inside: the default, shuffled
    assert (cv.kind, cv.shuffle) == ("stratified", True)


def test_holdout_inside_honours_split_stratify():
    assert outer_cv(SplitSpec(stratify=True), table(20), folds=3)[0].kind == "stratified"
    assert outer_cv(SplitSpec(stratify=False), table(20), folds=3)[0].kind == "kfold"
    regression = table(20, task="regression")
    assert outer_cv(SplitSpec(stratify=True), regression, folds=3)[0].kind == "kfold"
    assert outer_cv(SplitSpec(), regression, folds=3)[0].kind == "kfold"


def test_the_split_seed_is_the_specs_when_set():
    ds = table(40)
    seeded = outer_folds(ds, SplitSpec(seed=5), folds=4, seed=0)[1]
    same = outer_folds(ds, SplitSpec(), folds=4, seed=5)[1]
    other = outer_folds(ds, SplitSpec(), folds=4, seed=0)[1]
    assert [t.tolist() for t in seeded] == [t.tolist() for t in same]
    assert [t.tolist() for t in seeded] != [t.tolist() for t in other]
    for test in seeded:
        assert test.tolist() == sorted(test.tolist())


def test_group_outer_folds_need_group_labels():
    with pytest.raises(DataError) as err:
        outer_folds(table(20), SplitSpec(cv={"kind": "group"}), folds=3, seed=0)
    assert str(err.value) == "split.cv.kind is group but the data set has no group labels"


def test_too_few_groups_or_rows_for_the_outer_folds_name_nested():
    ds = table(12, groups=np.arange(12) % 3)
    with pytest.raises(DataError) as err:
        outer_folds(ds, SplitSpec(cv={"kind": "group"}), folds=4, seed=0)
    assert str(err.value) == "--nested (outer folds) is 4 but the data set has only 3 groups"
    with pytest.raises(DataError) as err:
        outer_folds(table(3), SplitSpec(cv={"kind": "kfold"}), folds=5, seed=0)
    assert str(err.value) == (
        "3 rows cannot make 5 folds: --nested (outer folds) is 5 but the non-test part has only "
        "3 samples, and every fold needs at least one. Use at most 3 folds, `split.cv: loo` or "
        "more rows"
    )


# --- make_splits with a given test part (an outer fold), and the exact messages of the splits


def test_a_given_test_part_is_sorted_and_the_folds_are_made_of_the_rest():
    from tunelab.data import make_splits

    spec = SplitSpec(test=0, cv={"kind": "kfold", "folds": 3})
    s = make_splits(table(12), spec, seed=0, test=[7, 1, 4])
    assert s.test.tolist() == [1, 4, 7] and s.test.dtype == np.int64
    rest = sorted(i for f in s.folds for i in f.val.tolist())
    assert rest == [i for i in range(12) if i not in (1, 4, 7)]
    with pytest.raises(DataError) as err:
        make_splits(table(10), spec, seed=0, test=np.arange(8))
    assert str(err.value) == (
        "10 rows cannot make 3 folds: split.cv.folds is 3 but the non-test part has only 2 "
        "samples, and every fold needs at least one. Use at most 2 folds, `split.cv: loo`, a "
        "smaller split.test or more rows"
    )


def test_holdout_outer_folds_have_the_asked_count():
    assert outer_cv(SplitSpec(), table(20), folds=3)[0].folds == 3
    assert outer_cv(SplitSpec(stratify=False), table(20), folds=7)[0].folds == 7


def test_the_messages_of_the_splits():
    from tunelab.data import Splits, make_splits

    with pytest.raises(DataError) as err:
        make_splits(table(10), SplitSpec(cv={"kind": "group", "folds": 2}), seed=0)
    assert str(err.value) == "split.cv.kind is group but the data set has no group labels"
    rare = Dataset(
        X=np.zeros((10, 2), np.float32), y=np.array([0] * 9 + [1]), task="classification",
        name="t",
    )  # fmt: skip
    with pytest.raises(DataError) as err:
        make_splits(rare, SplitSpec(test=0.2), seed=0)
    text = str(err.value)
    assert text.startswith(
        "cannot make a stratified split.test of 0.2 from 10 samples (smallest class has 1 "
        "sample(s)): "
    )
    assert text.endswith(
        ". Set split.stratify: false, or a fraction that leaves every class on both sides"
    )
    same = Dataset(
        X=np.zeros((10, 2), np.float32), y=np.arange(10) % 2, task="classification", name="t"
    )
    with pytest.raises(DataError) as err:
        make_splits(same, SplitSpec(test=0, val=0.2, on_duplicates="drop"), seed=0)
    assert str(err.value) == (
        "every sample of the val part has an exact copy in its training part, so "
        "split.on_duplicates: drop would leave it empty; remove the duplicate rows from the "
        "data, or keep them with split.on_duplicates: warn"
    )
    with pytest.raises(DataError) as err:
        make_splits(same, SplitSpec(test=0.3, on_duplicates="error"), seed=0)
    assert str(err.value).endswith(
        "validation or test sample(s) in all are exact copies of a sample they are compared "
        "with, so their scores would not be honest. Set split.on_duplicates: drop to remove "
        "those copies from the validation and test parts, or remove the duplicate rows from "
        "the data"
    )
    ds = table(10)
    stored = make_splits(ds, SplitSpec(test=0.2), seed=0).to_json(ds)
    changed = Dataset(X=ds.X + 1, y=ds.y, task="classification", name="t")
    with pytest.raises(DataError) as err:
        Splits.from_json(stored, changed)
    assert str(err.value).endswith("): the data behind this run changed")
    assert str(err.value).startswith("the test part's content fingerprint no longer matches")
