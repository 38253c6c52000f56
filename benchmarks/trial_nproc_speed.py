"""A study whose trials train data-parallel (``tune.trial_nproc: 2``) against the same study
with one process per trial.

The same spec, data, split, global batch, sampler seed and trials (so the same parameters);
gloo on the CPU. Per trial, read off the study folder: ``trial_s`` (its whole time in the
worker, ``trial.json``), ``train_s`` (the sum of its epochs' seconds, rank 0's
``history.jsonl``) and their difference, the per-trial overhead (with 2 ranks: spawning them,
sending the data, the process group; the first trial of a worker also starts the fork server
the ranks are forked from, which imports torch and tunelab once). Three configurations: one
process with all the torch threads, one process with a rank's share of them (the peer with the
same threads per process), and two ranks. Reported: the medians, each trial's overhead, the
ratios of the one-process times to the two-rank time.

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
    threads = torch.get_num_threads()
    # (label, trial_nproc, torch threads of the worker): one process with all the threads,
    # one with a rank's share of them, and two ranks (each gets its share)
    configs = [
        ("one_process", 1, threads),
        ("one_process_rank_threads", 1, max(1, threads // 2)),
        ("two_processes", 2, threads),
    ]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, nproc, n_threads in configs:
            torch.set_num_threads(n_threads)
            folder = Path(tmp) / label
            raw = spec(nproc, trials=args.trials, epochs=args.epochs, batch=args.batch)
            tune_study(raw, out=folder, quiet=True)
            rows[label] = study_times(folder) | {"threads": n_threads}
            print(f"{label} (trial_nproc {nproc}, {n_threads} threads): {rows[label]}", flush=True)
    one, half, two = (rows[label] for label, _, _ in configs)
    print(
        f"per trial: {one['trial_s']:.2f} s on 1 process ({one['threads']} threads), "
        f"{half['trial_s']:.2f} s on 1 process ({half['threads']} threads), "
        f"{two['trial_s']:.2f} s on 2 ranks; overhead {two['overhead_s']:.2f} s per trial on 2 "
        f"ranks (first trial {two['overheads_s'][0]:.1f} s) vs {one['overhead_s']:.2f} s"
    )
    result = {
        "benchmark": "trial_nproc_speed",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "trials": args.trials,
        "epochs": args.epochs,
        "batch": args.batch,
        **rows,
        "ratio_trial_one_to_two": one["trial_s"] / two["trial_s"],
        "ratio_trial_rank_threads_to_two": half["trial_s"] / two["trial_s"],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
