"""A study killed with SIGKILL (a real process group) at five points, then resumed.

The points: inside the first epoch of a trial; between two trials (while the study lock is held
to create the next one); inside a later epoch of a trial; during the refit of the best; during
the refits with more seeds (``tune.refit_seeds``). After each ``--resume``: no finished trial is
lost or re-run, the total is honoured, a trial that was running is FAIL with the reason
``interrupted``, and the sealed test part is evaluated once per refit run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
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
# one thread each: two cores shared with other tests, and a tiny model
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def start(folder: Path, *args: str) -> subprocess.Popen:
    path = folder / "faults.yaml"
    path.write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    return subprocess.Popen(
        [EXE, "tune", str(path), "--out", "s", "--quiet", *args],
        cwd=folder,
        env=ENV,
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


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180, every: float = 0.02) -> None:
    end = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"tunelab ended before the kill (rc {proc.returncode}):\n{out}\n{err}")
        if time.time() > end:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("timed out waiting for the study")
        time.sleep(every)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def resume(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EXE, "tune", str(folder / "faults.yaml"), "--out", "s", "--resume", *args],
        cwd=folder,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def epochs_done(study: Path, number: int) -> int:
    path = study / "trials" / str(number) / "history.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def states(study: Path) -> dict[int, str]:
    """Trial number -> state, straight from the SQLite file: cheap enough to poll often."""
    if not (study / "study.json").is_file():
        return {}
    con = sqlite3.connect(f"file:{study / 'study.db'}?mode=ro", uri=True, timeout=30)
    try:
        return dict(con.execute("SELECT number, state FROM trials").fetchall())
    finally:
        con.close()


def holds_study_lock(study: Path, pid: int) -> bool:
    """Whether ``pid`` holds the study lock (flock), i.e. is between two trials."""
    try:
        inode = (study / "study.lock").stat().st_ino
    except FileNotFoundError:
        return False
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if (
            "FLOCK" in fields
            and str(pid) in fields
            and any(f.count(":") == 2 and f.rsplit(":", 1)[1] == str(inode) for f in fields)
        ):
            return True
    return False


def running(study: Path) -> list[int]:
    return [n for n, s in states(study).items() if s == "RUNNING"]


def first_epoch(study: Path, pid: int, told: set[int]) -> bool:
    # a trial has started (its folder exists) and not yet finished an epoch
    return any(
        (study / "trials" / str(n)).is_dir() and epochs_done(study, n) == 0 for n in running(study)
    )


def between_trials(study: Path, pid: int, told: set[int]) -> bool:
    # a trial of this process is told; the process holds the lock to create the next one
    done = {n for n, s in states(study).items() if s == "COMPLETE"}
    return bool(done - told) and holds_study_lock(study, pid)


def later_epoch(study: Path, pid: int, told: set[int]) -> bool:
    done = {n for n, s in states(study).items() if s == "COMPLETE"}
    return bool(done - told) and any(epochs_done(study, n) >= 2 for n in running(study))


def refit(study: Path, pid: int, told: set[int]) -> bool:
    return (study / "best").is_dir() and not (study / "best" / "metrics.json").exists()


def refit_seeds(study: Path, pid: int, told: set[int]) -> bool:
    return (study / "best_seeds").is_dir() and not (study / "best_seeds" / "seeds.json").exists()


POINTS = {
    "first-epoch": first_epoch,
    "between-trials": between_trials,
    "later-epoch": later_epoch,
    "refit": refit,
    "refit-seeds": refit_seeds,
}
# Each chain is one study killed at each of its points in turn, resumed after every kill (two
# processes per point would double the time): five points, and resumes of resumed studies.
CHAINS = {
    "search": (6, (), ("first-epoch", "between-trials", "later-epoch")),
    "refits": (2, ("--set", "tune.refit_seeds=3"), ("refit", "refit-seeds")),
}


def check_point(name: str, study: Path, now: dict, total: int) -> None:
    """What the study looked like at the kill, for each point."""
    running = [n for n, t in now.items() if t.state == TrialState.RUNNING]
    if name == "first-epoch":
        assert len(running) == 1 and epochs_done(study, running[0]) == 0
    if name == "between-trials":  # the next trial is not created, or created and not trained
        assert all(epochs_done(study, n) == 0 for n in running)
    if name == "later-epoch":
        assert len(running) == 1 and epochs_done(study, running[0]) >= 2
    if name in ("refit", "refit-seeds"):
        assert len(now) == total and not running
        assert not (study / "result.json").exists()
    if name == "refit-seeds":
        assert (study / "best" / "metrics.json").is_file()


@pytest.mark.parametrize("chain", list(CHAINS))
def test_killed_at_each_point_and_resumed(tmp_path, chain):
    total, extra, points = CHAINS[chain]
    study, args = tmp_path / "s", ("--trials", str(total), *extra)
    kept: dict[int, optuna.trial.FrozenTrial] = {}  # COMPLETE at a kill: never lost or re-run
    records: dict[int, bytes] = {}
    interrupted: set[int] = set()  # RUNNING at a kill: FAIL (interrupted) after the resume
    seal: list[dict] = []  # evaluations of the sealed test part: only ever appended to
    refit_metrics = None
    for i, name in enumerate(points):
        told = {n for n, s in states(study).items() if s != "RUNNING"}
        proc = start(tmp_path, *args, *(("--resume",) if i else ()))
        wait_for(lambda: POINTS[name](study, proc.pid, told), proc, every=0.002)  # noqa: B023
        kill(proc)

        now = {t.number: t for t in trials(study)}
        check_point(name, study, now, total)
        for n in interrupted:  # the resume marked the trials the last kill interrupted
            assert now[n].state == TrialState.FAIL, name
            assert now[n].user_attrs["fail_reason"].startswith("interrupted"), name
        for n, trial in kept.items():
            assert now[n].state == TrialState.COMPLETE and now[n].value == trial.value, name
            assert now[n].datetime_complete == trial.datetime_complete, name
        evaluations = json.loads((study / "seal.json").read_text())["evaluations"]
        assert evaluations[: len(seal)] == seal, name
        seal = evaluations
        if name == "refit-seeds":
            refit_metrics = (study / "best" / "metrics.json").read_bytes()
        interrupted |= {n for n, t in now.items() if t.state == TrialState.RUNNING}
        for n, trial in now.items():
            if trial.state == TrialState.COMPLETE and n not in kept:
                kept[n] = trial
                records[n] = (study / "trials" / str(n) / "trial.json").read_bytes()

    done = resume(tmp_path, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    after = {t.number: t for t in trials(study)}
    # the total of finished trials, exactly: an interrupted trial does not count, and each one
    # (not itself a retry) ran once more with its parameters, linked to it by `retry_of`
    assert len([n for n in after if n not in interrupted]) == total
    for n in interrupted:
        assert after[n].state == TrialState.FAIL
        assert after[n].user_attrs["fail_reason"].startswith("interrupted")
    retries = {t.user_attrs["retry_of"]: t for t in after.values() if "retry_of" in t.user_attrs}
    assert set(retries) == {n for n in interrupted if "retry_of" not in after[n].user_attrs}
    for n, retry in retries.items():
        assert retry.params.items() >= after[n].params.items()
    last = [n for n, t in now.items() if t.state == TrialState.RUNNING]
    for n in last:
        assert f"trial {n} was interrupted: marked FAIL" in done.stdout
    for n, trial in kept.items():  # kept, not re-run
        assert after[n].state == TrialState.COMPLETE
        assert after[n].value == trial.value
        assert after[n].datetime_complete == trial.datetime_complete
        assert (study / "trials" / str(n) / "trial.json").read_bytes() == records[n]
    others = [t for n, t in after.items() if n not in interrupted]
    assert all(t.state == TrialState.COMPLETE for t in others)

    # the sealed test part: one evaluation per refit run, those logged before a kill kept
    seeds = 3 if chain == "refits" else 1
    evaluations = json.loads((study / "seal.json").read_text())["evaluations"]
    assert evaluations[: len(seal)] == seal
    assert len(evaluations) == seeds
    assert len({Path(e["run"]).name for e in evaluations}) == seeds
    result = json.loads((study / "result.json").read_text())
    metrics = json.loads((study / "best" / "metrics.json").read_text())
    accuracy = metrics["test"]["accuracy"]["value"]
    assert result["test"]["accuracy"]["value"] == accuracy == evaluations[0]["metrics"]["accuracy"]
    assert (study / "best" / "model.safetensors").is_file()
    if chain == "refits":
        assert (study / "best" / "metrics.json").read_bytes() == refit_metrics  # not repeated
        assert json.loads((study / "best_seeds" / "seeds.json").read_text())["seeds"] == 3
        assert result["refit_seeds"] is not None
