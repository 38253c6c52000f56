"""What a study prints: a bar over trials, one line per trial, a table of the best."""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import optuna
from optuna.trial import TrialState
from rich.console import Console as RichConsole
from rich.table import Table

from tunelab.data import describe_duplicates
from tunelab.train._console import shows_results
from tunelab.tune._study import storage_of, trial_id

__all__ = ["StudyConsole", "format_params", "curse_note", "result_of", "metric_values"]


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.4f}" if 1e-3 <= abs(value) < 1e5 or value == 0 else f"{value:.3e}"


def format_params(values: dict) -> str:
    """``optimizer.name=adam optimizer.lr=1.2e-03`` (the last two parts of each path)."""
    parts = []
    for path, value in values.items():
        short = ".".join(path.split(".")[-2:])
        if isinstance(value, float):
            value = f"{value:.3g}" if 1e-2 <= abs(value) < 1e4 else f"{value:.2e}"
        parts.append(f"{short}={value}")
    return " ".join(parts)


def result_of(trial: optuna.trial.FrozenTrial) -> dict:
    """What a trial stored about itself: values, fold_values, epochs_trained, refit_epochs,
    seconds, reason."""
    return trial.user_attrs.get("result") or {}


def metric_values(metrics: dict | None) -> dict[str, float]:
    """``{name: value}`` of metrics shaped ``{name: {"value", "ci"}}`` (a plain number, as
    older studies stored it in result.json, is taken as the value)."""
    return {
        name: slot["value"] if isinstance(slot, dict) else slot
        for name, slot in (metrics or {}).items()
    }


def _value(trial: optuna.trial.FrozenTrial) -> str:
    folds = result_of(trial).get("fold_values") or []
    if trial.state == TrialState.COMPLETE and len(trial.values) > 1:  # multi-objective
        return " ".join(_num(v) for v in trial.values)
    if trial.state == TrialState.COMPLETE:
        if len(folds) > 1:
            return f"{_num(float(np.mean(folds)))} ± {_num(float(np.std(folds, ddof=1)))}"
        return _num(trial.value)
    return ""


def curse_note(curse: dict | None) -> str:
    """`` (best of 15: optimistic; bias-corrected BBC-CV estimate 0.55 [0.47, 0.63])``."""
    if not curse:
        return ""
    bbc = curse.get("bbc")
    if not bbc or bbc.get("estimate") is None or not math.isfinite(bbc["estimate"]):
        return f" ({curse['caveat']})"
    return (
        f" ({curse['caveat']}; bias-corrected BBC-CV estimate {_num(bbc['estimate'])} "
        f"[{_num(bbc['low'])}, {_num(bbc['high'])}])"
    )


def _goal(spec, metric: str, maximize: bool) -> str:
    """``median pruner, maximise val.accuracy``, or a multi-objective study's objectives."""
    if not spec.tune.objectives:
        return (
            f"{spec.tune.pruner.name} pruner, {'maximise' if maximize else 'minimise'} val.{metric}"
        )
    rule = spec.tune.stop_dominated
    stop = f"dominated trials stopped (margin {rule.margin:g})" if rule else "no early stopping"
    return f"objectives {', '.join(spec.tune.objectives)} (Pareto front), {stop}"


