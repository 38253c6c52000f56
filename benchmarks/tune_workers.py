"""Trials per minute with 1, 2 and 4 workers on one PostgreSQL study (loopback), against plain
Optuna running the same training with the same number of processes on the same server.

The work of every trial is the same in both systems: the ``digits`` MLP of the spec below,
trained for ``--epochs`` epochs on the same training part and validated on the same val part
(``tunelab.train.train_fold``, so the training code is identical); only ``lr`` is sampled
(log-uniform in [1e-4, 1e-1], the same TPE sampler settings, seed 0, no pruning).

  a. tunelab: ``tunelab.tune_study(spec, storage=URL, workers=k)``: worker processes on this
     machine, each trial created under the PostgreSQL advisory lock, heartbeats, worker
     tokens, trial files, the refit of the best and its one test look at the end (not timed
     in trials per minute, which are read from the storage).
  b. plain Optuna: ``k`` spawned processes, each ``study.optimize(objective, n_trials=...)``
     on the same storage URL (Optuna's own RDB storage, no lock around creating trials, so
     its total can overshoot under races; here each process runs its share).

What is reported, per system and k:

  - ``trials_per_min``: N / (last trial's end - first trial's start) * 60, from the storage.
  - ``in_trial_ms``: the mean duration of a trial as the storage records it (start to end).
  - ``overhead_ms`` (k = 1 only): the mean gap between one trial's end and the next one's
    start: what a worker spends outside the training (ask, lock, tell, files).
  - the ratio of tunelab's trials per minute to Optuna's, for each k.

Each configuration runs in a new database, created and dropped by this script on the server
given by ``TUNELAB_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
The ``k`` values run in order, tunelab then Optuna, ``--rounds`` times; medians are reported.

    python benchmarks/tune_workers.py                       # 24 trials, workers 1 2 4, 1 round
    python benchmarks/tune_workers.py --trials 12 --workers 1 2 --epochs 1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import torch

ADMIN = os.environ.get("TUNELAB_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
LOW, HIGH = 1e-4, 1e-1


def spec(trials: int, epochs: int) -> dict:
    return {
        "name": "workers",
        "seed": 0,
        "data": {"source": "digits"},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "mlp", "hidden": [64]},
        "train": {"epochs": epochs, "batch_size": 64, "optimizer": {"name": "adam", "lr": 1e-3}},
        "tune": {
            "trials": trials,
            "sampler": {"name": "tpe"},
            "pruner": "none",
            "space": {"train.optimizer.lr": {"low": LOW, "high": HIGH, "log": True}},
        },
    }


@contextlib.contextmanager
def database():
    """A new PostgreSQL database for one configuration, dropped afterwards: its URL."""
    import psycopg

    name = f"tunelab_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def figures(study: optuna.Study) -> dict:
    """Trials per minute, mean in-trial ms and mean gap between trials, from the storage."""
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    starts = sorted(t.datetime_start.timestamp() for t in done)
    ends = sorted(t.datetime_complete.timestamp() for t in done)
    spans = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    ordered = sorted(done, key=lambda t: t.datetime_start)
    gaps = [
        (b.datetime_start - a.datetime_complete).total_seconds()
        for a, b in zip(ordered, ordered[1:], strict=False)
    ]
    return {
        "trials": len(done),
        "trials_per_min": 60 * len(done) / (ends[-1] - starts[0]),
        "in_trial_ms": 1000 * statistics.mean(spans),
        "gap_ms": 1000 * statistics.mean(gaps) if gaps else None,
    }


def run_tunelab(url: str, trials: int, epochs: int, workers: int, folder: Path) -> dict:
    import tunelab

    with contextlib.redirect_stdout(io.StringIO()):
        tunelab.tune_study(
            spec(trials, epochs), out=folder, storage=url, workers=workers, quiet=True
        )
    return figures(optuna.load_study(study_name="workers", storage=url))


def _optuna_process(url: str, trials: int, epochs: int, seed: int, threads: int) -> None:
    """One plain-Optuna worker: the same training as a tunelab trial, lr sampled, with the
    torch threads a tunelab worker gets (the cores shared by the workers)."""
    import tunelab
    from tunelab.train import prepare, train_fold

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = spec(trials, epochs)
    base.pop("tune")
    prep = prepare(tunelab.load_spec(base))
    fold = prep.splits.folds[0]

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", LOW, HIGH, log=True)
        optimizer = {"name": "adam", "lr": lr}
        trial_spec = tunelab.load_spec(base | {"train": base["train"] | {"optimizer": optimizer}})
        _, history, _ = train_fold(prepare(trial_spec, reuse=prep), fold.train, fold.val, seed=0)
        return max(row["val_accuracy"] for row in history.rows)

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.load_study(study_name="workers", storage=url, sampler=sampler)
    study.optimize(objective, n_trials=trials)


def run_optuna(url: str, trials: int, epochs: int, workers: int) -> dict:
    optuna.create_study(study_name="workers", storage=url, direction="maximize")
    ctx = multiprocessing.get_context("spawn")
    shares = [trials // workers + (1 if r < trials % workers else 0) for r in range(workers)]
    threads = max(1, (os.cpu_count() or 1) // workers)
    procs = [
        ctx.Process(target=_optuna_process, args=(url, share, epochs, r, threads))
        for r, share in enumerate(shares)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"an Optuna worker ended with exit code {p.exitcode}")
    return figures(optuna.load_study(study_name="workers", storage=url))


def _gap(row: dict, system: str) -> str:
    gap = row[f"{system}_gap_ms"]
    return "" if gap is None else f", {gap:.0f} ms between trials"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/tune_workers.json"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for k in args.workers:
        runs: dict[str, list[dict]] = {"tunelab": [], "optuna": []}
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp, database() as url:
                runs["tunelab"].append(run_tunelab(url, args.trials, args.epochs, k, Path(tmp)))
            with database() as url:
                runs["optuna"].append(run_optuna(url, args.trials, args.epochs, k))
        row = {"workers": k}
        for system, found in runs.items():
            for key in ("trials_per_min", "in_trial_ms", "gap_ms"):
                if key == "gap_ms" and k > 1:  # trials of several workers overlap
                    row[f"{system}_{key}"] = None
                    continue
                values = [f[key] for f in found if f[key] is not None]
                row[f"{system}_{key}"] = statistics.median(values) if values else None
        row["ratio"] = row["tunelab_trials_per_min"] / row["optuna_trials_per_min"]
        rows.append(row)
        print(
            f"workers {k}: tunelab {row['tunelab_trials_per_min']:.1f} trials/min "
            f"(trial {row['tunelab_in_trial_ms']:.0f} ms{_gap(row, 'tunelab')}), "
            f"Optuna {row['optuna_trials_per_min']:.1f} trials/min "
            f"(trial {row['optuna_in_trial_ms']:.0f} ms{_gap(row, 'optuna')}), "
            f"ratio {row['ratio']:.2f}",
            flush=True,
        )
    result = {
        "benchmark": "tune_workers",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "trials": args.trials,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
