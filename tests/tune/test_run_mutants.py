"""The refit and the winner's-curse record, in process (the study tests reach them through a
whole study): the refit trains the rule's epoch count on the study's own splits, each seed once,
logs each test look in the seal and never repeats one after a resume; the BBC-CV estimate pools
only trials with the best's rows. Real training on iris, real optuna studies in memory and real
prediction files. Found unguarded by scripts/mutation.py."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial

from tunelab.evaluate import bbc_cv
from tunelab.runs import Run
from tunelab.spec import load_spec
from tunelab.train import prepare
from tunelab.train._console import results_when_quiet
from tunelab.tune._finish import _refit, winners_curse
from tunelab.tune._seal import seal

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC = {
    "name": "refit",
    "seed": 3,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.25},
    "model": {"name": "mlp", "hidden": [4]},
    "train": {"epochs": 4, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.02}},
}


def trial(number: int, result: dict | None) -> optuna.trial.FrozenTrial:
    study = optuna.create_study()
    for _ in range(number):
        study.add_trial(create_trial(state=TrialState.FAIL))
    study.add_trial(create_trial(value=0.5, user_attrs={"result": result} if result else {}))
    return study.trials[-1]


def read(path):
    return json.loads(path.read_text())


@pytest.fixture
def study(tmp_path):
    spec = load_spec(SPEC)
    prep = prepare(spec)
    seal(tmp_path, prep.ds, prep.splits)
    return spec, prep, tmp_path


def test_the_refit_trains_the_rule_epochs_on_the_study_splits_and_logs_its_look(study):
    spec, prep, folder = study
    best = trial(2, {"refit_epochs": 2})
    run, test = _refit(best, spec, folder, prep=prep)
    assert run.path == folder / "best"
    assert len(run.history) == 2  # the rule's epoch count, not train.epochs (4)
    assert test == run.metrics["test"]  # {name: {"value", "ci"}}, as in metrics.json
    assert set(test) >= {"accuracy", "log_loss"}
    splits = read(folder / "best" / "splits.json")
    assert splits["test"]["indices"] == prep.splits.test.tolist()  # the study's own test part
    (look,) = read(folder / "seal.json")["evaluations"]
    assert look["trial"] == 2
    assert look["run"] == str(folder / "best")
    assert look["metrics"] == {k: v["value"] for k, v in test.items()}
    assert not (folder / "best_seeds").exists()


def test_a_trial_without_a_rule_epoch_refits_for_train_epochs(study):
    spec, prep, folder = study
    run, _ = _refit(trial(0, None), spec, folder, prep=prep)
    assert len(run.history) == 4


def test_more_seeds_refit_once_each_and_summarise_the_spread(study):
    spec, prep, folder = study
    best = trial(1, {"refit_epochs": 1})
    run, test = _refit(best, spec, folder, prep=prep, seeds=3)
    assert run.path == folder / "best"
    seeds = read(folder / "best_seeds" / "seeds.json")
    assert seeds["seeds"] == 3
    assert seeds["test"][0] == {k: v["value"] for k, v in test.items()}
    for k, seed in enumerate((4, 5), start=1):
        out = folder / "best_seeds" / f"seed_{seed}"
        assert load_spec(out / "spec.yaml").seed == seed
        assert seeds["test"][k] == {
            name: v["value"] for name, v in read(out / "metrics.json")["test"].items()
        }
        assert len(Run(out).history) == 1  # the rule's epochs for every seed
    accuracy = [t["accuracy"] for t in seeds["test"]]
    assert seeds["summary"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracy))
    looks = read(folder / "seal.json")["evaluations"]
    assert [e["run"] for e in looks] == [
        str(folder / "best"),
        str(folder / "best_seeds" / "seed_4"),
        str(folder / "best_seeds" / "seed_5"),
    ]
    assert {e["trial"] for e in looks} == {1}


def test_a_resumed_refit_is_not_repeated_and_returns_the_logged_values(study):
    spec, prep, folder = study
    best = trial(1, {"refit_epochs": 1})
    _, test = _refit(best, spec, folder, prep=prep, seeds=2)
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("metrics.json")}
    run, again = _refit(best, spec, folder, prep=prep, seeds=2)
    assert again == test
    assert run.path == folder / "best"
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("metrics.json")} == stamp
    assert len(read(folder / "seal.json")["evaluations"]) == 2  # one per seed, not four
    # another trial is another refit: a new look
    _refit(trial(2, {"refit_epochs": 1}), spec, folder, prep=prep)
    looks = read(folder / "seal.json")["evaluations"]
    assert [e["trial"] for e in looks] == [1, 1, 2]


def test_a_look_logged_without_its_run_folder_is_refit(study):
    spec, prep, folder = study
    best = trial(1, {"refit_epochs": 1})
    _refit(best, spec, folder, prep=prep)
    (folder / "best" / "metrics.json").unlink()  # killed before the run was complete
    _refit(best, spec, folder, prep=prep)
    assert (folder / "best" / "metrics.json").is_file()
    assert len(read(folder / "seal.json")["evaluations"]) == 2


# --- the winner's curse


def curse_study(folder, values, rows=None, seed=0):
    """Trials with val predictions over the same 40 rows (shuffled order), or ``rows``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    study = optuna.create_study(direction="maximize")
    index = np.arange(10, 50)
    for number, value in enumerate(values):
        if value is None:  # a failed trial: no predictions
            study.add_trial(create_trial(state=TrialState.FAIL))
            continue
        study.add_trial(create_trial(value=value))
        idx = rows.get(number, index) if rows else index
        order = rng.permutation(len(idx))
        path = folder / "trials" / str(number)
        path.mkdir(parents=True)
        score = rng.dirichlet([1, 1], size=len(idx))
        np.savez(path / "predictions.npz", val_index=idx[order], val_score=score[order])
    return study, y


def pooled(folder, number):
    with np.load(folder / "trials" / str(number) / "predictions.npz") as f:
        order = np.argsort(f["val_index"], kind="stable")
        return f["val_index"][order], f["val_score"][order]


def test_the_curse_pools_the_trials_with_the_best_rows_in_row_order(tmp_path):
    study, y = curse_study(tmp_path, [0.5, 0.7, 0.6], rows={2: np.arange(5, 45)})
    record = winners_curse(study, tmp_path, best=1, y=y, task="classification", metric="accuracy")
    rows, _ = pooled(tmp_path, 1)
    expected = bbc_cv(
        "classification", y[rows], [pooled(tmp_path, n)[1] for n in (0, 1)], metric="accuracy"
    )
    assert record["n_trials"] == 3
    assert record["caveat"] == "best of 3: optimistic"
    assert record["bbc"] == expected.to_json() | {"trials": [0, 1], "selected": expected.selected}
    seeded = winners_curse(
        study, tmp_path, best=1, y=y, task="classification", metric="accuracy", seed=5
    )
    five = bbc_cv(
        "classification", y[rows], [pooled(tmp_path, n)[1] for n in (0, 1)], metric="accuracy",
        seed=5,
    )  # fmt: skip
    assert seeded["bbc"]["estimate"] == five.estimate


def test_the_selected_trial_is_named_by_its_number(tmp_path):
    study, y = curse_study(tmp_path, [0.1, 0.2, 0.9, 0.3], rows={0: np.arange(40)})
    record = winners_curse(study, tmp_path, best=2, y=y, task="classification", metric="accuracy")
    assert record["bbc"]["trials"] == [1, 2, 3]
    rows, _ = pooled(tmp_path, 2)
    expected = bbc_cv(
        "classification", y[rows], [pooled(tmp_path, n)[1] for n in (1, 2, 3)], metric="accuracy"
    )
    assert record["bbc"]["selected"] == [1, 2, 3][expected.selected]


@pytest.mark.parametrize(("task", "name"), [("classification", "log_loss"), ("regression", "mse")])
def test_the_loss_is_pooled_as_the_metric_it_is(tmp_path, task, name):
    study, y = curse_study(tmp_path, [0.5, 0.7])
    if task == "regression":
        for n in (0, 1):
            idx, score = pooled(tmp_path, n)
            np.savez(tmp_path / "trials" / str(n) / "predictions.npz", val_index=idx,
                     val_score=score[:, 0])  # fmt: skip
        y = y.astype(np.float32)
    record = winners_curse(study, tmp_path, best=1, y=y, task=task, metric="loss")
    assert record["bbc"]["metric"] == name


def test_fewer_than_two_trials_or_pooled_predictions_say_less(tmp_path):
    study, y = curse_study(tmp_path, [0.5])
    study.add_trial(create_trial(state=TrialState.FAIL))
    assert (
        winners_curse(study, tmp_path, best=0, y=y, task="classification", metric="accuracy")
        is None
    )
    two, y = curse_study(tmp_path / "b", [0.5, 0.7], rows={0: np.arange(30)})
    record = winners_curse(
        two, tmp_path / "b", best=1, y=y, task="classification", metric="accuracy"
    )
    assert record == {"n_trials": 2, "caveat": "best of 2: optimistic", "bbc": None}
    # the best without predictions: nothing to pool against
    three, y = curse_study(tmp_path / "c", [0.5, 0.6, None])
    three.add_trial(create_trial(value=0.9))
    record = winners_curse(
        three, tmp_path / "c", best=3, y=y, task="classification", metric="accuracy"
    )
    assert record == {"n_trials": 3, "caveat": "best of 3: optimistic", "bbc": None}


# --- the objective: metric names with an underscore (a bug found while writing these tests)

