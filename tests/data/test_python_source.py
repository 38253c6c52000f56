"""The python source: a user's torch Dataset from ``data.factory``, held in memory or lazy."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from tunelab.data import find_duplicates, fingerprint, load_dataset, make_splits
from tunelab.errors import DataError
from tunelab.spec import SplitSpec, load_spec

MODULE = """
import torch
from torch.utils.data import Dataset


class Points(Dataset):
    def __init__(self, n, seed, copy_of=None):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 3
        self.x = torch.randn(n, 4, generator=g) + self.y[:, None].float()
        if copy_of is not None:  # sample `copy_of` is planted again as the last one
            self.x[-1], self.y[-1] = self.x[copy_of], self.y[copy_of]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


class Ragged(Points):
    def __getitem__(self, i):
        return (self.x[i, :3] if i == 7 else self.x[i]), self.y[i]


def points(n=60, seed=0, copy_of=None):
    return Points(n, seed, copy_of)


def pair(n=60):
    return Points(n, 0), Points(n // 3, 1)


def ragged():
    return Ragged(20, 0)


def not_a_dataset():
    return 42


def broken():
    raise RuntimeError("no such disk")
"""


@pytest.fixture
def factory(tmp_path, monkeypatch):
    """The name of a module written into ``tmp_path`` (importable from there) with factories."""
    name = f"userdata_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def data(factory: str, fn: str, **options) -> object:
    spec = load_spec(
        {"data": {"source": "python", "factory": f"{factory}:{fn}", **options}, "model": "mlp"}
    )
    return load_dataset(spec.data)


def test_cache_none_is_lazy_and_memory_holds_the_same_samples(factory):
    lazy = data(factory, "points", cache="none")
    held = data(factory, "points", cache="memory")
    assert lazy.X is None and lazy.lazy is not None and held.lazy is None
    assert len(lazy) == len(held) == 60 and lazy.in_shape == held.in_shape == (4,)
    assert lazy.task == "classification" and lazy.classes == ["0", "1", "2"]
    np.testing.assert_array_equal(lazy.y, held.y)
    first = lazy.lazy.samples[0][0].numpy()
    np.testing.assert_array_equal(held.X[0], first)
    assert data(factory, "points").lazy is None  # auto: 60 small samples fit the memory limit
    assert data(factory, "points", memory_limit="100").lazy is not None  # 960 bytes do not


def test_lazy_fingerprints_follow_the_samples(factory):
    a = data(factory, "points", cache="none")
    b = data(factory, "points", cache="none", kwargs={"seed": 1})
    idx = np.arange(10)
    assert fingerprint(a, idx) == fingerprint(data(factory, "points", cache="none"), idx)
    assert fingerprint(a, idx) != fingerprint(b, idx)
    assert fingerprint(a, idx) != fingerprint(a, idx[::-1])


def test_the_leakage_check_finds_a_planted_copy_in_a_lazy_set(factory):
    ds = data(factory, "points", cache="none", kwargs={"copy_of": 3})
    report = find_duplicates(ds, {"train": np.arange(0, 50), "test": np.arange(50, 60)})
    (pair,) = report.pairs
    assert (pair.part, pair.count, pair.examples) == ("test", 1, ((59, 3),))


def test_stratified_splits_of_a_lazy_set(factory):
    ds = data(factory, "points", cache="none")
    splits = make_splits(ds, SplitSpec(test=0.2, cv={"folds": 3}), seed=0)
    assert splits.kind == "stratified"
    for fold in splits.folds:  # 48 non-test samples, 16 per class: 5 or 6 of each per fold
        assert set(np.bincount(ds.y[fold.val], minlength=3).tolist()) <= {5, 6}


def test_a_train_test_pair_makes_the_sealed_test(factory):
    ds = data(factory, "pair", cache="none")
    assert len(ds) == 80 and ds.test_is_sealed
    splits = make_splits(ds, SplitSpec(test="source", cv={"folds": 3}), seed=0)
    np.testing.assert_array_equal(splits.test, np.arange(60, 80))
    with pytest.raises(DataError, match="set split.test: source"):
        make_splits(ds, SplitSpec(test=0.2), seed=0)


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        ("ragged", ["sample 7 has input shape (3,) but sample 0 has (4,)"]),
        ("not_a_dataset", ["returned a int, not a torch Dataset"]),
        ("broken", ["raised RuntimeError: no such disk"]),
        ("missing", ["cannot import data.factory", "AttributeError"]),
    ],
)
def test_bad_factories_fail_at_the_door(factory, fn, says):
    with pytest.raises(DataError) as info:
        data(factory, fn, cache="none")
    for text in says:
        assert text in str(info.value)


@pytest.mark.parametrize(
    ("fn", "says"),
    [
        ("ragged", "sample 7 has input shape (3,)"),
        ("nowhere_module:make", "cannot import data.factory 'nowhere_module:make'"),
    ],
)
def test_bad_factories_through_the_cli(factory, cli, tmp_path, fn, says):
    target = fn if ":" in fn else f"{factory}:{fn}"
    spec = {"data": {"source": "python", "factory": target}, "model": "mlp"}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    proc = cli("train", "spec.yaml", "--out", "runs/x")
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1
    assert not Path(tmp_path / "runs" / "x").exists()
