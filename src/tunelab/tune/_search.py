"""The search: ask a trial, run it, tell Optuna how it ended, until the total or the deadline.

The same loop runs in the main process (one worker) and in every worker process. Counting the
trials and creating the next one happen under the study's file lock, so N workers run exactly
the requested total; a full or read-only disk stops the study (no later trial could be
recorded either), any other error of a trial is that trial's result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tunelab.tune._join import storage_lock
from tunelab.tune._objective import Outcome, TrialContext, run_trial
from tunelab.tune._pack import run_packed
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

__all__ = ["run_worker"]


def run_worker(
    ctx: TrialContext,
    study: optuna.Study,
    folder: Path,
    *,
    total: int | None,
    deadline: float | None,
    on_trial: Callable[[optuna.Trial], None] | None = None,
    limit: int | None = None,
) -> int:
    """Ask, run and tell trials until the total or the deadline is reached, or ``limit``
    trials ran here (a Ray task runs one). Returns how many.

    Enqueued (WAITING) trials count once they start, so they are run within the total.
    Before each trial, the trials of workers that died are marked FAIL (``interrupted``), and
    each interrupted trial is enqueued once more (``retry_of``): interrupted trials do not count
    toward the total, so a study ends with its total of finished trials.
    """
    if ctx.pack > 1:  # tune.pack: trials asked and trained together
        kwargs = {"total": total, "deadline": deadline, "on_trial": on_trial, "limit": limit}
        return run_packed(ctx, study, folder, record=_record, **kwargs)
    ran = 0
    storage = storage_of(study)
    while limit is None or ran < limit:
        trial = None
        try:
            # counting and creating together, across this machine's workers and the others':
            # exactly `total` trials
            with study_lock(folder), storage_lock(storage, study.study_name):
                fail_interrupted(study)  # dead workers' trials (one query of the running ones)
                trials = study.get_trials(deepcopy=False)  # one read for both below
                retry_interrupted(study, trials)  # each interrupted trial once more, linked
                if total is not None and counted_trials(trials) >= total:
                    return ran
                if deadline is not None and time.time() >= deadline:
                    return ran
                trial = ask(study, worker_token())
            try:
                with heartbeat(study, trial):
                    outcome = run_trial(trial, ctx)
            except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the trial says so at once
                name = stop.args[0] if stop.args else "SIGINT"
                with contextlib.suppress(Exception):
                    mark_failed(storage, trial_id(trial), f"interrupted: {name} while it ran")
                raise
            _record(study, trial, outcome)
        except Exception as exc:
            why = disk_trouble(exc)
            if why is None:
                raise
            if trial is None:
                raise disk_stopped(why, folder) from None
            with contextlib.suppress(Exception):  # the storage may be on the full disk too
                mark_failed(storage, trial_id(trial), f"interrupted: {why}")
            raise disk_stopped(f"{why} while trial {trial.number} ran", folder) from None
        ran += 1
        if on_trial is not None:
            on_trial(trial)
    return ran


def _record(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
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
                # multi-objective: the val objectives at each step and the measured costs,
                # what later trials' dominated-stopping compares with (``_front.FrontStop``)
                **(outcome.front or {}),
            },
        )
        if outcome.state == "COMPLETE":
            value = outcome.values if outcome.values is not None else outcome.value
            _tell(study, trial, value, TrialState.COMPLETE)
        elif outcome.state == "PRUNED":
            _tell(study, trial, None, TrialState.PRUNED)
        else:
            trial.set_user_attr("fail_reason", outcome.reason)
            if outcome.error is not None:  # type, message and traceback of the exception
                trial.set_user_attr("error", outcome.error)
            _tell(study, trial, None, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


def _tell(study: optuna.Study, trial: optuna.Trial, value, state: TrialState) -> None:
    """``study.tell``; the grid sampler's ``study.stop()`` on an exhausted grid is harmless here.

    Optuna stores the trial's state in a ``finally`` even when the sampler's after-trial hook
    raises, and our own total already ends the search when the grid is done.
    """
    try:
        study.tell(trial, value, state=state, skip_if_finished=True)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise
