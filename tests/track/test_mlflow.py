"""MLflow: a run and a study logged to a real SQLite tracking store, every value read back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

mlflow = pytest.importorskip("mlflow", reason="pip install 'tunelab[mlflow]'")

from mlflow.tracking import MlflowClient  # noqa: E402

from tunelab.track import record_of, track  # noqa: E402


def _flat(tree, prefix=""):
    if isinstance(tree, dict) and tree:
        out = {}
        for k, v in tree.items():
            out |= _flat(v, f"{prefix}.{k}" if prefix else k)
        return out
    return {prefix: tree if isinstance(tree, str) else json.dumps(tree)}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _artifacts(client, run_id, path=None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mlflow") / "mlflow.db"  # created once: its migrations take s


@pytest.fixture
def store(database, monkeypatch) -> str:
    """The SQLite store; ``mlflow.search_runs`` (the test's reader) reads it. Each test logs
    into its own experiment."""
    uri = f"sqlite:///{database}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_a_run_reads_back_every_value(run_folder, store, database, tmp_path):
    logged = track(run_folder, mlflow=store)  # the experiment: the spec's name
    runs = mlflow.search_runs(experiment_names=["tracked"])
    assert len(runs) == 1
    row = runs.iloc[0]
    assert row["run_id"] == logged.mlflow.run_id and row["status"] == "FINISHED"

    # params: the resolved spec, flattened, every one
    spec = yaml.safe_load((run_folder / "spec.yaml").read_text())
    flat = _flat(spec)
    assert len(flat) > 20
    for key, value in flat.items():
        assert row[f"params.{key}"] == value, key
    assert row["params.train.optimizer.lr"] == "0.1"

    # final metrics with their interval bounds
    metrics = json.loads((run_folder / "metrics.json").read_text())
    checked = 0
    for part, slots in metrics.items():
        for name, slot in slots.items():
            assert row[f"metrics.{part}.{name}"] == pytest.approx(slot["value"])
            if slot["ci"]:
                assert row[f"metrics.{part}.{name}.ci_low"] == pytest.approx(slot["ci"]["low"])
                assert row[f"metrics.{part}.{name}.ci_high"] == pytest.approx(slot["ci"]["high"])
                checked += 1
    assert checked >= 4 and "metrics.test.rmse.ci_low" in row

    # per-epoch metrics with steps, as in history.jsonl
    client = MlflowClient(tracking_uri=store)
    history = _jsonl(run_folder / "history.jsonl")
    for key in ("train_loss", "train_rmse", "val_loss", "val_rmse", "lr"):
        points = client.get_metric_history(logged.mlflow.run_id, key)
        assert [p.step for p in points] == [r["epoch"] for r in history] == [1, 2, 3]
        assert [p.value for p in points] == pytest.approx([r[key] for r in history]), key

    # tags: the split fingerprint and the seal count (a run's own one look at its test part)
    splits = json.loads((run_folder / "splits.json").read_text())
    assert row["tags.tunelab.test_fingerprint"] == splits["test"]["fingerprint"]
    assert row["tags.tunelab.seal_count"] == "1"
    assert row["tags.tunelab.kind"] == "run" and row["tags.tunelab.split"] == "holdout"

    # files: the weights as the safetensors file (no MLflow model), the spec, env, report
    names = _artifacts(client, logged.mlflow.run_id)
    assert {"model.safetensors", "spec.yaml", "env.json", "report.html", "metrics.json"} <= names
    assert not any(n.endswith("MLmodel") or n.endswith(".pkl") for n in names)
    got = mlflow.artifacts.download_artifacts(
        run_id=logged.mlflow.run_id, artifact_path="model.safetensors",
        dst_path=str(tmp_path / "dl"), tracking_uri=store,
    )  # fmt: skip
    assert Path(got).read_bytes() == (run_folder / "model.safetensors").read_bytes()
    # kept beside the database, not in ./mlruns of the current folder
    assert (database.parent / "mlartifacts").is_dir() and not Path("mlruns").exists()


def test_a_cross_validated_run_logs_each_fold_and_the_refit(cv_folder, store):
    logged = track(cv_folder, mlflow=store, experiment="cv")
    client = MlflowClient(tracking_uri=store)
    history = _jsonl(cv_folder / "history.jsonl")
    for fold, key in (
        (0, "fold_0/val_loss"),
        (1, "fold_1/val_rmse"),
        ("refit", "refit/train_loss"),
    ):
        rows = [r for r in history if r["fold"] == fold]
        points = client.get_metric_history(logged.mlflow.run_id, key)
        assert [p.step for p in points] == [r["epoch"] for r in rows]
        assert [p.value for p in points] == pytest.approx([r[key.split("/")[1]] for r in rows])
    run = client.get_run(logged.mlflow.run_id)
    assert run.data.tags["tunelab.split"] == "kfold"
    assert "val.rmse" in run.data.metrics and "test.rmse.ci_high" in run.data.metrics


def test_a_study_is_a_parent_with_a_child_run_per_trial(study_folder, store):
    logged = track(study_folder, mlflow=store, experiment="studies")
    runs = mlflow.search_runs(experiment_names=["studies"])
    parent = runs[runs["run_id"] == logged.mlflow.run_id].iloc[0]
    children = runs[runs["tags.mlflow.parentRunId"] == logged.mlflow.run_id]
    assert len(runs) == 4 and len(children) == 3 == len(logged.mlflow.children)

    # each trial: its sampled value among the spec's params, its value, its curve
    client = MlflowClient(tracking_uri=store)
    for _, child in children.iterrows():
        number = child["tags.tunelab.trial"]
        info = json.loads((study_folder / "trials" / number / "trial.json").read_text())
        assert child["params.train.optimizer.lr"] == json.dumps(
            info["params"]["train.optimizer.lr"]
        )
        assert child["params.data.source"] == "linear"
        assert child["metrics.val.rmse"] == pytest.approx(info["value"])
        assert child["tags.tunelab.state"] == "COMPLETE" and child["status"] == "FINISHED"
        history = _jsonl(study_folder / "trials" / number / "history.jsonl")
        points = client.get_metric_history(child["run_id"], "val_rmse")
        assert [p.value for p in points] == pytest.approx([r["val_rmse"] for r in history])

    # the parent: the best, the sealed test with its intervals, the seal's count
    result = json.loads((study_folder / "result.json").read_text())
    seal = json.loads((study_folder / "seal.json").read_text())
    assert parent["tags.tunelab.best_trial"] == str(result["best_trial"])
    assert parent["metrics.best.val.rmse"] == pytest.approx(result["best_value"])
    assert parent["params.best.train.optimizer.lr"] == json.dumps(
        result["best_params"]["train.optimizer.lr"]
    )
    for name, slot in result["test"].items():
        assert parent[f"metrics.test.{name}"] == pytest.approx(slot["value"])
        if slot["ci"]:
            assert parent[f"metrics.test.{name}.ci_low"] == pytest.approx(slot["ci"]["low"])
            assert parent[f"metrics.test.{name}.ci_high"] == pytest.approx(slot["ci"]["high"])
    bbc = result["winners_curse"]["bbc"]
    assert parent["metrics.bbc.rmse"] == pytest.approx(bbc["estimate"])
    assert parent["tags.tunelab.seal_count"] == "1" == str(len(seal["evaluations"]))
    assert parent["tags.tunelab.test_fingerprint"] == seal["test_fingerprint"]
    assert parent["params.tune.sampler.name"] == "random"
    names = _artifacts(client, parent["run_id"])
    assert {"result.json", "seal.json", "spec.yaml", "best/model.safetensors", "best/spec.yaml",
            "best/env.json", "report.html", "best/report.html"} <= names  # fmt: skip
    refit = client.get_metric_history(parent["run_id"], "train_loss")
    assert [p.step for p in refit] == [1, 2, 3]


def test_a_second_log_adds_a_run_to_the_same_experiment(run_folder, store):
    first = track(run_folder, mlflow=store, experiment="twice")
    second = track(run_folder, mlflow=store, experiment="twice")
    assert first.mlflow.run_id != second.mlflow.run_id
    runs = mlflow.search_runs(experiment_names=["twice"])
    assert set(runs["run_id"]) == {first.mlflow.run_id, second.mlflow.run_id}


def test_telemetry_is_off_unless_the_user_chose(run_folder, store, monkeypatch):
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    track(run_folder, mlflow=store, experiment="telemetry")
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    track(run_folder, mlflow=store, experiment="telemetry")
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "false"  # the user's choice stands


def test_the_record_names_a_nested_folder_and_an_unfinished_one(tmp_path):
    from tunelab.errors import RunError

    (tmp_path / "outer_0").mkdir()
    with pytest.raises(RunError, match="nested-CV folder; track one outer study"):
        record_of(tmp_path)
    with pytest.raises(RunError, match="neither a finished run"):
        record_of(tmp_path / "outer_0")


@pytest.mark.slow
def test_a_multi_objective_study_logs_each_objective_and_the_front(tmp_path, store, tiny_spec):
    import tunelab

    tune = {"trials": 3, "sampler": "random", "pruner": "none", "objectives": ["val.rmse", "params"],
            "space": {"model.hidden": [[2], [8]]}}  # fmt: skip
    spec = tiny_spec | {"name": "front", "model": {"name": "mlp", "hidden": [4]}, "tune": tune}
    result = tunelab.tune_study(spec, out=tmp_path / "front", quiet=True)
    logged = track(result, mlflow=store)
    runs = mlflow.search_runs(experiment_names=["front"])
    children = runs[runs["tags.mlflow.parentRunId"] == logged.mlflow.run_id]
    saved = json.loads((result.path / "result.json").read_text())
    front = {str(t["number"]) for t in saved["front"]}
    assert len(children) == 3
    for _, child in children.iterrows():
        info = json.loads(
            (result.path / "trials" / child["tags.tunelab.trial"] / "trial.json").read_text()
        )
        assert [child["metrics.val.rmse"], child["metrics.params"]] == pytest.approx(info["values"])
        assert child["params.model.hidden"] == json.dumps(info["params"]["model.hidden"])
        assert child["tags.tunelab.on_front"] == str(child["tags.tunelab.trial"] in front).lower()
    parent = runs[runs["run_id"] == logged.mlflow.run_id].iloc[0]
    assert parent["tags.tunelab.pick"] == saved["pick"]["rule"]
