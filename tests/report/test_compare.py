"""`tunelab compare` on real runs: paired tests on the same samples, refusal otherwise."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from scipy import stats

import tunelab
from tunelab.report import compare_runs

DIGITS = {
    "name": "digits",
    "data": {"source": "digits"},
    "split": {"test": 0.3, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32]},
    "train": {"epochs": 4, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    good = tunelab.train(DIGITS, out=root / "good", quiet=True)
    same = tunelab.train(DIGITS, out=root / "same", quiet=True)
    bad = tunelab.train(DIGITS, out=root / "bad", overrides=["train.optimizer.lr=1e-5"], quiet=True)
    other = tunelab.train(DIGITS, out=root / "other", overrides=["split.seed=5"], quiet=True)
    return good, same, bad, other


def test_identical_runs_show_no_difference(runs):
    good, same, _, _ = runs
    result = compare_runs(good, same)
    acc = result.metrics[0]
    assert acc.metric == "accuracy" and acc.test == "McNemar"
    assert acc.diff == 0 and acc.p_value == 1
    assert acc.verdict.startswith("no significant difference")


def test_a_clearly_better_run_is_detected(runs):
    good, _, bad, _ = runs
    result = compare_runs(bad, good)
    acc = result.metrics[0]
    assert acc.value_b > acc.value_a + 0.3
    assert acc.p_value < 0.001 and acc.low > 0
    assert acc.verdict.startswith("good beats bad on accuracy by")
    assert "McNemar p" in acc.verdict


def test_different_test_parts_are_refused(runs):
    good, _, _, other = runs
    with pytest.raises(tunelab.RunError, match="fingerprints"):
        compare_runs(good, other)


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_cli_compare_json_and_text(cli, runs):
    good, _, bad, _ = runs
    result = cli("compare", str(bad.path), str(good.path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["split"] == "test" and data["metrics"][0]["metric"] == "accuracy"
    text = cli("compare", str(bad.path), str(good.path))
    assert "beats" in text.stdout and "McNemar" in text.stdout


def test_cv_runs_get_the_corrected_t_test(tmp_path):
    spec = DIGITS | {"split": {"test": 0.3, "cv": 3}}
    a = tunelab.train(spec, out=tmp_path / "a", quiet=True)
    b = tunelab.train(spec, out=tmp_path / "b", overrides=["train.optimizer.lr=1e-4"], quiet=True)
    result = compare_runs(b, a)
    assert result.folds is not None and result.folds["folds"] == 3
    assert result.folds["low"] <= result.folds["mean_diff"] <= result.folds["high"]
    assert "corrected t-test over folds" in result.folds["verdict"]


def _set_fold_accuracies(run_path, values) -> None:
    path = run_path / "folds.json"
    record = json.loads(path.read_text())
    for row, value in zip(record["folds"], values, strict=True):
        row["accuracy"] = value
    path.write_text(json.dumps(record))


def test_cv_interval_is_wide_when_folds_disagree_around_a_zero_mean(tmp_path):
    """Two runs of the same folds whose fold accuracies are 0.70, 0.78, 0.86 and the same in
    another order: mean difference 0, folds differing by up to 16 points. The interval comes from
    the corrected variance, so it is not "0.0 to 0.0" (what ``|mean / t|`` gave)."""
    spec = DIGITS | {"split": {"test": 0.3, "cv": 3}}
    a = tunelab.train(spec, out=tmp_path / "a", quiet=True)
    shutil.copytree(a.path, tmp_path / "b")
    _set_fold_accuracies(a.path, [0.70, 0.78, 0.86])
    _set_fold_accuracies(tmp_path / "b", [0.78, 0.86, 0.70])

    folds = compare_runs(a, tmp_path / "b", metrics=["accuracy"]).folds
    d = np.array([0.08, 0.08, -0.16])
    sizes = np.array([(f["train"]["size"], f["val"]["size"]) for f in a.splits["folds"]])
    n_train, n_test = (int(v) for v in sizes.mean(axis=0))
    half = stats.t.ppf(0.975, 2) * math.sqrt((1 / 3 + n_test / n_train) * d.var(ddof=1))
    assert folds["mean_diff"] == pytest.approx(0.0, abs=1e-12) and folds["p_value"] == 1.0
    assert (folds["low"], folds["high"]) == (pytest.approx(-half), pytest.approx(half))
    assert half > 0.3
    assert "95% CI -" in folds["verdict"]


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_compare_on_a_sealed_test_part_logs_its_look(cli, tmp_path):
    spec = DIGITS | {
        "train": DIGITS["train"] | {"epochs": 1},
        "evaluate": {"ci": {"resamples": 0}},
        "tune": {
            "trials": 2,
            "sampler": "random",
            "pruner": "none",
            "space": {"train.optimizer.lr": [0.01, 0.003]},
        },
    }
    study = tmp_path / "s"
    tunelab.tune_study(spec, out=study, quiet=True)
    other = tunelab.train(study / "best.yaml", out=tmp_path / "other", quiet=True)
    looks = len(json.loads((study / "seal.json").read_text())["evaluations"])
    assert looks == 2  # the refit and the run trained from best.yaml
    text = cli("compare", str(study / "best"), str(other.path))
    assert text.returncode == 0, text.stderr
    assert f"logged as look 3 at the sealed test part of study {study.resolve()}" in text.stdout
    evaluations = json.loads((study / "seal.json").read_text())["evaluations"]
    assert len(evaluations) == 3 and "compare" in evaluations[-1]["command"]
    assert str(other.path.resolve()) in evaluations[-1]["run"]
    # the library call logs too; val is no look at the test part
    result = compare_runs(study / "best", other, split="test")
    assert result.looks == [{"study": str(study.resolve()), "evaluations": 4}]
    assert compare_runs(other, other, split="test").looks[0]["evaluations"] == 5
    data = json.loads(cli("compare", str(other.path), str(other.path), "--json").stdout)
    assert data["looks"][0]["evaluations"] == 6


def test_compare_of_unsealed_runs_logs_nothing(runs):
    good, same, _, _ = runs
    assert compare_runs(good, same).looks == []
