"""Figures as inline SVG text: drawn from the report's numbers, or by Optuna's own plots.

matplotlib is imported here only, when a report is drawn. Text stays text in the SVG (not
glyph outlines), which keeps a figure a few kilobytes and selectable in the browser.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from tunelab.report._run_info import Curve, RunInfo
from tunelab.report._study_info import StudyInfo
from tunelab.report._ticks import fit_category_labels, fit_log_ticks

__all__ = ["run_figures", "study_figures"]

TRAIN, VAL = "#1f77b4", "#d62728"
SLICE_ROW = 4  # slice-plot panels per row: Optuna's 3.2-inch panels, four fill the page
PAGE_INCHES = 12.7  # the page's 1224-pixel column at 96 dpi: a wider figure is drawn smaller
STATE_COLOURS = {"COMPLETE": "#1f77b4", "PRUNED": "#ff7f0e", "FAIL": "#d62728"}


@contextmanager
def _style():
    import matplotlib

    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": "tunelab",  # the same report draws the same bytes
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.fontsize": 8,
            "legend.frameon": False,
            "figure.dpi": 96,
        }
    ):
        yield


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _draw(make: Callable[[], Any]) -> str | None:
    """Run a plotting function under the report style; its figure as SVG, or None if it failed."""
    with _style(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are marked experimental
        result = make()
        return None if result is None else _svg(_figure_of(result))


def _figure_of(result):
    """The figure of a figure, of an axes, or of an array of axes (Optuna's slice plot)."""
    fig = result.figure if hasattr(result, "figure") else result
    return fig if hasattr(fig, "savefig") else result.flat[0].figure


def _readable(result):
    """An Optuna plot's figure with log-scale tick labels that do not run into each other."""
    fig = _figure_of(result)
    fit_log_ticks(fig)
    return fig


# --- run figures


def run_figures(info: RunInfo) -> dict[str, str]:
    """``figure id -> SVG`` for every figure the run's data supports."""
    figures = {"curves": _draw(lambda: _curves(info))}
    if info.confusion is not None:
        figures["confusion"] = _draw(lambda: _confusion(info))
    if info.roc:
        figures["roc"] = _draw(
            lambda: _curve_plot(
                info.roc, "ROC", "false positive rate", "true positive rate", diagonal=True
            )
        )
        figures["pr"] = _draw(
            lambda: _curve_plot(info.pr, "precision-recall", "recall", "precision")
        )
    if info.reliability:
        figures["reliability"] = _draw(lambda: _reliability(info))
    if info.residuals:
        figures["residuals"] = _draw(lambda: _residuals(info))
    return {k: v for k, v in figures.items() if v}


def _curves(info: RunInfo):
    import matplotlib.pyplot as plt

    keys = info.curve_keys or ["loss"]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.0), squeeze=False)
    many = len(info.history) > 1
    for ax, key in zip(axes[0], keys, strict=True):
        for n, (series, rows) in enumerate(info.history.items()):
            faint = many and series != "refit"
            for side, colour in (("train", TRAIN), ("val", VAL)):
                points = [(r["epoch"], r[f"{side}_{key}"]) for r in rows if f"{side}_{key}" in r]
                if not points:
                    continue
                if not many or not faint:  # one run, or the refit after the folds
                    label = side if not many else f"{side} ({series})"
                else:  # the folds: one legend entry for all of them
                    label = f"{side} (each fold)" if n == 0 else None
                ax.plot(
                    *zip(*points, strict=True),
                    color=colour,
                    label=label,
                    alpha=0.45 if faint else 1.0,
                    lw=1.0 if faint else 1.6,
                    ls="--" if series == "refit" else "-",
                )
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.legend()
    return fig