SPACE = {"train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}}


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("val.log_loss", ("log_loss", False)),
        ("val.f1_macro", ("f1_macro", True)),
        ("val.balanced_accuracy", ("balanced_accuracy", True)),
        ("val.accuracy", ("accuracy", True)),
        ("val_loss", ("loss", False)),
        ("val.loss", ("loss", False)),
    ],
)
def test_an_objective_names_any_metric_of_the_task(objective, expected):
    from tunelab.tune._open import objective_of

    spec = load_spec(SPEC | {"tune": {"objective": objective, "space": SPACE}})
    assert objective_of(spec, "classification") == expected


def test_an_objective_on_the_test_part_is_refused_either_way():
    from tunelab.errors import SpecError
    from tunelab.tune._open import objective_of

    for objective in ("test.accuracy", "test_loss"):
        spec = load_spec(SPEC | {"tune": {"objective": objective, "space": SPACE}})
        with pytest.raises(SpecError) as err:
            objective_of(spec, "classification")
        assert str(err.value) == (
            f"tune.objective {objective!r}: the test part is sealed; tune on val.<metric>"
        )


def test_the_default_objective_is_accuracy_or_rmse():
    from tunelab.tune._open import objective_of

    spec = load_spec(SPEC | {"tune": {"space": SPACE}})
    assert objective_of(spec, "classification") == ("accuracy", True)
    assert objective_of(spec, "regression") == ("rmse", False)


@pytest.mark.parametrize(
    ("objective", "direction", "expected"),
    [("val_log_loss", "auto", ("log_loss", False)), ("val.loss", "maximize", ("loss", True))],
)
def test_the_short_form_and_an_explicit_direction(objective, direction, expected):
    from tunelab.tune._open import objective_of

    tree = {"objective": objective, "direction": direction, "space": SPACE}
    assert objective_of(load_spec(SPEC | {"tune": tree}), "classification") == expected


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        (
            "train.accuracy",
            "tune.objective: expected val.<metric> or val.loss; got 'train.accuracy'",
        ),
        ("val.", "tune.objective: expected val.<metric> or val.loss; got 'val.'"),
        (
            "val.mse",
            "tune.objective: mse is a regression metric, but this is a classification task",
        ),
    ],
)
def test_an_objective_that_cannot_be_tuned_says_why(objective, message):
    from tunelab.errors import SpecError
    from tunelab.tune._open import objective_of

    spec = load_spec(SPEC | {"tune": {"objective": objective, "space": SPACE}})
    with pytest.raises(SpecError) as err:
        objective_of(spec, "classification")
    assert str(err.value) == message


def test_a_misspelt_metric_in_the_objective_gets_a_suggestion():
    from tunelab.errors import SpecError
    from tunelab.tune._open import objective_of

    spec = load_spec(SPEC | {"tune": {"objective": "val.f1.macro", "space": SPACE}})
    with pytest.raises(
        SpecError, match=r"unknown metric `f1\.macro` \(did you mean `f1_macro`\?\)"
    ):
        objective_of(spec, "classification")


# --- the refit: the study's own splits (an outer fold's under nested CV), quietly


def test_the_refit_uses_the_splits_it_is_given_for_every_seed(study, capsys):
    import dataclasses

    spec, prep, folder = study
    capsys.readouterr()
    other = dataclasses.replace(prep.splits, test=prep.splits.test[:10])  # e.g. an outer fold
    given = dataclasses.replace(prep, splits=other)
    # the CLI's --quiet: results shown (quiet=True alone now prints nothing at all)
    with results_when_quiet():
        _refit(trial(1, {"refit_epochs": 1}), spec, folder, prep=given, seeds=2)
    for out in (folder / "best", folder / "best_seeds" / "seed_4"):
        assert read(out / "splits.json")["test"]["indices"] == other.test.tolist()
    out = capsys.readouterr().out
    # quiet: the test metrics and one line per refit, no header and no line per epoch
    assert "refit: iris (" not in out
    assert "epoch 1/1" not in out
    assert out.count("refit: trained 1 epochs (the refit rule of the study)") == 2


def test_a_logged_look_without_a_run_is_not_this_refits(study):
    spec, prep, folder = study
    record = read(folder / "seal.json")
    record["evaluations"].append({"time": "t", "command": "c", "trial": 1})  # an older entry
    (folder / "seal.json").write_text(json.dumps(record))
    _refit(trial(1, {"refit_epochs": 1}), spec, folder, prep=prep)
    looks = read(folder / "seal.json")["evaluations"]
    assert len(looks) == 2 and looks[-1]["run"] == str(folder / "best")


def test_a_refit_without_a_test_part_has_no_test_metrics(tmp_path):
    spec = load_spec(SPEC | {"split": {"test": 0.0, "val": 0.25}})
    prep = prepare(spec)
    seal(tmp_path, prep.ds, prep.splits)
    run, test = _refit(trial(0, {"refit_epochs": 1}), spec, tmp_path, prep=prep)
    assert test == {}
    assert "test" not in run.metrics
