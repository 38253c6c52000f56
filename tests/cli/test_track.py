"""``--mlflow`` / ``--tensorboard`` on train and tune, ``tunelab track``, and a missing extra."""

from __future__ import annotations

import sys

import pytest
import yaml

from tunelab.cli import main

mlflow = pytest.importorskip("mlflow", reason="pip install 'tunelab[mlflow]'")
pytest.importorskip("tensorboard", reason="pip install 'tunelab[tensorboard]'")

SPEC = {
    "name": "cli_tracked",
    "seed": 0,
    "data": {"source": "linear", "n": 80},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "linear"},
    "train": {"epochs": 2, "optimizer": {"name": "sgd", "lr": 0.1}, "metrics": ["rmse"]},
}


def _spec(tmp_path, **extra):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC | extra), encoding="utf-8")
    return path


def _runs(uri: str, experiment: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


@pytest.mark.slow
def test_train_logs_to_mlflow_and_tensorboard(cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = cli("train", str(_spec(tmp_path)), "--out", "runs/r", "--quiet",
               "--mlflow", uri, "--tensorboard", "tb")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(uri, "cli_tracked")
    assert f"mlflow: run {run.info.run_id} in experiment 'cli_tracked'" in proc.stdout
    assert "report.html" in {
        a.path for a in mlflow.MlflowClient(uri).list_artifacts(run.info.run_id)
    }
    assert run.data.params["train.epochs"] == "2" and "test.rmse.ci_low" in run.data.metrics
    acc = EventAccumulator(str(tmp_path / "tb" / "r"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("val/rmse")] == [1, 2]
    assert "tensorboard: tb/r" in proc.stdout


@pytest.mark.slow
def test_tune_logs_a_parent_run_with_a_child_per_trial(cli, tmp_path):
    tune = {"trials": 2, "sampler": "random", "pruner": "none",
            "space": {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}}}  # fmt: skip
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = cli("tune", str(_spec(tmp_path, tune=tune)), "--out", "studies/s", "--quiet",
               "--mlflow", uri, "--tensorboard", "tb")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = _runs(uri, "cli_tracked")
    (parent,) = [r for r in runs if r.data.tags["tunelab.kind"] == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert "with 2 child runs" in proc.stdout
    assert "test.rmse" in parent.data.metrics and parent.data.tags["tunelab.seal_count"] == "1"
    assert {p.name for p in (tmp_path / "tb" / "s").iterdir()} == {"best", "trial_0", "trial_1"}


@pytest.mark.slow
def test_track_logs_a_finished_folder(tmp_path, capsys):
    import tunelab

    run = tunelab.train(SPEC, out=tmp_path / "r", quiet=True)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(SystemExit) as stop:
        main(["track", str(run.path), "--mlflow", uri, "--experiment", "later"])
    assert stop.value.code == 0
    (logged,) = _runs(uri, "later")
    assert f"mlflow: run {logged.info.run_id} in experiment 'later'" in capsys.readouterr().out
    assert logged.data.metrics["val.rmse"] == pytest.approx(run.metrics["val"]["rmse"]["value"])


def test_track_without_a_tracker_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["track", str(tmp_path)])
    assert stop.value.code == 2
    assert "needs --mlflow URI and/or --tensorboard DIR" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "module", "extra"),
    [("--mlflow", "mlflow", "mlflow"), ("--tensorboard", "torch.utils.tensorboard", "tensorboard")],
)
def test_a_missing_extra_is_one_line_before_any_training(
    tmp_path, capsys, monkeypatch, option, module, extra
):
    # the one simulated part: the package cannot be imported (it is installed here)
    monkeypatch.setitem(sys.modules, module, None)
    value = f"sqlite:///{tmp_path / 'mlflow.db'}" if option == "--mlflow" else str(tmp_path / "tb")
    with pytest.raises(SystemExit) as stop:
        main(["train", str(_spec(tmp_path)), "--out", str(tmp_path / "r"), option, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"pip install 'tunelab[{extra}]'" in err, err
    assert err.startswith(
        f"error: {'MLflow tracking' if extra == 'mlflow' else 'TensorBoard logging'}"
    )
    assert not (tmp_path / "r").exists()  # refused before the run folder was made
