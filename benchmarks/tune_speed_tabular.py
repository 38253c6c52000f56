"""Packed trials on a table: an MLP study on digits, packed vs unpacked vs plain Optuna.

The job: digits (1797 samples, 64 features; split test 0.2 / val 0.2), an MLP with hidden
layers HIDDEN and dropout, Adam, EPOCHS epochs at batch size 64; the search space is the
learning rate (log 1e-4..1e-2), the weight decay (0..1e-3) and the dropout rate (0.05..0.5);
random sampler, no pruner (every trial trains all its epochs, so trials per minute measure
the training and the per-trial work alone), no refit.

  packed    ``tunelab.tune`` with ``tune.pack: N`` (default 8): N trials asked at once and
            trained as stacked models (one vmap of the gradients and one stacked Adam step
            per batch).
  unpacked  the same study with ``tune.pack: off``: one trial after another.
  optuna    a plain Optuna script around a hand-written loop: a DataLoader over a
            TensorDataset (shuffle), ``.item()`` per step, validation after every epoch.

Each system runs in its own fresh subprocess, one after the other, and is timed from before
its data is loaded to the end of its last trial. Printed and written to
``benchmarks/results/tune_speed_tabular.json``: trials, seconds, trials per minute, the best
validation accuracy, and the ratios of the packed study's trials per minute to the others'.

    python benchmarks/tune_speed_tabular.py                 # 48 trials each
    python benchmarks/tune_speed_tabular.py --trials 16     # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HIDDEN = [256, 256]
EPOCHS = 10
BATCH = 64
SPACE = {
    "train.optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "train.optimizer.weight_decay": {"low": 0.0, "high": 1e-3},
    "model.dropout": {"low": 0.05, "high": 0.5},
}


def tunelab_study(trials: int, pack: str | int, out: Path) -> dict:
    from tunelab.tune import tune_study

    tree = {
        "name": "tabular",
        "seed": 0,
        "data": {"source": "digits"},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "mlp", "hidden": HIDDEN, "dropout": 0.1},
        "train": {"epochs": EPOCHS, "batch_size": BATCH, "optimizer": {"name": "adam"}},
        "tune": {
            "trials": trials,
            "sampler": "random",
            "pruner": "none",
            "refit": False,
            "space": SPACE,
            "pack": pack,
        },
    }
    tune_study(tree, out=out, quiet=True)
    import optuna

    study = optuna.load_study(study_name="tabular", storage=f"sqlite:///{out / 'study.db'}")
    values = [t.value for t in study.trials if t.value is not None]
    return {"trials": len(study.trials), "best_val_accuracy": max(values, default=None)}


def optuna_study(trials: int) -> dict:
    import numpy as np
    import optuna
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from torch import nn

    X, y = load_digits(return_X_y=True)
    X_rest, _, y_rest, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X_rest, y_rest, test_size=0.25, random_state=0, stratify=y_rest
    )
    mean, std = X_tr.mean(0), X_tr.std(0) + 1e-8
    X_tr = torch.tensor((X_tr - mean) / std, dtype=torch.float32)
    X_va = torch.tensor((X_va - mean) / std, dtype=torch.float32)
    y_tr, y_va = torch.tensor(y_tr), torch.tensor(y_va)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X_tr, y_tr), batch_size=BATCH, shuffle=True
    )

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        wd = trial.suggest_float("weight_decay", 0.0, 1e-3)
        dropout = trial.suggest_float("dropout", 0.05, 0.5)
        torch.manual_seed(0)
        layers, width = [], X_tr.shape[1]
        for h in HIDDEN:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        model = nn.Sequential(*layers, nn.Linear(width, 10))
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
        loss_fn = nn.CrossEntropyLoss()
        best = 0.0
        for _ in range(EPOCHS):
            model.train()
            total = 0.0
            for xb, yb in loader:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                total += loss.item()
            model.eval()
            with torch.no_grad():
                acc = float((model(X_va).argmax(1) == y_va).float().mean())
            best = acc
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective, n_trials=trials)
    return {
        "trials": len(study.trials),
        "best_val_accuracy": float(np.max(study.trials_dataframe()["value"])),
    }


def child(system: str, trials: int, pack: int) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if system == "optuna":
            result = optuna_study(trials)
        else:
            result = tunelab_study(trials, pack if system == "packed" else "off", Path(tmp) / "s")
    seconds = time.perf_counter() - start
    return result | {
        "seconds": round(seconds, 2),
        "trials_per_minute": round(60 * result["trials"] / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--pack", type=int, default=8)
    parser.add_argument("--systems", nargs="+", default=["packed", "unpacked", "optuna"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.trials, args.pack)))
        return
    results = {}
    for system in args.systems:
        cmd = [sys.executable, __file__, "--child", system, "--trials", str(args.trials)]
        run = subprocess.run(
            cmd + ["--pack", str(args.pack)], capture_output=True, text=True, env=os.environ
        )
        if run.returncode != 0:
            sys.exit(f"{system} failed:\n{run.stderr[-3000:]}")
        results[system] = json.loads(run.stdout.strip().splitlines()[-1])
        r = results[system]
        print(
            f"{system:9s} {r['trials']:4d} trials in {r['seconds']:7.1f} s: "
            f"{r['trials_per_minute']:7.1f} trials/min, best val accuracy {r['best_val_accuracy']:.4f}"
        )
    ratios = {}
    if "packed" in results:
        for other in ("unpacked", "optuna"):
            if other in results:
                ratio = results["packed"]["trials_per_minute"] / results[other]["trials_per_minute"]
                ratios[f"packed_vs_{other}"] = round(ratio, 2)
                print(f"packed / {other}: {ratio:.2f}x the trials per minute")
    import torch

    record = {
        "job": {
            "data": "digits",
            "hidden": HIDDEN,
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "trials": args.trials,
            "pack": args.pack,
            "space": SPACE,
        },
        "results": results,
        "ratios": ratios,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
        },
    }
    out = Path(__file__).parent / "results" / "tune_speed_tabular.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
