"""``--mlflow URI`` / ``--tensorboard DIR`` of train and tune, and ``tunelab track``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli._app import app

MlflowOption = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        help="log to this MLflow tracking URI when done (sqlite:///mlflow.db; pip install "
        "'tunelab[mlflow]')",
    ),
]
TensorboardOption = Annotated[
    Path | None,
    typer.Option(
        "--tensorboard",
        help="write TensorBoard event files under DIR when done (pip install 'tunelab[tensorboard]')",
    ),
]


def check_trackers(mlflow: str | None, tensorboard: Path | None) -> None:
    """A tracker that is not installed is an error before any training, not after it."""
    if mlflow is not None or tensorboard is not None:
        from tunelab.track import require

        require(mlflow=mlflow, tensorboard=tensorboard)


def track_folder(
    folder: Path, mlflow: str | None, tensorboard: Path | None, *, experiment: str | None = None
) -> None:
    """Log a finished run or study folder; print where it went."""
    if mlflow is None and tensorboard is None:
        return
    from tunelab.track import track

    for line in track(
        folder, mlflow=mlflow, tensorboard=tensorboard, experiment=experiment
    ).lines():
        typer.echo(line)


@app.command("track")
def track_command(
    folder: Annotated[Path, typer.Argument(help="a finished run folder or study folder")],
    mlflow: MlflowOption = None,
    tensorboard: TensorboardOption = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="MLflow experiment (default the spec's name)"),
    ] = None,
) -> None:
    """Log a finished run or study to MLflow and/or TensorBoard (a study: a parent run, a
    child run per trial)."""
    from tunelab.errors import TunelabError

    if mlflow is None and tensorboard is None:
        raise TunelabError("tunelab track FOLDER needs --mlflow URI and/or --tensorboard DIR")
    check_trackers(mlflow, tensorboard)
    track_folder(folder, mlflow, tensorboard, experiment=experiment)
