"""The sealed test part: fingerprinted at the start, evaluated once by the refit, every look logged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tunelab.spec import load_spec
from tunelab.train import prepare

SPEC = {
    "name": "sealed",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "cv": 3},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.02}},
    "tune": {
        "trials": 3,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}},
    },
}


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sealed")
    spec = folder / "sealed.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    exe = Path(sys.executable).with_name("tunelab")
    proc = subprocess.run(
        [str(exe), "tune", str(spec), "--out", "s", "--quiet"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return folder / "s", spec


def copy(sealed, tmp_path) -> Path:
    shutil.copytree(sealed[0], tmp_path / "s")
    return tmp_path / "s"


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_seal_holds_the_test_fingerprint_and_one_evaluation(sealed):
    study, _ = sealed
    seal = read(study / "seal.json")
    splits = read(study / "best" / "splits.json")
    assert seal["dataset"] == "iris"
    assert seal["test_size"] == splits["test"]["size"] == 30
    assert seal["test_fingerprint"] == splits["test"]["fingerprint"]
    (evaluation,) = seal["evaluations"]
    result = read(study / "result.json")
    assert evaluation["metrics"] == {k: slot["value"] for k, slot in result["test"].items()}
    assert evaluation["trial"] == result["best_trial"]
    assert (
        evaluation["metrics"]["accuracy"]
        == read(study / "best" / "metrics.json")["test"]["accuracy"]["value"]
    )


def test_trials_never_touch_the_test_part(sealed):
    study, _ = sealed
    spec = load_spec(study / "spec.yaml")
    prep = prepare(spec)
    test = set(prep.splits.test.tolist())
    best_test = read(study / "best" / "splits.json")["test"]["indices"]
    assert sorted(test) == sorted(best_test)
    assert len(prep.splits.folds) == 3
    for fold in prep.splits.folds:  # what trials train and validate on
        assert test.isdisjoint(fold.train.tolist())
        assert test.isdisjoint(fold.val.tolist())
    assert len(set(np.concatenate([f.val for f in prep.splits.folds]).tolist()) | test) == 150
    trials = sorted((study / "trials").iterdir())
    assert len(trials) == 3
    for folder in trials:
        rows = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
        assert rows and not any(key.startswith("test") for row in rows for key in row)
        assert "test" not in json.dumps(read(folder / "trial.json"))
        assert sorted(p.name for p in folder.iterdir()) == [
            "history.jsonl",
            "predictions.npz",
            "trial.json",
        ]
        with np.load(folder / "predictions.npz") as preds:  # validation predictions only
            assert test.isdisjoint(preds["val_index"].tolist())


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_evaluate_on_test_warns_and_logs_a_second_evaluation(sealed, cli, tmp_path):
    study = copy(sealed, tmp_path)
    proc = cli("evaluate", str(study / "best"), "--split", "test")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "evaluated 1 time(s)" in proc.stderr
    evaluations = read(study / "seal.json")["evaluations"]
    assert len(evaluations) == 2
    assert "trial" not in evaluations[1]
    # a look at another part is not a look at the test part
    proc = cli("evaluate", str(study / "best"), "--split", "train")
    assert proc.returncode == 0, proc.stderr
    assert "sealed test part" not in proc.stderr
    assert len(read(study / "seal.json")["evaluations"]) == 2


def test_a_changed_test_split_is_refused_on_resume(sealed, cli, tmp_path):
    study = copy(sealed, tmp_path)
    before = (study / "seal.json").read_bytes()
    proc = cli("tune", str(sealed[1]), "--out", str(study), "--resume", "--set", "split.seed=7")
    assert proc.returncode == 2
    assert "no longer matches the study's seal" in proc.stderr
    assert (study / "seal.json").read_bytes() == before


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_resume_of_a_finished_study_keeps_its_single_evaluation(sealed, cli, tmp_path):
    study = copy(sealed, tmp_path)
    weights = (study / "best" / "model.safetensors").read_bytes()
    proc = cli("tune", str(sealed[1]), "--out", str(study), "--resume", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len(read(study / "seal.json")["evaluations"]) == 1
    assert (study / "best" / "model.safetensors").read_bytes() == weights


def test_refit_seeds_log_every_look_and_summarise(tmp_path):
    import tunelab

    spec = {
        "name": "rs",
        "data": {"source": "iris"},
        "split": {"test": 0.2, "val": 0.25},
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 3, "batch_size": 16},
        "tune": {
            "trials": 2,
            "sampler": "random",
            "pruner": "none",
            "refit_seeds": 3,
            "space": {"train.optimizer.lr": [0.01, 0.05]},
        },
    }
    tunelab.tune_study(spec, out=tmp_path / "s", quiet=True)
    seal = json.loads((tmp_path / "s" / "seal.json").read_text())
    assert len(seal["evaluations"]) == 3  # each refit is one logged look at the test part
    seeds = json.loads((tmp_path / "s" / "best_seeds" / "seeds.json").read_text())
    assert seeds["seeds"] == 3 and seeds["summary"]["accuracy"]["n"] == 3
    result = json.loads((tmp_path / "s" / "result.json").read_text())
    assert result["refit_seeds"]["accuracy"]["mean"] == seeds["summary"]["accuracy"]["mean"]


# --- every look at a sealed test part is logged, whichever command takes it

HOLDOUT = {
    "name": "looks",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.25},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 1, "batch_size": 16},
    "evaluate": {"ci": {"resamples": 0}},
    "tune": {
        "trials": 2,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": [0.01, 0.05]},
    },
}


def small_study(folder: Path, **changes) -> Path:
    import tunelab

    tunelab.tune_study(HOLDOUT | changes, out=folder, quiet=True)
    return folder


def test_a_spec_derived_from_a_study_names_its_seal(tmp_path):
    study = small_study(tmp_path / "s")
    seal = read(study / "seal.json")
    for path in (study / "best.yaml", study / "best" / "spec.yaml", study / "spec.yaml"):
        ref = load_spec(path).evaluate.seal
        assert ref is not None, path
        assert Path(ref.study) == study.resolve()
        assert ref.fingerprint == seal["test_fingerprint"]


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_train_of_a_derived_spec_logs_its_look_and_warns(tmp_path, cli):
    study = small_study(tmp_path / "s")
    proc = cli("train", str(study / "best.yaml"), "--out", str(tmp_path / "again"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "evaluated 1 time(s)" in proc.stderr and str(study.resolve()) in proc.stderr
    evaluations = read(study / "seal.json")["evaluations"]
    assert len(evaluations) == 2
    assert Path(evaluations[1]["run"]) == (tmp_path / "again").resolve()
    assert "trial" not in evaluations[1]
    test = read(tmp_path / "again" / "metrics.json")["test"]
    assert evaluations[1]["metrics"]["accuracy"] == test["accuracy"]["value"]
    # the refit's own spec is derived too; and a later look at the run outside the study
    proc = cli("train", str(study / "best" / "spec.yaml"), "--out", str(tmp_path / "b"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert "evaluated 2 time(s)" in proc.stderr
    proc = cli("evaluate", str(tmp_path / "again"), "--split", "test")
    assert proc.returncode == 0, proc.stderr
    assert "evaluated 3 time(s)" in proc.stderr
    assert len(read(study / "seal.json")["evaluations"]) == 4
    # a derived spec that does not look at the test part logs nothing
    proc = cli(
        "train", str(study / "best.yaml"), "--out", str(tmp_path / "c"), "-q",
        "--set", "evaluate.test=false",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "sealed test part" not in proc.stderr
    assert len(read(study / "seal.json")["evaluations"]) == 4


@pytest.mark.slow  # about 10 s on the 2-core machine: the README's test command stays under 10 min
def test_a_missing_study_is_a_warning_and_the_run_records_the_look(tmp_path, cli):
    study = small_study(tmp_path / "s")
    spec = tmp_path / "best.yaml"
    shutil.copy(study / "best.yaml", spec)
    shutil.rmtree(study)
    proc = cli("train", str(spec), "--out", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "holds no seal.json" in proc.stderr
    assert str(study.resolve()) in proc.stderr
    (look,) = read(tmp_path / "r" / "env.json")["unlogged_test_looks"]
    assert Path(look["study"]) == study.resolve()
    assert "metrics" in look and "test" in read(tmp_path / "r" / "metrics.json")


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_the_split_seed_is_fixed_when_the_study_starts(tmp_path, cli):
    space = {"seed": [3, 4], "train.optimizer.lr": [0.01, 0.05]}
    study = small_study(tmp_path / "s", tune=HOLDOUT["tune"] | {"space": space, "trials": 3})
    assert load_spec(study / "spec.yaml").split.seed == 0
    best = load_spec(study / "best.yaml")
    assert best.split.seed == 0 and best.seed in (3, 4)
    # the test part of the spec the study hands out is the sealed one
    proc = cli("train", str(study / "best.yaml"), "--out", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    splits = read(tmp_path / "r" / "splits.json")
    assert splits["test"]["fingerprint"] == read(study / "seal.json")["test_fingerprint"]


def test_searching_a_seed_that_moves_the_split_is_refused():
    from tunelab.errors import SpecError
    from tunelab.tune import parse_space

    base = {k: v for k, v in HOLDOUT.items() if k != "tune"}
    spec = load_spec(base | {"tune": HOLDOUT["tune"] | {"space": {"seed": [1, 2]}}})
    with pytest.raises(SpecError, match=r"tune.space `seed`.*split.seed"):
        parse_space(spec.tune, spec)
    fixed = load_spec(spec.model_dump(mode="json"), overrides=["split.seed=0"])
    assert [p.path for p in parse_space(fixed.tune, fixed)] == ["seed"]
    linear = {
        "data": {"source": "linear", "n": 40},
        "model": {"name": "linear"},
        "tune": {"trials": 2, "space": {"data.seed": [1, 2]}},
    }
    spec = load_spec(linear)
    with pytest.raises(SpecError, match=r"tune.space `data.seed`: cannot be searched"):
        parse_space(spec.tune, spec)


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_evaluate_val_of_a_refit_warns_it_was_trained_on_those_rows(tmp_path, cli):
    study = small_study(tmp_path / "s")
    proc = cli("evaluate", str(study / "best"), "--split", "val")
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "trained on these val rows" in proc.stderr
    assert len(read(study / "seal.json")["evaluations"]) == 1  # not a look at the test part
    # an ordinary holdout run's val part is held out: no warning
    base = {k: v for k, v in HOLDOUT.items() if k != "tune"}
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")
    proc = cli("train", "plain.yaml", "--out", "plain", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = cli("evaluate", "plain", "--split", "val")
    assert proc.returncode == 0, proc.stderr
    assert "trained on these val rows" not in proc.stderr
