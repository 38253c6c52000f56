"""``--executor ray``: trials as Ray tasks on a local Ray cluster, the study in its storage.

Ray binds the machine's interface address, not loopback, so every test here runs `tunelab`
inside a network namespace it creates (``unshare --net`` with only ``lo`` up): the only address
there is loopback, and no Ray traffic can leave it. The study uses SQLite in the test's folder
(the PostgreSQL server on the host's loopback is not reachable from that namespace).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

pytestmark = pytest.mark.slow
pytest.importorskip("ray", reason="Ray is not installed: pip install tunelab[ray]")

SPEC = """\
name: rays
seed: 5
data: {source: digits}
split: {test: 0.2, val: 0.2}
model: {name: mlp, hidden: [32]}
train: {epochs: 8, batch_size: 64, optimizer: {name: adam, lr: 0.01}}
tune:
  trials: 6
  sampler: grid
  pruner: none
  space:
    train.optimizer.lr: {choices: [0.001, 0.003, 0.01, 0.03, 0.1, 0.2]}
"""
NET = "ip link set lo up && exec {exe} {args}"


@cache
def _net_namespace() -> bool:
    try:
        probe = subprocess.run(
            ["unshare", "--net", "sh", "-c", "ip link set lo up"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@pytest.fixture(autouse=True)
def _needs_a_net_namespace(unavailable):
    if not _net_namespace():
        unavailable(
            "cannot make a network namespace (unshare --net needs root or CAP_SYS_ADMIN, and "
            "`ip` from iproute2): Ray must not listen on this machine's interfaces",
            variable="TUNELAB_REQUIRE_NAMESPACES",
        )


def _tunelab(args: list[str], cwd: Path, **popen) -> subprocess.Popen:
    """`tunelab ARGS` in a new network namespace with only loopback; the returned process
    is tunelab itself (unshare and sh exec it), so a signal to it reaches tunelab."""
    exe = Path(sys.executable).with_name("tunelab")
    command = NET.format(exe=exe, args=" ".join(args))
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_USAGE_STATS_ENABLED="0")
    return subprocess.Popen(
        ["unshare", "--net", "sh", "-c", command], cwd=cwd, env=env, text=True, **popen
    )


def _results(folder: Path) -> dict:
    study = optuna.load_study(study_name="rays", storage=f"sqlite:///{folder / 'study.db'}")
    return {
        t.params["train.optimizer.lr"]: (t.state, t.value, t.user_attrs["result"]["epochs_trained"])
        for t in study.get_trials()
    }


def test_ray_tasks_give_the_same_trials_and_results_as_worker_processes(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    runs = {}
    for name, extra in (("local", []), ("ray", ["--executor", "ray", "--trial-cpus", "1"])):
        proc = _tunelab(
            ["tune", "spec.yaml", "--out", name, "--workers", "2", "-q", *extra],
            tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out
        assert "sealed test" in out and "Traceback" not in out
        runs[name] = _results(tmp_path / name)
    assert len(runs["ray"]) == 6 and set(runs["ray"]) == set(runs["local"])
    for lr, (state, value, epochs) in runs["local"].items():
        ray_state, ray_value, ray_epochs = runs["ray"][lr]
        assert (ray_state, ray_epochs) == (state, epochs) == (TrialState.COMPLETE, [8])
        assert ray_value == pytest.approx(value, abs=1e-9)  # the same training, task or process


def _running(db: Path) -> int:
    """RUNNING trials in the study's SQLite file (read without Optuna's migrations)."""
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'RUNNING'").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are being created
        return 0


def test_ctrl_c_to_the_driver_cancels_the_tasks_and_the_study_resumes(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("epochs: 8", "epochs: 60"))
    args = ["tune", "spec.yaml", "--out", "s", "--workers", "2", "--executor", "ray", "-q"]
    proc = _tunelab(args, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stop = time.time() + 300
    while _running(tmp_path / "s" / "study.db") == 0:
        assert time.time() < stop and proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "interrupted:" in out and "--resume" in out and "Traceback" not in out
    study = optuna.load_study(study_name="rays", storage=f"sqlite:///{tmp_path / 's/study.db'}")
    assert not study.get_trials(states=(TrialState.RUNNING,))  # cancelled tasks marked at once
    cancelled = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert cancelled and all(
        t.user_attrs["fail_reason"].startswith("interrupted") for t in cancelled
    )

    again = _tunelab(
        [*args, "--resume"], tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    trials = study.get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6  # the whole grid, each interrupted point run once more
    assert sorted(t.params["train.optimizer.lr"] for t in complete) == [
        0.001, 0.003, 0.01, 0.03, 0.1, 0.2
    ]  # fmt: skip
