"""A study killed with SIGKILL (a real process group) and resumed: nothing lost, nothing re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

SPEC = {
    "name": "faults",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32]},
    # about a second a trial (more on a busy machine): many small steps
    "train": {"epochs": 8, "batch_size": 4, "optimizer": {"name": "adam", "lr": 0.01}},
    "tune": {
        "trials": 6,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 3e-2, "log": True}},
    },
}
EXE = str(Path(sys.executable).with_name("tunelab"))


def start(folder: Path, *args: str) -> subprocess.Popen:
    spec = folder / "faults.yaml"
    spec.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    return subprocess.Popen(
        [EXE, "tune", str(spec), "--out", "s", "--quiet", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches every process of it
    )


def trials(study: Path) -> list[optuna.trial.FrozenTrial]:
    # study.json is written once the storage's tables exist: opening the storage earlier races
    # with tunelab creating them (an IntegrityError in whichever process loses)
    if not (study / "study.json").is_file():
        return []
    try:
        return optuna.load_study(
            study_name=SPEC["name"], storage=f"sqlite:///{study / 'study.db'}"
        ).get_trials()
    except KeyError:  # the study is not created yet
        return []


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180) -> None:
    end = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"tunelab ended before the kill (rc {proc.returncode}):\n{out}\n{err}")
        if time.time() > end:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("timed out waiting for the study")
        time.sleep(0.02)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def resume(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, "tune", str(folder / "faults.yaml"), "--out", "s", "--resume", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_kill_during_trials_then_resume(tmp_path):
    study = tmp_path / "s"
    proc = start(tmp_path)

    def two_done_one_running() -> bool:
        ts = trials(study)
        done = [t for t in ts if t.state == TrialState.COMPLETE]
        running = [t for t in ts if t.state == TrialState.RUNNING and "worker" in t.user_attrs]
        return len(done) >= 2 and len(running) == 1

    wait_for(two_done_one_running, proc)
    kill(proc)

    before = {t.number: t for t in trials(study)}
    (running,) = [n for n, t in before.items() if t.state == TrialState.RUNNING]
    finished = {n: t for n, t in before.items() if t.state == TrialState.COMPLETE}
    records = {n: (study / "trials" / str(n) / "trial.json").read_bytes() for n in finished}

    proc = resume(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"trial {running} was interrupted: marked FAIL" in proc.stdout

    after = {t.number: t for t in trials(study)}
    assert sorted(after) == list(range(6))  # the total, exactly
    assert after[running].state == TrialState.FAIL
    assert after[running].user_attrs["fail_reason"].startswith("interrupted")
    for n, trial in finished.items():
        assert after[n].state == TrialState.COMPLETE
        assert after[n].value == trial.value
        assert after[n].datetime_complete == trial.datetime_complete
        assert (study / "trials" / str(n) / "trial.json").read_bytes() == records[n]
    rerun = [t for n, t in after.items() if n not in before]
    assert all(t.state == TrialState.COMPLETE for t in rerun)
    assert len(json.loads((study / "seal.json").read_text())["evaluations"]) == 1
    assert (study / "best" / "metrics.json").is_file()


def test_kill_during_the_refit_then_resume(tmp_path):
    study = tmp_path / "s"
    proc = start(tmp_path, "--trials", "2")
    wait_for(lambda: (study / "best").is_dir(), proc)
    kill(proc)
    assert not (study / "result.json").exists()

    proc = resume(tmp_path, "--trials", "2")
    assert proc.returncode == 0, proc.stderr
    ts = trials(study)
    assert len(ts) == 2 and all(t.state == TrialState.COMPLETE for t in ts)
    seal = json.loads((study / "seal.json").read_text())
    assert len(seal["evaluations"]) == 1
    result = json.loads((study / "result.json").read_text())
    assert seal["evaluations"][0]["metrics"] == result["test"]
    metrics = json.loads((study / "best" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"]["value"] == result["test"]["accuracy"]
    assert (study / "best" / "model.safetensors").is_file()
