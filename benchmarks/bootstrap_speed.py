"""Speed of tunelab's vectorised bootstrap: 2,000 resamples of 10,000 predictions, 10 classes.

Times each metric group (label metrics from weighted counts, log loss / top-k, ROC-AUC,
regression) on the same data, all classification metrics together (the goal: under one second),
and the BCa extra (the grouped jackknife). The peer is the textbook loop (draw indices, call the
metric function per resample) on a few hundred resamples, scaled to 2,000: the ratio is reported.
Wall and CPU seconds are both reported; on a shared machine CPU seconds are the steadier number.

    python benchmarks/bootstrap_speed.py            # writes benchmarks/results/bootstrap_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from tunelab.evaluate import METRICS, bootstrap_ci, compute_metrics

GROUPS = {
    "labels": [
        "accuracy",
        "balanced_accuracy",
        *(
            f"{m}_{a}"
            for m in ("precision", "recall", "f1")
            for a in ("macro", "micro", "weighted")
        ),
    ],
    "log_loss_topk": ["log_loss", "top2_accuracy", "top3_accuracy", "top5_accuracy"],
    "roc_auc": ["roc_auc"],
    "calibration": ["ece", "brier"],
}


def _data(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits)
    return y, proba / proba.sum(axis=1, keepdims=True)


def _time(fn, repeats: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": min(walls), "cpu_s": min(cpus)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "bootstrap_speed.json"
    )
    args = parser.parse_args()

    y, proba = _data(args.n, args.classes)
    classification = [n for n, m in METRICS.items() if m.task == "classification"]
    results: dict[str, dict[str, float]] = {}

    def run(names, task="classification", y_=y, pred=proba, method="percentile"):
        return lambda: bootstrap_ci(
            task, y_, pred, names=names, n_resamples=args.resamples, method=method
        )

    for group, names in GROUPS.items():
        results[group] = _time(run(names), args.repeats)
    results["all_classification"] = _time(run(classification), args.repeats)
    results["all_classification_bca"] = _time(run(classification, method="bca"), args.repeats)
    rng = np.random.default_rng(1)
    target = rng.normal(size=args.n)
    results["regression"] = _time(
        run(["mse", "rmse", "mae", "r2"], "regression", target, target + rng.normal(size=args.n)),
        args.repeats,
    )

    # the peer: a loop over resamples calling compute_metrics, scaled from fewer resamples
    loop_resamples = 100

    def loop() -> None:
        rng = np.random.default_rng(0)
        for _ in range(loop_resamples):
            rows = rng.integers(0, args.n, size=args.n)
            compute_metrics("classification", y[rows], proba[rows], names=classification)

    peer = _time(loop, 1)
    scale = args.resamples / loop_resamples
    results["loop_peer_all_classification"] = {k: v * scale for k, v in peer.items()}
    ratio = (
        results["loop_peer_all_classification"]["cpu_s"] / results["all_classification"]["cpu_s"]
    )

    print(f"{args.resamples} resamples x {args.n} predictions, {args.classes} classes")
    print(f"{'group':<32}{'wall s':>10}{'cpu s':>10}")
    for group, timing in results.items():
        print(f"{group:<32}{timing['wall_s']:>10.3f}{timing['cpu_s']:>10.3f}")
    print(f"vectorised vs loop (cpu): {ratio:.0f}x faster")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "n": args.n,
        "classes": args.classes,
        "resamples": args.resamples,
        "repeats": args.repeats,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
        "speedup_vs_loop_cpu": ratio,
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
