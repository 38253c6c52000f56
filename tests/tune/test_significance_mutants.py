"""Best versus runner-up, in process (the study tests reach it through a whole study only): which
two trials, which test, the sizes it is given, when it says nothing. Real optuna studies in
memory and real prediction files. Found unguarded by scripts/mutation.py."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from tunelab.data import Splits
from tunelab.data._splits import Fold
from tunelab.evaluate import corrected_resampled_ttest, paired_bootstrap_diff, verdict
from tunelab.tune._significance import best_vs_runner_up

optuna.logging.set_verbosity(optuna.logging.WARNING)

BEST = [0.90, 0.91, 0.92, 0.90, 0.91]
SECOND = [0.50, 0.52, 0.51, 0.50, 0.53]
WORST = [0.10, 0.12, 0.11, 0.10, 0.13]


def study_of(*trials, direction="maximize") -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for value, folds, state in trials:
        attrs = {"result": {"fold_values": folds}} if folds is not None else {}
        if state == TrialState.COMPLETE:
            study.add_trial(create_trial(value=value, user_attrs=attrs, state=state))
        else:
            study.add_trial(create_trial(user_attrs=attrs, state=state))
    return study


def cv_splits() -> Splits:
    # five folds of unequal sizes: mean train 10.6, mean val 4.4 (int: 10 and 4)
    folds = [Fold(np.arange(10 + (k < 3)), np.arange(4 + (k < 2))) for k in range(5)]
    return Splits(kind="cv", test=np.arange(3), folds=folds, seed=0)


def holdout_splits() -> Splits:
    return Splits(
        kind="holdout", test=np.arange(3), folds=[Fold(np.arange(8), np.arange(4))], seed=0
    )


def done(folds, value=None):
    return (float(np.mean(folds)) if value is None else value, folds, TrialState.COMPLETE)


def test_fewer_than_two_complete_trials_say_nothing(tmp_path):
    study = study_of(done(BEST), (None, None, TrialState.FAIL), (None, None, TrialState.PRUNED))
    y = np.zeros(20, dtype=int)
    args = {"splits": cv_splits(), "y": y, "task": "classification", "metric": "accuracy"}
    assert best_vs_runner_up(study, tmp_path, maximize=True, **args) is None


@pytest.mark.parametrize("maximize", [True, False])
def test_cv_compares_the_best_with_the_runner_up_by_the_corrected_t_test(tmp_path, maximize):
    trials = (
        (done(SECOND), done(WORST), done(BEST))
        if maximize
        else (done(SECOND), done(BEST), done(WORST))
    )
    study = study_of(*trials, direction="maximize" if maximize else "minimize")
    metric = "accuracy" if maximize else "mse"
    record = best_vs_runner_up(
        study, tmp_path, splits=cv_splits(), y=np.zeros(20), task="classification",
        metric=metric, maximize=maximize, level=0.9,
    )  # fmt: skip
    best, second = (2, 0) if maximize else (2, 0)
    best_folds = BEST if maximize else WORST
    t = corrected_resampled_ttest(SECOND, best_folds, n_train=10, n_test=4, level=0.9)
    assert record == {
        "best": best,
        "runner_up": second,
        "metric": metric,
        "test": "corrected t-test over folds",
        "diff": t.mean_diff,
        "low": t.low,
        "high": t.high,
        "p_value": t.p_value,
        "verdict": verdict(
            f"trial {second}", f"trial {best}", metric, t.mean_diff, t.low, t.high, t.p_value,
            "corrected t-test over folds", level=0.9,
        ),
    }  # fmt: skip
    assert record["verdict"].startswith(f"trial {best} beats trial {second} on {metric}")
    assert "90% CI" in record["verdict"]


@pytest.mark.parametrize(("task", "name"), [("classification", "log_loss"), ("regression", "mse")])
def test_the_loss_is_named_as_the_metric_it_is(tmp_path, task, name):
    study = study_of(done(WORST), done(SECOND), done(BEST), direction="minimize")
    record = best_vs_runner_up(
        study, tmp_path, splits=cv_splits(), y=np.zeros(20), task=task, metric="loss",
        maximize=False,
    )  # fmt: skip
    assert record["metric"] == name
    assert (record["best"], record["runner_up"]) == (0, 1)
    assert record["verdict"].startswith(f"trial 0 beats trial 1 on {name}")


def write_predictions(folder, number, index, score):
    path = folder / "trials" / str(number)
    path.mkdir(parents=True)
    np.savez(path / "predictions.npz", val_index=index, val_score=score)


def holdout_case(tmp_path, *, second_index=None):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    index = np.arange(10, 40)
    good = np.eye(2)[y[index]] * 0.8 + 0.1
    bad = rng.dirichlet([1, 1], size=len(index))
    write_predictions(tmp_path, 0, index, bad)
    write_predictions(tmp_path, 1, index if second_index is None else second_index, good)
    study = study_of(done([0.5], 0.5), done([0.9], 0.9))
    return study, y, index, bad, good


@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
def test_holdout_compares_the_two_trials_val_predictions_by_a_paired_bootstrap(tmp_path, metric):
    study, y, index, bad, good = holdout_case(tmp_path)
    record = best_vs_runner_up(
        study, tmp_path, splits=holdout_splits(), y=y, task="classification", metric=metric,
        maximize=True, level=0.9,
    )  # fmt: skip
    d = paired_bootstrap_diff("classification", y[index], bad, good, metric, level=0.9)
    if metric == "log_loss":  # continuous: the level shows in the bounds
        assert d != paired_bootstrap_diff("classification", y[index], bad, good, metric)
    assert record == {
        "best": 1,
        "runner_up": 0,
        "metric": metric,
        "test": "paired bootstrap",
        "diff": d.diff,
        "low": d.low,
        "high": d.high,
        "p_value": d.p_value,
        "verdict": verdict(
            "trial 0", "trial 1", metric, d.diff, d.low, d.high, d.p_value,
            "paired bootstrap", level=0.9,
        ),
    }  # fmt: skip


def test_holdout_says_nothing_without_both_files_or_the_same_rows(tmp_path):
    study, y, index, *_ = holdout_case(tmp_path, second_index=np.arange(30))
    args = {"splits": holdout_splits(), "y": y, "task": "classification", "metric": "accuracy"}
    assert best_vs_runner_up(study, tmp_path, maximize=True, **args) is None  # other rows
    (tmp_path / "trials" / "1" / "predictions.npz").unlink()
    assert best_vs_runner_up(study, tmp_path, maximize=True, **args) is None  # best's missing
    write_predictions(tmp_path / "x", 1, index, np.full((30, 2), 0.5))
    (tmp_path / "trials" / "0" / "predictions.npz").unlink()
    (tmp_path / "x" / "trials" / "1" / "predictions.npz").rename(
        tmp_path / "trials" / "1" / "predictions.npz"
    )
    assert best_vs_runner_up(study, tmp_path, maximize=True, **args) is None  # runner-up's


def test_cv_with_fold_values_of_unequal_length_falls_back_to_the_predictions(tmp_path):
    study = study_of(done(BEST[:4]), done(SECOND))
    args = {"splits": cv_splits(), "y": np.zeros(20), "task": "classification"}
    assert best_vs_runner_up(study, tmp_path, metric="accuracy", maximize=True, **args) is None
    study = study_of(done(BEST), (0.5, None, TrialState.COMPLETE))  # runner-up without folds
    assert best_vs_runner_up(study, tmp_path, metric="accuracy", maximize=True, **args) is None
    study = study_of((0.95, None, TrialState.COMPLETE), done(SECOND))  # best without folds
    assert best_vs_runner_up(study, tmp_path, metric="accuracy", maximize=True, **args) is None


def test_one_fold_is_a_holdout_even_with_fold_values(tmp_path):
    study, y, *_ = holdout_case(tmp_path)
    record = best_vs_runner_up(
        study, tmp_path, splits=holdout_splits(), y=y, task="classification", metric="accuracy",
        maximize=True,
    )  # fmt: skip
    assert record["test"] == "paired bootstrap"


def test_two_folds_are_cross_validation(tmp_path):
    study = study_of(done(SECOND[:2]), done(BEST[:2]))
    folds = cv_splits().folds[:2]
    splits = cv_splits()
    splits.folds = folds
    record = best_vs_runner_up(
        study, tmp_path, splits=splits, y=np.zeros(20), task="classification",
        metric="accuracy", maximize=True,
    )  # fmt: skip
    t = corrected_resampled_ttest(SECOND[:2], BEST[:2], n_train=11, n_test=5)
    assert record["test"] == "corrected t-test over folds"
    assert (record["diff"], record["low"], record["high"]) == (t.mean_diff, t.low, t.high)
