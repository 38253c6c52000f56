"""What a training run prints: one line per epoch, like the textbook, and a short summary."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from rich.console import Console as RichConsole
from rich.table import Table

from tunelab.data import describe_duplicates

__all__ = ["Console", "format_epoch", "results_when_quiet", "shows_results"]

_RESULTS_WHEN_QUIET: ContextVar[bool] = ContextVar("tunelab_results_when_quiet", default=False)


@contextmanager
def results_when_quiet() -> Iterator[None]:
    """Inside: a quiet console still prints the results (metrics table, summary, the best
    trial), as the CLI's ``--quiet`` does; outside, ``quiet=True`` prints nothing at all."""
    token = _RESULTS_WHEN_QUIET.set(True)
    try:
        yield
    finally:
        _RESULTS_WHEN_QUIET.reset(token)


def shows_results(quiet: bool) -> bool:
    """Whether a console made with ``quiet`` prints the results (see ``results_when_quiet``)."""
    return not quiet or _RESULTS_WHEN_QUIET.get()


_SHORT = {"accuracy": "acc", "balanced_accuracy": "bal_acc"}


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.3e}"


def _with_ci(slot: dict) -> str:
    """``0.9710 [0.9620, 0.9790]``: every metric with its interval when there is one."""
    ci = slot.get("ci")
    text = _num(slot["value"])
    if ci and ci.get("low") is not None and ci.get("high") is not None:
        text += f" [{_num(ci['low'])}, {_num(ci['high'])}]"
    return text


def format_epoch(row: dict[str, Any], total: int, fold: tuple | None = None) -> str:
    """``epoch  3/10  train loss 0.1234 acc 0.9650 | val loss 0.1100 acc 0.9700 | lr 1.0e-03 | 2.1s``"""
    width = len(str(total))
    head = f"epoch {row['epoch']:>{width}}/{total}"
    if fold is not None:
        which, n = fold
        head = ("refit  " if which == "refit" else f"fold {which + 1}/{n}  ") + head
    parts = []
    for side in ("train", "val"):
        if f"{side}_loss" not in row:
            continue
        text = f"{side} loss {_num(row[f'{side}_loss'])}"
        for key, value in row.items():
            if key.startswith(f"{side}_") and key != f"{side}_loss":
                name = key[len(side) + 1 :]
                text += f" {_SHORT.get(name, name)} {_num(value)}"
        parts.append(text)
    parts.append(f"lr {row['lr']:.1e}")
    parts.append(f"{row['seconds']:.1f}s")
    return f"{head}  " + " | ".join(parts)


class Console:
    """Prints to stdout; plain text (no colour, no bars) when stdout is not a terminal."""

    def __init__(self, *, quiet: bool = False, file=None):
        self.quiet = quiet
        self.results = shows_results(quiet)  # the metrics tables and the summary lines
        stream = file or sys.stdout
        # piped or redirected: plain text, and wide enough that tables do not wrap
        width = None if getattr(stream, "isatty", lambda: False)() else 160
        self.rich = RichConsole(file=stream, highlight=False, soft_wrap=True, width=width)
        self._progress = None
        self._task = None

    def print(self, text: str = "", **kwargs) -> None:
        if self.results:
            self.rich.print(text, **kwargs)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.rich.print(text, style="dim", markup=False)

    def header(self, spec, ds, splits, device, path) -> None:
        if self.quiet:
            return
        what = "text" if ds.texts is not None else "x".join(map(str, ds.in_shape))
        classes = f", {ds.num_classes} classes" if ds.num_classes else ""
        sizes = (
            f"train {len(splits.folds[0].train)} / val {len(splits.folds[0].val)}"
            if splits.kind == "holdout"
            else f"{len(splits.folds)} folds of {len(splits.dev)}"
        )
        self.rich.print(
            f"{spec.name}: {ds.name} ({len(ds)} samples of {what}{classes}) | {splits.kind}: "
            f"{sizes} / test {len(splits.test)} (sealed) | {spec.model.name if hasattr(spec.model, 'name') else spec.model.target} "
            f"| {spec.train.optimizer.name} lr {spec.train.optimizer.lr:g} | {device} | -> {path}",
            markup=False,
        )
        if splits.duplicates and (leakage := describe_duplicates(splits.duplicates)):
            self.rich.print(leakage, markup=False)

    def epoch(self, row: dict, total: int, fold: tuple | None = None) -> None:
        self._stop_progress()
        if not self.quiet:
            self.rich.print(format_epoch(row, total, fold), markup=False)

    def progress_hook(self):
        """A ``(done, total)`` callable drawing a transient bar inside long epochs, or None."""
        if self.quiet or not self.rich.is_terminal:
            return None

        def hook(done: int, total: int) -> None:
            if self._progress is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

                self._progress = Progress(
                    "batch",
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=self.rich,
                    transient=True,
                )
                self._progress.start()
                self._task = self._progress.add_task("batch", total=total)
            self._progress.update(self._task, completed=done)

        return hook

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def metrics_table(self, metrics: dict[str, dict], title: str | None = None) -> None:
        if not self.results:
            return
        splits = list(metrics)
        names = list(dict.fromkeys(k for s in splits for k in metrics[s]))
        table = Table(title=title, show_edge=False, header_style="bold")
        table.add_column("metric")
        for s in splits:
            table.add_column(s, justify="right")
        notes = []
        for name in names:
            cells = []
            for s in splits:
                slot = metrics[s].get(name)
                cells.append("" if slot is None else _with_ci(slot))
                warning = ((slot or {}).get("ci") or {}).get("warning")
                if warning:
                    cells[-1] += " *"
                    notes.append(f"* {s} {name}: {warning}")
            table.add_row(name, *cells)
        self.rich.print(table)
        for note in notes:  # an interval that should not be read as it stands says why
            self.rich.print(note, markup=False, highlight=False)

    def summary(
        self,
        run,
        metrics,
        history,
        fold_rows,
        affine: str | None,
        *,
        seconds: float,
        best: str | None = None,
        refit: str | None = None,
    ) -> None:
        """``best``: the best-epoch line of a run without a refit; ``refit``: what a refit
        trained (it has no validation part, so no best epoch)."""
        self._stop_progress()
        if not self.results:
            return
        if fold_rows:
            keys = list(fold_rows[0])
            table = Table(title="cross-validation (per fold)", show_edge=False, header_style="bold")
            table.add_column("metric")
            for i in range(len(fold_rows)):
                table.add_column(f"fold {i + 1}", justify="right")
            table.add_column("mean ± std", justify="right")
            for k in keys:
                vals = [r[k] for r in fold_rows]
                finite = [v for v in vals if not math.isnan(v)]
                mean = sum(finite) / len(finite) if finite else float("nan")
                std = (
                    (sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) ** 0.5
                    if len(finite) > 1
                    else 0.0
                )
                table.add_row(k, *[_num(v) for v in vals], f"{_num(mean)} ± {_num(std)}")
            self.rich.print(table)
        self.metrics_table(metrics)
        if affine:
            self.rich.print(affine, markup=False)
        head = "".join(f"{text}, " for text in (refit, best) if text)
        self.rich.print(f"{head}{seconds:.1f}s in all; saved to {run.path}", markup=False)
