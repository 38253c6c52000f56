"""``tune.trial_nproc``: each trial trained data-parallel on real processes (gloo on the CPU).

Two ranks with the spec's global batch follow one process (the equivalence ``tunelab train
--nproc`` guarantees), so a study's trials get the values of the same study on one process;
a pruning decision stops every rank; a failure on one rank fails its trial with that rank's
reason and the study goes on; what cannot work is refused naming both keys.
"""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from tunelab.errors import SpecError
from tunelab.spec import parse_spec
from tunelab.train import prepare
from tunelab.tune import TrialContext, build_pruner, objective_of, parse_space, run_worker


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


LRS = [{"train.optimizer.lr": 3e-3}, {"train.optimizer.lr": 1e-2}]


@pytest.mark.slow
def test_two_ranks_give_each_trial_the_value_of_one_process(tmp_path):
    one = run_enqueued(tmp_path / "one", tree(1), LRS)
    two = run_enqueued(tmp_path / "two", tree(2), LRS)
    for a, b in zip(one.trials, two.trials, strict=True):
        assert a.state == b.state == TrialState.COMPLETE, b.user_attrs
        assert a.params == b.params
        assert b.value == pytest.approx(a.value, abs=1e-5)
        assert b.intermediate_values.keys() == a.intermediate_values.keys() == set()
    for number in (0, 1):
        rows_a, rows_b = history(tmp_path / "one", number), history(tmp_path / "two", number)
        assert [r["epoch"] for r in rows_b] == [1, 2]  # rank 0's file only, once per epoch
        for ra, rb in zip(rows_a, rows_b, strict=True):
            assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=1e-5)
            assert rb["val_accuracy"] == ra["val_accuracy"]
    assert (tmp_path / "two" / "trials" / "1" / "predictions.npz").is_file()


@pytest.mark.slow
def test_a_pruning_decision_stops_every_rank(tmp_path):
    # trial 1's learning rate barely moves the loss: worse than trial 0 at epoch 1, pruned there
    raw = tree(2, pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0}, epochs=3)
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

import torch


class Net(torch.nn.Module):
    def __init__(self, fail: bool = False, in_features: int = 1, out_features: int = 1):
        super().__init__()
        self.fail, self.layer = fail, torch.nn.Linear(in_features, out_features)

    def forward(self, x):
        if self.fail and os.environ.get("RANK") == "1":
            raise ValueError("boom on rank 1")
        return self.layer(x.flatten(1))
"""


@pytest.mark.slow
def test_a_failure_on_one_rank_fails_its_trial_and_the_study_goes_on(tmp_path):
    (tmp_path / "net.py").write_text(FAILING)
    model = {"name": f"{tmp_path / 'net.py'}:Net"}
    raw = tree(2, model=model, space={"model.fail": [False, True]}, epochs=1)
    study = run_enqueued(tmp_path / "s", raw, [{"model.fail": True}, {"model.fail": False}])
    failed, done = study.trials
    assert failed.state == TrialState.FAIL and done.state == TrialState.COMPLETE
    record = json.loads((tmp_path / "s" / "trials" / "0" / "trial.json").read_text())
    assert record["reason"] == "rank 1 of 2: ValueError: boom on rank 1"
    assert record["error"]["type"] == "ValueError"
    assert "boom on rank 1" in (tmp_path / "s" / "trials" / "0" / "traceback.txt").read_text()


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
    from tunelab.tune import tune_study

    raw = tree(2)
    raw["train"]["optimizer"] = {"name": "lbfgs", "lr": 0.5}
    with pytest.raises(SpecError, match=r"train.optimizer: lbfgs .*tune.trial_nproc: 2"):
        tune_study(raw, out=tmp_path / "s", quiet=True)
