"""`tunelab tune` against a plain Optuna script and Ray Tune: same search space, data and budget.

The job is the README's: examples/mnist_tune.yaml, the textbook CNN on mnist-5k (split test 0.2
/ val 0.1, the same indices for every system), 10 epochs with random-crop augmentation
(padding 2), searching optimizer name (sgd, adam, rmsprop), lr (log-uniform 1e-4..1e-1),
momentum (0.5..0.99, for sgd and rmsprop only), dropout (0..0.5) and batch size (32, 64, 128).

  tunelab  ``tunelab.tune`` on the example: TPE + ASHA (min resource 2, reduction 3),
           ``--workers`` processes (default 1; ``--workers 1 2`` runs both).
  optuna   a plain Optuna script around the textbook PyTorch loop: a DataLoader over a
           TensorDataset with a per-sample random-crop transform, ``.item()`` per step,
           validation after every epoch; random sampler, no pruning.
  ray      Ray Tune, ASHAScheduler (grace period 2, reduction 3, max_t 10) over Ray's random
           search, a function trainable running the same textbook loop and calling
           ``ray.tune.report`` each epoch; 1 CPU and 1 torch thread per trial, 2 at a time.

The baselines normalise with the statistics of their training part (as tunelab does) and pad
crops with the normalised value of a black pixel (tunelab pads before normalising). Every trial
starts from the same seed. After the budget, tunelab refits its best on train+val and evaluates
the sealed test part once; for optuna and ray the best configuration is refit the same way with
the plain loop (10 epochs) and the test part is evaluated once.

Reported per system: the wall time from the start of the system (before its data is loaded;
for Ray before ``ray.init``) until some trial first reports a validation accuracy >= --target
at any epoch, counted only within the budget (null if never); the best validation accuracy (of
a trial that ran all epochs, at its last epoch, as tunelab's objective); the refit's test
accuracy; trials and epochs run. tunelab's epoch times come from its study: each trial's
start and end in study.db, with its epochs placed in between in proportion to their
``seconds`` in history.jsonl (this puts an epoch slightly late, never early).

Each system runs in its own fresh subprocess, one after the other: Ray starts a cluster and
worker processes and tunelab's workers use ``spawn``, so separate processes keep one system's
threads, caches and state from touching the next, and every system pays its own start-up.
Optuna's and tunelab's budgets are checked between trials (a trial that started in time
finishes); Ray stops running trials at the budget.

    python benchmarks/tune_speed.py                        # 240 s each
    python benchmarks/tune_speed.py --budget 45            # smoke run
    python benchmarks/tune_speed.py --workers 1 2 --systems tunelab optuna
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import tunelab
from tunelab.data import fit_standardizer, load_dataset, make_splits

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_tune.yaml"
EPOCHS = 10
PADDING = 2


# --- the shared data: tunelab's own split, normalised with the training part's statistics


def load_parts() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, train, val, test) exactly as tunelab splits the example."""
    spec = tunelab.load_spec(EXAMPLE)
    ds = load_dataset(spec.data, seed=spec.seed)
    splits = make_splits(ds, spec.split, seed=spec.seed)
    fold = splits.folds[0]
    return ds.X, ds.y, fold.train, fold.val, splits.test


def normalised(X: np.ndarray, fit_on: np.ndarray) -> tuple[torch.Tensor, float]:
    """All of X normalised with statistics of ``X[fit_on]``, and the value of a black pixel."""
    stats = fit_standardizer(X[fit_on], "auto")
    mean, std = float(stats.mean[0]), float(stats.std[0])
    return torch.tensor((X - mean) / std, dtype=torch.float32), -mean / std


# --- the textbook loop


