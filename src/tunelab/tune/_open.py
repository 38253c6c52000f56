"""Opening a study: the checks before any data, then its folder, seal, spec record and storage.

A new study and a resumed one go through the same door: the spec is checked (a ``tune``
section, the space, the grid), the folder is refused when it would mix two studies, the test
part is sealed (or checked against the seal), ``spec.yaml`` is recorded (or compared with the
one a resume continues), and the Optuna study is created or loaded from its storage.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from tunelab.errors import RunError, SpecError
from tunelab.evaluate import get_metric, greater_is_better
from tunelab.plugins import PRUNERS, SAMPLERS
from tunelab.runs import ensure_writable, read_json, write_json
from tunelab.spec import Spec, applied, dump_spec, load_spec
from tunelab.train import Prepared, prepare
from tunelab.tune._front import Objective, objectives_of, val_metric
from tunelab.tune._objective import TrialContext
from tunelab.tune._pack import choose_pack
from tunelab.tune._samplers import build_pruner, build_sampler
from tunelab.tune._seal import seal, with_seal
from tunelab.tune._space import Param, fixed_seeds, grid_space, parse_space
from tunelab.tune._study import fail_interrupted, open_storage, redact
from tunelab.tune._trial_ranks import refuse_parallel

__all__ = ["OpenStudy", "objective_of", "study_spec", "open_study", "trial_context"]


@dataclass
class OpenStudy:
    """A study ready for its search: what the search and the finish both read."""

    spec: Spec  # the recorded spec: split seed fixed, its seal named
    params: list[Param]
    folder: Path
    prep: Prepared
    metric: str  # "accuracy", "loss", ...
    maximize: bool
    study: optuna.Study
    storage: str | None  # the URL given (None: SQLite in the folder), for worker processes
    total: int | None  # trials in all (the grid's size at most)
    seed: int  # the sampler's seed
    interrupted: list[int]  # trials a dead worker left RUNNING, marked FAIL on opening
    done_before: int  # trials in the storage when it was opened
    objectives: list[Objective]  # a multi-objective study's (empty for one objective)


def objective_of(spec: Spec, task: str) -> tuple[str, bool]:
    """(metric, maximize) from ``tune.objective`` (``val.accuracy``, ``val_loss``, ...); in a
    multi-objective study, the first val objective's (it drives the refit rule's epoch)."""
    front = objectives_of(spec, task)
    if front:
        first = next(o for o in front if o.metric is not None)
        return first.metric, first.maximize
    text = spec.tune.objective or ("val.accuracy" if task == "classification" else "val.rmse")
    metric = val_metric(text, task)
    direction = spec.tune.direction
    maximize = direction == "maximize" or (direction == "auto" and greater_is_better(metric))
    pruner = PRUNERS.get(spec.tune.pruner.name)
    if pruner.extra.get("needs_samples") and not _proportion(metric):
        raise SpecError(
            f"tune.pruner {pruner.name}: it needs an objective that is a share of the val "
            f"samples (val.accuracy, val.precision_macro, ...); got {text!r}. Use median or asha"
        )
    return metric, maximize


def _proportion(metric: str) -> bool:
    return metric != "loss" and bool(get_metric(metric).proportion)


def study_spec(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
) -> tuple[Spec, list[Param]]:
    """The study's spec and its parsed space, every check that needs no data done."""
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
    if spec.tune.objectives and SAMPLERS.get(spec.tune.sampler.name).extra.get("single_objective"):
        raise SpecError(
            f"tune.sampler {spec.tune.sampler.name} handles one objective; with tune.objectives "
            "use nsga2, tpe, random, qmc, gp or grid"
        )
    return spec, params


def open_study(
    spec: Spec,
    params: list[Param],
    folder: Path,
    *,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    prep: Prepared | None = None,
) -> OpenStudy:
    """Start the study in ``folder``, or continue it (``resume``); ``prep`` reuses prepared
    data (an outer fold of nested CV)."""
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
    objectives = objectives_of(spec, prep.ds.task)
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
            **_front_meta(objectives),
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
        directions=[_direction(o.maximize) for o in objectives] or [_direction(maximize)],
        sampler=build_sampler(spec.tune.sampler, params, seed=seed),
        pruner=build_pruner(spec.tune.pruner),
    )
    _name_objectives(study, [o.name for o in objectives] or [f"val.{metric}"])
    earlier = len(study.get_trials(deepcopy=False))
    if earlier and spec.tune.sampler.name != "grid":
        # a resumed study's sampler must not draw its first trials' values again: the same
        # seed restarts the same random stream (trial 0's parameters, exactly), so it moves on
        # by the trials already there (the grid skips the configurations it has run anyway)
        seed += earlier
        study.sampler = build_sampler(spec.tune.sampler, params, seed=seed)
    interrupted = fail_interrupted(study)
    return OpenStudy(
        spec, params, folder, prep, metric, maximize, study, storage, total, seed,
        interrupted=interrupted, done_before=len(study.get_trials(deepcopy=False)),
        objectives=objectives,
    )  # fmt: skip


def _name_objectives(study: optuna.Study, names: list[str]) -> None:
    """The study's objective names in its storage, so that optuna-dashboard and every other
    reader of the storage shows ``val.accuracy``, not "Objective 0"."""
    with warnings.catch_warnings():  # experimental in Optuna since 3.2, unchanged through 5.1
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)


def _direction(maximize: bool) -> str:
    return "maximize" if maximize else "minimize"


def _front_meta(objectives: list[Objective]) -> dict:
    """study.json's record of a multi-objective study's objectives (none for one objective)."""
    if not objectives:
        return {}
    return {
        "objectives": [o.name for o in objectives],
        "directions": [_direction(o.maximize) for o in objectives],
    }


def trial_context(spec: Spec, params: list[Param], prep: Prepared, folder: Path) -> TrialContext:
    """What every trial of a worker shares, from the study's spec and prepared data."""
    metric, maximize = objective_of(spec, prep.ds.task)
    tree = spec.model_dump(mode="json")
    nproc = spec.tune.trial_nproc
    refuse_parallel(spec, nproc=nproc, lazy=prep.X is None)
    return TrialContext(
        tree,
        params,
        metric,
        maximize,
        wilcoxon=spec.tune.pruner.name == "wilcoxon",
        prep=prep,
        folder=folder,
        prunes=spec.tune.pruner.name != "none",
        needs_samples=bool(PRUNERS.get(spec.tune.pruner.name).extra.get("needs_samples")),
        proportion=_proportion(metric),
        objectives=objectives_of(spec, prep.ds.task),
        stop_dominated=spec.tune.stop_dominated,
        measure=spec.tune.measure,
        pack=choose_pack(spec.tune.pack, tree, prep, folder),
        nproc=nproc,
    )


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
        stored = applied(fixed_seeds(load_spec(path)))  # older studies too
        given = applied(spec)
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
