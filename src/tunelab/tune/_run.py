"""`tunelab tune`: a study from a spec, with workers, resume, the seal and the refit of the best."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from tunelab.data import Fold, Splits
from tunelab.errors import RunError, SpecError, StudyFailed, TunelabError
from tunelab.evaluate import bbc_cv, get_metric, greater_is_better
from tunelab.runs import Run, ensure_writable, read_json, write_json
from tunelab.spec import Spec, dump_spec, load_spec, parse_spec, set_values
from tunelab.train import Console, prepare, train
from tunelab.tune._console import StudyConsole, result_of
from tunelab.tune._objective import TrialContext, run_trial
from tunelab.tune._seal import log_test_evaluation, seal, with_seal
from tunelab.tune._significance import best_vs_runner_up
from tunelab.tune._space import Param, fixed_seeds, grid_space, parse_space, trial_spec
from tunelab.tune._study import (
    ask,
    build_pruner,
    build_sampler,
    disk_trouble,
    fail_interrupted,
    heartbeat,
    mark_failed,
    open_storage,
    redact,
    study_lock,
    worker_token,
)

__all__ = ["tune", "StudyResult", "objective_of", "run_worker", "result_of"]

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class StudyResult:
    """What a finished study says: the best trial, counts, and the refit's test metrics."""

    path: Path
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    objective: str
    direction: str
    counts: dict[str, int]
    best_run: Run | None = None
    test_metrics: dict[str, float] | None = None
    nested: dict[str, Any] | None = field(default=None)
    best_vs_runner_up: dict[str, Any] | None = None
    winners_curse: dict[str, Any] | None = None  # the best-of-N caveat and its BBC-CV estimate


def objective_of(spec: Spec, task: str) -> tuple[str, bool]:
    """(metric, maximize) from ``tune.objective`` (``val.accuracy``, ``val_loss``, ...)."""
    text = spec.tune.objective or ("val.accuracy" if task == "classification" else "val.rmse")
    side, dot, metric = text.partition(".")
    if not dot:  # the short form val_loss (a metric name itself may hold "_": val.log_loss)
        side, _, metric = text.partition("_")
    if side == "test":
        raise SpecError(f"tune.objective {text!r}: the test part is sealed; tune on val.<metric>")
    if side != "val" or not metric:
        raise SpecError(f"tune.objective: expected val.<metric> or val.loss; got {text!r}")
    if metric != "loss" and get_metric(metric).task != task:
        raise SpecError(
            f"tune.objective: {metric} is a {get_metric(metric).task} metric, but "
            f"this is a {task} task"
        )
    direction = spec.tune.direction
    maximize = direction == "maximize" or (direction == "auto" and greater_is_better(metric))
    return metric, maximize


def tune(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    nested: int | None = None,
    quiet: bool = False,
) -> StudyResult:
    """Search the spec's ``tune.space``; refit the best on all non-test data; test it once.

    Args:
        spec: a spec with a ``tune`` section (path, mapping or Spec).
        out: the study folder (default ``studies/<name>``).
        overrides: ``dotted.path=value`` applied to the base spec before the search.
        trials: total number of trials (overrides ``tune.trials``); failed and pruned count.
        timeout: seconds for the search (overrides ``tune.timeout``).
        workers: processes on this machine sharing the study's storage.
        storage: an SQLAlchemy URL (e.g. ``postgresql://...``); default SQLite in the folder.
        resume: continue the study in ``out``; finished trials are kept, never re-run.
        nested: wrap the whole procedure in this many outer folds (nested cross-validation).
        quiet: no per-trial lines.
    """
    budget = [
        f"tune.{k}={v}" for k, v in (("trials", trials), ("timeout", timeout)) if v is not None
    ]
    spec = load_spec(spec, overrides=[*overrides, *budget])  # the budget validated like the spec
    if spec.tune is None:
        raise SpecError(
            "the spec has no `tune` section: add tune: {space: {...}} "
            "(see examples/mnist_tune.yaml)"
        )
    spec = fixed_seeds(spec)  # a searched `seed` never moves the data or the split
    if workers < 1:
        raise SpecError(f"--workers: expected at least 1; got {workers}")
    params = parse_space(spec.tune, spec)  # every entry checked before any data is loaded
    if spec.tune.sampler.name == "grid":
        grid_space(params)  # a space the grid cannot enumerate fails before the folder is made
    folder = Path(out) if out is not None else Path("studies") / spec.name
    if nested:
        from tunelab.tune._nested import nested_cv

        if not spec.tune.refit:
            raise SpecError(
                "--nested scores each outer fold by the refit of its best: remove tune.refit: false"
            )
    try:
        if nested:
            return nested_cv(spec, params, folder, outer=nested, workers=workers, quiet=quiet)
        return run_study(
            spec, params, folder, workers=workers, storage=storage, resume=resume, quiet=quiet
        )
    except TunelabError:
        raise
    except Exception as exc:  # a full or read-only disk after the checks (the refit, a report)
        why = disk_trouble(exc)
        if why is None:
            raise
        raise _disk_stopped(why, folder) from None