class RandomCrop(Dataset):
    """A TensorDataset with a per-sample transform: pad, then crop at a random offset."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, *, padding: int, fill: float):
        self.X, self.y, self.padding, self.fill = X, y, padding, fill

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        p, (_, h, w) = self.padding, self.X.shape[1:]
        x = F.pad(self.X[i], (p, p, p, p), value=self.fill)
        dy, dx = torch.randint(0, 2 * p + 1, (2,)).tolist()
        return x[:, dy : dy + h, dx : dx + w], self.y[i]


def textbook_model(dropout: float) -> nn.Module:
    head = [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        *head,
        nn.Linear(32 * 14 * 14, 10),
    )


def textbook_optimizer(config: dict, params) -> torch.optim.Optimizer:
    name, lr = config["optimizer"], config["lr"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config["momentum"])
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=config["momentum"])
    return torch.optim.Adam(params, lr=lr)


def textbook_fit(
    config: dict,
    X: torch.Tensor,
    y: torch.Tensor,
    fill: float,
    *,
    seed: int,
    epochs: int = EPOCHS,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch=None,
) -> nn.Module:
    """The chapter's loop; ``on_epoch(epoch, val_accuracy)`` after each validation."""
    torch.manual_seed(seed)
    model = textbook_model(config["dropout"])
    optimizer = textbook_optimizer(config, model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(
        RandomCrop(X, y, padding=PADDING, fill=fill),
        batch_size=config["batch_size"],
        shuffle=True,
    )
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum, total = 0.0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(yb)
            total += len(yb)
        if val is not None:
            acc = accuracy(model, *val)
            if on_epoch is not None:
                on_epoch(epoch, acc)
    return model


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = 0
    for xb, yb in DataLoader(TensorDataset(X, y), batch_size=1000):
        correct += (model(xb).argmax(1) == yb).sum().item()
    return correct / len(y)


def refit_and_test(config: dict, seed: int) -> float:
    """Refit ``config`` on train+val with the plain loop; the test accuracy, evaluated once."""
    X, y, train, val, test = load_parts()
    fit_on = np.concatenate([train, val])
    Xn, fill = normalised(X, fit_on)
    yt = torch.tensor(y)
    model = textbook_fit(config, Xn[fit_on], yt[fit_on], fill, seed=seed)
    return accuracy(model, Xn[test], yt[test])


def summarise(events: list[tuple[float, float]], *, target: float, budget: float) -> dict:
    """Time to target (within the budget) and the best-so-far curve from (t, val_acc) events."""
    events = sorted(events)
    hit = next((t for t, acc in events if acc >= target and t <= budget), None)
    curve, best = [], -1.0
    for t, acc in events:
        if acc > best:
            best = acc
            curve.append([round(t, 2), round(acc, 4)])
    return {"time_to_target_s": None if hit is None else round(hit, 2), "best_so_far": curve}


# --- the three systems (each runs in its own subprocess)


def run_tunelab(args) -> dict:
    import optuna

    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["seed"] = args.seed
    spec["tune"] |= {"trials": None, "timeout": args.budget}  # the budget alone ends it
    folder = Path(args.tmp) / "study"
    t0 = time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        result = tunelab.tune_study(spec, out=folder, workers=args.workers, quiet=True)
    total_s = time.time() - t0
    study = optuna.load_study(study_name=spec["name"], storage=f"sqlite:///{folder / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    events, epochs, search_end = [], 0, t0
    for trial in trials:
        path = folder / "trials" / str(trial.number) / "history.jsonl"
        if not path.is_file() or trial.datetime_complete is None:
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not rows:
            continue
        start, end = trial.datetime_start.timestamp(), trial.datetime_complete.timestamp()
        search_end = max(search_end, end)
        spent = np.cumsum([row["seconds"] for row in rows])
        for row, done in zip(rows, spent, strict=True):
            if "val_accuracy" in row:
                events.append((start + (end - start) * done / spent[-1] - t0, row["val_accuracy"]))
        epochs += len(rows)
    states = [t.state.name for t in trials]
    return {
        "config": f"tpe + asha, {args.workers} worker(s)",
        **summarise(events, target=args.target, budget=args.budget),
        "best_val_accuracy": round(result.best_value, 4),
        "best_params": result.best_params,
        "test_accuracy": round(result.test_metrics["accuracy"]["value"], 4),
        "trials": len(trials),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
        "epochs_trained": epochs,
        "search_s": round(search_end - t0, 1),
        "total_s": round(total_s, 1),
    }


def run_optuna(args) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.time()
    X, y, train, val, _ = load_parts()
    Xn, fill = normalised(X, train)
    yt = torch.tensor(y)
    events: list[tuple[float, float]] = []

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("optimizer", ["sgd", "adam", "rmsprop"])
        config = {
            "optimizer": name,
            "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
            "momentum": (
                trial.suggest_float("momentum", 0.5, 0.99) if name in ("sgd", "rmsprop") else None
            ),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        }
        accs: list[float] = []

        def on_epoch(epoch: int, acc: float) -> None:
            events.append((time.time() - t0, acc))
            accs.append(acc)

        textbook_fit(
            config, Xn[train], yt[train], fill, seed=args.seed,
            val=(Xn[val], yt[val]), on_epoch=on_epoch,
        )  # fmt: skip
        return accs[-1]

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=args.seed)
    )
    study.optimize(objective, timeout=args.budget)
    search_s = time.time() - t0
    best = dict(study.best_params)
    best.setdefault("momentum", None)
    return {
        "config": "random sampler, no pruning, textbook loop",
        **summarise(events, target=args.target, budget=args.budget),
        "best_val_accuracy": round(study.best_value, 4),
        "best_params": best,
        "test_accuracy": round(refit_and_test(best, args.seed), 4),
        "trials": len(study.trials),
        "complete": len(study.trials),
        "pruned": 0,
        "failed": 0,
        "epochs_trained": len(events),
        "search_s": round(search_s, 1),
        "total_s": round(time.time() - t0, 1),
    }


