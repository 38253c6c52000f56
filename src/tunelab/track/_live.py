"""Callbacks that log ``fit``'s epochs as they end, for code that calls ``fit`` itself.

``tunelab train`` / ``tune`` log a finished folder (``track``); these log live, with the same
names: ``fit(model, train, val, plan, seed=0, callbacks=[MlflowLogger(uri), TensorBoardLogger(dir)])``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from tunelab.track._mlflow import experiment_id, load_mlflow
from tunelab.track._records import flatten
from tunelab.track._tensorboard import summary_writer
from tunelab.train import Callback

__all__ = ["MlflowLogger", "TensorBoardLogger"]


def _scalars(logs: dict[str, float]):
    for key, value in logs.items():
        if key != "seconds" and isinstance(value, int | float) and math.isfinite(value):
            part, _, metric = key.partition("_")
            yield key, part, metric, float(value)


class TensorBoardLogger(Callback):
    """Each epoch's values as TensorBoard scalars (``train/loss``, ``val/accuracy``, ``lr``)."""

    def __init__(self, logdir: str | Path):
        self.logdir = Path(logdir)
        self._writer = None

    def on_epoch_end(self, epoch, logs, model):
        if self._writer is None:
            self._writer = summary_writer()(log_dir=str(self.logdir))
        for _, part, metric, value in _scalars(logs):
            self._writer.add_scalar(f"{part}/{metric}" if metric else part, value, epoch)
        return None

    def on_fit_end(self, model):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MlflowLogger(Callback):
    """Each epoch's values as MLflow metrics with ``step`` = the epoch (``train_loss``,
    ``val_accuracy``, ``lr``), in a run started at the first epoch and ended by ``fit``.
    ``params`` (a nested mapping, e.g. a spec's tree) are flattened to ``a.b.c`` params."""

    def __init__(
        self,
        uri: str,
        *,
        experiment: str = "tunelab",
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
    ):
        self.uri, self.experiment, self.run_name = uri, experiment, run_name
        self.params = params or {}
        self.run_id: str | None = None
        self._client = None

    def on_epoch_end(self, epoch, logs, model):
        from mlflow.entities import Metric, Param

        if self._client is None:
            self._start()
            params = [Param(k, v[:6000]) for k, v in flatten(self.params).items()]
            for i in range(0, len(params), 100):
                self._client.log_batch(self.run_id, params=params[i : i + 100])
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, epoch) for key, _, _, value in _scalars(logs)]
        self._client.log_batch(self.run_id, metrics=metrics)
        return None

    def on_fit_end(self, model):
        if self._client is not None:
            self._client.set_terminated(self.run_id, status="FINISHED")

    def _start(self) -> None:
        load_mlflow()
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(tracking_uri=self.uri)
        exp_id = experiment_id(self._client, self.experiment, self.uri)
        self.run_id = self._client.create_run(exp_id, run_name=self.run_name).info.run_id
