"""The seal's log in runs.py, in process (the study tests reach it through subprocesses only).

Every look at a study's sealed test part is one entry of ``seal.json``; a run finds its study's
seal from its own folder, its parent or its grandparent. Found unguarded by scripts/mutation.py.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from tunelab import runs
from tunelab.runs import log_test_evaluation, seal_of_run, write_json


def sealed_study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    write_json(folder / "seal.json", {"test_fingerprint": "abc", "evaluations": []})
    return folder


def test_each_look_is_one_entry_with_its_run_trial_and_values(tmp_path, monkeypatch):
    folder = sealed_study(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tunelab", "evaluate", "study/best", "--split", "test"])
    metrics = {"accuracy": {"value": 0.9, "ci": [0.8, 1.0]}, "log_loss": 0.25}
    first = log_test_evaluation(folder, run=folder / "best", metrics=metrics, trial=4)
    second = log_test_evaluation(folder, run=folder / "best")
    assert (first, second) == (1, 2)
    assert runs.test_evaluations(folder) == 2
    stored = json.loads((folder / "seal.json").read_text())
    assert stored["test_fingerprint"] == "abc"  # the seal itself is kept
    one, two = stored["evaluations"]
    assert set(one) == {"time", "command", "run", "trial", "metrics"}
    assert one["command"] == "tunelab evaluate study/best --split test"
    assert one["run"] == str(folder / "best")
    assert one["trial"] == 4
    assert one["metrics"] == {"accuracy": 0.9, "log_loss": 0.25}
    assert datetime.fromisoformat(one["time"]).utcoffset().total_seconds() == 0
    assert set(two) == {"time", "command", "run"}  # a later look: no trial, no values


def test_trial_zero_is_recorded(tmp_path):
    folder = sealed_study(tmp_path)
    log_test_evaluation(folder, run=folder / "best", trial=0)
    (entry,) = json.loads((folder / "seal.json").read_text())["evaluations"]
    assert entry["trial"] == 0


def test_a_seal_without_evaluations_yet_starts_the_list(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    write_json(folder / "seal.json", {"test_fingerprint": "abc"})
    assert runs.test_evaluations(folder) == 0
    assert log_test_evaluation(folder, run=folder / "best") == 1
    assert runs.test_evaluations(folder) == 1


def test_no_seal_means_no_evaluations(tmp_path):
    assert runs.test_evaluations(tmp_path) == 0


def test_a_run_finds_the_seal_of_its_study(tmp_path):
    folder = sealed_study(tmp_path)
    seeds = folder / "best_seeds" / "seed_1"
    seeds.mkdir(parents=True)
    (folder / "best").mkdir()
    assert seal_of_run(folder) == folder
    assert seal_of_run(folder / "best") == folder
    assert seal_of_run(seeds) == folder
    deeper = seeds / "x"
    deeper.mkdir()
    assert seal_of_run(deeper) is None  # three levels up at most
    assert seal_of_run(tmp_path / "elsewhere") is None
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "seal.json").mkdir()  # a folder of that name is no seal
    assert seal_of_run(tmp_path / "other") is None


# --- a seal named by a spec (evaluate.seal): found, missing or replaced, and looks without one


def ref_to(folder, fingerprint="abc"):
    from tunelab.spec import SealRef

    return SealRef(study=str(folder), fingerprint=fingerprint)


def test_a_run_elsewhere_finds_the_seal_its_spec_names(tmp_path):
    from tunelab.spec import load_spec

    folder = sealed_study(tmp_path)
    run = tmp_path / "runs" / "a" / "b"
    run.mkdir(parents=True)
    raw = {"data": {"source": "iris"}, "model": {"name": "mlp"}}
    spec = load_spec(raw | {"evaluate": {"seal": {"study": str(folder), "fingerprint": "abc"}}})
    assert seal_of_run(run, spec) == folder
    other = load_spec(raw | {"evaluate": {"seal": {"study": str(folder), "fingerprint": "x"}}})
    assert seal_of_run(run, other) is None  # the folder holds another seal now
    assert seal_of_run(run, load_spec(raw)) is None  # a spec without a seal
    (run / "spec.yaml").write_text(
        json.dumps(raw | {"evaluate": {"seal": {"study": str(folder), "fingerprint": "abc"}}})
    )
    assert seal_of_run(run) == folder  # the run's own spec.yaml by default
    assert seal_of_run(tmp_path / "runs" / "a") is None  # no spec.yaml there


def test_why_a_named_seal_cannot_take_a_look(tmp_path):
    folder = sealed_study(tmp_path)
    assert runs.missing_seal(ref_to(folder)) is None
    assert runs.missing_seal(ref_to(folder, "other")) == (
        f"{folder / 'seal.json'} is the seal of another test part "
        "(the folder holds another study now)"
    )
    gone = tmp_path / "gone"
    assert runs.missing_seal(ref_to(gone)) == (
        f"{gone} holds no seal.json (the study folder was moved or deleted)"
    )


def test_a_look_without_its_seal_is_kept_in_the_runs_env(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setattr(sys, "argv", ["tunelab", "evaluate", "run", "--split", "test"])
    ref = ref_to(tmp_path / "gone", "f00d")
    metrics = {"accuracy": {"value": 0.5, "ci": [0.1, 0.9]}, "mse": 2.0}
    runs.log_unsealed_look(run, ref, why="moved", metrics=metrics)
    (entry,) = json.loads((run / "env.json").read_text())["unlogged_test_looks"]
    assert set(entry) == {"time", "command", "study", "fingerprint", "why", "metrics"}
    assert entry["command"] == "tunelab evaluate run --split test"
    assert entry["study"] == str(tmp_path / "gone")
    assert entry["fingerprint"] == "f00d"
    assert entry["why"] == "moved"
    assert entry["metrics"] == {"accuracy": 0.5, "mse": 2.0}
    assert datetime.fromisoformat(entry["time"]).utcoffset().total_seconds() == 0
    write_json(run / "env.json", {"device": "cpu"} | json.loads((run / "env.json").read_text()))
    runs.log_unsealed_look(run, ref, why="again")
    env = json.loads((run / "env.json").read_text())
    assert env["device"] == "cpu"  # the rest of env.json is kept
    first, second = env["unlogged_test_looks"]
    assert first == entry
    assert set(second) == {"time", "command", "study", "fingerprint", "why"}


def test_a_look_at_another_test_part_records_its_fingerprint(tmp_path):
    folder = sealed_study(tmp_path)
    log_test_evaluation(folder, run="r1", fingerprint="abc")
    log_test_evaluation(folder, run="r2", fingerprint="changed")
    one, two = json.loads((folder / "seal.json").read_text())["evaluations"]
    assert "test_fingerprint" not in one  # the sealed part itself
    assert two["test_fingerprint"] == "changed"
    assert one["run"] == "r1"
