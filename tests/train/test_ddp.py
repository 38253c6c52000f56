"""Data-parallel training (`tunelab train --nproc N`, torchrun): real processes, gloo on CPU.

Two processes with global batch B follow one process with batch B: after two epochs the
weights agree within 1e-5 (the shares of an odd batch are uneven on purpose: the loss scaling
keeps the gradient that of the whole batch). SIGKILL of rank 1 mid-training ends the run with
a message and a resumable checkpoint, and the resumed run ends where an uninterrupted one does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

SPEC = """\
name: ddp
seed: 1
data: {source: digits}
split: {test: 0.2, val: 0.2}
model: {name: mlp, hidden: [32]}
train: {epochs: EPOCHS, batch_size: 63, optimizer: {name: adam, lr: 0.001}}
"""


def _diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def _history(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "history.jsonl").read_text().splitlines()]


def _scratch() -> set[Path]:
    return set(Path(os.environ.get("TMPDIR", "/tmp")).glob("tunelab-rank1-*"))


def test_two_processes_follow_one_process_with_the_same_global_batch(cli, tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("EPOCHS", "2"))
    before = _scratch()
    one = cli("train", "spec.yaml", "--out", "one", "-q")
    assert one.returncode == 0, one.stderr
    two = cli("train", "spec.yaml", "--out", "two", "--nproc", "2", "-q")
    assert two.returncode == 0, two.stdout + two.stderr
    assert _diff(tmp_path / "one", tmp_path / "two") < 1e-5
    for a, b in zip(_history(tmp_path / "one"), _history(tmp_path / "two"), strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)  # reduced over ranks
        assert b["train_accuracy"] == a["train_accuracy"]
        assert b["val_accuracy"] == a["val_accuracy"]
    env = json.loads((tmp_path / "two" / "env.json").read_text())
    assert env["data_parallel"] == {"world": 2, "backend": "gloo"}
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert "test" in metrics  # rank 0's one look; the other rank's scratch folder is gone
    assert _scratch() <= before  # rank 1's scratch folder is removed when it ends


def test_the_same_under_torchrun(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("EPOCHS", "2"))
    exe = Path(sys.executable)
    subprocess.run([exe.with_name("tunelab"), "train", "spec.yaml", "--out", "one", "-q"],
                   cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    run = subprocess.run(
        [exe.with_name("torchrun"), "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
         "--master-port", "29581", "-m", "tunelab", "train", "spec.yaml", "--out", "tr", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert _diff(tmp_path / "one", tmp_path / "tr") < 1e-5


def _rank_pids(parent: int) -> list[int]:
    """The spawned rank processes of `tunelab train --nproc` (in start order)."""
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    pids = []
    for pid in sorted(int(p) for p in out.split()):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmd:
            pids.append(pid)
    return pids


def test_a_killed_rank_ends_the_run_with_a_resumable_checkpoint(cli, tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("EPOCHS", "30"))
    exe = Path(sys.executable).with_name("tunelab")
    proc = subprocess.Popen([exe, "train", "spec.yaml", "--out", "r", "--nproc", "2", "-q"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    ckpt = tmp_path / "r" / "checkpoint.safetensors"
    stop = time.time() + 240
    while not (ckpt.is_file() and len(_rank_pids(proc.pid)) == 2):
        assert time.time() < stop and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    os.kill(_rank_pids(proc.pid)[1], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, out + err
    assert "data-parallel rank 1 of 2 ended with signal SIGKILL" in err
    assert "tunelab train --resume r --nproc 2" in err and "Traceback" not in err
    assert ckpt.is_file() and not (tmp_path / "r" / "metrics.json").exists()

    again = cli("train", "--resume", "r", "--nproc", "2", "-q", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    whole = cli("train", "spec.yaml", "--out", "whole", "-q", timeout=600)  # one process
    assert whole.returncode == 0
    assert _diff(tmp_path / "r", tmp_path / "whole") < 1e-5
    assert [r["epoch"] for r in _history(tmp_path / "r")] == list(range(1, 31))
