"""`tunelab train` killed with SIGKILL mid-epoch, then `tunelab train --resume`: the same run.

Every run here is a real `tunelab` process. The spec makes every piece of saved state matter:
augmentation and shuffling (fit's generator), dropout (torch's RNG), Adam's moments, a plateau
schedule that cuts the rate, and early stopping that restores its best weights at the end.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import tunelab
from tunelab.cli import main
from tunelab.errors import RunError
from tunelab.train import CHECKPOINT_FILE, load_checkpoint

pytestmark = pytest.mark.slow

SPEC = """\
name: resume
seed: 3
data: {source: mnist-5k}
split: {test: 0.5, val: 0.2}    # 2,000 train / 500 val: 100 steps an epoch
model: {name: cnn, channels: 8, hidden: 32, dropout: 0.3}
train:
  epochs: 6
  batch_size: 20
  optimizer: {name: adam, lr: 2.0e-3}
  schedule: {name: plateau, patience: 0, factor: 0.5, threshold: 0.1}
  augment: [{name: crop, padding: 2}, {name: noise, std: 0.05}]
  early_stopping: {monitor: val_accuracy, patience: 4}
  metrics: [accuracy]
evaluate: {ci: {resamples: 100}}
"""

# one thread per process: the runs share two cores, and every run uses the same setting
ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
TUNELAB = str(Path(sys.executable).with_name("tunelab"))


def start(*args: str, cwd: Path) -> subprocess.Popen:
    """`tunelab ARGS` in its own process group (so that a kill reaches all of it)."""
    return subprocess.Popen(
        [TUNELAB, *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(*args: str, cwd: Path) -> None:
    proc = start(*args, cwd=cwd)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def history(run: Path) -> list[dict]:
    path = run / "history.jsonl"
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    return [json.loads(line) for line in lines if line.endswith("\n")]


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def saved_epoch(run: Path) -> int:
    path = run / CHECKPOINT_FILE
    return load_checkpoint(path).epoch if path.exists() else 0


def kill_mid_epoch(proc: subprocess.Popen, run: Path, *, after: int) -> int:
    """SIGKILL ``proc`` a third into the epoch after the first checkpoint past epoch
    ``after``; returns the epoch of the checkpoint it left."""
    deadline = time.monotonic() + 300
    while saved_epoch(run) <= after:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(min(0.3 * history(run)[-1]["seconds"], 0.5))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()  # it was killed while training
    epoch = saved_epoch(run)
    assert after < epoch < 6
    return epoch


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Folders of one spec: ``full`` trained without interruption; ``killed`` SIGKILLed in its
    second epoch; ``once``, a copy of it resumed; ``twice``, a copy resumed, killed again
    mid-epoch and resumed again. The processes overlap to keep the wall time down."""
    root = tmp_path_factory.mktemp("resume")
    (root / "spec.yaml").write_text(SPEC)
    full = start("train", "spec.yaml", "--out", "full", "-q", cwd=root)
    first = kill_mid_epoch(
        start("train", "spec.yaml", "--out", "killed", "-q", cwd=root), root / "killed", after=0
    )
    for name in ("once", "twice"):
        shutil.copytree(root / "killed", root / name)
    once = start("train", "--resume", "once", cwd=root)
    second = kill_mid_epoch(
        start("train", "--resume", "twice", cwd=root), root / "twice", after=first
    )
    twice = start("train", "--resume", "twice", cwd=root)
    for proc in (full, once, twice):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    return {"root": root, "first": first, "second": second}


