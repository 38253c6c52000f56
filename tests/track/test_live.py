"""The fit callbacks: each epoch logged as it ends, read back from MLflow and TensorBoard."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import tunelab
from tunelab.track import MlflowLogger, TensorBoardLogger
from tunelab.train import DataShape, fit, resolve

mlflow = pytest.importorskip("mlflow", reason="pip install 'tunelab[mlflow]'")
pytest.importorskip("tensorboard", reason="pip install 'tunelab[tensorboard]'")


def test_fit_logs_each_epoch_live(tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    g = torch.Generator().manual_seed(0)
    X = torch.randn(96, 3, generator=g)
    y = 2 * X[:, 0] - X[:, 1]
    tree = {"data": "iris", "model": "linear", "train": {"epochs": 4, "metrics": ["rmse"]}}
    plan = resolve(tunelab.load_spec(tree), DataShape.of(X, y, task="regression"), device="cpu")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = MlflowLogger(uri, experiment="live", run_name="mine", params={"train": {"epochs": 4}})
    board = TensorBoardLogger(tmp_path / "tb")
    torch.manual_seed(0)
    history = fit(nn.Linear(3, 1), (X[:64], y[:64]), (X[64:], y[64:]), plan, seed=0,
                  callbacks=[logger, board])  # fmt: skip

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "mine"
    assert run.data.params == {"train.epochs": "4"}
    for key in ("train_loss", "val_loss", "val_rmse"):
        points = client.get_metric_history(logger.run_id, key)
        assert [p.step for p in points] == [1, 2, 3, 4]
        assert [p.value for p in points] == pytest.approx([r[key] for r in history.rows])
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    events = acc.Scalars("val/rmse")
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert [e.value for e in events] == pytest.approx(
        [r["val_rmse"] for r in history.rows], rel=1e-6
    )