def _confusion(info: RunInfo):
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.asarray(info.confusion)
    k = len(m)
    size = min(1.0 + 0.45 * k, 7.5)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    rows = m.sum(axis=1, keepdims=True).clip(min=1)
    image = ax.imshow(m / rows, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(
                        j,
                        i,
                        str(m[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if m[i, j] / rows[i, 0] > 0.6 else "black",
                    )
    ticks = range(k)
    ax.set_xticks(ticks, info.class_names)
    ax.set_yticks(ticks, info.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix ({info.eval_split}, row-normalised colour)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fit_category_labels(fig, ax.xaxis)  # class names upright where level ones would touch
    return fig


def _curve_plot(
    curves: list[Curve], title: str, xlabel: str, ylabel: str, *, diagonal: bool = False
):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    for curve in curves:
        name = "positive class" if len(curves) == 1 else curve.label
        ax.plot(curve.x, curve.y, lw=1.2, label=f"{name} ({curve.area:.3f})")
    if diagonal:
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title} ({'AUC' if diagonal else 'average precision'} in brackets)")
    ax.legend(fontsize=7, ncol=2 if len(curves) > 5 else 1)
    return fig


def _reliability(info: RunInfo):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="perfectly calibrated")
    for part, colour in (("val", TRAIN), ("test", VAL)):
        data = info.reliability.get(part)
        if not data:
            continue
        points = [
            (c, a)
            for c, a, n in zip(data["confidence"], data["accuracy"], data["count"], strict=True)
            if n and c is not None and a is not None
        ]
        if points:
            ax.plot(
                *zip(*points, strict=True),
                marker="o",
                ms=3,
                color=colour,
                label=f"{part} (ECE {data['ece']:.3f}, Brier {data['brier']:.3f})",
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability diagram")
    ax.legend()
    return fig


def _residuals(info: RunInfo):
    import matplotlib.pyplot as plt

    y, pred = info.residuals["y"], info.residuals["pred"]
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    ax.scatter(y, pred, s=6, alpha=0.5, color=TRAIN)
    low, high = min(min(y), min(pred)), max(max(y), max(pred))
    ax.plot([low, high], [low, high], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"predicted vs true ({info.eval_split})")
    return fig


# --- study figures


def study_figures(info: StudyInfo, study) -> dict[str, str]:
    """``figure id -> SVG``: Optuna's own plots where they fit, ours where it has none."""
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ov

    finished = [t for t in info.trials if t.state == "COMPLETE"]
    figures: dict[str, str | None] = {}
    multi = info.objectives is not None
    if multi and finished:
        figures["front"] = _draw(lambda: _front(info))
    elif finished:
        figures["history"] = _draw(lambda: ov.plot_optimization_history(study))
    if any(t.intermediate for t in info.trials):
        figures["intermediate"] = _draw(lambda: _intermediate(info))
    varied = [p for p in info.params if len({repr(t.params.get(p)) for t in finished}) > 1]
    if len(finished) >= 2 and varied:
        first = (lambda t: t.values[0]) if multi else None  # the study's first objective
        names = list(info.objectives or [])
        target = {"target": first, "target_name": names[0] if multi else "Objective Value"}
        figures["parallel"] = _draw(lambda: _parallel(study, varied, target))
        rows = [_draw(lambda i=i, p=p: _slice_row(study, p, target, first=i == 0))
                for i, p in enumerate(_rows(varied, SLICE_ROW))]  # fmt: skip
        figures["slice"] = "\n".join(rows) if all(rows) else None
    if info.importance:
        figures["importance"] = _draw(lambda: _importance(info))
    if any(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        for t in study.get_trials(deepcopy=False)
    ):
        figures["timeline"] = _draw(lambda: ov.plot_timeline(study))
    return {k: v for k, v in figures.items() if v}


def _rows(items: list, most: int) -> list[list]:
    """``items`` in as few rows of at most ``most`` as can be, of sizes differing by one at most."""
    count = -(-len(items) // most)
    size, extra = divmod(len(items), count)
    starts = [i * size + min(i, extra) for i in range(count + 1)]
    return [items[a:b] for a, b in zip(starts, starts[1:], strict=False)]


def _parallel(study, params: list[str], target: dict):
    """Optuna's parallel coordinates, wide enough for its axes' labels (about an inch each)."""
    import matplotlib
    from optuna.visualization import matplotlib as ov

    width = min(max(6.4, 1.8 + 1.15 * (len(params) + 1)), PAGE_INCHES)
    with matplotlib.rc_context({"figure.figsize": (width, 4.8)}):
        return _readable(ov.plot_parallel_coordinate(study, params=params, **target))


def _slice_row(study, params: list[str], target: dict, *, first: bool):
    """One row of Optuna's slice plot; its title on the first row only."""
    from optuna.visualization import matplotlib as ov

    fig = _readable(ov.plot_slice(study, params=params, **target))
    if not first:
        fig.suptitle("")
    return fig


def _front(info: StudyInfo):
    """A multi-objective study's completed trials on its first two objectives (first on the
    y axis); the front joined by a line, the picked trial ringed, stopped trials left out."""
    import matplotlib.pyplot as plt

    names = list(info.objectives)
    done = [t for t in info.trials if t.state == "COMPLETE" and t.values]
    front = sorted((t for t in done if t.number in info.front), key=lambda t: t.values[1])
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    ax.scatter(
        [t.values[1] for t in done], [t.values[0] for t in done], s=14, color="grey",
        alpha=0.6, label="completed",
    )  # fmt: skip
    ax.plot(
        [t.values[1] for t in front], [t.values[0] for t in front], "o-", color=TRAIN, ms=5,
        label=f"Pareto front ({len(front)})",
    )  # fmt: skip
    for t in front:
        ax.annotate(f"#{t.number}", (t.values[1], t.values[0]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    picked = next((t for t in done if t.number == info.best), None)
    if picked is not None:
        ax.scatter([picked.values[1]], [picked.values[0]], s=110, facecolors="none",
                   edgecolors=VAL, lw=1.6, label=f"picked (#{picked.number})")  # fmt: skip
    ax.set_xlabel(f"{names[1]} ({info.objectives[names[1]]})")
    ax.set_ylabel(f"{names[0]} ({info.objectives[names[0]]})")
    ax.set_title("Pareto front")
    ax.legend()
    return fig


def _intermediate(info: StudyInfo):
    """Each trial's reported values by step; a pruned trial ends in a cross where it stopped."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    for t in info.trials:
        if not t.intermediate:
            continue
        steps, values = zip(*t.intermediate, strict=True)
        colour = STATE_COLOURS.get(t.state, "grey")
        best = t.number == info.best
        ax.plot(
            steps,
            values,
            color="black" if best else colour,
            lw=1.8 if best else 0.8,
            alpha=1.0 if best else 0.55,
            zorder=3 if best else 2,
        )
        if t.state == "PRUNED":
            ax.plot(steps[-1], values[-1], marker="x", color=colour, ms=5, zorder=3)
    handles = [
        plt.Line2D([], [], color=STATE_COLOURS["COMPLETE"], label="complete"),
        plt.Line2D([], [], color=STATE_COLOURS["PRUNED"], marker="x", label="pruned (x: stopped)"),
        plt.Line2D([], [], color="black", lw=1.8, label=f"best (trial {info.best})"),
    ]
    ax.legend(handles=handles)
    ax.set_xlabel("step (epoch; fold x epochs + epoch with folds)")
    ax.set_ylabel(info.objective)
    ax.set_title("intermediate values")
    return fig


def _importance(info: StudyInfo):
    import matplotlib.pyplot as plt

    items = sorted(info.importance.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6.0, 0.5 + 0.35 * len(items)))
    ax.barh([k for k, _ in items], [v for _, v in items], color=TRAIN)
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, max(v for _, v in items) * 1.2)
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_title(f"hyperparameter importance for {info.objective}")
    ax.grid(axis="y", visible=False)
    return fig
