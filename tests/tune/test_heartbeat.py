"""Who judges a RUNNING trial dead, and when: a worker of this machine by its process (pid and
start time), a worker of another machine by its heartbeat, stale only after the grace period
(GRACE_S, 30 s). The trials are real ones in a real SQLite study, with the worker records a
worker writes; ``fail_interrupted`` is what every live worker's heartbeat thread runs.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tunelab.tune import fail_interrupted, open_storage

OTHER = "another-machine.example"
assert socket.gethostname() != OTHER


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: what a worker record calls ``start``."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    storage, _ = open_storage(tmp_path)
    return optuna.create_study(study_name="hb", storage=storage)


def _running(study: optuna.Study, worker: dict | None, heartbeat: float | None = None) -> int:
    """A RUNNING trial with a worker record (and a heartbeat) as a worker leaves them."""
    trial = study.ask()
    if worker is not None:
        trial.set_user_attr("worker", worker)
    if heartbeat is not None:
        trial.set_user_attr("heartbeat", heartbeat)
    return trial.number


def _states(study: optuna.Study) -> dict[int, tuple[str, str | None]]:
    fresh = optuna.load_study(study_name="hb", storage=study._storage)  # read back from the file
    return {t.number: (t.state.name, t.user_attrs.get("fail_reason")) for t in fresh.get_trials()}


def test_another_machines_worker_is_stale_only_after_the_grace_period(study):
    now = time.time()
    other = {"host": OTHER, "pid": 4242, "start": "1", "time": now - 3600}
    old = _running(study, other)  # started an hour ago, never beat
    beat_long_ago = _running(study, other, heartbeat=now - 45)
    beat_recently = _running(study, other, heartbeat=now - 10)  # within 30 s: alive
    just_started = _running(study, other | {"time": now - 5})
    marked = fail_interrupted(study)
    assert sorted(marked) == [old, beat_long_ago]
    states = _states(study)
    assert states[beat_recently] == ("RUNNING", None)
    assert states[just_started] == ("RUNNING", None)
    for number, age in ((old, 3600), (beat_long_ago, 45)):
        state, reason = states[number]
        assert state == "FAIL"
        assert reason.startswith(f"interrupted: no heartbeat from worker {OTHER}:4242 for ")
        seconds = int(reason.split(" for ")[1].split("s")[0])
        assert age <= seconds < age + 600  # the age of the last sign of life, not another
    assert fail_interrupted(study) == []  # the live ones stay live


def test_a_worker_of_this_machine_is_judged_by_its_process_not_its_heartbeat(study):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        host, start = socket.gethostname(), _start_time(child.pid)
        worker = {"host": host, "pid": child.pid, "start": start, "time": time.time() - 3600}
        alive = _running(study, worker, heartbeat=time.time() - 3600)  # old beat, live process
        reused = _running(study, worker | {"start": str(int(start) + 1)})  # same pid, other start
        assert fail_interrupted(study) == [reused]
        assert _states(study)[alive] == ("RUNNING", None)
    finally:
        child.kill()
        child.wait()
    assert fail_interrupted(study) == [alive]  # its process ended: at once, no grace period
    state, reason = _states(study)[alive]
    assert (state, reason) == (
        "FAIL",
        f"interrupted: worker process {child.pid} ended while the trial ran",
    )


def test_a_trial_without_a_worker_record_is_judged_by_its_start(study):
    fresh = _running(study, None)
    assert fail_interrupted(study) == []
    assert _states(study)[fresh][0] == TrialState.RUNNING.name
