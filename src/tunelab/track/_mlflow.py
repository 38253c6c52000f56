"""Write a record to an MLflow tracking store (``MlflowClient``; no global MLflow state).

A training run is one MLflow run; a study is a parent run with one child run per trial
(tag ``mlflow.parentRunId``). Per-epoch values are metrics with ``step`` = the epoch, named as
in history.jsonl (``train_loss``, ``val_rmse``, ``lr``; ``fold_0/val_rmse``, ``refit/train_loss``
for the passes of a cross-validated run); final values are dotted (``test.rmse``,
``test.rmse.ci_low``, ``test.rmse.ci_high``). The weights are logged as the file
``model.safetensors``, never as an MLflow (pickled) model. MLflow's telemetry is turned off
(``MLFLOW_DISABLE_TELEMETRY``) unless the user set that variable themselves.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import unquote

from tunelab._disk import redact
from tunelab.errors import TunelabError
from tunelab.track._records import Record

__all__ = ["to_mlflow", "MlflowLogged", "load_mlflow", "experiment_id", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'tunelab[mlflow]'"
_BATCH = 100  # MLflow's limit of params (and of tags) per log_batch call
_METRIC_BATCH = 1000
_MAX_VALUE = 6000  # MLflow's longest param value
_BAD_KEY = re.compile(r"[^\w\-. :/]")


class MlflowLogged:
    """Where a record went: the (parent) run id, its experiment, each child's run id."""

    def __init__(self, run_id: str, experiment: str, uri: str, children: list[str]):
        self.run_id, self.experiment, self.uri, self.children = run_id, experiment, uri, children

    def __str__(self) -> str:
        kids = f" with {len(self.children)} child runs" if self.children else ""
        return f"mlflow: run {self.run_id}{kids} in experiment {self.experiment!r} ({redact(self.uri)})"


def to_mlflow(record: Record, uri: str, *, experiment: str | None = None) -> MlflowLogged:
    """Log ``record`` (and, for a study, each trial as a child run) to the store at ``uri``.

    ``experiment`` defaults to ``MLFLOW_EXPERIMENT_NAME`` or the spec's name. A new experiment
    of a ``sqlite:///path/mlflow.db`` store keeps its artifacts beside the database, in
    ``mlartifacts/`` (MLflow's own default would be ``./mlruns`` of the current folder).
    """
    client = _client(uri)
    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or record.name
    exp_id = experiment_id(client, name, uri)
    run_id = _start(client, exp_id, record, parent=None)
    children = []
    for child in record.children:
        children.append(_start(client, exp_id, child, parent=run_id))
        _finish(client, children[-1], child)
    _finish(client, run_id, record)
    return MlflowLogged(run_id, name, uri, children)


def _start(client, exp_id: str, record: Record, *, parent: str | None) -> str:
    tags = dict(record.tags)
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    name = record.folder.name if record.kind != "trial" else f"trial {record.tags['tunelab.trial']}"
    run = client.create_run(exp_id, run_name=name, tags={k: v[:8000] for k, v in tags.items()})
    return run.info.run_id


def _finish(client, run_id: str, record: Record) -> None:
    """Params, every metric (per-epoch with steps, then the finals), the files; the status."""
    from mlflow.entities import Metric, Param

    params = [Param(_key(k), v[:_MAX_VALUE]) for k, v in record.params.items()]
    for i in range(0, len(params), _BATCH):
        client.log_batch(run_id, params=params[i : i + _BATCH])
    now = int(time.time() * 1000)
    metrics = []
    for curve in record.curves:
        prefix = f"{curve.name}/" if curve.name and len(record.curves) > 1 else ""
        for epoch, part, metric, value in curve.scalars():
            key = f"{prefix}{part}_{metric}" if metric else f"{prefix}{part}"
            metrics.append(Metric(_key(key), value, now, epoch))
    metrics += [Metric(_key(k), v, now, 0) for k, v in record.metrics.items()]
    for i in range(0, len(metrics), _METRIC_BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + _METRIC_BATCH])
    for path, folder in record.files:
        client.log_artifact(run_id, str(path), artifact_path=folder)
    client.set_terminated(run_id, status=record.status)


def _key(key: str) -> str:
    """MLflow's keys: letters, digits, ``_ - . space : /``, at most 250 characters."""
    return _BAD_KEY.sub("_", key)[:250]


def experiment_id(client, name: str, uri: str) -> str:
    """The experiment ``name`` of the store, created (its artifacts placed) when new."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root(uri))


def artifact_root(uri: str) -> str | None:
    """``sqlite:///rel.db`` / ``sqlite:////abs.db``: ``mlartifacts/`` beside the file."""
    path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        return None
    return (Path(unquote(path)).resolve().parent / "mlartifacts").as_uri()


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    load_mlflow()
    return MlflowClient(tracking_uri=uri)


def load_mlflow():
    """Import MLflow, its telemetry off unless the user chose otherwise; one line if missing."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    already = "mlflow" in sys.modules
    try:
        import mlflow
    except ImportError as exc:
        raise TunelabError(
            f"MLflow tracking (--mlflow) needs the mlflow package ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    if already:  # imported before the variable was set: its telemetry client may be running
        mlflow.telemetry.set_telemetry_client()
    return mlflow
