"""A study spread over machines: `tunelab tune --storage postgresql://...` on one, `tunelab
worker --storage ... --study NAME` on two others, all on the PostgreSQL at 127.0.0.1.

Each "machine" is a process tree in its own UTS and PID namespace (``unshare --uts --pid``):
its own host name and pid space, so no machine can judge another's trials by pid and the
cross-host paths (the database-level lock, heartbeats, stale trials) really run. Killing a
machine is SIGKILL of its namespace's first process, which takes the whole tree with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

pytestmark = pytest.mark.slow

TOTAL = 30
SPEC = f"""\
name: machines
seed: 3
data: {{source: digits}}
split: {{test: 0.2, val: 0.2}}
model: {{name: mlp, hidden: [32]}}
train: {{epochs: 60, batch_size: 64, optimizer: {{name: adam, lr: 0.01}}}}
tune:
  trials: {TOTAL}
  sampler: random
  pruner: none
  space:
    train.optimizer.lr: {{low: 1.0e-3, high: 1.0e-1, log: true}}
    model.hidden: {{choices: [[16], [32], [64]]}}
"""
# 60 epochs: trials long enough (about 3 s on 2 cores) that every machine joins before the
# total is taken (at 12 epochs the first machine ran 28 of 30 trials in 9 s on a faster CPU)
# fast heartbeats, a short grace: a killed machine's trial is stale within seconds
ENV = {"TUNELAB_HEARTBEAT_S": "1", "TUNELAB_GRACE_S": "10", "PYTHONUNBUFFERED": "1"}


@cache
def _namespaces() -> bool:
    try:
        probe = subprocess.run(
            ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", "hostname m0"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@pytest.fixture(autouse=True)
def _needs_namespaces(unavailable):
    if not _namespaces():
        unavailable(
            "cannot make UTS + PID namespaces (unshare --uts --pid needs root or CAP_SYS_ADMIN)",
            variable="TUNELAB_REQUIRE_NAMESPACES",
        )


def _machine(host: str, args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """`tunelab ARGS` on a simulated machine called ``host``; SIGKILL of the returned process
    ends everything on that machine (``--kill-child``, and a PID namespace dies with its
    first process)."""
    exe = Path(sys.executable).with_name("tunelab")
    command = " ".join([f"hostname {host} && exec {exe}", *args])
    return subprocess.Popen(
        ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
         command],
        cwd=cwd,
        env=dict(os.environ, **ENV),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def _study(url: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name="machines", storage=url)
    except KeyError:
        return None


def _wait_for(condition, what: str, timeout: float = 240):
    stop = time.time() + timeout
    while time.time() < stop:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _running_on(url: str, host: str):
    study = _study(url)
    if study is None:
        return None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if (t.user_attrs.get("worker") or {}).get("host") == host:
            return t.number
    return None


def _counted(trials) -> list:
    """The trials that count toward the total: finished ones, less the interrupted."""
    return [
        t
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (
            t.state == TrialState.FAIL
            and not (t.user_attrs.get("fail_reason") or "").startswith("interrupted")
        )
    ]


def _start_machines(tmp_path: Path, url: str, *, resume: bool = False) -> dict:
    tune = ["tune", "spec.yaml", "--out", "s", "--storage", url, "--workers", "2", "-q"]
    machines = {"m1": _machine("m1", tune + (["--resume"] if resume else []), tmp_path,
                               tmp_path / f"m1{'r' if resume else ''}.log")}  # fmt: skip
    if not resume:  # a worker joins a study that exists (published by tunelab tune)
        _wait_for(lambda: (s := _study(url)) is not None and "tunelab" in s.user_attrs, "study")
    for host in ("m2", "m3"):
        args = ["worker", "--storage", url, "--study", "machines", "--workers", "2"]
        machines[host] = _machine(host, [*args, "--out", host], tmp_path, tmp_path / f"{host}.log")
    return machines


def test_three_machines_make_exactly_the_total_and_a_killed_machine_is_retried_once(
    tmp_path, postgres_url
):
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    (tmp_path / "spec.yaml").write_text(SPEC)
    machines = _start_machines(tmp_path, postgres_url)
    killed = _wait_for(lambda: _running_on(url, "m2"), "a trial running on m2")
    machines["m2"].send_signal(signal.SIGKILL)
    machines["m2"].wait(timeout=30)
    for host in ("m1", "m3"):
        assert machines[host].wait(timeout=400) == 0, (tmp_path / f"{host}.log").read_text()

    trials = optuna.load_study(study_name="machines", storage=url).get_trials()
    assert len(_counted(trials)) == TOTAL  # exactly the total, over three machines
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = next(t for t in trials if t.number == killed)
    assert dead.state == TrialState.FAIL
    assert dead.user_attrs["fail_reason"].startswith("interrupted: no heartbeat from worker m2:")
    assert "stale" in dead.user_attrs["fail_reason"]
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert len(retries) == 1 and retries[0].params == dead.params
    assert retries[0].state == TrialState.COMPLETE
    hosts = {(t.user_attrs.get("worker") or {}).get("host") for t in _counted(trials)}
    assert {"m1", "m3"} <= hosts  # every surviving machine took part
    interrupted = [t for t in trials if t not in _counted(trials)]
    assert all(t.user_attrs.get("fail_reason", "").startswith("interrupted") for t in interrupted)
    assert len(trials) == TOTAL + len(interrupted)  # nothing else lost or run twice
    log = (tmp_path / "m1.log").read_text()
    assert "sealed test" in log and "Traceback" not in log


def test_a_whole_study_killed_on_every_machine_resumes_to_exactly_the_total(tmp_path, postgres_url):
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    (tmp_path / "spec.yaml").write_text(SPEC)
    machines = _start_machines(tmp_path, postgres_url)
    _wait_for(
        lambda: (
            (s := _study(url)) is not None
            and len([t for t in s.get_trials(deepcopy=False) if t.state.is_finished()]) >= 6
        ),
        "six finished trials",
    )
    for proc in machines.values():  # every machine at once, mid-trial
        proc.send_signal(signal.SIGKILL)
    for proc in machines.values():
        proc.wait(timeout=30)
    before = optuna.load_study(study_name="machines", storage=url).get_trials()
    finished_before = {t.number: t.params for t in _counted(before)}
    assert any(t.state == TrialState.RUNNING for t in before)  # killed mid-trial

    machines = _start_machines(tmp_path, postgres_url, resume=True)
    for host, proc in machines.items():
        log = tmp_path / (f"{host}r.log" if host == "m1" else f"{host}.log")
        assert proc.wait(timeout=400) == 0, log.read_text()
    trials = optuna.load_study(study_name="machines", storage=url).get_trials()
    assert len(_counted(trials)) == TOTAL
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    after = {t.number: t for t in trials}
    for number, params in finished_before.items():  # kept, never re-run
        assert after[number].params == params
    for t in before:
        if t.state == TrialState.RUNNING:
            assert after[t.number].state == TrialState.FAIL
            assert after[t.number].user_attrs["fail_reason"].startswith("interrupted")
            assert len([r for r in trials if r.user_attrs.get("retry_of") == t.number]) == 1


def test_a_worker_whose_data_differs_is_refused(cli, tmp_path, postgres_url):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("trials: 30", "trials: 2"))
    assert cli("tune", "spec.yaml", "--out", "s", "--storage", postgres_url, "-q").returncode == 0
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://")
    study = optuna.load_study(study_name="machines", storage=url)
    record = dict(study.user_attrs["tunelab"])
    record["data"] = "0123456789abcdef"  # as if this machine's file were another version
    study.set_user_attr("tunelab", record)
    result = cli("worker", "--storage", postgres_url, "--study", "machines")
    assert result.returncode == 2
    assert "data fingerprint" in result.stderr and "0123456789abcdef" in result.stderr
    assert "Traceback" not in result.stderr
    listing = cli("worker", "--storage", postgres_url)
    assert listing.returncode == 0 and "machines  (2 trials)" in listing.stdout
    unknown = cli("worker", "--storage", postgres_url, "--study", "machine")
    assert unknown.returncode == 2
    assert "did you mean `machines`" in unknown.stderr and "machines (2 trials)" in unknown.stderr
