"""The top-level Python API: the names a user calls, the deprecated ones, and quiet=True."""

from __future__ import annotations

import warnings

import pytest

import tunelab
from tunelab.errors import RunError

RUN = {
    "name": "api",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.25},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
    "evaluate": {"ci": {"resamples": 50}},
}
STUDY = RUN | {
    "tune": {
        "trials": 2,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
    }
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tunelab.train(RUN, out=tmp_path_factory.mktemp("api") / "run", quiet=True)


def test_all_is_the_public_surface():
    assert set(tunelab.__all__) == {
        "__version__", "train", "resume", "evaluate_run", "tune_study", "load_spec",
        "dump_spec", "Spec", "Run", "load_run", "StudyResult",
        "TunelabError", "SpecError", "DataError", "RunError",
    }  # fmt: skip
    for name in tunelab.__all__:
        assert getattr(tunelab, name) is not None, name
    assert tunelab.Run.__module__ == "tunelab.runs"
    assert tunelab.evaluate_run.__name__ in ("evaluate", "evaluate_run")
    assert tunelab.tune_study.__name__ in ("tune", "tune_study")
    assert callable(tunelab.evaluate_run) and callable(tunelab.tune_study)


def test_the_subpackages_are_not_shadowed():
    import tunelab.evaluate
    import tunelab.tune
    from tunelab.evaluate import accuracy
    from tunelab.tune import parse_space

    assert tunelab.evaluate.accuracy is accuracy and tunelab.tune.parse_space is parse_space
    assert tunelab.evaluate.__name__ == "tunelab.evaluate"
    assert tunelab.tune.__name__ == "tunelab.tune"
    assert tunelab.train.fit.__name__ == "fit"  # the package too, and tunelab.train(spec) trains


def test_load_run_reads_a_saved_run(run):
    loaded = tunelab.load_run(run.path)
    assert isinstance(loaded, tunelab.Run) and loaded.path == run.path
    assert loaded.metrics == run.metrics and "accuracy" in loaded.metrics["test"]
    assert tunelab.load_run(str(run.path)).spec == run.spec


def test_load_run_of_a_missing_folder_names_it(tmp_path):
    missing = tmp_path / "no-such-run"
    with pytest.raises(RunError, match="no-such-run.*does not exist"):
        tunelab.load_run(missing)


def test_evaluate_run_and_the_deprecated_call(run, recwarn):
    values = tunelab.evaluate_run(run, split="test", quiet=True)
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
    assert values == {k: slot["value"] for k, slot in run.metrics["test"].items()}
    with pytest.warns(DeprecationWarning, match=r"tunelab\.evaluate_run\(run"):
        old = tunelab.evaluate(run, split="test", quiet=True)
    assert old == values


def test_tune_study_and_the_deprecated_call(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new name gives no warning
        result = tunelab.tune_study(STUDY, out=tmp_path / "s", quiet=True)
    assert isinstance(result, tunelab.StudyResult) and result.best_run is not None
    assert capsys.readouterr().out == ""  # quiet: not the best trials, not the refit
    with pytest.warns(DeprecationWarning, match=r"tunelab\.tune_study\(spec"):
        old = tunelab.tune(STUDY | {"tune": STUDY["tune"] | {"refit": False}}, out=tmp_path / "o")
    assert isinstance(old, tunelab.StudyResult) and old.counts == result.counts


def test_quiet_train_prints_nothing(tmp_path, capsys):
    tunelab.train(RUN, out=tmp_path / "r", quiet=True)
    assert capsys.readouterr().out == ""
    tunelab.train(RUN, out=tmp_path / "loud")
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "saved to" in out  # not quiet: the lines and the summary
