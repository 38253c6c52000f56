"""What a study's report shows, as plain numbers read from its folder and storage."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from tunelab.errors import RunError
from tunelab.report._run_info import MetricRow, _metric_rows
from tunelab.runs import read_json

__all__ = ["StudyInfo", "TrialRow", "study_info", "load_study"]


@dataclass
class TrialRow:
    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None
    params: dict[str, object]
    fold_values: list[float] = field(default_factory=list)  # each fold's value at refit_epochs
    epochs_trained: list[int] = field(default_factory=list)  # per fold
    refit_epochs: int | None = None  # the refit rule's epoch count: what its value was taken at
    mean: float | None = None
    std: float | None = None
    reason: str | None = None
    seconds: float | None = None
    intermediate: list[tuple[int, float]] = field(default_factory=list)  # (step, value)
    files: list[str] = field(default_factory=list)  # trials/<n>/... relative to the study
    values: list[float] | None = None  # a multi-objective trial's, in the study's objectives


@dataclass
class StudyInfo:
    name: str
    path: str
    objective: str
    direction: str
    storage: str
    sampler: str
    pruner: str
    counts: dict[str, int]
    params: list[str]
    trials: list[TrialRow]
    best: int | None
    importance: dict[str, float] | None  # fANOVA importance of each parameter, summing to 1
    importance_note: str | None
    best_vs_runner_up: dict | None
    seal: dict | None  # test size, fingerprint, sealed time and every evaluation of the test part
    test: dict[str, float] | None  # the refit's sealed-test metrics
    best_metrics: list[MetricRow]  # the refit's metrics with their intervals
    refit_seeds: dict | None
    spec_text: str
    # the best of N is optimistic: {"n_trials", "caveat", "bbc": BBC-CV estimate with its
    # interval, or None}; None for one completed trial or a study from before it was recorded
    winners_curse: dict | None = None
    # a multi-objective study: {objective: direction}, the front's trial numbers (result.json),
    # and the pick rule {rule, trial}
    objectives: dict[str, str] | None = None
    front: list[int] = field(default_factory=list)
    pick: dict | None = None


def load_study(path: str | Path, *, storage: str | None = None) -> optuna.Study:
    """Open the Optuna study of a study folder (its SQLite file or the URL in study.json)."""
    from tunelab.tune import open_storage

    folder = Path(path)
    meta_path = folder / "study.json"
    if not meta_path.is_file():
        what = "does not exist" if not folder.exists() else "holds no study.json"
        raise RunError(f"{folder} is not a tunelab study: the folder {what}")
    meta = read_json(meta_path)
    url = storage or meta.get("storage")
    if url and "***" in url:
        raise RunError(
            f"{folder} is stored in {url}; pass --storage with the password "
            "(tunelab never writes passwords to disk)"
        )
    backend, _ = open_storage(folder, url)
    try:
        return optuna.load_study(study_name=meta["name"], storage=backend)
    except KeyError:
        raise RunError(
            f"study {meta['name']!r} is not in its storage {url or 'study.db'}"
        ) from None


def study_info(
    path: str | Path, *, storage: str | None = None, study: optuna.Study | None = None
) -> StudyInfo:
    """Read a study folder (and its storage) into a :class:`StudyInfo`; ``study`` is the
    folder's study when the caller has already opened it."""
    folder = Path(path)
    study = study or load_study(folder, storage=storage)
    meta = read_json(folder / "study.json")
    result_path = folder / "result.json"
    result = read_json(result_path) if result_path.is_file() else {}
    spec_path = folder / "spec.yaml"
    spec_text = spec_path.read_text(encoding="utf-8") if spec_path.is_file() else ""
    tune = _tune_section(spec_text)

    frozen = study.get_trials(deepcopy=False)
    names = meta.get("objectives") or []
    first = names.index(meta["objective"]) if meta["objective"] in names else 0
    rows = [_row(folder, t, first) for t in frozen]
    complete = [t for t in frozen if t.state == TrialState.COMPLETE]
    best = None
    if names:
        best = result.get("best_trial")
    elif complete:
        best = (max if meta["direction"] == "maximize" else min)(
            complete, key=lambda t: t.value
        ).number
    importance, note = _importance(study, complete, first)
    counts = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    for t in frozen:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    seal_path = folder / "seal.json"
    best_metrics_path = folder / "best" / "metrics.json"
    return StudyInfo(
        name=meta["name"],
        path=str(folder),
        objective=meta["objective"],
        direction=meta["direction"],
        storage=_storage_label(storage or meta.get("storage")),
        sampler=_name(tune.get("sampler"), "tpe"),
        pruner=_name(tune.get("pruner"), "median"),
        counts=counts,
        params=list(dict.fromkeys(p for t in frozen for p in t.params)),
        trials=rows,
        best=best,
        importance=importance,
        importance_note=note,
        best_vs_runner_up=result.get("best_vs_runner_up"),
        seal=read_json(seal_path) if seal_path.is_file() else None,
        test=_test_values(result.get("test")),
        best_metrics=_metric_rows(read_json(best_metrics_path))
        if best_metrics_path.is_file()
        else [],
        refit_seeds=result.get("refit_seeds"),
        spec_text=spec_text,
        winners_curse=result.get("winners_curse"),
        objectives=dict(zip(names, meta.get("directions") or [], strict=True)) or None,
        front=[int(f["number"]) for f in result.get("front") or []],
        pick=result.get("pick"),
    )


