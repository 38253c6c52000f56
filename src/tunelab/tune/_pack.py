"""``tune.pack``: how many trials a worker asks at once and trains together, and the loop
that does it.

``off`` (the default) trains one trial at a time. ``N`` asks N trials at once and trains
each group of them that shares an architecture as one pack (:mod:`._packed_trials`).
``auto`` measures, once per study, on this model and device: one epoch of a few batches for
8 members packed against the same 8 trained one after the other (each timed after a warm-up
run); it packs 8 when packing was at least 1.5x faster, and trains one at a time otherwise
(on a CPU, an MLP packs; a CNN, whose convolutions ``vmap`` turns into slower grouped ones,
does not). The measurement is kept in the study folder's ``pack.json`` (workers and resumed
studies read it there) and printed.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from tunelab.runs import read_json, write_json
from tunelab.train import Member, Prepared, prepare, train_fold, train_packed, unpackable
from tunelab.tune._join import storage_lock
from tunelab.tune._objective import TrialContext
from tunelab.tune._packed_trials import run_pack
from tunelab.tune._space import trial_spec
from tunelab.tune._study import (
    ask,
    counted_trials,
    disk_stopped,
    disk_trouble,
    fail_interrupted,
    heartbeat,
    mark_failed,
    retry_interrupted,
    storage_of,
    study_lock,
    trial_id,
    worker_token,
)

__all__ = ["choose_pack", "measure_pack", "run_packed"]

PROBE_MEMBERS = 8
PROBE_STEPS = 8
MIN_SPEEDUP = 1.5


def choose_pack(setting: str | int, base: dict[str, Any], prep: Prepared, folder: Path) -> int:
    """The pack size a study's ``tune.pack`` setting means on this machine (1: unpacked)."""
    if setting == "off":
        return 1
    if setting != "auto":
        return int(setting)
    path = folder / "pack.json"
    key = {"model": base["model"], "train": base["train"], "device": str(prep.device)}
    if path.exists():
        stored = read_json(path)
        if stored.get("key") == key:
            return int(stored["pack"])
    measured = measure_pack(base, prep)
    write_json(path, {"key": key, **measured})
    return int(measured["pack"])


def measure_pack(base: dict[str, Any], prep: Prepared, members: int = PROBE_MEMBERS) -> dict:
    """Time one short epoch of ``members`` models packed against the same trained one by one."""
    tree = copy.deepcopy(base)
    tree["train"]["epochs"] = 1
    tree["train"].pop("early_stopping", None)
    plan = prepare(trial_spec(tree, {}), reuse=prep).plan
    why = unpackable([plan, plan])
    if why is not None:
        return {"pack": 1, "reason": why}
    fold = prep.splits.folds[0]
    rows = fold.train[: PROBE_STEPS * plan.spec.train.batch_size]

    def one_by_one() -> None:
        for seed in range(members):
            train_fold(prep, rows, None, seed=seed, plan=plan)

    def packed() -> None:
        train_packed(prep, rows, None, [Member(plan, seed=s) for s in range(members)])

    try:
        alone, together = _timed(one_by_one), _timed(packed)
    except Exception as exc:  # a model torch.func cannot transform: train unpacked
        return {"pack": 1, "reason": f"packing failed: {type(exc).__name__}: {exc}"}
    speedup = alone / together
    return {
        "pack": members if speedup >= MIN_SPEEDUP else 1,
        "members": members,
        "seconds_one_by_one": round(alone, 4),
        "seconds_packed": round(together, 4),
        "speedup": round(speedup, 3),
        "reason": f"packed {speedup:.2f}x the speed of one by one (packs from {MIN_SPEEDUP}x)",
    }


def _timed(run: Callable[[], None]) -> float:
    """Seconds of the faster of two runs after one warm-up run."""
    run()
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def run_packed(
    ctx: TrialContext,
    study: optuna.Study,
    folder: Path,
    *,
    total: int | None,
    deadline: float | None,
    on_trial: Callable[[optuna.Trial], None] | None = None,
    limit: int | None = None,
    record: Callable[[optuna.Study, optuna.Trial, Any], None],
) -> int:
    """:func:`run_worker` asking up to ``ctx.pack`` trials at once and training them packed;
    ``record(study, trial, outcome)`` stores how each ended."""
    ran, storage = 0, storage_of(study)
    while limit is None or ran < limit:
        asked: list[optuna.Trial] = []
        try:
            with study_lock(folder), storage_lock(storage, study.study_name):
                fail_interrupted(study)
                trials = study.get_trials(deepcopy=False)
                retry_interrupted(study, trials)
                room = ctx.pack if total is None else total - counted_trials(trials)
                room = min(room, ctx.pack, limit - ran if limit is not None else ctx.pack)
                if room <= 0 or (deadline is not None and time.time() >= deadline):
                    return ran
                asked = [ask(study, worker_token()) for _ in range(room)]
            try:
                with contextlib.ExitStack() as beats:
                    for trial in asked:
                        beats.enter_context(heartbeat(study, trial))
                    outcomes = run_pack(asked, ctx)
            except KeyboardInterrupt as stop:
                name = stop.args[0] if stop.args else "SIGINT"
                for trial in asked:
                    with contextlib.suppress(Exception):
                        mark_failed(storage, trial_id(trial), f"interrupted: {name} while it ran")
                raise
            for trial, outcome in zip(asked, outcomes, strict=True):
                record(study, trial, outcome)
        except Exception as exc:
            why = disk_trouble(exc)
            if why is None:
                raise
            if not asked:
                raise disk_stopped(why, folder) from None
            for trial in asked:
                with contextlib.suppress(Exception):
                    mark_failed(storage, trial_id(trial), f"interrupted: {why}")
            raise disk_stopped(f"{why} while trials ran", folder) from None
        for trial in asked:
            ran += 1
            if on_trial is not None:
                on_trial(trial)
    return ran
