"""TensorBoard: event files of a run and a study, read back with TensorBoard's EventAccumulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorboard", reason="pip install 'tunelab[tensorboard]'")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

from tunelab.track import track  # noqa: E402


def _events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _session(folder: Path) -> tuple[dict, dict]:
    """The hparams session of ``folder/hparams``: its hparam values and its metric scalars."""
    acc = _events(folder / "hparams")
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    values = {}
    for key, value in info.hparams.items():
        kind = value.WhichOneof("kind")
        values[key] = getattr(value, kind)
    scalars = {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}
    return values, scalars


def _assert_curves(acc: EventAccumulator, rows: list[dict]) -> None:
    for tag, key in (("train/loss", "train_loss"), ("val/loss", "val_loss"),
                     ("val/rmse", "val_rmse"), ("lr", "lr")):  # fmt: skip
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [r["epoch"] for r in rows]
        assert [e.value for e in events] == pytest.approx([r[key] for r in rows], rel=1e-6)


def test_a_run_writes_scalars_per_epoch_per_part_and_its_hparams(run_folder, tmp_path):
    done = track(run_folder, tensorboard=tmp_path / "tb")
    assert done.tensorboard == tmp_path / "tb" / run_folder.name
    _assert_curves(_events(done.tensorboard), _jsonl(run_folder / "history.jsonl"))
    values, scalars = _session(done.tensorboard)
    assert values["train.optimizer.lr"] == pytest.approx(0.1)
    assert values["data.source"] == "linear" and values["train.epochs"] == 3
    metrics = json.loads((run_folder / "metrics.json").read_text())
    for part in ("val", "test"):
        for name in ("loss", "rmse", "r2"):
            got = scalars[f"hparam/{part}.{name}"]
            assert got == pytest.approx(metrics[part][name]["value"], rel=1e-6)


def test_a_cross_validated_run_writes_each_pass(cv_folder, tmp_path):
    root = track(cv_folder, tensorboard=tmp_path / "tb").tensorboard
    history = _jsonl(cv_folder / "history.jsonl")
    for fold in (0, 1):
        _assert_curves(_events(root / f"fold_{fold}"), [r for r in history if r["fold"] == fold])
    refit = _events(root / "refit").Scalars("train/loss")
    assert [e.step for e in refit] == [r["epoch"] for r in history if r["fold"] == "refit"]


def test_a_study_writes_each_trial_with_its_hparams(study_folder, tmp_path):
    root = track(study_folder, tensorboard=tmp_path / "tb").tensorboard
    trials = sorted((study_folder / "trials").iterdir(), key=lambda p: int(p.name))
    assert len(trials) == 3
    for trial in trials:
        info = json.loads((trial / "trial.json").read_text())
        _assert_curves(_events(root / f"trial_{trial.name}"), _jsonl(trial / "history.jsonl"))
        values, scalars = _session(root / f"trial_{trial.name}")
        assert values == {"train.optimizer.lr": pytest.approx(info["params"]["train.optimizer.lr"])}
        assert scalars["hparam/val.rmse"] == pytest.approx(info["value"], rel=1e-6)
    # the refit of the best, with the sealed test result in its hparams
    result = json.loads((study_folder / "result.json").read_text())
    values, scalars = _session(root / "best")
    assert values == {
        "train.optimizer.lr": pytest.approx(result["best_params"]["train.optimizer.lr"])
    }
    assert scalars["hparam/test.rmse"] == pytest.approx(result["test"]["rmse"]["value"], rel=1e-6)
    assert scalars["hparam/best.val.rmse"] == pytest.approx(result["best_value"], rel=1e-6)
    assert [e.step for e in _events(root / "best").Scalars("train/loss")] == [1, 2, 3]
