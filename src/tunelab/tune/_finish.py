"""After the search: the best trial and its spec, the winner's curse, best versus runner-up,
the refit of the best on all non-test data with its single look at the test part, result.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from tunelab.errors import StudyFailed
from tunelab.evaluate import bbc_cv
from tunelab.runs import Run, read_json, write_json
from tunelab.spec import Spec, dump_spec, parse_spec, set_values
from tunelab.train import Console, train
from tunelab.tune._console import StudyConsole, metric_values, result_of
from tunelab.tune._front import pick_trial
from tunelab.tune._open import OpenStudy
from tunelab.tune._seal import log_test_evaluation
from tunelab.tune._significance import best_vs_runner_up
from tunelab.tune._space import trial_spec

__all__ = ["StudyResult", "finish", "winners_curse"]


@dataclass
class StudyResult:
    """What a finished study says: the best trial, counts, and the refit's test metrics.

    ``test_metrics`` has the shape of a run's metrics: ``{name: {"value": v, "ci": {...} or
    None}}`` (``metric_values`` gives ``{name: v}``).
    """

    path: Path
    best_number: int | None  # None: a front of which no trial met tune.pick
    best_value: float | None
    best_params: dict[str, Any]
    objective: str
    direction: str
    counts: dict[str, int]
    best_run: Run | None = None
    test_metrics: dict[str, dict[str, Any]] | None = None
    nested: dict[str, Any] | None = field(default=None)
    best_vs_runner_up: dict[str, Any] | None = None
    winners_curse: dict[str, Any] | None = None  # the best-of-N caveat and its BBC-CV estimate
    # multi-objective: the Pareto front ([{number, values: {objective: v}, params}]) and the
    # pick rule ({rule, trial}); ``best_*`` are then the picked trial's (None: none met the rule)
    front: list[dict[str, Any]] | None = None
    pick: dict[str, Any] | None = None
    objectives: dict[str, str] | None = None  # multi-objective: {objective: direction}


def finish(opened: OpenStudy, console: StudyConsole) -> StudyResult:
    """The results of a searched study, written to ``result.json`` and returned."""
    study, folder, spec, prep = opened.study, opened.folder, opened.spec, opened.prep
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
    if opened.objectives:
        return _finish_front(opened, console, counts)
    best = study.best_trial
    values = result_of(best).get("values", {})
    best_spec = trial_spec(spec, values)
    (folder / "best.yaml").write_text(dump_spec(best_spec), encoding="utf-8")
    metric, maximize = opened.metric, opened.maximize
    result = StudyResult(
        path=folder,
        best_number=best.number,
        best_value=float(best.value),
        best_params=values,
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
        study, folder, splits=prep.splits, y=prep.ds.y, task=prep.ds.task, metric=metric,
        maximize=maximize,
    )  # fmt: skip
    if result.best_vs_runner_up:
        console.note(f"best versus runner-up: {result.best_vs_runner_up['verdict']}")
    if spec.tune.refit and len(prep.splits.test):
        result.best_run, result.test_metrics = _refit(
            best, best_spec, folder, prep=prep, seeds=spec.tune.refit_seeds
        )
        console.refit(result)
    _write_result(result, best)
    return result


def _finish_front(opened: OpenStudy, console: StudyConsole, counts: dict) -> StudyResult:
    """A multi-objective study's results: the Pareto front (Optuna's ``best_trials``), the
    trial ``tune.pick`` chooses (see :func:`pick_trial`), its refit and one test look."""
    study, folder, spec, prep = opened.study, opened.folder, opened.spec, opened.prep
    objectives = opened.objectives
    front = sorted(study.best_trials, key=lambda t: t.number)
    picked, rule = pick_trial(front, objectives, spec.tune.pick)
    names = [o.name for o in objectives]
    first = names.index(f"val.{opened.metric}")
    result = StudyResult(
        path=folder,
        best_number=picked.number if picked else None,
        best_value=float(picked.values[first]) if picked else None,
        best_params=result_of(picked).get("values", {}) if picked else {},
        objective=f"val.{opened.metric}",
        direction="maximize" if opened.maximize else "minimize",
        counts=counts,
        front=[
            {
                "number": t.number,
                "values": dict(zip(names, map(float, t.values), strict=True)),
                "params": result_of(t).get("values", {}),
                "refit_epochs": _refit_epochs(t),
            }
            for t in front
        ],
        pick={"rule": rule, "trial": picked.number if picked else None},
        objectives={o.name: "maximize" if o.maximize else "minimize" for o in objectives},
    )
    console.front(study, result, objectives)
    if picked is None:
        console.note(f"no front trial meets tune.pick ({rule}): nothing refit, the test unseen")
    else:
        best_spec = trial_spec(spec, result.best_params)
        (folder / "best.yaml").write_text(dump_spec(best_spec), encoding="utf-8")
        if spec.tune.refit and len(prep.splits.test):
            result.best_run, result.test_metrics = _refit(
                picked, best_spec, folder, prep=prep, seeds=spec.tune.refit_seeds
            )
            console.refit(result)
    _write_result(result, picked)
    return result


def _write_result(result: StudyResult, best: FrozenTrial | None) -> None:
    folder = result.path
    seeds = folder / "best_seeds" / "seeds.json"
    front = {}
    if result.front is not None:
        front = {
            "objectives": result.objectives,
            "front": result.front,
            "pick": result.pick,
        }
    write_json(
        folder / "result.json",
        {
            "best_trial": result.best_number,
            "best_value": result.best_value,
            "best_params": result.best_params,
            "objective": result.objective,
            "direction": result.direction,
            "counts": result.counts,
            "refit_epochs": _refit_epochs(best) if best is not None else None,
            "winners_curse": result.winners_curse,
            "test": result.test_metrics,
            "best_vs_runner_up": result.best_vs_runner_up,
            "refit_seeds": read_json(seeds)["summary"] if seeds.is_file() else None,
            **front,
        },
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

    Returns the refit's run and its test metrics (``{name: {"value", "ci"}}``, as in the
    run's ``metrics.json``). ``tune.refit_seeds`` > 1 refits it with more seeds; the spread of
    the test metrics over seeds goes to ``best_seeds/seeds.json`` and ``result.json``. A study
    resumed after a refit keeps it (and its single test evaluation) while the best trial is
    unchanged.
    """
    run, test = _refit_once(best, best_spec, folder / "best", folder, prep=prep)
    if seeds > 1:
        from tunelab.train import seed_summary

        per_seed = [metric_values(test)]
        for i in range(1, seeds):
            seed = best_spec.seed + i
            spec = parse_spec(set_values(best_spec.model_dump(mode="json"), {"seed": seed}))
            out = folder / "best_seeds" / f"seed_{seed}"
            per_seed.append(metric_values(_refit_once(best, spec, out, folder, prep=prep)[1]))
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
        run = Run(out)
        return run, _logged_test(run, logged[-1].get("metrics") or {})
    run = train(
        spec,
        out=out,
        refit_epochs=_refit_epochs(best) or spec.train.epochs,
        console=Console(quiet=True),
        reuse=prep,  # the study's own splits (an outer fold's, under nested CV)
    )
    test = dict(run.metrics.get("test", {}))
    log_test_evaluation(folder, run=out, metrics=metric_values(test), trial=best.number)
    return run, test


def _logged_test(run: Run, logged: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The test metrics of a refit evaluated before a resume: the values its seal log holds,
    with each interval from its ``metrics.json`` when that holds the same value."""
    stored = run.metrics.get("test", {})
    return {
        name: {
            "value": value,
            "ci": stored[name].get("ci")
            if isinstance(stored.get(name), dict) and stored[name].get("value") == value
            else None,
        }
        for name, value in logged.items()
    }
