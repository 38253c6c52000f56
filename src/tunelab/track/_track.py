"""``track``: log a finished run or study folder to MLflow and/or TensorBoard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import TunelabError
from tunelab.track._mlflow import MlflowLogged, load_mlflow, to_mlflow
from tunelab.track._records import record_of
from tunelab.track._tensorboard import summary_writer, to_tensorboard

__all__ = ["track", "Tracked", "require"]


@dataclass
class Tracked:
    """Where a folder was logged: the MLflow run(s), the TensorBoard folder."""

    mlflow: MlflowLogged | None = None
    tensorboard: Path | None = None

    def lines(self) -> list[str]:
        out = [str(self.mlflow)] if self.mlflow else []
        return out + ([f"tensorboard: {self.tensorboard}"] if self.tensorboard else [])


def track(
    folder: Any,
    *,
    mlflow: str | None = None,
    tensorboard: str | Path | None = None,
    experiment: str | None = None,
) -> Tracked:
    """Log a finished run (a :class:`~tunelab.Run` or its folder) or study (a
    :class:`~tunelab.StudyResult` or its folder) to an MLflow tracking URI and/or a
    TensorBoard log folder. A study is an MLflow parent run with a child run per trial.

    Example:
        >>> run = tunelab.train("spec.yaml", out="runs/r")                     # doctest: +SKIP
        >>> track(run, mlflow="sqlite:///mlflow.db", tensorboard="runs/tb")   # doctest: +SKIP
    """
    if mlflow is None and tensorboard is None:
        raise TunelabError("track: give mlflow=URI and/or tensorboard=DIR")
    record = record_of(Path(getattr(folder, "path", folder)))
    done = Tracked()
    if mlflow is not None:
        done.mlflow = to_mlflow(record, mlflow, experiment=experiment)
    if tensorboard is not None:
        done.tensorboard = to_tensorboard(record, tensorboard)
    return done


def require(*, mlflow: str | None = None, tensorboard: str | Path | None = None) -> None:
    """Fail now, before any training, when a tracker asked for is not installed."""
    if mlflow is not None:
        load_mlflow()
    if tensorboard is not None:
        summary_writer()