def ray_trainable(config: dict, data=None) -> None:
    """Ray's function trainable: the textbook loop, reporting val accuracy each epoch."""
    from ray import tune

    torch.set_num_threads(1)
    Xn, y, train, val, fill, seed = data
    textbook_fit(
        config, Xn[train], y[train], fill, seed=seed, val=(Xn[val], y[val]),
        on_epoch=lambda epoch, acc: tune.report({"val_accuracy": acc, "wall": time.time()}),
    )  # fmt: skip


def _momentum(spec) -> float | None:
    if spec.config.optimizer in ("sgd", "rmsprop"):
        return float(np.random.uniform(0.5, 0.99))
    return None


def run_ray(args) -> dict:
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search import BasicVariantGenerator
    except ImportError as exc:
        return {"skipped": f"ray[tune] is not installed ({exc}); pip install 'ray[tune]'"}

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    t0 = time.time()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _temp_dir=str(Path(args.tmp) / "ray"),
    )
    try:
        X, y, train, val, _ = load_parts()
        Xn, fill = normalised(X, train)
        data = (Xn, torch.tensor(y), train, val, fill, args.seed)
        np.random.seed(args.seed)  # sample_from (momentum) draws from numpy's global state
        space = {
            "optimizer": tune.choice(["sgd", "adam", "rmsprop"]),
            "lr": tune.loguniform(1e-4, 1e-1),
            "momentum": tune.sample_from(_momentum),
            "dropout": tune.uniform(0.0, 0.5),
            "batch_size": tune.choice([32, 64, 128]),
        }
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(ray_trainable, data=data), {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(
                metric="val_accuracy",
                mode="max",
                scheduler=ASHAScheduler(max_t=EPOCHS, grace_period=2, reduction_factor=3),
                search_alg=BasicVariantGenerator(random_state=args.seed),
                num_samples=-1,
                max_concurrent_trials=2,
                time_budget_s=args.budget,
            ),
            run_config=tune.RunConfig(
                name="tune_speed", storage_path=str(Path(args.tmp) / "ray_results"), verbose=0
            ),
        )
        with contextlib.redirect_stdout(io.StringIO()):
            grid = tuner.fit()
        search_s = time.time() - t0
    finally:
        ray.shutdown()
    events, finals, epochs, unstarted = [], [], 0, 0
    for result in grid:
        frame = result.metrics_dataframe
        if frame is None or not len(frame):
            unstarted += result.error is None
            continue
        events += [(w - t0, a) for w, a in zip(frame["wall"], frame["val_accuracy"], strict=True)]
        epochs += len(frame)
        if len(frame) == EPOCHS:
            finals.append((float(frame["val_accuracy"].iloc[-1]), result.config))
    errors = [r.error for r in grid if r.error is not None]
    best_value, best, test = None, None, None
    if finals:  # else no trial ran all epochs within the budget: nothing to refit
        best_value, config = max(finals, key=lambda f: f[0])
        best = {k: config[k] for k in ("optimizer", "lr", "momentum", "dropout", "batch_size")}
        best_value, test = round(best_value, 4), round(refit_and_test(best, args.seed), 4)
    return {
        "config": "random search + ASHAScheduler, 2 concurrent trials x 1 CPU",
        "ray": ray.__version__,
        **summarise(events, target=args.target, budget=args.budget),
        "best_val_accuracy": best_value,
        "best_params": best,
        "test_accuracy": test,
        "trials": len(grid) - unstarted,  # Ray queues trials that never start
        "complete": len(finals),
        "pruned": len(grid) - unstarted - len(finals) - len(errors),
        "failed": len(errors),
        "first_error": str(errors[0])[-500:] if errors else None,
        "epochs_trained": epochs,
        "search_s": round(search_s, 1),
        "total_s": round(time.time() - t0, 1),
    }


