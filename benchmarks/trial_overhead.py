"""Per-trial cost of the tuning machinery, with trials that do (almost) no work.

Three ways to run N trials of a one-parameter search (``lr``, log-uniform in [1e-3, 1e-1]),
all with the same sampler (the one tunelab builds from ``tune.sampler``, seed 0):

  a. Optuna in memory: ``optuna.create_study()`` + ``study.optimize`` of a function that
     samples ``lr`` and returns a float.
  b. Optuna on SQLite with its default storage settings (``storage="sqlite:///..."``), same
     function.
  c. ``tunelab.tune`` on the ``linear`` data source (32 samples, model linear, 1 epoch):
     the real trial machinery with its SQLite storage (WAL, file lock, heartbeat, worker token,
     interrupted-trial check, trial spec and files, one report + should_prune per epoch, user
     attributes, console poll).

What is reported, per system, as ms per trial:

  - ``cycle``: (start of the last trial - start of the first) / (N - 1), from the trials'
    ``datetime_start`` in the storage: everything one trial costs in steady state.
  - ``overhead``: ``cycle`` minus the cost of the same training done without tuning.
    For (a) and (b) the objective does nothing, so overhead = cycle. For (c) the training
    (``tunelab.train.train_fold`` on the same data and spec: standardiser, model, one epoch
    with validation) is timed on its own, many times, and its mean is subtracted.
  - ``whole_call``: the wall time of the whole call / N (for tunelab: data, seal, study
    creation and the refit of the best included; these are paid once, so they matter less
    as N grows).
  - for tunelab also ``in_trial`` (mean of the trials' ``seconds`` attribute: sampling, the
    trial's spec, the training, history file) and ``outside_trial`` (cycle - in_trial: lock,
    ask, heartbeat, user attributes, tell, trial.json, console poll).

The project's goal is at most 20 ms of tuning overhead per trial with SQLite storage.
The three run in one process, alternately, for a few rounds after an untimed warm-up; the
median over rounds is reported. Ratios are to Optuna on SQLite.

    python benchmarks/trial_overhead.py                 # 200 trials, 3 rounds, tpe
    python benchmarks/trial_overhead.py --trials 50 --rounds 1 --sampler random
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

import tunelab
from tunelab.spec import SamplerSpec
from tunelab.train import prepare, train_fold
from tunelab.tune import build_sampler, parse_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

LOW, HIGH = 1e-3, 1e-1


def tunelab_spec(trials: int, sampler: str) -> dict:
    return {
        "name": "overhead",
        "seed": 0,
        "data": {"source": "linear", "n": 32},
        "split": {"test": 0.2, "val": 0.1},
        "model": {"name": "linear"},
        "train": {"epochs": 1, "batch_size": 32, "optimizer": {"name": "sgd", "lr": 0.01}},
        "tune": {
            "trials": trials,
            "sampler": {"name": sampler},
            "pruner": "none",  # the Optuna baselines do not prune either
            "space": {"train.optimizer.lr": {"low": LOW, "high": HIGH, "log": True}},
        },
    }


def the_sampler(sampler: str) -> optuna.samplers.BaseSampler:
    """The sampler tunelab builds for ``tune.sampler: {name: ...}`` (defaults, seed 0)."""
    spec = tunelab.load_spec(tunelab_spec(1, sampler))
    return build_sampler(SamplerSpec(name=sampler), parse_space(spec.tune, spec), seed=0)


def cycle_ms(study: optuna.Study) -> float:
    """Mean time between consecutive trial starts, in ms."""
    starts = sorted(t.datetime_start.timestamp() for t in study.get_trials(deepcopy=False))
    return 1000 * (starts[-1] - starts[0]) / (len(starts) - 1)


def run_optuna(trials: int, sampler: str, storage: str | None) -> dict:
    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("lr", LOW, HIGH, log=True)

    start = time.perf_counter()
    study = optuna.create_study(storage=storage, sampler=the_sampler(sampler))
    study.optimize(objective, n_trials=trials)
    whole = time.perf_counter() - start
    return {"cycle_ms": cycle_ms(study), "whole_call_ms": 1000 * whole / trials}


def run_tunelab(trials: int, sampler: str, folder: Path) -> dict:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = tunelab.tune_study(tunelab_spec(trials, sampler), out=folder, quiet=True)
    whole = time.perf_counter() - start
    storage = f"sqlite:///{result.path / 'study.db'}"
    study = optuna.load_study(study_name="overhead", storage=storage)
    seconds = [t.user_attrs["result"]["seconds"] for t in study.get_trials(deepcopy=False)]
    return {
        "cycle_ms": cycle_ms(study),
        "whole_call_ms": 1000 * whole / trials,
        "in_trial_ms": 1000 * statistics.mean(seconds),
    }


def training_ms(repeats: int) -> float:
    """Mean ms of the trial's training (standardiser, model, one epoch with validation)."""
    spec = tunelab.load_spec(tunelab_spec(1, "random") | {"tune": None})
    prep = prepare(spec)
    fold = prep.splits.folds[0]
    train_fold(prep, fold.train, fold.val, seed=0)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        train_fold(prep, fold.train, fold.val, seed=0)
    return 1000 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    parser.add_argument("--goal-ms", type=float, default=20.0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/trial_overhead.json"))
    args = parser.parse_args()
    if args.trials < 2:
        parser.error("--trials: at least 2")

    raw: dict[str, list[dict]] = {"optuna_memory": [], "optuna_sqlite": [], "tunelab": []}
    train_raw: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # warm-up, not timed: imports, SQLAlchemy, the first torch calls
        run_optuna(5, args.sampler, None)
        run_optuna(5, args.sampler, f"sqlite:///{tmp / 'warm.db'}")
        run_tunelab(5, args.sampler, tmp / "warm")
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}")
            raw["optuna_memory"].append(run_optuna(args.trials, args.sampler, None))
            raw["optuna_sqlite"].append(
                run_optuna(args.trials, args.sampler, f"sqlite:///{tmp / f'optuna{r}.db'}")
            )
            raw["tunelab"].append(run_tunelab(args.trials, args.sampler, tmp / f"study{r}"))
            train_raw.append(training_ms(max(50, args.trials // 2)))
            for name, rows in raw.items():
                print(f"  {name:14s} " + " ".join(f"{k} {v:.2f}" for k, v in rows[-1].items()))
            print(f"  training alone {train_raw[-1]:.2f} ms per trial")

    def med(name: str, key: str) -> float:
        return statistics.median(row[key] for row in raw[name])

    train_ms = statistics.median(train_raw)
    systems = {}
    for name in raw:
        cycle = med(name, "cycle_ms")
        entry = {"cycle_ms": round(cycle, 2), "whole_call_ms": round(med(name, "whole_call_ms"), 2)}
        if name == "tunelab":
            in_trial = med(name, "in_trial_ms")
            entry |= {
                "training_ms": round(train_ms, 2),
                "overhead_ms": round(cycle - train_ms, 2),
                "in_trial_ms": round(in_trial, 2),
                "in_trial_overhead_ms": round(in_trial - train_ms, 2),
                "outside_trial_ms": round(cycle - in_trial, 2),
            }
        else:
            entry["overhead_ms"] = entry["cycle_ms"]
        systems[name] = entry
    ref = systems["optuna_sqlite"]["overhead_ms"]
    for entry in systems.values():
        entry["ratio_to_optuna_sqlite"] = round(entry["overhead_ms"] / ref, 2)
    overhead = systems["tunelab"]["overhead_ms"]
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "tunelab": tunelab.__version__,
        "trials": args.trials,
        "rounds": args.rounds,
        "sampler": args.sampler,
        "goal_ms": args.goal_ms,
        "tunelab_meets_goal": overhead <= args.goal_ms,
        "systems": systems,
        "raw": raw | {"training_ms": train_raw},
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "raw"}, indent=2))
    print(
        f"tuning overhead per trial ({args.trials} trials, {args.sampler}): "
        + ", ".join(
            f"{name} {e['overhead_ms']:.1f} ms ({e['ratio_to_optuna_sqlite']:.2f}x)"
            for name, e in systems.items()
        )
        + f" | ratios to optuna_sqlite | goal <= {args.goal_ms:g} ms: "
        + ("met" if summary["tunelab_meets_goal"] else "NOT met")
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