def run_study(
    spec: Spec,
    params: list[Param],
    folder: Path,
    *,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    quiet: bool = False,
    prep=None,
) -> StudyResult:
    """One study in ``folder`` (see :func:`tune`); ``prep`` reuses already prepared data."""
    console = StudyConsole(quiet=quiet)
    exists = (folder / "study.json").is_file()
    if exists and not resume:
        raise RunError(
            f"{folder} already holds a study; pass --resume to continue it, or choose another --out"
        )
    if resume and not exists:
        raise RunError(f"nothing to resume: {folder} holds no study (no study.json)")
    ensure_writable(folder, what="study folder")
    prep = prep or prepare(spec)
    metric, maximize = objective_of(spec, prep.ds.task)
    sealed = seal(folder, prep.ds, prep.splits)
    spec = _record_spec(folder, spec, resume=resume, sealed=sealed)
    storage = _storage_for(folder, storage, resume=resume)
    storage_obj, url = open_storage(folder, storage)
    total = spec.tune.trials
    if spec.tune.sampler.name == "grid":
        size = math.prod(len(v) for v in grid_space(params).values())
        total = min(total or size, size)
    write_json(
        folder / "study.json",
        {
            "name": spec.name,
            "objective": f"val.{metric}",
            "direction": "maximize" if maximize else "minimize",
            "storage": None if storage is None else redact(url),
            "trials": total,
            "timeout": spec.tune.timeout,
            "workers": workers,
        },
    )
    seed = spec.tune.sampler.seed if spec.tune.sampler.seed is not None else spec.seed
    study = optuna.create_study(
        study_name=spec.name,
        storage=storage_obj,
        load_if_exists=True,
        direction="maximize" if maximize else "minimize",
        sampler=build_sampler(spec.tune.sampler, params, seed=seed),
        pruner=build_pruner(spec.tune.pruner),
    )
    interrupted = fail_interrupted(study)
    ctx = _context(spec, params, prep, folder)
    base = ctx.base
    done_before = len(study.get_trials(deepcopy=False))
    console.header(
        spec,
        prep,
        folder,
        metric=metric,
        maximize=maximize,
        total=total,
        workers=workers,
        resumed=done_before if resume else None,
        interrupted=interrupted,
    )

    # --- the search
    deadline = time.time() + spec.tune.timeout if spec.tune.timeout else None
    console.start(study, total=total, timeout=spec.tune.timeout)
    try:
        if workers == 1:
            run_worker(ctx, study, folder, total=total, deadline=deadline, on_trial=console.show)
        else:
            _run_processes(
                spec,
                folder,
                storage,
                workers=workers,
                total=total,
                deadline=deadline,
                seed=seed,
                console=console,
                splits=prep.splits,
            )
    finally:
        console.stop(study)
    # a worker that died after its last trial started leaves it RUNNING: mark it now
    for number in fail_interrupted(study):
        console.note(f"trial {number} was interrupted (its worker ended): marked FAIL")

    # --- results: the best trial, its spec, the refit and the single test evaluation
    frozen = study.get_trials(deepcopy=False)
    counts = {
        s.name: sum(t.state == s for t in frozen)
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    if not counts["COMPLETE"]:
        reasons = sorted(
            {t.user_attrs.get("fail_reason") or result_of(t).get("reason") or "?" for t in frozen}
        )
        raise StudyFailed(
            f"no trial of {len(frozen)} completed ({counts['PRUNED']} pruned, {counts['FAIL']} failed); "
            f"reasons: {'; '.join(reasons[:5])}"
        )
    best = study.best_trial
    best_spec = trial_spec(base, result_of(best).get("values", {}))
    (folder / "best.yaml").write_text(dump_spec(best_spec), encoding="utf-8")
    result = StudyResult(
        path=folder,
        best_number=best.number,
        best_value=float(best.value),
        best_params=result_of(best).get("values", {}),
        objective=f"val.{metric}",
        direction="maximize" if maximize else "minimize",
        counts=counts,
    )
    result.winners_curse = winners_curse(
        study, folder, best=best.number, y=prep.ds.y, task=prep.ds.task, metric=metric,
        seed=spec.seed,
    )  # fmt: skip
    console.summary(
        study, top=spec.tune.top, metric=metric, maximize=maximize, curse=result.winners_curse
    )
    result.best_vs_runner_up = best_vs_runner_up(
        study,
        folder,
        splits=prep.splits,
        y=prep.ds.y,
        task=prep.ds.task,
        metric=metric,
        maximize=maximize,
    )
    if result.best_vs_runner_up:
        console.note(f"best versus runner-up: {result.best_vs_runner_up['verdict']}")
    if spec.tune.refit and len(prep.splits.test):
        result.best_run, result.test_metrics = _refit(
            best, best_spec, folder, prep=prep, seeds=spec.tune.refit_seeds
        )
        console.refit(result)
    write_json(
        folder / "result.json",
        {
            "best_trial": result.best_number,
            "best_value": result.best_value,
            "best_params": result.best_params,
            "objective": result.objective,
            "direction": result.direction,
            "counts": counts,
            "refit_epochs": _refit_epochs(best),
            "winners_curse": result.winners_curse,
            "test": result.test_metrics,
            "best_vs_runner_up": result.best_vs_runner_up,
            "refit_seeds": read_json(folder / "best_seeds" / "seeds.json")["summary"]
            if (folder / "best_seeds" / "seeds.json").is_file()
            else None,
        },
    )
    return result


_STARTED = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def run_worker(
    ctx: TrialContext,
    study: optuna.Study,
    folder: Path,
    *,
    total: int | None,
    deadline: float | None,
    on_trial: Callable[[optuna.Trial], None] | None = None,
) -> int:
    """Ask, run and tell trials until the total or the deadline is reached. Returns how many.

    Enqueued (WAITING) trials count once they start, so they are run within the total.
    Before each trial, the trials of workers that died are marked FAIL (``interrupted``).
    """
    ran = 0
    storage = study._storage
    study_id = storage.get_study_id_from_name(study.study_name)
    while True:
        trial = None
        try:
            with study_lock(folder):  # counting and creating together: exactly `total` trials
                fail_interrupted(study)  # dead workers' trials (one query of the running ones)
                if total is not None and storage.get_n_trials(study_id, state=_STARTED) >= total:
                    return ran
                if deadline is not None and time.time() >= deadline:
                    return ran
                trial = ask(study, worker_token())
            with heartbeat(study, trial):
                outcome = run_trial(trial, ctx)
            _record(study, trial, outcome)
        except Exception as exc:
            why = disk_trouble(exc)
            if why is None:
                raise
            if trial is None:
                raise _disk_stopped(why, folder) from None
            with contextlib.suppress(Exception):  # the storage may be on the full disk too
                mark_failed(storage, trial._trial_id, f"interrupted: {why}")
            raise _disk_stopped(f"{why} while trial {trial.number} ran", folder) from None
        ran += 1
        if on_trial is not None:
            on_trial(trial)


def _disk_stopped(why: str, folder: Path) -> RunError:
    """The error that stops a study whose disk is full or read-only (see ``disk_trouble``)."""
    return RunError(
        f"{why}; the study in {folder} stopped. Every finished trial is kept in its storage: "
        "free some space (or make the folder writable) and run the same `tunelab tune` command "
        "with --resume"
    )


def _record(study: optuna.Study, trial: optuna.Trial, outcome) -> None:
    """Store how a trial ended; a trial another worker already marked FAIL (it judged this
    worker dead, e.g. after a long pause) keeps that state."""
    try:
        # one write for everything a reader needs (each user attribute is a transaction)
        trial.set_user_attr(
            "result",
            {
                "values": outcome.params,
                "fold_values": outcome.fold_values,
                "epochs_trained": outcome.epochs_trained,
                "refit_epochs": outcome.refit_epochs,
                "seconds": round(outcome.seconds, 3),
                "reason": outcome.reason,
            },
        )
        if outcome.state == "COMPLETE":
            _tell(study, trial, outcome.value, TrialState.COMPLETE)
        elif outcome.state == "PRUNED":
            _tell(study, trial, None, TrialState.PRUNED)
        else:
            trial.set_user_attr("fail_reason", outcome.reason)
            if outcome.error is not None:  # type, message and traceback of the exception
                trial.set_user_attr("error", outcome.error)
            _tell(study, trial, None, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


def _tell(study: optuna.Study, trial: optuna.Trial, value: float | None, state: TrialState) -> None:
    """``study.tell``; the grid sampler's ``study.stop()`` on an exhausted grid is harmless here.

    Optuna stores the trial's state in a ``finally`` even when the sampler's after-trial hook
    raises, and our own total already ends the search when the grid is done.
    """
    try:
        study.tell(trial, value, state=state, skip_if_finished=True)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _run_processes(
    spec, folder, storage, *, workers, total, deadline, seed, console, splits
) -> None:
    """Spawn ``workers`` processes on this machine; the main process only watches."""
    mp = multiprocessing.get_context("spawn")
    cores = os.cpu_count() or 1
    payload = {
        "spec": spec.model_dump(mode="json"),
        "folder": str(folder),
        "storage": storage,
        "total": total,
        "deadline": deadline,
        "threads": max(1, cores // workers),
        "seed": seed,
        "splits": {  # the main process's splits (nested CV makes its own)
            "kind": splits.kind,
            "seed": splits.seed,
            "test": splits.test.tolist(),
            "folds": [[f.train.tolist(), f.val.tolist()] for f in splits.folds],
        },
    }
    procs = [
        mp.Process(target=_worker_process, args=(payload | {"index": i},), daemon=False)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            console.poll()
            for p in procs:
                p.join(timeout=0.5 / workers)
        console.poll()
    except BaseException:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    crashed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if crashed and len(crashed) == len(procs) and not console.finished():
        raise StudyFailed(
            f"every worker exited with an error (exit codes {crashed}) before finishing a trial; "
            "run with --workers 1 to see the error"
        )
    if crashed:
        console.note(f"{len(crashed)} worker(s) exited with codes {crashed}; their trials are kept")


def _worker_process(payload: dict) -> None:
    """A worker process: its own torch threads, data loaded once, trials until done."""
    import torch

    torch.set_num_threads(payload["threads"])
    spec = parse_spec(payload["spec"])
    if spec.train.device == "auto" and torch.cuda.is_available():  # spread workers over GPUs
        spec.train.device = f"cuda:{payload['index'] % torch.cuda.device_count()}"
    folder = Path(payload["folder"])
    params = parse_space(spec.tune, spec)
    parts = payload["splits"]  # the main process's splits (nested CV makes its own)
    splits = Splits(
        parts["kind"],
        np.asarray(parts["test"], np.int64),
        [Fold(np.asarray(t, np.int64), np.asarray(v, np.int64)) for t, v in parts["folds"]],
        parts["seed"],
    )
    ctx = _context(spec, params, prepare(spec, splits=splits), folder)
    storage, _ = open_storage(folder, payload["storage"])
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        # one grid order for all workers (grid point = trial number); other samplers differ
        sampler=build_sampler(
            spec.tune.sampler,
            params,
            seed=payload["seed"] + (0 if spec.tune.sampler.name == "grid" else payload["index"]),
        ),
        pruner=build_pruner(spec.tune.pruner),
    )
    try:
        run_worker(ctx, study, folder, total=payload["total"], deadline=payload["deadline"])
    except TunelabError as exc:  # a message for a person (a full disk), not a traceback
        print(f"error: worker {payload['index']}: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)


def _context(spec: Spec, params: list[Param], prep, folder: Path) -> TrialContext:
    """What every trial of a worker shares, from the study's spec and prepared data."""
    metric, maximize = objective_of(spec, prep.ds.task)
    return TrialContext(
        spec.model_dump(mode="json"),
        params,
        metric,
        maximize,
        wilcoxon=spec.tune.pruner.name == "wilcoxon",
        prep=prep,
        folder=folder,
        prunes=spec.tune.pruner.name != "none",
    )


def winners_curse(
    study: optuna.Study,
    folder: Path,
    *,
    best: int,
    y: np.ndarray,
    task: str,
    metric: str,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The best of N completed trials is optimistic: the caveat, and beside it a BBC-CV
    estimate (:func:`tunelab.evaluate.bbc_cv`) of what selecting the best achieves, from the
    trials' validation (out-of-fold) predictions. None with fewer than two completed trials.

    Only trials whose predictions cover the same rows as the best's take part (all of them,
    unless the study was resumed from an older version); ``bbc`` is None when fewer than two do.
    """
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(done) < 2:
        return None
    name = metric if metric != "loss" else ("log_loss" if task == "classification" else "mse")
    pooled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for trial in done:
        path = folder / "trials" / str(trial.number) / "predictions.npz"
        if path.is_file():
            with np.load(path) as f:
                order = np.argsort(f["val_index"], kind="stable")
                pooled[trial.number] = (f["val_index"][order], f["val_score"][order])
    rows = pooled[best][0] if best in pooled else None
    same = [n for n, (idx, _) in pooled.items() if rows is not None and np.array_equal(idx, rows)]
    record: dict[str, Any] = {
        "n_trials": len(done),
        "caveat": f"best of {len(done)}: optimistic",
        "bbc": None,
    }
    if len(same) >= 2:
        bbc = bbc_cv(task, y[rows], [pooled[n][1] for n in same], metric=name, seed=seed)
        record["bbc"] = bbc.to_json() | {"trials": same, "selected": same[bbc.selected]}
    return record


def _refit_epochs(best: FrozenTrial) -> int | None:
    """The epoch count the trial's value was measured at (the refit rule, see
    :func:`tunelab.train.choose_epoch`); None for a trial stored without one."""
    return result_of(best).get("refit_epochs")


def _refit(best: FrozenTrial, best_spec: Spec, folder: Path, *, prep, seeds: int = 1):
    """Refit the best configuration on all non-test data and evaluate the test part once.

    ``tune.refit_seeds`` > 1 refits it with more seeds; the spread of the test metrics over
    seeds goes to ``best_seeds/seeds.json`` and ``result.json``. A study resumed after a
    refit keeps it (and its single test evaluation) while the best trial is unchanged.
    """
    run, test = _refit_once(best, best_spec, folder / "best", folder, prep=prep)
    if seeds > 1:
        from tunelab.train import seed_summary

        per_seed = [test]
        for i in range(1, seeds):
            seed = best_spec.seed + i
            spec = parse_spec(set_values(best_spec.model_dump(mode="json"), {"seed": seed}))
            out = folder / "best_seeds" / f"seed_{seed}"
            per_seed.append(_refit_once(best, spec, out, folder, prep=prep)[1])
        summary = {name: seed_summary([p.get(name) for p in per_seed]) for name in test}
        write_json(
            folder / "best_seeds" / "seeds.json",
            {"seeds": seeds, "test": per_seed, "summary": summary},
        )
    return run, test


def _refit_once(best: FrozenTrial, spec: Spec, out: Path, folder: Path, *, prep):
    """One refit into ``out`` and its test evaluation, logged in the seal; or the one done
    before a resume. The seal's log says which trial and run were evaluated, so a study killed
    between the evaluation and ``result.json`` does not look at the test part twice."""
    tail = out.relative_to(folder).parts
    logged = [
        e
        for e in read_json(folder / "seal.json")["evaluations"]
        if e.get("trial") == best.number and Path(e.get("run", "")).parts[-len(tail) :] == tail
    ]
    if logged and (out / "metrics.json").is_file():
        return Run(out), logged[-1].get("metrics") or {}
    run = train(
        spec,
        out=out,
        refit_epochs=_refit_epochs(best) or spec.train.epochs,
        console=Console(quiet=True),
        reuse=prep,  # the study's own splits (an outer fold's, under nested CV)
    )
    test = {k: v["value"] for k, v in run.metrics.get("test", {}).items()}
    log_test_evaluation(folder, run=out, metrics=test, trial=best.number)
    return run, test


def _storage_for(folder: Path, given: str | None, *, resume: bool) -> str | None:
    """On resume, the study's own storage unless --storage says otherwise."""
    if given is not None or not resume:
        return given
    stored = read_json(folder / "study.json").get("storage")
    if stored and "***" in stored:
        raise RunError(
            f"{folder} is stored in {stored}; pass --storage again with the password "
            "(tunelab never writes passwords to disk)"
        )
    return stored


def _record_spec(folder: Path, spec: Spec, *, resume: bool, sealed: dict) -> Spec:
    """spec.yaml of the study, returned as every spec derived from it carries it: the split
    seed fixed and ``evaluate.seal`` naming this study's seal, so a look at the test part
    through ``best.yaml`` or the refit's ``spec.yaml`` is logged in ``seal.json`` too. A
    resume must use the same spec (trials and timeout aside; the seal's path may move)."""
    spec = with_seal(fixed_seeds(spec), folder, sealed)
    path = folder / "spec.yaml"
    if resume and path.is_file():
        stored = fixed_seeds(load_spec(path)).model_dump(mode="json")  # older studies too
        given = spec.model_dump(mode="json")
        for tree in (stored, given):
            tree["tune"].pop("trials", None)
            tree["tune"].pop("timeout", None)
            tree["evaluate"].pop("seal", None)
        if stored != given:
            changed = sorted(_diff(stored, given))
            raise RunError(
                f"--resume: the spec differs from the study's {path} at {', '.join(changed[:5])}; "
                "resume with the same spec (only tune.trials and tune.timeout may change)"
            )
    path.write_text(dump_spec(spec), encoding="utf-8")
    return spec


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in set(a) | set(b):
            out += _diff(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    return [] if a == b else [prefix or "(top level)"]
