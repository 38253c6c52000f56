"""tunelab against scikit-learn on the diabetes set, on the same sealed split.

Two comparisons, each reading the split from the tunelab run's own ``splits.json``:

1. ``linear``: tunelab's default ``linear`` model with Adam (holdout split, trained on its
   training part) against scikit-learn's ``LinearRegression`` fitted on that same training
   part; both scored by R2 on the sealed test part. The acceptance: within 0.02.
2. ``tuned``: a tuned tunelab MLP (CV inside every trial, the best refit on all non-test data,
   one look at the test part) against ``Ridge`` with alpha chosen by 5-fold CV on the same
   non-test rows (``RidgeCV``). The acceptance: the MLP's test R2 interval covers Ridge's R2.

    python benchmarks/diabetes_vs_sklearn.py                 # both, into
                                                             # benchmarks/results/diabetes_vs_sklearn.json
    python benchmarks/diabetes_vs_sklearn.py --only linear   # one of them (linear: about 20 s)
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.metrics import r2_score

import tunelab
from tunelab.data import load_dataset
from tunelab.train import Console

LINEAR = {
    "name": "diabetes_linear",
    "seed": 0,
    "data": {"source": "diabetes"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "linear"},
    "train": {"epochs": 200, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}},
}

TUNED = {
    "name": "diabetes_mlp_tune",
    "seed": 0,
    "data": {"source": "diabetes"},
    "split": {"test": 0.2, "cv": 3},
    "model": {"name": "mlp", "hidden": [32]},
    "train": {"epochs": 50, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.003}},
    "evaluate": {"metrics": ["r2", "rmse", "mae"]},
    "tune": {
        "trials": 10,
        "sampler": "tpe",
        "objective": "val.r2",
        "space": {
            "train.optimizer.lr": {"low": 1.0e-3, "high": 3.0e-2, "log": True},
            "train.optimizer.weight_decay": {"low": 1.0e-5, "high": 1.0e-1, "log": True},
            "model.hidden": [[16], [32], [64, 32]],
            "model.dropout": {"low": 0.0, "high": 0.5},
        },
    },
}

RIDGE_ALPHAS = np.logspace(-6, 3, 64)


def _parts(run: tunelab.Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run's data and its split as saved: (train indices, non-test indices, test)."""
    splits = run.splits
    test = np.array(splits["test"]["indices"])
    train = np.array(splits["folds"][0]["train"]["indices"])
    dev = np.setdiff1d(np.arange(splits["n"]), test)
    return train, dev, test


def linear(out: Path) -> dict:
    quiet = Console(quiet=True, file=io.StringIO())
    t0 = time.perf_counter()
    run = tunelab.train(LINEAR, out=out / "linear", console=quiet)
    seconds = time.perf_counter() - t0
    ds = load_dataset(run.spec.data, seed=run.spec.seed)
    train, _, test = _parts(run)
    ols = LinearRegression().fit(ds.X[train], ds.y[train])
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(ds.X[train], ds.y[train])
    ours = run.metrics["test"]["r2"]
    result = {
        "tunelab_r2": ours["value"],
        "tunelab_r2_ci": [ours["ci"]["low"], ours["ci"]["high"]],
        "sklearn_linear_regression_r2": float(r2_score(ds.y[test], ols.predict(ds.X[test]))),
        "sklearn_ridge_cv_r2": float(r2_score(ds.y[test], ridge.predict(ds.X[test]))),
        "ridge_alpha": float(ridge.alpha_),
        "train_rows": len(train),
        "test_rows": len(test),
        "tunelab_seconds": seconds,
    }
    result["difference"] = result["tunelab_r2"] - result["sklearn_linear_regression_r2"]
    result["within_0.02"] = abs(result["difference"]) <= 0.02
    return result


def tuned(out: Path) -> dict:
    t0 = time.perf_counter()
    study = tunelab.tune_study(TUNED, out=out / "tuned", quiet=True)
    seconds = time.perf_counter() - t0
    run = study.best_run
    ds = load_dataset(run.spec.data, seed=run.spec.seed)
    _, dev, test = _parts(run)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, cv=5).fit(ds.X[dev], ds.y[dev])
    ridge_r2 = float(r2_score(ds.y[test], ridge.predict(ds.X[test])))
    ours = study.test_metrics["r2"]
    low, high = ours["ci"]["low"], ours["ci"]["high"]
    return {
        "tunelab_mlp_r2": ours["value"],
        "tunelab_mlp_r2_ci": [low, high],
        "sklearn_ridge_cv_r2": ridge_r2,
        "ridge_alpha": float(ridge.alpha_),
        "difference": ours["value"] - ridge_r2,
        "ci_covers_ridge": low <= ridge_r2 <= high,
        "best_params": study.best_params,
        "trials": TUNED["tune"]["trials"],
        "dev_rows": len(dev),
        "test_rows": len(test),
        "tunelab_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["linear", "tuned"], default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    results: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "linear"):
            r = results["linear"] = linear(Path(tmp))
            print(
                f"linear  tunelab (adam) test R2 {r['tunelab_r2']:.4f}  "
                f"sklearn LinearRegression {r['sklearn_linear_regression_r2']:.4f}  "
                f"difference {r['difference']:+.4f} (within 0.02: {r['within_0.02']}); "
                f"RidgeCV {r['sklearn_ridge_cv_r2']:.4f}"
            )
        if args.only in (None, "tuned"):
            r = results["tuned"] = tuned(Path(tmp))
            low, high = r["tunelab_mlp_r2_ci"]
            print(
                f"tuned   tunelab MLP test R2 {r['tunelab_mlp_r2']:.4f} [{low:.4f}, {high:.4f}]  "
                f"sklearn RidgeCV {r['sklearn_ridge_cv_r2']:.4f} (alpha {r['ridge_alpha']:.3g})  "
                f"difference {r['difference']:+.4f}; the interval covers Ridge: "
                f"{r['ci_covers_ridge']}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "diabetes_vs_sklearn.json"
    if args.only is not None and path.is_file():  # one part again: keep the other's figures
        results = json.loads(path.read_text(encoding="utf-8")) | results
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
