"""Data-parallel throughput: ``tunelab train --nproc 2`` against the same run in one process.

The same spec, data, split, global batch and epochs; gloo on the CPU (or nccl with
``--device cuda`` where there are GPUs). Each round runs one process, then two, each as its own
``tunelab train`` command (process start, data, splits, the test look and the run files are in
the wall time; the training samples/s are read off the run's history, which times each epoch).

Reported, median over ``--rounds``:

  - ``samples_per_s``: training samples / the sum of the epochs' seconds (rank 0's history).
  - ``wall_s``: the whole command.
  - the ratio of two processes to one, for both.

On a machine with C cores, each of the N processes gets C // N torch threads, so on a CPU the
question this answers is whether two processes with half the threads each beat one process with
all of them (they share the same cores and memory bandwidth).

    python benchmarks/ddp_speed.py                    # mlp on mnist-5k, 3 epochs, 3 rounds
    python benchmarks/ddp_speed.py --model cnn --epochs 2 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

MODELS = {
    "mlp": {"name": "mlp", "hidden": [256, 128]},
    "cnn": {"name": "cnn"},
}


def spec_text(model: str, epochs: int, batch: int, device: str) -> str:
    return json.dumps(
        {
            "name": "ddp-speed",
            "seed": 0,
            "data": {"source": "mnist-5k"},
            "split": {"test": 0.2, "val": 0.1},
            "model": MODELS[model],
            "train": {
                "epochs": epochs,
                "batch_size": batch,
                "device": device,
                "optimizer": {"name": "adam", "lr": 1e-3},
            },
        }
    )


def one_run(folder: Path, spec: Path, nproc: int) -> dict:
    out = folder / f"run-{nproc}"
    command = [sys.executable, "-m", "tunelab", "train", str(spec), "--out", str(out), "-q"]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    splits = json.loads((out / "splits.json").read_text())
    n_train = splits["folds"][0]["train"]["size"]  # a holdout split: one fold
    seconds = sum(r["seconds"] for r in rows)
    return {
        "samples_per_s": n_train * len(rows) / seconds,
        "epoch_seconds": seconds,
        "wall_s": wall,
        "final_val_accuracy": rows[-1].get("val_accuracy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/ddp_speed.json"))
    args = parser.parse_args()
    runs: dict[int, list[dict]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"  # JSON is YAML
        spec.write_text(spec_text(args.model, args.epochs, args.batch, args.device))
        for r in range(args.rounds):
            for nproc in (1, 2):
                folder = Path(tmp) / f"round-{r}"
                folder.mkdir(exist_ok=True)
                runs[nproc].append(one_run(folder, spec, nproc))
                print(f"round {r + 1}, {nproc} process(es): {runs[nproc][-1]}", flush=True)
    rows = {}
    for nproc, found in runs.items():
        rows[nproc] = {
            key: statistics.median(f[key] for f in found)
            for key in ("samples_per_s", "epoch_seconds", "wall_s")
        }
    ratio = rows[2]["samples_per_s"] / rows[1]["samples_per_s"]
    wall_ratio = rows[1]["wall_s"] / rows[2]["wall_s"]
    print(
        f"1 process: {rows[1]['samples_per_s']:,.0f} samples/s ({rows[1]['wall_s']:.1f} s wall); "
        f"2 processes: {rows[2]['samples_per_s']:,.0f} samples/s ({rows[2]['wall_s']:.1f} s wall); "
        f"ratio 2/1: {ratio:.2f} (training), {wall_ratio:.2f} (wall, 1/2)"
    )
    result = {
        "benchmark": "ddp_speed",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "model": args.model,
        "epochs": args.epochs,
        "batch": args.batch,
        "device": args.device,
        "rounds": args.rounds,
        "one_process": rows[1],
        "two_processes": rows[2],
        "ratio_samples_per_s": ratio,
        "ratio_wall": wall_ratio,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
