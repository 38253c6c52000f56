"""Trials trained together: a pack of asked trials, grouped by what they share, each group
trained fold by fold with :func:`tunelab.train.train_packed`.

Trials whose specs differ only in what a member may have of its own (the optimizer's lr and
weight decay, the dropout rate, the schedule, early stopping, gradient clipping) form one
group; a group of one, or one that cannot be packed (:func:`tunelab.train.unpackable`), runs
as an ordinary trial. Inside a group each trial is what :func:`run_trial` makes of it: its
own seed per fold, its reports to the pruner after each epoch (a pruned member leaves the
pack, the others go on), the refit rule's epoch and value, its predictions and its record.
The pruner sees the members' reports epoch by epoch, side by side, as it sees the trials of
parallel workers.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna

from tunelab.runs import append_jsonl, write_json
from tunelab.train import Member, Prepared, choose_epoch, prepare, train_packed, unpackable
from tunelab.tune._noise import SAMPLES_ATTR
from tunelab.tune._objective import (
    Outcome,
    TrialContext,
    _done,
    _EpochScores,
    _error,
    _record,
    _Report,
    run_trial,
)
from tunelab.tune._space import sample, trial_spec
from tunelab.tune._study import disk_trouble

__all__ = ["run_pack", "group_key"]

# spec paths a packed member may have of its own
_OWN = (("train", "optimizer"), ("train", "schedule"), ("train", "early_stopping"))
_OWN_KEYS = (("train", "grad_clip"), ("model", "dropout"))


def group_key(tree: dict) -> str:
    """What the trials of one group share: the spec tree without what a member has of its
    own (the optimizer's name stays; a dropout rate only counts as zero or not)."""
    import json

    shared = json.loads(json.dumps(tree))
    for section, key in _OWN:
        node = shared.get(section, {}).get(key)
        shared[section][key] = node.get("name") if isinstance(node, dict) else node
    for section, key in _OWN_KEYS:
        if key in shared.get(section, {}):
            shared[section][key] = bool(shared[section][key])
    return json.dumps(shared, sort_keys=True)


@dataclass
class _Entry:
    """One trial of a pack while it trains."""

    trial: optuna.Trial
    outcome: Outcome
    folder: Path
    prep: Prepared | None = None
    histories: list[list[dict]] = field(default_factory=list)
    scores: list[_EpochScores] = field(default_factory=list)


def run_pack(trials: list[optuna.Trial], ctx: TrialContext) -> list[Outcome]:
    """Sample every trial, train each group together; an outcome per trial, in order."""
    start = time.perf_counter()
    entries, groups = [], {}
    for trial in trials:
        folder = ctx.folder / "trials" / str(trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        entry = _Entry(trial, Outcome("FAIL"), folder)
        entries.append(entry)
        try:
            entry.outcome.params = sample(trial, ctx.params, ctx.base)
            spec = trial_spec(ctx.base, entry.outcome.params)
            extra = [] if ctx.metric == "loss" else [ctx.metric]
            entry.prep = prepare(spec, reuse=ctx.prep, extra_metrics=extra)
        except Exception:  # run alone, where run_trial records the failure as it would
            entry.prep = None
        key = group_key(entry.prep.spec.model_dump(mode="json")) if entry.prep else id(entry)
        groups.setdefault(key, []).append(entry)
    outcomes: dict[int, Outcome] = {}
    for group in groups.values():
        plans = [e.prep.plan for e in group if e.prep is not None]
        if len(group) == 1 or len(plans) < len(group) or unpackable(plans) is not None:
            for e in group:  # sampling again returns the values already suggested
                outcomes[e.trial.number] = run_trial(e.trial, ctx)
            continue
        _train_group(group, ctx)
        for e in group:
            e.outcome.seconds = time.perf_counter() - start
            e.trial.set_user_attr("packed_with", [g.trial.number for g in group])
            write_json(e.folder / "trial.json", _record(e.trial.number, e.outcome), fsync=False)
            outcomes[e.trial.number] = e.outcome
    return [outcomes[t.number] for t in trials]


def _train_group(group: list[_Entry], ctx: TrialContext) -> None:
    """Every fold of the group's trials, packed; a trial that fails, or is pruned, leaves."""
    prep = group[0].prep
    folds, epochs = prep.splits.folds, prep.spec.train.epochs
    if ctx.needs_samples:  # the noise pruner: how many samples stand behind each step
        info = {"n": [len(f.val) for f in folds], "epochs": epochs, "proportion": ctx.proportion}
        for e in group:
            e.trial.set_user_attr(SAMPLES_ATTR, info)
    live = list(group)
    for k, fold in enumerate(folds):
        members = [_member(e, ctx, k, len(folds)) for e in live]
        try:
            train_packed(prep, fold.train, fold.val, members)
        except Exception as exc:
            if disk_trouble(exc):
                raise
            text = "".join(traceback.format_exception(exc))
            for e in live:
                e.outcome.error = _error(exc, text)
                _done(e.outcome, "FAIL", reason=f"{type(exc).__name__}: {exc}")
                (e.folder / "traceback.txt").write_text(text, encoding="utf-8")
            return
        live = [e for e, m in zip(live, members, strict=True) if _fold_done(e, m, ctx, k, folds)]
    for e in live:
        _finish(e, ctx, folds)


def _member(e: _Entry, ctx: TrialContext, k: int, n_folds: int) -> Member:
    spec = e.prep.spec
    report = ctx.prunes and not ctx.wilcoxon
    callbacks = [_Report(e.trial, ctx.key, offset=k * spec.train.epochs)] if report else []
    e.scores.append(_EpochScores(e.prep))
    tag = {"fold": k} if n_folds > 1 else {}
    path = e.folder / "history.jsonl"
    return Member(
        e.prep.plan,
        seed=spec.seed + k,
        callbacks=[*callbacks, e.scores[-1]],
        on_epoch=lambda row, tag=tag, path=path: append_jsonl(path, tag | row),
    )


def _fold_done(e: _Entry, member: Member, ctx: TrialContext, k: int, folds) -> bool:
    """Record a trial's fold; False when the trial ends here (failed or pruned)."""
    history, outcome = member.history, e.outcome
    if history.failure:
        where = f" (fold {k + 1} of {len(folds)})" if len(folds) > 1 else ""
        _done(outcome, "FAIL", reason=history.failure + where)
        return False
    if history.pruned:
        _done(outcome, "PRUNED", reason=history.stop_reason)
        return False
    e.histories.append(history.rows)
    outcome.epochs_trained.append(len(history.rows))
    if not ctx.wilcoxon:
        return True
    es = e.prep.spec.train.early_stopping
    restore = bool(es and es.restore_best)
    ended = history.best_epoch if restore and history.best_epoch else len(history.rows)
    value = next(r for r in history.rows if r["epoch"] == ended).get(ctx.key)
    if value is None or not math.isfinite(value):
        _done(outcome, "FAIL", reason=f"{ctx.key} is {value} after fold {k + 1}")
        return False
    outcome.fold_values.append(float(value))
    e.trial.report(float(value), k)
    if e.trial.should_prune():
        _done(outcome, "PRUNED", reason=f"wilcoxon: worse than the best after fold {k + 1}")
        return False
    return True


def _finish(e: _Entry, ctx: TrialContext, folds) -> None:
    """The refit rule's epoch and value, and the predictions at that epoch (as run_trial)."""
    choice = choose_epoch(e.histories, ctx.key, maximize=ctx.maximize)
    if choice is None:
        _done(e.outcome, "FAIL", reason=f"{ctx.key} is not finite at any epoch of every fold")
        return
    e.outcome.fold_values, e.outcome.refit_epochs = choice.fold_values, choice.epoch
    np.savez_compressed(
        e.folder / "predictions.npz",
        val_index=np.concatenate([f.val for f in folds]),
        val_score=np.concatenate([s.scores[choice.epoch] for s in e.scores]),
        epoch=np.int64(choice.epoch),
    )
    _done(e.outcome, "COMPLETE", value=choice.value)
