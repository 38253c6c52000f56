"""A study whose trials train data-parallel (``tune.trial_nproc: 2``) against the same study
with one process per trial.

The same spec, data, split, global batch, sampler seed and trials (so the same parameters);
gloo on the CPU. Per trial, read off the study folder: ``trial_s`` (its whole time in the
worker, ``trial.json``), ``train_s`` (the sum of its epochs' seconds, rank 0's
``history.jsonl``) and their difference, the per-trial overhead (with 2 ranks: spawning them,
sending the data, the process group; the first trial of a worker also starts the fork server
the ranks are forked from, which imports torch and tunelab once). Reported: the medians, each
trial's overhead, and the ratios 1 / 2.

    python benchmarks/trial_nproc_speed.py                   # mlp on mnist-5k, 3 trials, 3 epochs
    python benchmarks/trial_nproc_speed.py --trials 2 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def spec(nproc: int, *, trials: int, epochs: int, batch: int) -> dict:
    return {
        "name": "trial-nproc-speed",
        "seed": 0,
        "data": {"source": "mnist-5k"},
        "split": {"test": 0.2, "val": 0.1},
        "model": {"name": "mlp", "hidden": [256, 128]},
        "train": {"epochs": epochs, "batch_size": batch, "optimizer": {"name": "adam"}},
        "tune": {
            "trials": trials,
            "pruner": "none",
            "refit": False,
            "sampler": {"name": "random", "seed": 0},
            "space": {"train.optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True}},
            "trial_nproc": nproc,
        },
    }


def study_times(folder: Path) -> dict:
    trial_s, train_s = [], []
    for trial in sorted((folder / "trials").iterdir()):
        record = json.loads((trial / "trial.json").read_text())
        rows = [json.loads(r) for r in (trial / "history.jsonl").read_text().splitlines()]
        trial_s.append(record["seconds"])
        train_s.append(sum(r["seconds"] for r in rows))
    return {
        "trial_s": statistics.median(trial_s),
        "train_s": statistics.median(train_s),
        "overhead_s": statistics.median(a - b for a, b in zip(trial_s, train_s, strict=True)),
        "overheads_s": [round(a - b, 2) for a, b in zip(trial_s, train_s, strict=True)],
    }


def main() -> None:
    from tunelab.tune import tune_study

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/trial_nproc_speed.json")
    )
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, 2):
            folder = Path(tmp) / f"nproc-{nproc}"
            raw = spec(nproc, trials=args.trials, epochs=args.epochs, batch=args.batch)
            tune_study(raw, out=folder, quiet=True)
            rows[nproc] = study_times(folder)
            print(f"trial_nproc {nproc}: {rows[nproc]}", flush=True)
    ratio_trial = rows[1]["trial_s"] / rows[2]["trial_s"]
    ratio_train = rows[1]["train_s"] / rows[2]["train_s"]
    print(
        f"per trial: {rows[1]['trial_s']:.1f} s on 1 process, {rows[2]['trial_s']:.1f} s on 2 "
        f"(overhead {rows[1]['overhead_s']:.1f} s vs {rows[2]['overhead_s']:.1f} s); "
        f"speed-up 1/2: {ratio_trial:.2f} (trial), {ratio_train:.2f} (training epochs)"
    )
    result = {
        "benchmark": "trial_nproc_speed",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "trials": args.trials,
        "epochs": args.epochs,
        "batch": args.batch,
        "one_process": rows[1],
        "two_processes": rows[2],
        "ratio_trial": ratio_trial,
        "ratio_train": ratio_train,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
