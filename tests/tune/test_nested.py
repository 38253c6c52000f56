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
        assert result["test"]["accuracy"] == summary["scores"][k]
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
