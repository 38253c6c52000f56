"""Acceptance on scikit-learn's diabetes set: tunelab's default ``linear`` with Adam reaches
the test R2 of scikit-learn's ``LinearRegression`` fitted on the same training part (read from
the run's ``splits.json``), within 0.02. Runs the benchmark's own comparison."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "diabetes_vs_sklearn.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("diabetes_vs_sklearn", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_linear_with_adam_matches_linear_regression_on_the_same_split(tmp_path):
    result = _benchmark().linear(tmp_path)
    assert result["test_rows"] == 89 and result["train_rows"] == 282
    assert abs(result["tunelab_r2"] - result["sklearn_linear_regression_r2"]) <= 0.02
    low, high = result["tunelab_r2_ci"]
    assert low < result["tunelab_r2"] < high
    assert result["tunelab_r2"] > 0.3  # the run: -3.2 with the raw target
