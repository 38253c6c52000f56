"""One trial: the base spec with sampled values, trained on every fold, reported to Optuna.

Pruning semantics (what a pruner compares):

- holdout: the objective after each epoch, at step = epoch.
- cross-validation with median / percentile / asha / hyperband: the objective after each epoch
  of each fold, at step = fold * epochs + epoch. Trials are compared at the same fold and
  epoch, so a trial clearly worse during its first fold is stopped before the second.
- cross-validation with wilcoxon: the objective of each finished fold, at step = fold. The
  pruner runs a paired Wilcoxon signed-rank test of the trial's finished folds against the best
  trial's same folds, and stops the trial once it is significantly worse.

A trial's value follows the refit rule (:func:`tunelab.train.choose_epoch`): the epoch count
``E`` is the best epoch of the mean-over-folds objective curve, the value is that curve at
``E``, and the refit of the trial trains ``E`` epochs. The trial's validation predictions
(out-of-fold under CV) are those of each fold's model after epoch ``E``, so the best-versus-
runner-up test and the bias-corrected estimate judge the same models the value came from.
Pruners see each epoch's objective as it is logged; the wilcoxon pruner sees each fold's
value at the epoch its model ended with (last, or restored best), as the rule needs every fold.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from tunelab.data import fit_part
from tunelab.errors import TunelabError
from tunelab.runs import append_jsonl, write_json
from tunelab.train import (
    Callback,
    Prepared,
    Prune,
    choose_epoch,
    prepare,
    to_scores,
    train_fold,
)
from tunelab.tune._front import FrontStop, measure_costs
from tunelab.tune._noise import SAMPLES_ATTR
from tunelab.tune._space import Param, sample, trial_spec
from tunelab.tune._study import disk_trouble
from tunelab.tune._trial_ranks import refuse_parallel, run_ranks

__all__ = ["TrialContext", "Outcome", "run_trial"]

_MAX_TRACEBACK = 20_000  # characters of a traceback kept in the storage


@dataclass
class TrialContext:
    """What every trial of a worker shares (the data is loaded once per worker)."""

    base: dict[str, Any]  # the resolved base spec tree
    params: list[Param]
    metric: str  # "accuracy", "loss", ...
    maximize: bool
    wilcoxon: bool
    prep: Prepared
    folder: Path
    prunes: bool = True  # False with `pruner: none`
    needs_samples: bool = False  # the pruner reads the validation sizes (noise)
    proportion: bool = False  # the objective's metric is a share of the samples
    objectives: list = field(default_factory=list)  # tune.objectives (``_front.Objective``)
    stop_dominated: Any = None  # tune.stop_dominated: the rule of ``_front.FrontStop``
    measure: Any = None  # tune.measure: how latency_ms is measured
    pack: int = 1  # trials asked and trained together (tune.pack, see tune._pack)
    nproc: int = 1  # processes that train each trial data-parallel (tune.trial_nproc)

    @property
    def key(self) -> str:
        return f"val_{self.metric}"


@dataclass
class Outcome:
    state: str  # COMPLETE | PRUNED | FAIL
    value: float | None = None
    # each fold's value at refit_epochs; for a trial the wilcoxon pruner stopped, each
    # finished fold's value as reported to it
    fold_values: list[float] = field(default_factory=list)
    epochs_trained: list[int] = field(default_factory=list)  # per fold
    refit_epochs: int | None = None  # the refit rule's epoch count
    reason: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: dict[str, str] | None = None  # an exception's type, message and traceback
    values: list[float] | None = None  # a multi-objective trial's, in tune.objectives' order
    # a multi-objective trial's per-step val objectives ("steps") and measured "costs"
    front: dict[str, Any] | None = None


class _Report(Callback):
    """Report the objective to the trial after each epoch; prune when the pruner says so."""

    def __init__(self, trial: optuna.Trial, key: str, offset: int):
        self.trial, self.key, self.offset = trial, key, offset

    def on_epoch_end(self, epoch, logs, model):
        value = logs.get(self.key)
        if value is None or not math.isfinite(value):
            return None
        step = self.offset + epoch
        self.trial.report(value, step)
        if self.trial.should_prune():
            why = getattr(self.trial.study.pruner, "reasons", {}).get(self.trial.number)
            return Prune(why or f"pruned at step {step} ({self.key} {value:.4g})")
        return None


class _EpochScores(Callback):
    """The fold model's validation scores after every epoch, kept in memory, so that the
    trial's predictions are those of the epoch the refit rule picks once all folds are done.
    They come from the validation pass ``fit`` makes anyway (no second pass per epoch)."""

    def __init__(self, prep: Prepared):
        self.prep = prep
        self.scores: dict[int, np.ndarray] = {}

    def on_validation(self, epoch, outputs):
        prep = self.prep
        self.scores[epoch] = to_scores(outputs, prep.loss, task=prep.ds.task).cpu().numpy()


def run_trial(trial: optuna.Trial, ctx: TrialContext) -> Outcome:
    """Sample, train every fold, and say how the trial ended. Never raises for trial errors."""
    start = time.perf_counter()
    folder = ctx.folder / "trials" / str(trial.number)
    folder.mkdir(parents=True, exist_ok=True)
    outcome = Outcome("FAIL")
    try:
        outcome.params = sample(trial, ctx.params, ctx.base)
        if ctx.nproc > 1:  # tune.trial_nproc: every rank runs _train_folds (see _trial_ranks)
            refuse_parallel(trial_spec(ctx.base, outcome.params), nproc=ctx.nproc, lazy=False)
            outcome = run_ranks(trial, ctx, outcome, folder, train=_train_folds, describe=_error)
        else:
            outcome = _train_folds(trial, ctx, outcome, folder)
    except optuna.TrialPruned as exc:
        outcome.state, outcome.reason = "PRUNED", str(exc) or "pruned"
    except Exception as exc:  # the user's model or data code: a failed trial, not a failed study
        if disk_trouble(exc):
            raise  # no later trial could be recorded either: the worker stops the study
        outcome.state, outcome.reason = "FAIL", f"{type(exc).__name__}: {exc}"
        text = "".join(traceback.format_exception(exc))
        outcome.error = _error(exc, text)
        (folder / "traceback.txt").write_text(text, encoding="utf-8")
    outcome.seconds = time.perf_counter() - start
    # auxiliary (the storage is the record): atomic, without waiting for the disk
    write_json(folder / "trial.json", _record(trial.number, outcome), fsync=False)
    return outcome


def _error(exc: BaseException, text: str) -> dict[str, str]:
    """What a trial stores about the exception that failed it (``text``: its traceback).

    ``type`` and ``message`` are those of the user's own exception when tunelab wrapped it
    (a model constructor that raised becomes a SpecError caused by it); the traceback is
    capped for the storage (``traceback.txt`` holds all of it).
    """
    origin = exc
    if isinstance(exc, TunelabError) and exc.__cause__ is not None:
        origin = exc.__cause__
    kind, module = type(origin), type(origin).__module__
    return {
        "type": kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}",
        "message": str(origin),
        "traceback": text if len(text) <= _MAX_TRACEBACK else "...\n" + text[-_MAX_TRACEBACK:],
    }


def _train_folds(trial: optuna.Trial, ctx: TrialContext, outcome: Outcome, folder: Path) -> Outcome:
    spec = trial_spec(ctx.base, outcome.params)
    extra = sorted(({o.metric for o in ctx.objectives if o.metric} | {ctx.metric}) - {"loss"})
    prep = prepare(spec, reuse=ctx.prep, extra_metrics=extra)
    folds = prep.splits.folds
    epochs = spec.train.epochs
    restore = bool(spec.train.early_stopping and spec.train.early_stopping.restore_best)
    histories: list[list[dict]] = []
    scores: list[_EpochScores] = []
    costs: dict[str, float] = {}  # a multi-objective trial's, measured after its first epoch
    if ctx.objectives:
        outcome.front = {"steps": {}, "costs": costs}
    if ctx.needs_samples:  # the noise pruner: how many samples stand behind each step
        info = {"n": [len(f.val) for f in folds], "epochs": epochs, "proportion": ctx.proportion}
        trial.set_user_attr(SAMPLES_ATTR, info)
    for k, fold in enumerate(folds):
        # no pruner, no per-epoch reports: the curves are in history.jsonl, not worth a write each
        report = ctx.prunes and not ctx.wilcoxon
        callbacks: list[Callback] = [_Report(trial, ctx.key, offset=k * epochs)] if report else []
        if ctx.objectives:
            callbacks = [
                _front_stop(trial, ctx, prep, fold, folder, offset=k * epochs, costs=costs)
            ]
        scores.append(_EpochScores(prep))
        tag = {"fold": k} if len(folds) > 1 else {}
        _, history, _ = train_fold(
            prep,
            fold.train,
            fold.val,
            seed=spec.seed + k,
            callbacks=[*callbacks, scores[-1]],
            on_epoch=lambda row, tag=tag: append_jsonl(folder / "history.jsonl", tag | row),
        )
        if ctx.objectives:
            outcome.front["steps"].update(callbacks[0].steps)
        if history.failure:
            where = f" (fold {k + 1} of {len(folds)})" if len(folds) > 1 else ""
            return _done(outcome, "FAIL", reason=history.failure + where)
        if history.pruned:
            return _done(outcome, "PRUNED", reason=history.stop_reason)
        histories.append(history.rows)
        outcome.epochs_trained.append(len(history.rows))
        if ctx.wilcoxon:  # the fold's value where its model ended (the rule needs every fold)
            ended = history.best_epoch if restore and history.best_epoch else len(history.rows)
            value = next(r for r in history.rows if r["epoch"] == ended).get(ctx.key)
            if value is None or not math.isfinite(value):
                return _done(outcome, "FAIL", reason=f"{ctx.key} is {value} after fold {k + 1}")
            outcome.fold_values.append(float(value))
            trial.report(float(value), k)
            if trial.should_prune():
                return _done(
                    outcome, "PRUNED", reason=f"wilcoxon: worse than the best after fold {k + 1}"
                )
    choice = choose_epoch(histories, ctx.key, maximize=ctx.maximize)
    if choice is None:
        return _done(outcome, "FAIL", reason=f"{ctx.key} is not finite at any epoch of every fold")
    outcome.fold_values, outcome.refit_epochs = choice.fold_values, choice.epoch
    # the validation predictions (out-of-fold under CV) at the chosen epoch: best versus
    # runner-up and the bias-corrected estimate are computed on them
    np.savez_compressed(
        folder / "predictions.npz",
        val_index=np.concatenate([f.val for f in folds]),
        val_score=np.concatenate([s.scores[choice.epoch] for s in scores]),
        epoch=np.int64(choice.epoch),
    )
    if ctx.objectives:
        outcome.values = _front_values(ctx, histories, choice.epoch, costs)
        if not all(math.isfinite(v) for v in outcome.values):
            return _done(outcome, "FAIL", reason=f"an objective is not finite: {outcome.values}")
    return _done(outcome, "COMPLETE", value=choice.value)


def _front_stop(trial, ctx: TrialContext, prep: Prepared, fold, folder: Path, *, offset, costs):
    """The multi-objective trial's callback: costs measured on a validation sample's input."""
    stats = None  # a table encoded per training part: the fold's encoding, as train_fold fits it
    if prep.ds.featurizer is not None:
        stats = fit_part(prep.ds, fold.train, prep.spec.data.preprocess)
    x = prep.inputs(fold.val[:1], stats)
    if not isinstance(x, torch.Tensor):  # a lazy part: a zero input of the sample's shape
        x = torch.zeros((1, *prep.ds.in_shape))
    names = [o.name for o in ctx.objectives if o.key is None]
    measure = lambda model: measure_costs(model, x, names, measure=ctx.measure, folder=folder)  # noqa: E731
    return FrontStop(
        trial, ctx.objectives, ctx.stop_dominated, offset=offset, measure_fn=measure, costs=costs
    )


def _front_values(ctx: TrialContext, histories, epoch: int, costs: dict) -> list[float]:
    """Each objective of a completed multi-objective trial: a val metric's mean over folds at
    the refit rule's epoch, or the measured cost."""
    out = []
    for o in ctx.objectives:
        if o.key is None:
            out.append(float(costs[o.name]))
            continue
        at = [next(r for r in rows if r["epoch"] == epoch).get(o.key) for rows in histories]
        out.append(float(np.mean([math.nan if v is None else v for v in at])))
    return out


def _done(
    outcome: Outcome, state: str, *, value: float | None = None, reason: str | None = None
) -> Outcome:
    outcome.state, outcome.value, outcome.reason = state, value, reason
    return outcome


def _record(number: int, outcome: Outcome) -> dict:
    values = outcome.fold_values
    return {
        "number": number,
        "state": outcome.state,
        "value": outcome.value,
        "values": outcome.values,  # a multi-objective trial's, in tune.objectives' order
        "params": outcome.params,
        "fold_values": values,
        "mean": float(np.mean(values)) if values else None,
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else (0.0 if values else None),
        "epochs_trained": outcome.epochs_trained,
        "refit_epochs": outcome.refit_epochs,
        "reason": outcome.reason,
        "error": outcome.error,
        "seconds": outcome.seconds,
    }
