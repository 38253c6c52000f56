"""``tunelab curve learning`` and ``tunelab curve validation``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli._app import QuietOption, SetOption, curve_app, floats, results_stay

CurveMetric = Annotated[str | None, typer.Option("--metric", help="default accuracy or rmse")]
CurveFolds = Annotated[int, typer.Option("--folds", help="CV folds when the spec has none")]
CurveOut = Annotated[Path | None, typer.Option("--out", "-o", help="JSON file")]


@curve_app.command("learning")
def curve_learning(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="spec file (YAML)")],
    sizes: Annotated[
        str, typer.Option("--sizes", help="fractions of each fold's training part")
    ] = "0.1,0.25,0.5,1.0",
    metric: CurveMetric = None,
    folds: CurveFolds = 5,
    out: CurveOut = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train/val score against training-set size (mean ± std over folds)."""
    results_stay(ctx)
    from tunelab.train import learning_curve

    learning_curve(
        spec,
        sizes=floats(sizes, "--sizes"),
        metric=metric,
        folds=folds,
        out=out,
        overrides=set_ or [],
        quiet=quiet,
    )


@curve_app.command("validation")
def curve_validation(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="spec file (YAML)")],
    param: Annotated[
        str, typer.Option("--param", help="dotted spec path, e.g. train.optimizer.lr")
    ],
    values: Annotated[str, typer.Option("--values", help="comma-separated values (YAML scalars)")],
    metric: CurveMetric = None,
    folds: CurveFolds = 5,
    out: CurveOut = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train/val score against the values of one spec path (mean ± std over folds)."""
    results_stay(ctx)
    import yaml

    from tunelab.train import validation_curve

    parsed = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
    validation_curve(
        spec,
        param=param,
        values=parsed,
        metric=metric,
        folds=folds,
        out=out,
        overrides=set_ or [],
        quiet=quiet,
    )
