"""``tune.trial_nproc``: each trial trained data-parallel on real processes (gloo on the CPU).

Two ranks with the spec's global batch follow one process (the equivalence ``tunelab train
--nproc`` guarantees), so a study's trials get the values of the same study on one process;
a pruning decision stops every rank; a failure on one rank fails its trial with that rank's
reason and the study goes on; what cannot work is refused naming both keys.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tunelab.errors import SpecError
from tunelab.spec import parse_spec
from tunelab.train import prepare
from tunelab.tune import (
    TrialContext,
    build_pruner,
    objective_of,
    parse_space,
    run_worker,
    tune_study,
)


def tree(nproc: int, *, model=None, space=None, pruner="none", epochs=2) -> dict:
    return {
        "name": "trialnproc",
        "seed": 0,
        "data": {"source": "digits"},
        "split": {"test": 0.2, "val": 0.2},
        "model": model or {"name": "mlp", "hidden": [32], "dropout": 0.0},
        "train": {"epochs": epochs, "batch_size": 63, "optimizer": {"name": "adam", "lr": 1e-3}},
        "tune": {
            "trials": 2,
            "objective": "val.loss",
            "pruner": pruner,
            "space": space or {"train.optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True}},
            "trial_nproc": nproc,
        },
    }


def run_enqueued(folder, raw: dict, enqueued: list[dict]) -> optuna.Study:
    """The enqueued trials of ``raw`` run by one worker; the study in memory."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = parse_spec(raw)
    prep = prepare(spec)
    metric, maximize = objective_of(spec, prep.ds.task)
    pruner = build_pruner(spec.tune.pruner)
    study = optuna.create_study(direction="maximize" if maximize else "minimize", pruner=pruner)
    for values in enqueued:
        study.enqueue_trial(values)
    ctx = TrialContext(
        spec.model_dump(mode="json"), parse_space(spec.tune, spec), metric, maximize,
        False, prep, folder, prunes=spec.tune.pruner.name != "none", nproc=spec.tune.trial_nproc,
    )  # fmt: skip
    assert run_worker(ctx, study, folder, total=len(enqueued), deadline=None) == len(enqueued)
    return study


def history(folder, number: int) -> list[dict]:
    lines = (folder / "trials" / str(number) / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def stored_trials(folder) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{folder / 'study.db'}"
    return optuna.load_study(study_name="trialnproc", storage=storage).trials


@pytest.mark.slow
def test_a_study_on_two_ranks_per_trial_has_the_values_of_one_process(
    tmp_path, monkeypatch, capsys
):
    raw = tree(1)
    raw["tune"] |= {"sampler": {"name": "random", "seed": 3}, "refit": False}
    tune_study(raw, out=tmp_path / "one", quiet=True)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # 1 worker x 2 ranks on "1 core": a note
    raw["tune"]["trial_nproc"] = 2
    tune_study(raw, out=tmp_path / "two")
    assert (
        "1 worker(s) x tune.trial_nproc 2 = 2 processes on 1 CPU cores" in capsys.readouterr().out
    )
    one, two = stored_trials(tmp_path / "one"), stored_trials(tmp_path / "two")
    assert len(one) == len(two) == 2
    for a, b in zip(one, two, strict=True):
        assert a.state == b.state == TrialState.COMPLETE, b.user_attrs
        assert a.params == b.params
        assert b.value == pytest.approx(a.value, abs=1e-5)
        assert b.user_attrs["data_parallel"] == {"world": 2, "backend": "gloo"}
        assert "data_parallel" not in a.user_attrs
    for number in (0, 1):
        rows_a, rows_b = history(tmp_path / "one", number), history(tmp_path / "two", number)
        assert [r["epoch"] for r in rows_b] == [1, 2]  # rank 0's file only, once per epoch
        for ra, rb in zip(rows_a, rows_b, strict=True):
            assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-5)  # all ranks'
            assert rb["val_accuracy"] == ra["val_accuracy"]
    assert (tmp_path / "two" / "trials" / "1" / "predictions.npz").is_file()


@pytest.mark.slow
def test_a_pruning_decision_stops_every_rank(tmp_path):
    # trial 1's learning rate barely moves the loss: worse than trial 0 at epoch 1, pruned there
    pruner = {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0}
    space = {"train.optimizer.lr": {"low": 1e-7, "high": 1e-2, "log": True}}
    raw = tree(2, pruner=pruner, space=space, epochs=3)
    study = run_enqueued(
        tmp_path, raw, [{"train.optimizer.lr": 1e-2}, {"train.optimizer.lr": 1e-6}]
    )
    first, second = study.trials
    assert first.state == TrialState.COMPLETE
    assert sorted(first.intermediate_values) == [1, 2, 3]  # rank 0 reported each epoch once
    assert second.state == TrialState.PRUNED
    assert sorted(second.intermediate_values) == [1]
    assert [r["epoch"] for r in history(tmp_path, 1)] == [1]


