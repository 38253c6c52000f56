"""The leakage check's details that a mutation run found unguarded (scripts/mutation.py).

Which copy an example names, which pair a target conflict names, and the exact line people read.
"""

from __future__ import annotations

import numpy as np

from tunelab.data import Dataset, describe_duplicates, find_duplicates


def distinct(n: int, d: int = 2) -> np.ndarray:
    return np.arange(n * d, dtype=np.float32).reshape(n, d)


def test_an_example_names_the_first_copy_in_the_other_part():
    # sample 0 (the evaluated part) has 40 copies in `other`, among 60 rows with repeated ids:
    # the example must name the lowest-index copy, whatever the sort does with equal keys
    X = distinct(100)
    copies = np.arange(50, 90)
    X[copies] = X[0]
    X[90:] = X[1]
    ds = Dataset(X=X, y=np.zeros(100, np.int64), task="classification", name="t")
    other = np.arange(30, 100)
    report = find_duplicates(ds, {"other": other, "part": np.array([0, 1, 2])})
    (pair,) = report.pairs
    assert (pair.part, pair.other, pair.count) == ("part", "other", 2)
    assert pair.examples == ((0, 50), (1, 90))
    assert pair.indices.tolist() == [0, 1]


def test_a_conflict_example_is_a_pair_with_different_targets():
    # three identical rows, targets 4, 4, 7: the conflicting pair is (first, third), not (first, second)
    X = distinct(6)
    X[[1, 3, 5]] = X[1]
    y = np.array([0, 4, 0, 4, 0, 7], np.int64)
    ds = Dataset(X=X, y=y, task="classification", name="t")
    report = find_duplicates(ds, {"all": np.arange(6)})
    assert (report.groups, report.duplicated, report.conflicts) == (1, 3, 1)
    assert report.conflict_examples == ((1, 5),)


def test_a_conflict_in_multi_output_targets_differs_in_a_later_column():
    X = distinct(5)
    X[[0, 2, 4]] = X[0]
    y = np.array([[1, 5], [0, 0], [1, 5], [0, 0], [1, 6]], np.float32)
    ds = Dataset(X=X, y=y, task="regression", name="t")
    report = find_duplicates(ds, {"all": np.arange(5)})
    assert report.conflicts == 1
    assert report.conflict_examples == ((0, 4),)


def pair(part: str, count: int, examples: list[list[int]]) -> dict:
    return {"part": part, "other": "train", "count": count, "examples": examples}


def test_the_line_says_one_sample_or_several_and_two_examples():
    record = {
        "pairs": [pair("val", 1, [[3, 9]]), pair("test", 2, [[4, 8], [5, 7]])],
        "on_duplicates": "drop",
        "dropped": {"val": 1, "test": 2},
    }
    assert describe_duplicates(record) == (
        "leakage check: 1 val sample has an exact copy in train (e.g. 3~9), "
        "2 test samples have an exact copy in train (e.g. 4~8, 5~7); "
        "split.on_duplicates: drop (dropped 1 from val, 2 from test)"
    )
    three = {"pairs": [pair("test", 3, [[1, 2], [3, 4], [5, 6]])]}
    assert describe_duplicates(three) == (
        "leakage check: 3 test samples have an exact copy in train (e.g. 1~2, 3~4)"
    )


def test_the_line_shows_three_pairs_and_counts_the_rest():
    record = {"pairs": [pair(f"fold {k} val", 2, [[k, 10 + k]]) for k in range(1, 5)]}
    line = describe_duplicates(record)
    assert line.count("have an exact copy") == 3
    assert "fold 4 val" not in line
    assert line.endswith(", 1 more pair(s) with copies")
    assert describe_duplicates(record, limit=4).count("have an exact copy") == 4
    assert "more pair" not in describe_duplicates({"pairs": record["pairs"][:3]})


def test_conflicts_alone_are_described_one_group_or_several():
    one = {"conflicts": 1, "conflict_examples": [[2, 5]]}
    assert describe_duplicates(one) == (
        "leakage check: 1 group of identical samples with different targets (e.g. 2~5)"
    )
    two = {"conflicts": 2, "conflict_examples": [[2, 5], [3, 6], [4, 8]]}
    assert describe_duplicates(two) == (
        "leakage check: 2 groups of identical samples with different targets (e.g. 2~5, 3~6)"
    )
    assert describe_duplicates({}) == ""
