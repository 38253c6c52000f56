"""One self-contained HTML page per run or study: styles, script, figures and numbers inline.

The page needs no network: figures are inline SVG, the only script sorts tables, and the
numbers behind the page are embedded as JSON for anyone who wants them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from markupsafe import Markup, escape

from tunelab.errors import RunError
from tunelab.report._compression import CompressionInfo, compression_figures, compression_info
from tunelab.report._figures import run_figures, study_figures
from tunelab.report._run_info import RunInfo, run_info
from tunelab.report._study_info import StudyInfo, load_study, study_info
from tunelab.runs import atomic_write

__all__ = ["render_run", "render_study", "render_compression", "write_report"]

STUDY_FIGURES = [
    ("front", "Pareto front"),
    ("history", "Optimisation history"),
    ("intermediate", "Intermediate values"),
    ("parallel", "Parallel coordinates"),
    ("importance", "Hyperparameter importance"),
    ("slice", "Slice plots"),
    ("timeline", "Timeline"),
]
CAPTIONS = {
    "front": "Completed trials on the first two objectives; the line joins the Pareto front "
    "(no other trial is at least as good on every objective), the ring marks the trial "
    "tune.pick chose for the refit and the sealed test.",
    "history": "Each completed trial's objective value, with the best value so far (Optuna).",
    "intermediate": "The value each trial reported per step; pruned trials end in a cross "
    "where the pruner stopped them.",
    "parallel": "Every completed trial as a line through its hyperparameters, coloured by "
    "objective value (Optuna).",
    "importance": "How much of the objective's variance each hyperparameter explains "
    "(fANOVA over the completed trials).",
    "slice": "The objective value against each hyperparameter; colour is the trial number "
    "(Optuna).",
    "timeline": "When each trial ran and how it ended, per worker (Optuna).",
}


def _num(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}"
    return f"{value:.3e}"


def _val(value) -> str:
    """A hyperparameter value: floats in short scientific form when small."""
    if isinstance(value, float) and value != 0 and abs(value) < 1e-2:
        return f"{value:.2e}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _dotted(name) -> Markup:
    """A dotted name that may wrap after its dots, for a narrow table header."""
    return Markup(".<wbr>").join(escape(str(name)).split("."))


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = _num
    env.filters["val"] = _val
    env.filters["dotted"] = _dotted
    return env


def _common(figures: dict[str, str], data: dict) -> dict:
    def fig(name: str, caption: str) -> Markup:
        svg = figures.get(name)
        if svg is None:
            return Markup("")
        return Markup(
            f'<figure class="figure" data-figure="{escape(name)}">{svg}'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )

    try:
        version = metadata.version("tunelab")
    except metadata.PackageNotFoundError:
        version = "dev"
    # "</" would end the script element early: the JSON stays JSON with it escaped
    text = json.dumps(data, default=str, allow_nan=False) if data else "{}"
    return {
        "fig": fig,
        "figures": figures,
        "version": version,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_json": text.replace("</", "<\\/"),
    }


def _level(rows) -> str:
    levels = [m.level for m in rows if m.level]
    return f"{round(100 * levels[0])}%" if levels else "95%"


def render_run(info: RunInfo) -> str:
    """The HTML page of a run."""
    figures = run_figures(info)
    splits = [s for s in ("val", "test", "train") if any(m.split == s for m in info.metrics)]
    table: dict[str, dict] = {}
    for m in info.metrics:
        table.setdefault(m.metric, {})[m.split] = m
    main_split = "test" if "test" in splits else (splits[0] if splits else None)
    headline = [m for m in info.metrics if m.split == main_split and m.metric != "loss"][:4]
    return (
        _environment()
        .get_template("run.html.j2")
        .render(
            r=info,
            headline=headline,
            metric_splits=splits,
            metric_table=list(table.items()),
            level_pct=_level(info.metrics),
            **_common(figures, _finite(asdict(info))),
        )
    )


def render_study(info: StudyInfo, study, *, link_base: str = "") -> str:
    """The HTML page of a study; ``link_base`` leads from the page's folder to the study's."""
    figures = study_figures(info, study)
    higher = info.direction == "maximize"
    complete = [t for t in info.trials if t.state == "COMPLETE" and t.value is not None]
    top = sorted(complete, key=lambda t: -t.value if higher else t.value)[:10]
    best = next((t for t in info.trials if t.number == info.best), None)
    metric = info.objective.split(".", 1)[-1]
    test_metric = metric if info.test and metric in info.test else next(iter(info.test or {}), "")
    test_ci = next(
        (m for m in info.best_metrics if m.split == "test" and m.metric == test_metric), None
    )
    run_report = Path(info.path) / "best" / "report.html"
    return (
        _environment()
        .get_template("study.html.j2")
        .render(
            s=info,
            top=top,
            best=best,
            test_metric=test_metric,
            test_ci=test_ci if test_ci and test_ci.low is not None else None,
            study_figs=STUDY_FIGURES,
            captions=CAPTIONS,
            link_base=link_base,
            run_report_link=f"{link_base}best/report.html" if run_report.is_file() else None,
            level_pct=_level(info.best_metrics),
            **_common(figures, _finite(asdict(info))),
        )
    )


def render_compression(info: CompressionInfo) -> str:
    """The HTML page of a compression folder."""
    levels = [r for r in info.rows if r.low is not None]
    return (
        _environment()
        .get_template("compression.html.j2")
        .render(
            c=info,
            level_pct="95%" if levels else "",
            **_common(compression_figures(info), _finite(asdict(info))),
        )
    )


def _finite(data):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def write_report(
    path: str | Path, out: str | Path | None = None, *, storage: str | None = None
) -> Path:
    """Write the HTML report of a run or study folder; returns the file written.

    Args:
        path: a run folder (holds ``spec.yaml`` and ``history.jsonl``), a study folder
            (holds ``study.json``) or a compression folder (holds ``compression.json``).
        out: the HTML file; ``<path>/report.html`` by default.
        storage: the study's storage URL when ``study.json`` cannot hold it (a password).

    Example:
        >>> write_report("studies/mnist", "study.html")  # doctest: +SKIP
    """
    folder = Path(path)
    target = Path(out) if out is not None else folder / "report.html"
    if (folder / "compression.json").is_file():
        html = render_compression(compression_info(folder))
    elif (folder / "study.json").is_file():
        study = load_study(folder, storage=storage)  # opened once, for the numbers and figures
        info = study_info(folder, storage=storage, study=study)
        base = os.path.relpath(folder.resolve(), target.resolve().parent).replace(os.sep, "/")
        html = render_study(info, study, link_base="" if base == "." else base + "/")
    elif (folder / "spec.yaml").is_file():
        html = render_run(run_info(folder))
    elif not folder.exists():
        raise RunError(f"{folder} does not exist; give a run folder or a study folder")
    else:
        raise RunError(
            f"{folder} is neither a run (no spec.yaml) nor a study (no study.json); give the "
            "folder `tunelab train` or `tunelab tune` wrote"
        )
    if not target.parent.is_dir():
        raise RunError(f"cannot write {target}: the folder {target.parent} does not exist")
    with atomic_write(target) as fh:
        fh.write(html)
    return target
