"""``tune.pack``: trials asked together and trained as stacked models give the values the
same trials give one at a time; what cannot be packed runs alone; ``auto`` measures."""

from __future__ import annotations

import json

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
    tune_study,
)

SPACE = {
    "train.optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "train.optimizer.weight_decay": {"low": 0.0, "high": 1e-3},
    "model.dropout": {"low": 0.05, "high": 0.3},
}


def tree(pack="off", space=SPACE, pruner="none", trials=6) -> dict:
    return {
        "name": "pack",
        "seed": 0,
        "data": {"source": "digits"},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "mlp", "hidden": [32], "dropout": 0.1},
        "train": {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.001}},
        "tune": {"trials": trials, "pruner": pruner, "space": space, "pack": pack},
    }


def run_enqueued(folder, raw: dict, enqueued: list[dict], pack: int) -> optuna.Study:
    folder.mkdir(parents=True, exist_ok=True)
    spec = parse_spec(raw)
    prep = prepare(spec)
    metric, maximize = objective_of(spec, prep.ds.task)
    study = optuna.create_study(direction="maximize", pruner=build_pruner(spec.tune.pruner))
    for values in enqueued:
        study.enqueue_trial(values)
    ctx = TrialContext(
        spec.model_dump(mode="json"), parse_space(spec.tune, spec), metric, maximize,
        False, prep, folder, prunes=spec.tune.pruner.name != "none", pack=pack,
    )  # fmt: skip
    assert run_worker(ctx, study, folder, total=len(enqueued), deadline=None) == len(enqueued)
    return study


ENQUEUED = [
    {"train.optimizer.lr": lr, "train.optimizer.weight_decay": wd, "model.dropout": d}
    for lr, wd, d in [(1e-3, 0.0, 0.1), (3e-3, 1e-4, 0.2), (5e-3, 0.0, 0.3), (2e-4, 5e-4, 0.05)]
]


@pytest.mark.slow
def test_packed_trials_have_the_values_of_the_same_trials_run_one_at_a_time(tmp_path):
    packed = run_enqueued(tmp_path / "a", tree(), ENQUEUED, pack=4)
    alone = run_enqueued(tmp_path / "b", tree(), ENQUEUED, pack=1)
    for p, a in zip(packed.trials, alone.trials, strict=True):
        assert p.state == a.state == TrialState.COMPLETE
        assert p.params == a.params
        assert p.value == pytest.approx(a.value, abs=1e-5)
        assert p.user_attrs["result"]["refit_epochs"] == a.user_attrs["result"]["refit_epochs"]
        assert p.user_attrs["packed_with"] == [0, 1, 2, 3]
        assert "packed_with" not in a.user_attrs
    history = (tmp_path / "a" / "trials" / "2" / "history.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in history] == [1, 2, 3]


@pytest.mark.slow
def test_trials_of_other_architectures_in_a_pack_run_alone(tmp_path):
    raw = tree(space={**SPACE, "model.hidden": [[16], [32]]})
    enqueued = [e | {"model.hidden": "[16]" if i == 1 else "[32]"} for i, e in enumerate(ENQUEUED)]
    study = run_enqueued(tmp_path, raw, enqueued, pack=4)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert study.trials[0].user_attrs["packed_with"] == [0, 2, 3]
    assert "packed_with" not in study.trials[1].user_attrs


@pytest.mark.slow
def test_a_study_with_pack_auto_measures_once_and_records_it(tmp_path):
    result = tune_study(tree(pack="auto", pruner="median"), out=tmp_path / "s", quiet=True)
    measured = json.loads((tmp_path / "s" / "pack.json").read_text())
    assert measured["pack"] in (1, 8) and measured["speedup"] > 0
    assert (measured["pack"] == 8) == (measured["speedup"] >= 1.5)
    assert result is not None
    study_trials = optuna.load_study(
        study_name="pack", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}"
    ).trials
    assert len(study_trials) == 6
    assert {t.state for t in study_trials} <= {TrialState.COMPLETE, TrialState.PRUNED}


def test_a_wrong_pack_setting_is_one_clear_error():
    with pytest.raises(Exception, match="tune.pack.*expected auto, off or a number"):
        parse_spec(tree(pack="always"))