SYSTEMS = {"tunelab": run_tunelab, "optuna": run_optuna, "ray": run_ray}


def child(args) -> None:
    with tempfile.TemporaryDirectory(prefix="tune_speed_") as tmp:
        args.tmp = tmp
        out = SYSTEMS[args.child](args)
    Path(args.child_out).write_text(json.dumps(out))


def run_child(args, system: str, workers: int) -> dict:
    """One system in a fresh interpreter; its JSON, or the reason it failed."""
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        command = [
            sys.executable, __file__, "--child", system, "--child-out", fh.name,
            "--budget", str(args.budget), "--target", str(args.target),
            "--seed", str(args.seed), "--workers", str(workers),
        ]  # fmt: skip
        start = time.time()
        proc = subprocess.run(command, capture_output=True, text=True)
        text = Path(fh.name).read_text()
    if proc.returncode or not text:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}
    return json.loads(text) | {"process_s": round(time.time() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=240.0, help="seconds of search each")
    parser.add_argument("--target", type=float, default=0.96, help="validation accuracy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="tunelab workers")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/tune_speed.json"))
    parser.add_argument("--child", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workers = args.workers[0]
        child(args)
        return

    results: dict[str, dict] = {}
    for system in args.systems:
        for workers in args.workers if system == "tunelab" else [1]:
            key = f"tunelab_w{workers}" if system == "tunelab" else system
            print(f"{key}: searching for {args.budget:g} s ...", flush=True)
            results[key] = run_child(args, system, workers)
            shown = {k: v for k, v in results[key].items() if k not in ("best_so_far",)}
            print(f"  {json.dumps(shown)}", flush=True)

    def ratio(a: dict, b: dict) -> float | None:
        ta, tb = a.get("time_to_target_s"), b.get("time_to_target_s")
        return round(ta / tb, 3) if ta is not None and tb else None

    ratios = {}
    for key in (k for k in results if k.startswith("tunelab")):
        for peer in ("optuna", "ray"):
            if peer in results:
                ratios[f"{key}_over_{peer}"] = ratio(results[key], results[peer])
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "tunelab": tunelab.__version__,
        "budget_s": args.budget,
        "target_val_accuracy": args.target,
        "seed": args.seed,
        "epochs_per_trial": EPOCHS,
        "systems": results,
        "time_to_target_ratios": ratios,
    }
    print(f"time to val accuracy >= {args.target} within {args.budget:g} s (lower is better):")
    for key, r in results.items():
        why = r.get("skipped") or r.get("error")
        if why:
            print(f"  {key:12s} skipped: {why}")
            continue
        ttt, val, test = r["time_to_target_s"], r["best_val_accuracy"], r["test_accuracy"]
        print(
            f"  {key:12s} {'not reached' if ttt is None else f'{ttt:.1f} s':>12s} | best val "
            f"{'-' if val is None else f'{val:.4f}'} | refit test "
            f"{'-' if test is None else f'{test:.4f}'} | "
            f"{r['trials']} trials ({r['pruned']} pruned), {r['epochs_trained']} epochs"
        )
    for name, value in ratios.items():
        print(f"  {name}: {'n/a (a system did not reach the target)' if value is None else value}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