class StudyConsole:
    """Trial lines on stdout; a progress bar (done/total, best, elapsed, ETA) on a terminal."""

    def __init__(self, *, quiet: bool = False, file=None):
        self.quiet = quiet
        self.results = shows_results(quiet)  # the best trials and the refit line
        stream = file or sys.stdout
        # piped or redirected: plain text, and wide enough that tables do not wrap
        width = None if getattr(stream, "isatty", lambda: False)() else 160
        self.rich = RichConsole(file=stream, highlight=False, soft_wrap=True, width=width)
        self._seen: set[int] = set()
        self._study: optuna.Study | None = None
        self._progress = None
        self._task = None
        self._total = None
        self._started = time.time()

    def note(self, text: str) -> None:
        if not self.quiet:
            self.rich.print(text, style="dim", markup=False)

    def header(
        self, spec, prep, folder, *, metric, maximize, total, workers, resumed, interrupted
    ) -> None:
        if self.quiet:
            return
        splits = prep.splits
        parts = (
            "holdout" if splits.kind == "holdout" else f"{len(splits.folds)}-fold {splits.kind} CV"
        )
        budget = [f"{total} trials"] if total else []
        if spec.tune.timeout:
            budget.append(f"{spec.tune.timeout:g}s")
        self.rich.print(
            f"study {spec.name}: {len(spec.tune.space)} parameters, {spec.tune.sampler.name} sampler, "
            f"{_goal(spec, metric, maximize)} | "
            f"{prep.ds.name}, {parts}, test {len(splits.test)} sealed | {' / '.join(budget)} | "
            f"{workers} worker(s) | -> {folder}",
            markup=False,
        )
        leakage = describe_duplicates(splits.duplicates) if splits.duplicates else None
        if leakage:
            self.rich.print(leakage, markup=False)
        if resumed is not None:
            self.rich.print(f"resuming: {resumed} trial(s) kept", markup=False)
        for number in interrupted:
            self.rich.print(f"trial {number} was interrupted: marked FAIL", markup=False)

    def start(self, study: optuna.Study, *, total: int | None, timeout: float | None) -> None:
        self._study, self._total = study, total
        self._seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        self._started = time.time()
        if self.quiet or not self.rich.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.rich,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "trials", total=total or None, completed=len(self._seen), best="-"
        )

    def show(self, trial: optuna.Trial) -> None:
        """Print one finished trial (in-process workers): one read, not a scan of the study."""
        if self._study is None or trial.number in self._seen:
            return
        self._seen.add(trial.number)
        if self.quiet and self._progress is None:
            return
        self._line(storage_of(self._study).get_trial(trial_id(trial)))
        if self._progress is not None:
            self._progress.update(self._task, completed=len(self._seen), best=_num(self._best()))

    def poll(self) -> None:
        """Print every trial that finished since the last call; move the bar."""
        if self._study is None:
            return
        trials = self._study.get_trials(deepcopy=False)
        for trial in trials:
            if trial.state.is_finished() and trial.number not in self._seen:
                self._seen.add(trial.number)
                self._line(trial)
        if self._progress is not None:
            best = self._best()
            self._progress.update(self._task, completed=len(self._seen), best=_num(best))

    def finished(self) -> int:
        """Trials finished since this console started watching."""
        return len(self._seen)

    def _best(self) -> float | None:
        try:
            return self._study.best_value
        except (ValueError, RuntimeError):  # none yet, or several objectives (no one best)
            return None

    def _line(self, trial) -> None:
        if self.quiet:
            return
        state = trial.state.name
        detail = _value(trial)
        if trial.state == TrialState.PRUNED:
            detail = result_of(trial).get("reason") or "pruned"
        elif trial.state == TrialState.FAIL:
            detail = (
                trial.user_attrs.get("fail_reason") or result_of(trial).get("reason") or "failed"
            )
        seconds = result_of(trial).get("seconds")
        took = f"{seconds:.1f}s" if seconds is not None else ""
        params = format_params(result_of(trial).get("values") or {})
        self.rich.print(
            f"trial {trial.number:>3}  {state:<8}  {detail}  {took}  {params}", markup=False
        )

    def stop(self, study: optuna.Study) -> None:
        self._study = study
        self.poll()
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def summary(
        self,
        study: optuna.Study,
        *,
        top: int,
        metric: str,
        maximize: bool,
        curse: dict | None = None,
    ) -> None:
        """The top trials, the counts, and the best with its winner's-curse caveat (``curse``:
        see ``winners_curse`` in ``tune/_finish.py``)."""
        if not self.results:
            return
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        done.sort(key=lambda t: t.value, reverse=maximize)
        counts = {
            s: sum(t.state == s for t in trials)
            for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        table = Table(
            title=f"top trials by val.{metric} (mean ± std over folds)",
            show_edge=False,
            header_style="bold",
        )
        columns = ("rank", "trial", f"val.{metric}", "epochs trained", "refit epochs", "params")
        for col in columns:
            table.add_column(col, justify="right" if col != "params" else "left")
        for rank, trial in enumerate(done[:top], 1):
            stored = result_of(trial)
            refit = stored.get("refit_epochs")
            table.add_row(
                str(rank),
                str(trial.number),
                _value(trial),
                ",".join(map(str, stored.get("epochs_trained") or [])),
                "" if refit is None else str(refit),
                format_params(stored.get("values") or {}),
            )
        self.rich.print(table)
        self.rich.print(
            f"{len(trials)} trials: {counts[TrialState.COMPLETE]} complete, "
            f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed; "
            f"{time.time() - self._started:.0f}s",
            markup=False,
        )
        best = study.best_trial
        self.rich.print(
            f"best: trial {best.number}, val.{metric} {_value(best)}{curse_note(curse)}",
            markup=False,
        )
        for path, value in (result_of(best).get("values") or {}).items():
            self.rich.print(f"  {path}: {value}", markup=False)

    def front(self, study: optuna.Study, result, objectives) -> None:
        """A multi-objective study's Pareto front, one row per trial, and the picked one."""
        if not self.results:
            return
        names = [o.name for o in objectives]
        table = Table(
            title="Pareto front ("
            + ", ".join(f"{o.name} {'max' if o.maximize else 'min'}" for o in objectives)
            + ")",
            show_edge=False,
            header_style="bold",
        )
        for col in ("trial", *names, "picked", "params"):
            table.add_column(col, justify="left" if col == "params" else "right")
        for row in result.front:
            table.add_row(
                str(row["number"]),
                *(_num(row["values"][n]) for n in names),
                "*" if row["number"] == result.best_number else "",
                format_params(row["params"]),
            )
        self.rich.print(table)
        trials = study.get_trials(deepcopy=False)
        counts = {s: sum(t.state == s for t in trials) for s in TrialState}
        self.rich.print(
            f"{len(trials)} trials: {counts[TrialState.COMPLETE]} complete "
            f"({len(result.front)} on the front), {counts[TrialState.PRUNED]} stopped "
            f"(dominated), {counts[TrialState.FAIL]} failed; {time.time() - self._started:.0f}s",
            markup=False,
        )
        picked = result.pick["trial"]
        if picked is not None:
            self.rich.print(f"picked: trial {picked} ({result.pick['rule']})", markup=False)

    def refit(self, result) -> None:
        if result.test_metrics is None or not self.results:
            return
        test = result.test_metrics
        shown = ", ".join(
            f"{k} {_num(slot['value'])}"
            for k, slot in test.items()
            if k in ("accuracy", "f1_macro", "roc_auc", "rmse", "r2", "loss")
        )
        self.rich.print(
            f"refit of the best on all non-test data -> {result.path / 'best'}; sealed test: {shown}",
            markup=False,
        )
        self.rich.print(
            f"best spec: {result.path / 'best.yaml'} (tunelab train {result.path / 'best.yaml'})",
            markup=False,
        )