def assert_same_run(resumed: Path, full: Path, *, resumptions: list[int]) -> None:
    """Indistinguishable from the uninterrupted run apart from timing fields."""
    names = sorted(p.name for p in full.iterdir())
    assert sorted(p.name for p in resumed.iterdir()) == names  # no checkpoint, no temporaries
    assert CHECKPOINT_FILE not in names
    # bit-identical weights
    a, b = load_file(resumed / "model.safetensors"), load_file(full / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the same history, row for row, apart from each epoch's seconds
    rows, expected = history(resumed), history(full)
    assert len(rows) == 6 and all(r["seconds"] > 0 for r in rows)
    assert without_seconds(rows) == without_seconds(expected)
    # every other result file byte for byte; predictions by value; not the HTML report (it
    # names its folder) nor the weights' header (safetensors orders its metadata at random)
    skip = {"env.json", "history.jsonl", "predictions.npz", "report.html", "model.safetensors"}
    for name in set(names) - skip:
        assert (resumed / name).read_bytes() == (full / name).read_bytes(), name
    pa, pb = tunelab.Run(resumed).predictions(), tunelab.Run(full).predictions()
    assert pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)
    # env.json records each resumption; the rest is the original record
    env, env_full = json.loads((resumed / "env.json").read_text()), tunelab.Run(full).env
    assert [r["after_epoch"] for r in env.pop("resumed")] == resumptions
    assert env["command"][1:3] == ["train", "spec.yaml"]
    skip = {"created", "command"}
    assert {k: v for k, v in env.items() if k not in skip} == {
        k: v for k, v in env_full.items() if k not in skip
    }


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights_and_files(runs):
    root = runs["root"]
    assert_same_run(root / "once", root / "full", resumptions=[runs["first"]])


def test_a_run_killed_twice_resumes_to_the_same_weights_and_files(runs):
    root = runs["root"]
    assert runs["first"] < runs["second"]
    assert_same_run(root / "twice", root / "full", resumptions=[runs["first"], runs["second"]])


# ---------------------------------------------------------------------------------------------
# what cannot be resumed says why (in-process: the CLI's real entry point, without a startup)


def copy(runs: dict, name: str, to: str) -> Path:
    shutil.copytree(runs["root"] / name, runs["root"] / to)
    return runs["root"] / to


def refused(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_finished_run_is_refused(runs, capsys):
    full = runs["root"] / "full"
    assert f"{full} is already finished" in refused(capsys, "train", "--resume", str(full))


def test_a_run_without_checkpoint_is_refused(runs, capsys, tmp_path):
    run = copy(runs, "killed", "no-checkpoint")
    (run / CHECKPOINT_FILE).unlink()
    err = refused(capsys, "train", "--resume", str(run))
    assert f"{run} has no {CHECKPOINT_FILE}: it stopped before its first epoch ended" in err
    assert f"tunelab train {run / 'spec.yaml'} --out {run}" in err
    assert "is not a tunelab run" in refused(capsys, "train", "--resume", str(tmp_path / "nope"))


def test_a_cross_validated_run_says_it_has_no_checkpoints(tmp_path):
    spec = {"data": "iris", "model": "linear", "split": {"cv": 2}, "train": {"epochs": 1}}
    run = tunelab.train(spec, out=tmp_path / "cv", quiet=True)
    assert not (run.path / CHECKPOINT_FILE).exists()
    (run.path / "metrics.json").unlink()  # as if killed before the end
    with pytest.raises(RunError, match="cross-validated run; only holdout runs write checkpoints"):
        tunelab.resume(run.path)


def test_an_edited_spec_is_refused(runs, capsys):
    run = copy(runs, "killed", "edited")
    spec = run / "spec.yaml"
    spec.write_text(spec.read_text().replace("epochs: 6", "epochs: 9"))
    err = refused(capsys, "train", "--resume", str(run))
    assert f"{spec} changed since {run / CHECKPOINT_FILE} was written" in err


class Payload:
    """Unpickling this creates a file: proof that nothing was unpickled if it does not exist."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_planted_pickle_checkpoint_is_refused_and_never_runs(runs, capsys):
    run = copy(runs, "killed", "planted")
    marker = run / "unpickled"
    (run / CHECKPOINT_FILE).write_bytes(pickle.dumps(Payload(marker)))
    err = refused(capsys, "train", "--resume", str(run))
    assert f"{run / CHECKPOINT_FILE} is not a valid safetensors checkpoint" in err
    assert not marker.exists()


def test_resume_takes_no_spec_or_settings(runs, capsys):
    for extra in (["spec.yaml"], ["--out", "x"], ["--set", "train.epochs=2"]):
        err = refused(capsys, "train", *extra, "--resume", str(runs["root"] / "killed"))
        assert "give no SPEC, --out, --set or --seeds with it" in err
    assert "missing SPEC" in refused(capsys, "train")
