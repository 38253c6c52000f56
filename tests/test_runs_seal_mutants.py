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
