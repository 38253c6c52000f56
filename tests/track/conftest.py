"""Finished run and study folders (tiny: the linear source and model, 3 epochs), made once."""

from __future__ import annotations

from pathlib import Path

import pytest

SPEC = {
    "name": "tracked",
    "seed": 0,
    "data": {"source": "linear", "n": 80},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "linear"},
    "train": {"epochs": 3, "optimizer": {"name": "sgd", "lr": 0.1}, "metrics": ["rmse"]},
}
TUNE = {
    "trials": 3,
    "sampler": "random",
    "pruner": "none",
    "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
}


@pytest.fixture
def tiny_spec() -> dict:
    return dict(SPEC)


def _finished(folder: Path) -> Path:
    from tunelab.report import write_report

    write_report(folder)  # as `tunelab train` / `tunelab tune` do
    return folder


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory) -> Path:
    import tunelab

    out = tmp_path_factory.mktemp("track") / "run"
    return _finished(tunelab.train(SPEC, out=out, quiet=True).path)


@pytest.fixture(scope="session")
def cv_folder(tmp_path_factory) -> Path:
    import tunelab

    out = tmp_path_factory.mktemp("track") / "cv"
    spec = SPEC | {"name": "tracked_cv", "split": {"test": 0.2, "cv": 2}}
    return _finished(tunelab.train(spec, out=out, quiet=True).path)


@pytest.fixture(scope="session")
def study_folder(tmp_path_factory) -> Path:
    import tunelab

    out = tmp_path_factory.mktemp("track") / "study"
    result = tunelab.tune_study(SPEC | {"name": "tracked_study", "tune": TUNE}, out=out, quiet=True)
    _finished(result.path / "best")
    return _finished(result.path)
