"""One of four workers killed with SIGKILL while the other three go on, on SQLite and PostgreSQL.

The three survivors finish the study's total; the dead worker's trial is marked FAIL
(``interrupted``) by a survivor within a bounded time, while the study still runs; no trial
that completed is lost. Only the one worker process is killed, not its process group. The
PostgreSQL test uses a throwaway database on 127.0.0.1:5432 (``TUNELAB_TEST_POSTGRES``).
"""

from __future__ import annotations

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

TOTAL = 12
BOUND_S = 30  # a dead worker's trial is marked within this many seconds of the kill
SPEC = {
    "name": "killed-worker",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32]},
    "train": {"epochs": 8, "batch_size": 4, "optimizer": {"name": "adam", "lr": 0.01}},
    "tune": {
        "trials": TOTAL,
        "sampler": "random",
        "pruner": "none",
        "refit": False,
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 3e-2, "log": True}},
    },
}
EXE = str(Path(sys.executable).with_name("tunelab"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def epochs_done(study: Path, number: int) -> int:
    path = study / "trials" / str(number) / "history.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def kill_one_worker(tmp_path: Path, storage: str | None, url: str) -> None:
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    extra = ["--storage", storage] if storage else []
    proc = subprocess.Popen(
        [EXE, "tune", "spec.yaml", "--out", "s", "--workers", "4", *extra],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    study_dir = tmp_path / "s"
    try:
        # --- wait until all four workers run trials, two trials are done, and one is mid-way
        deadline = time.monotonic() + 240
        study = None
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "timed out waiting for four busy workers"
            time.sleep(0.05)
            if study is None:
                if not (study_dir / "study.json").is_file():
                    continue  # the storage's tables are not created yet
                study = optuna.load_study(study_name=SPEC["name"], storage=url)
            trials = study.get_trials()
            pids = {t.user_attrs["worker"]["pid"] for t in trials if "worker" in t.user_attrs}
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            early = [  # in its first half: still running when the kill lands
                t
                for t in trials
                if t.state == TrialState.RUNNING
                and "worker" in t.user_attrs
                and 1 <= epochs_done(study_dir, t.number) <= 4
            ]
            # three trials or more left: the survivors ask again (and check) after the kill
            if len(pids) == 4 and len(done) >= 2 and early and len(trials) <= TOTAL - 3:
                break
        pid = early[0].user_attrs["worker"]["pid"]

        os.kill(pid, signal.SIGKILL)  # this worker only; the main process and three others go on
        killed = time.monotonic()
        before = {t.number: t for t in study.get_trials()}
        (victim,) = [  # the trial the worker ran when it died
            t
            for t in before.values()
            if t.user_attrs.get("worker", {}).get("pid") == pid and t.state != TrialState.COMPLETE
        ]
        marked = None
        while proc.poll() is None and marked is None:
            if study._storage.get_trial(victim._trial_id).state == TrialState.FAIL:
                marked, marked_at = time.monotonic() - killed, time.time()
            time.sleep(0.1)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()

    assert proc.returncode == 0, out + err
    assert not alive(pid)
    assert "1 worker(s) exited with codes [-9]" in out
    assert "Traceback" not in err

    # marked by a survivor while the study still ran, within the bound
    assert marked is not None, "the dead worker's trial was not marked before the study ended"
    assert marked <= BOUND_S
    print(f"\ndead worker's trial marked FAIL {marked:.1f}s after the kill")

    after = {t.number: t for t in study.get_trials()}
    # the total of finished trials, exactly: the dead worker's trial ran once more (retry_of)
    assert sorted(after) == list(range(TOTAL + 1))
    retries = [t for t in after.values() if "retry_of" in t.user_attrs]
    last = max(
        t.datetime_complete.timestamp() for t in after.values() if t.state == TrialState.COMPLETE
    )
    assert marked_at < last  # seen marked before the survivors finished their last trial
    dead = after[victim.number]
    assert [t.user_attrs["retry_of"] for t in retries] == [victim.number]
    assert retries[0].params == dead.params and retries[0].state == TrialState.COMPLETE
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["fail_reason"] == (
        f"interrupted: worker process {pid} ended while the trial ran"
    )
    for n, trial in before.items():  # nothing completed is lost
        if trial.state == TrialState.COMPLETE:
            assert after[n].state == TrialState.COMPLETE and after[n].value == trial.value
    assert [t.number for t in after.values() if t.state != TrialState.COMPLETE] == [victim.number]
    survivors = {t.user_attrs["worker"]["pid"] for n, t in after.items() if n not in before}
    assert survivors and pid not in survivors  # the three others finished the study
    assert len({t.user_attrs["worker"]["pid"] for t in after.values()} - {pid}) == 3


def test_a_killed_worker_on_sqlite(tmp_path):
    kill_one_worker(tmp_path, None, f"sqlite:///{tmp_path / 's' / 'study.db'}")


def test_a_killed_worker_on_postgres(tmp_path, postgres_url):
    kill_one_worker(
        tmp_path, postgres_url, postgres_url.replace("postgresql://", "postgresql+psycopg://")
    )
