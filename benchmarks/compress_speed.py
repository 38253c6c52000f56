"""Every compression method against the original model, in one run: size, latency, accuracy.

Two models: the digits MLP (64 -> 64 -> 10) and the textbook CNN on mnist-5k, each trained
briefly, then compressed with every method (`tunelab compress --method all`). Latency is the
median of warm forward passes with the CPU threads fixed; each ratio is original / variant, so
above 1 means the variant is faster (smaller).

    python benchmarks/compress_speed.py                  # 2 threads, 50 repeats
    python benchmarks/compress_speed.py --threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
from pathlib import Path

import torch

import tunelab
from tunelab.compress import compress_run
from tunelab.train import Console

MODELS = {
    "digits MLP": {
        "name": "bench_digits",
        "data": {"source": "digits"},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "mlp", "hidden": [64]},
        "train": {"epochs": 20, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}},
    },
    "mnist-5k CNN": {
        "name": "bench_mnist",
        "data": {"source": "mnist-5k"},
        "split": {"test": 0.2, "val": 0.1},
        "model": {"name": "cnn"},
        "train": {"epochs": 5, "batch_size": 100, "optimizer": {"name": "adam", "lr": 1e-3}},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/compress_speed.json"))
    args = parser.parse_args()
    summary: dict = {
        "machine": f"{platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "models": {},
    }
    silent = Console(quiet=True, file=io.StringIO())
    with tempfile.TemporaryDirectory() as tmp:
        for title, spec in MODELS.items():
            run = tunelab.train(spec | {"seed": 0}, out=Path(tmp) / spec["name"], console=silent)
            result = compress_run(
                run, ["all"], out=Path(tmp) / f"{spec['name']}-c", n_threads=args.threads,
                repeats=args.repeats,
            )  # fmt: skip
            base = result.rows[0]
            print(f"\n{title}: original {base.size_bytes / 1024:.1f} KB, "
                  f"{base.latency_ms['1']:.3f} ms @1, {base.latency_ms['256']:.2f} ms @256, "
                  f"test accuracy {base.test['accuracy']['value']:.4f}")  # fmt: skip
            print(f"  {'method':<20} {'size x':>7} {'speed x @1':>11} {'speed x @256':>13} "
                  f"{'accuracy':>9} {'McNemar p':>10}")  # fmt: skip
            rows = []
            for row in result.rows[1:]:
                ratios = {
                    "size": base.size_bytes / row.size_bytes,
                    "speed_1": base.latency_ms["1"] / row.latency_ms["1"],
                    "speed_256": base.latency_ms["256"] / row.latency_ms["256"],
                }
                acc, p = row.test["accuracy"]["value"], row.comparison["p_value"]
                print(f"  {row.label:<20} {ratios['size']:>7.2f} {ratios['speed_1']:>11.2f} "
                      f"{ratios['speed_256']:>13.2f} {acc:>9.4f} {p:>10.3g}")  # fmt: skip
                rows.append(row.to_json() | {"ratios": ratios})
            summary["models"][title] = {"original": base.to_json(), "variants": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
