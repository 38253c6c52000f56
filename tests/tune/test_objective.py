"""One trial: what is reported to the pruner at which step, and what a trial's value is."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from tunelab.spec import parse_spec
from tunelab.train import prepare
from tunelab.tune import (
    TrialContext,
    build_pruner,
    objective_of,
    parse_space,
    run_worker,
)

LR = {"train.optimizer.lr": {"low": 1e-7, "high": 1.0, "log": True}}


def tree(*, split: dict, pruner, epochs: int = 3, space: dict = LR) -> dict:
    return {
        "name": "objective",
        "seed": 0,
        "data": {"source": "iris"},
        "split": split,
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": epochs, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
        "tune": {"trials": 2, "pruner": pruner, "space": space},
    }


def run_enqueued(folder, raw: dict, enqueued: list[dict]) -> optuna.Study:
    """Run the given parameter sets as trials of an in-memory study, through the real worker."""
    spec = parse_spec(raw)
    params = parse_space(spec.tune, spec)
    prep = prepare(spec)
    metric, maximize = objective_of(spec, prep.ds.task)
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        pruner=build_pruner(spec.tune.pruner),
    )
    for values in enqueued:
        study.enqueue_trial(values)
    ctx = TrialContext(
        spec.model_dump(mode="json"),
        params,
        metric,
        maximize,
        spec.tune.pruner.name == "wilcoxon",
        prep,
        folder,
    )
    ran = run_worker(ctx, study, folder, total=len(enqueued), deadline=None)
    assert ran == len(enqueued)
    return study


def history(folder, number: int) -> list[dict]:
    path = folder / "trials" / str(number) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_holdout_reports_each_epoch_at_step_epoch(tmp_path):
    study = run_enqueued(
        tmp_path,
        tree(split={"test": 0.2, "val": 0.2}, pruner="none", epochs=4),
        [{"train.optimizer.lr": 0.01}],
    )
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
    rows = history(tmp_path, 0)
    assert {r["epoch"]: r["val_accuracy"] for r in rows} == trial.intermediate_values
    # the value is the objective at the epoch count the refit trains (the refit rule)
    refit = trial.user_attrs["result"]["refit_epochs"]
    assert trial.value == next(r["val_accuracy"] for r in rows if r["epoch"] == refit)
    assert trial.user_attrs["result"]["fold_values"] == [trial.value]


@pytest.mark.parametrize("pruner", ["none", "median", {"name": "asha", "min_resource": 1}])
def test_cv_reports_each_epoch_of_each_fold_at_fold_times_epochs_plus_epoch(tmp_path, pruner):
    epochs, folds = 3, 3
    study = run_enqueued(
        tmp_path,
        tree(split={"test": 0.2, "cv": folds}, pruner=pruner, epochs=epochs),
        [{"train.optimizer.lr": 0.02}],
    )
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE
    expected = {k * epochs + e for k in range(folds) for e in range(1, epochs + 1)}
    assert set(trial.intermediate_values) == expected
    rows = history(tmp_path, 0)
    for row in rows:
        step = row["fold"] * epochs + row["epoch"]
        assert trial.intermediate_values[step] == row["val_accuracy"]
    # the trial's value: the mean over folds of the objective at the refit rule's epoch
    refit = trial.user_attrs["result"]["refit_epochs"]
    fold_values = [r["val_accuracy"] for r in rows if r["epoch"] == refit]
    assert trial.user_attrs["result"]["fold_values"] == fold_values
    assert trial.value == pytest.approx(np.mean(fold_values))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_wilcoxon_reports_per_fold_and_prunes_a_clearly_worse_trial(tmp_path):
    folds = 5
    raw = tree(
        split={"test": 0.2, "cv": folds},
        pruner={"name": "wilcoxon", "n_startup_steps": 2, "p_threshold": 0.2},
        epochs=8,
    )
    study = run_enqueued(
        tmp_path, raw, [{"train.optimizer.lr": 0.05}, {"train.optimizer.lr": 1e-7}]
    )
    good, bad = study.get_trials()

    assert good.state == TrialState.COMPLETE
    assert sorted(good.intermediate_values) == list(range(folds))
    assert good.value == pytest.approx(np.mean(good.user_attrs["result"]["fold_values"]))
    # the pruner saw each fold's value where its model ended (the last epoch); the value is
    # the mean at the refit rule's epoch
    rows = history(tmp_path, 0)
    assert list(good.intermediate_values.values()) == [
        r["val_accuracy"] for r in rows if r["epoch"] == 8
    ]
    refit = good.user_attrs["result"]["refit_epochs"]
    assert good.user_attrs["result"]["fold_values"] == [
        r["val_accuracy"] for r in rows if r["epoch"] == refit
    ]

    assert bad.state == TrialState.PRUNED
    ran = len(bad.user_attrs["result"]["fold_values"])
    assert 2 <= ran < folds
    assert sorted(bad.intermediate_values) == list(range(ran))
    assert "wilcoxon" in bad.user_attrs["result"]["reason"]
    # fewer folds were trained, not only reported
    assert {r["fold"] for r in history(tmp_path, 1)} == set(range(ran))

    record = json.loads((tmp_path / "trials" / "1" / "trial.json").read_text())
    assert record["state"] == "PRUNED" and len(record["fold_values"]) == ran


def test_trial_json_holds_fold_values_mean_and_std(tmp_path):
    study = run_enqueued(
        tmp_path,
        tree(split={"test": 0.2, "cv": 4}, pruner="none", epochs=2),
        [{"train.optimizer.lr": 0.03}],
    )
    (trial,) = study.get_trials()
    record = json.loads((tmp_path / "trials" / "0" / "trial.json").read_text())
    values = trial.user_attrs["result"]["fold_values"]
    assert len(values) == 4
    assert record["fold_values"] == values
    assert record["value"] == trial.value
    assert record["mean"] == pytest.approx(np.mean(values))
    assert record["std"] == pytest.approx(np.std(values, ddof=1))
    assert record["epochs_trained"] == trial.user_attrs["result"]["epochs_trained"] == [2] * 4
    assert record["refit_epochs"] == trial.user_attrs["result"]["refit_epochs"]
    assert record["refit_epochs"] in {1, 2}
    assert record["params"] == {"train.optimizer.lr": 0.03}
    assert record["state"] == "COMPLETE" and record["reason"] is None


def test_median_pruner_prunes_in_the_first_fold(tmp_path):
    epochs = 4
    raw = tree(
        split={"test": 0.2, "cv": 3},
        pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 1},
        epochs=epochs,
    )
    study = run_enqueued(
        tmp_path, raw, [{"train.optimizer.lr": 0.05}, {"train.optimizer.lr": 1e-7}]
    )
    good, bad = study.get_trials()
    assert good.state == TrialState.COMPLETE
    assert bad.state == TrialState.PRUNED
    assert max(bad.intermediate_values) <= epochs  # stopped during its first fold
    assert bad.user_attrs["result"]["fold_values"] == []
    assert {r.get("fold") for r in history(tmp_path, 1)} == {0}


@pytest.mark.parametrize(
    "objective, expected",
    [
        ("val.accuracy", ("accuracy", True)),
        ("val.f1_macro", ("f1_macro", True)),  # an underscore in the metric's own name
        ("val_loss", ("loss", False)),
        ("val.log_loss", ("log_loss", False)),
        ("val_balanced_accuracy", ("balanced_accuracy", True)),
    ],
)
def test_objective_names_with_underscores(objective, expected):
    spec = parse_spec(
        {
            "data": "iris",
            "model": "linear",
            "tune": {"objective": objective, "space": {"seed": [0]}},
        }
    )
    assert objective_of(spec, "classification") == expected


def test_a_sampled_combination_the_spec_rejects_fails_the_trial_with_its_reason(tmp_path):
    """Each value alone passes the space's checks; together (sgd has no betas) the trial's
    spec is invalid: the trial fails with the spec's reason, the next trial still runs."""
    space = {"train.optimizer.name": ["adam", "sgd"], "train.optimizer.betas": [[0.8, 0.9]]}
    raw = tree(split={"test": 0.2, "val": 0.25}, pruner="none", epochs=1, space=space)
    study = run_enqueued(
        tmp_path,
        raw,
        [
            {"train.optimizer.name": "sgd", "train.optimizer.betas": "[0.8, 0.9]"},
            {"train.optimizer.name": "adam", "train.optimizer.betas": "[0.8, 0.9]"},
        ],
    )
    bad, good = study.get_trials(deepcopy=False)
    assert bad.state == TrialState.FAIL and good.state == TrialState.COMPLETE
    reason = bad.user_attrs["fail_reason"]
    assert reason.startswith("SpecError: ") and "betas" in reason
    assert bad.user_attrs["error"]["type"] == "tunelab.errors.SpecError"