FAILING = """\
import os
import signal

import torch


class Net(torch.nn.Module):
    def __init__(self, fail: str = "no", in_features: int = 1, out_features: int = 1):
        super().__init__()
        self.fail, self.layer = fail, torch.nn.Linear(in_features, out_features)

    def forward(self, x):
        if os.environ.get("RANK") == "1" and self.fail == "raise":
            raise ValueError("boom on rank 1")
        if os.environ.get("RANK") == "1" and self.fail == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        return self.layer(x.flatten(1))
"""


def scratch_folders() -> set:
    return set(Path(tempfile.gettempdir()).glob("tunelab-trial-ranks-*"))


@pytest.mark.slow
def test_a_failure_on_one_rank_fails_its_trial_and_the_study_goes_on(tmp_path):
    (tmp_path / "net.py").write_text(FAILING)
    model = {"name": f"{tmp_path / 'net.py'}:Net"}
    raw = tree(2, model=model, space={"model.fail": ["no", "raise", "kill"]}, epochs=1)
    raw["tune"]["trials"] = 3
    enqueued = [{"model.fail": how} for how in ("raise", "kill", "no")]
    before = scratch_folders()
    study = run_enqueued(tmp_path / "s", raw, enqueued)
    assert scratch_folders() <= before  # the killed rank's too: the worker removes them
    assert [t.state for t in study.trials] == [
        TrialState.FAIL,
        TrialState.FAIL,
        TrialState.COMPLETE,
    ]
    raised, killed = (
        json.loads((tmp_path / "s" / "trials" / str(n) / "trial.json").read_text()) for n in (0, 1)
    )
    assert raised["reason"] == "rank 1 of 2: ValueError: boom on rank 1"
    assert raised["error"]["type"] == "ValueError"
    assert "boom on rank 1" in (tmp_path / "s" / "trials" / "0" / "traceback.txt").read_text()
    # the killed rank is named, not its peer that lost the connection
    assert killed["reason"] == "data-parallel rank 1 of 2 ended with signal SIGKILL"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"trial_nproc": 0}, r"tune.trial_nproc.*greater than or equal to 1; got 0"),
        ({"trial_nproc": 2, "pack": 4}, r"tune.trial_nproc: 2 .*tune.pack: 4"),
        (
            {"trial_nproc": 2, "objectives": ["val.accuracy", "latency_ms"]},
            r"tune.trial_nproc: 2 .*tune.objectives",
        ),
    ],
)
def test_a_bad_trial_nproc_is_one_clear_error(extra, message):
    raw = tree(1)
    raw["tune"].update(extra)
    if "objectives" in extra:  # one objective or several; a multi-objective study has no pruner
        del raw["tune"]["objective"], raw["tune"]["pruner"]
    with pytest.raises(SpecError, match=message):
        parse_spec(raw)


def test_lbfgs_with_trial_nproc_is_refused_before_any_trial(tmp_path):
    raw = tree(2)
    raw["train"]["optimizer"] = {"name": "lbfgs", "lr": 0.5}
    with pytest.raises(SpecError, match=r"train.optimizer: lbfgs .*tune.trial_nproc: 2"):
        tune_study(raw, out=tmp_path / "s", quiet=True)


LAZY = """\
import torch
from torch.utils.data import Dataset


class Blobs(Dataset):
    def __init__(self, n):
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 4) + self.y[:, None].float()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def make(n):
    return Blobs(n)
"""


def test_lazy_data_with_trial_nproc_is_refused_naming_both_keys(tmp_path, monkeypatch):
    (tmp_path / "lazyblobs.py").write_text(LAZY)
    monkeypatch.chdir(tmp_path)
    raw = tree(2)
    raw["data"] = {"source": "python", "factory": "lazyblobs:make", "kwargs": {"n": 80}}
    raw["data"]["cache"] = "none"
    with pytest.raises(SpecError, match=r"tune.trial_nproc: 2 .*lazily \(data.cache\)"):
        tune_study(raw, out=tmp_path / "s", quiet=True)


def test_tunelab_tune_with_trial_nproc_zero_exits_2_with_one_line(cli, tmp_path):
    raw = tree(1)
    raw["tune"]["trial_nproc"] = 0
    (tmp_path / "spec.yaml").write_text(json.dumps(raw))  # JSON is YAML
    result = cli("tune", "spec.yaml", "--out", "s")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "tune.trial_nproc" in result.stderr and "got 0" in result.stderr
    assert "Traceback" not in result.stderr
