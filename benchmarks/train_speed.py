"""tunelab.train against the textbook PyTorch loop, same CNN, data, split and epochs.

The textbook loop is what a reader of a PyTorch chapter writes: a DataLoader over a
TensorDataset (batch 100, shuffled), Adam lr 1e-3, and a validation pass after every epoch.
tunelab.train runs the spec with the same settings and does all of its bookkeeping (history
file, splits with fingerprints, weights, final test evaluation, metrics files).

Both run in one process, alternately, for a few rounds; the median of each is reported.
Beside them, the lazy path: the same images as a user's torch Dataset (``source: python``,
``cache: none``), read through a DataLoader with ``--workers`` processes every epoch; its
samples/s (epochs only) are printed next to the in-memory ones.

    python benchmarks/train_speed.py                      # CPU, 10 epochs, 3 rounds
    python benchmarks/train_speed.py --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tunelab
from tunelab.data import fit_standardizer, load_dataset, make_splits
from tunelab.train import Console

SPEC = {
    "name": "bench",
    "seed": 0,
    "data": {"source": "mnist-5k"},
    "split": {"test": 0.2, "val": 0.1},
    "model": {"name": "cnn"},
    "train": {
        "batch_size": 100,
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "lr": 1e-3},
        "metrics": ["accuracy"],
    },
}


class MnistSamples(torch.utils.data.Dataset):
    """mnist-5k as a user's map-style Dataset: one (image, label) per index."""

    def __init__(self) -> None:
        ds = load_dataset(tunelab.load_spec(SPEC).data)
        self.X, self.y = ds.X, ds.y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.X[i], int(self.y[i])


def mnist_samples() -> MnistSamples:
    """The factory of the lazy path (``data.factory: train_speed:mnist_samples``)."""
    return MnistSamples()


def textbook(
    X_tr, y_tr, X_va, y_va, *, epochs: int, device: torch.device, seed: int
) -> tuple[float, float]:
    """The chapter's loop. Returns (seconds, final validation accuracy)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 14 * 14, 10),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_loader = DataLoader(TensorDataset(X_tr, y_tr), batch_size=100, shuffle=True)
    val_loader = DataLoader(TensorDataset(X_va, y_va), batch_size=1000)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
            total += len(yb)
        model.eval()
        v_correct, v_total, v_loss = 0, 0, 0.0
        with torch.no_grad():
            for xb, yb in val_loader:
                xb, yb = xb.to(device), yb.to(device)
                out = model(xb)
                v_loss += loss_fn(out, yb).item() * len(yb)
                v_correct += (out.argmax(1) == yb).sum().item()
                v_total += len(yb)
        print(
            f"  textbook epoch {epoch + 1}: train loss {loss_sum / total:.4f} acc {correct / total:.4f} | "
            f"val loss {v_loss / v_total:.4f} acc {v_correct / v_total:.4f}"
        )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, v_correct / v_total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (lazy path)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/train_speed.json"))
    args = parser.parse_args()
    device = torch.device(args.device)

    # the same data, split and normalisation (fitted on the training part) for both
    spec = tunelab.load_spec(
        SPEC, overrides=[f"train.epochs={args.epochs}", f"train.device={args.device}"]
    )
    ds = load_dataset(spec.data, seed=0)
    fold = make_splits(ds, spec.split, seed=0).folds[0]
    stats = fit_standardizer(ds.X[fold.train], "auto")
    X = torch.tensor((ds.X - stats.mean.reshape(1, -1, 1, 1)) / stats.std.reshape(1, -1, 1, 1))
    y = torch.tensor(ds.y)
    X_tr, y_tr, X_va, y_va = X[fold.train], y[fold.train], X[fold.val], y[fold.val]
    n_train = len(fold.train)

    results: dict[str, list] = {
        k: []
        for k in (
            "textbook_s",
            "tunelab_s",
            "tunelab_epochs_s",
            "lazy_epochs_s",
            "textbook_acc",
            "tunelab_acc",
            "lazy_acc",
        )
    }
    lazy_data = {"source": "python", "factory": "train_speed:mnist_samples", "cache": "none"}
    lazy_spec = tunelab.load_spec(
        spec.model_dump(mode="json") | {"data": lazy_data | {"workers": args.workers}}
    )
    silent = Console(quiet=True, file=io.StringIO())
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up, not timed: the first convolutions of a process pay for oneDNN's set-up
        textbook(X_tr, y_tr, X_va, y_va, epochs=1, device=device, seed=0)
        tunelab.train(spec, out=Path(tmp) / "warm", overrides=["train.epochs=1"], console=silent)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}")
            seconds, acc = textbook(
                X_tr, y_tr, X_va, y_va, epochs=args.epochs, device=device, seed=r
            )
            results["textbook_s"].append(seconds)
            results["textbook_acc"].append(acc)
            start = time.perf_counter()
            run = tunelab.train(
                spec, out=Path(tmp) / f"r{r}", overrides=[f"seed={r}"], console=silent
            )
            results["tunelab_s"].append(time.perf_counter() - start)
            results["tunelab_epochs_s"].append(sum(row["seconds"] for row in run.history))
            results["tunelab_acc"].append(run.history[-1]["val_accuracy"])
            lazy = tunelab.train(
                lazy_spec, out=Path(tmp) / f"lazy{r}", overrides=[f"seed={r}"], console=silent
            )
            results["lazy_epochs_s"].append(sum(row["seconds"] for row in lazy.history))
            results["lazy_acc"].append(lazy.history[-1]["val_accuracy"])

    textbook_rate = n_train * args.epochs / statistics.median(results["textbook_s"])
    tunelab_rate = n_train * args.epochs / statistics.median(results["tunelab_s"])
    loop_rate = n_train * args.epochs / statistics.median(results["tunelab_epochs_s"])
    lazy_rate = n_train * args.epochs / statistics.median(results["lazy_epochs_s"])
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "train_samples": n_train,
        "textbook_samples_per_s": round(textbook_rate, 1),
        "tunelab_samples_per_s": round(tunelab_rate, 1),
        "ratio_tunelab_over_textbook": round(tunelab_rate / textbook_rate, 3),
        "tunelab_loop_samples_per_s": round(loop_rate, 1),
        "ratio_loop_only": round(loop_rate / textbook_rate, 3),
        "lazy_workers": args.workers,
        "lazy_loop_samples_per_s": round(lazy_rate, 1),
        "ratio_lazy_loop_over_textbook": round(lazy_rate / textbook_rate, 3),
        "textbook_val_accuracy": round(float(np.mean(results["textbook_acc"])), 4),
        "tunelab_val_accuracy": round(float(np.mean(results["tunelab_acc"])), 4),
        "lazy_val_accuracy": round(float(np.mean(results["lazy_acc"])), 4),
        "raw": results,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "raw"}, indent=2))
    print(
        f"tunelab / textbook = {summary['ratio_tunelab_over_textbook']:.3f}x for the whole train "
        f"call (data, splits, files, final val and test evaluation); "
        f"{summary['ratio_loop_only']:.3f}x for the epochs alone (both validate every epoch)"
    )
    print(
        f"epochs alone, samples/s: in memory {loop_rate:,.0f} | lazy (DataLoader, "
        f"{args.workers} workers) {lazy_rate:,.0f} | textbook {textbook_rate:,.0f}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