def _test_values(test: dict | None) -> dict[str, float] | None:
    """The refit's test values from result.json (``{name: {"value", "ci"}}``, or a plain number
    per name as earlier versions wrote it)."""
    from tunelab.tune import metric_values

    return None if test is None else metric_values(test)


def _tune_section(spec_text: str) -> dict:
    import yaml

    try:
        return (yaml.safe_load(spec_text) or {}).get("tune") or {}
    except yaml.YAMLError:
        return {}


def _name(section, default: str) -> str:
    """``tpe`` from ``{name: tpe, ...}`` or from ``tpe``."""
    if section is None:
        return default
    return str(section.get("name", default) if isinstance(section, dict) else section)


def _storage_label(url: str | None) -> str:
    if not url:
        return "study.db (SQLite)"
    from tunelab.tune import redact

    return redact(url)


def _row(folder: Path, t: optuna.trial.FrozenTrial, first: int = 0) -> TrialRow:
    """One trial; a multi-objective trial's ``value`` is its value of the study's objective
    (the first val objective) and ``values`` all of them."""
    result = t.user_attrs.get("result") or {}
    folds = [float(v) for v in result.get("fold_values") or [] if v is not None]
    finite = [v for v in folds if math.isfinite(v)]
    trial_dir = folder / "trials" / str(t.number)
    files = sorted(p.name for p in trial_dir.iterdir()) if trial_dir.is_dir() else []
    return TrialRow(
        number=t.number,
        state=t.state.name,
        value=t.values[first] if t.values else None,
        params=result.get("values") or dict(t.params),
        fold_values=folds,
        epochs_trained=[int(e) for e in result.get("epochs_trained") or []],
        refit_epochs=result.get("refit_epochs"),
        mean=float(np.mean(finite)) if finite else None,
        std=float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
        reason=result.get("reason") or t.user_attrs.get("fail_reason"),
        seconds=result.get("seconds"),
        intermediate=sorted((int(k), float(v)) for k, v in t.intermediate_values.items()),
        files=[f"trials/{t.number}/{name}" for name in files],
        values=[float(v) for v in t.values] if t.values and len(t.values) > 1 else None,
    )


def _importance(
    study: optuna.Study, complete: list[optuna.trial.FrozenTrial], first: int = 0
) -> tuple[dict[str, float] | None, str | None]:
    """fANOVA importances (Optuna's default evaluator), or why there are none; for the
    objective ``first`` of a multi-objective study."""
    varied = {
        name
        for name in {p for t in complete for p in t.params}
        if len({repr(t.params.get(name)) for t in complete}) > 1
    }
    if len(complete) < 3 or not varied:
        return None, "needs at least 3 completed trials whose parameters differ"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            values = optuna.importance.get_param_importances(
                study,
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                target=(lambda t: t.values[first]) if len(study.directions) > 1 else None,
            )
        except (ValueError, RuntimeError) as exc:
            return None, f"not computable: {exc}"
    return {k: float(v) for k, v in values.items()}, None
