"""Multi-objective studies: the Pareto front, the pick rule, and our early stopping of trials
that a completed trial dominates (with a margin) at the same epoch."""

from __future__ import annotations

import json

import optuna
import pytest

import tunelab
from tunelab.errors import SpecError
from tunelab.report import write_report
from tunelab.tune import open_storage
from tunelab.tune._front import Objective, dominates, pick_trial

ACC, LAT = Objective("val.accuracy", maximize=True), Objective("latency_ms", maximize=False)


def test_dominance_needs_the_margin_on_val_metrics_and_no_worse_costs():
    objs = [ACC, LAT]
    assert dominates([0.95, 1.0], [0.90, 1.0], objs, margin=0.02)  # better accuracy, same cost
    assert not dominates([0.91, 1.0], [0.90, 1.0], objs, margin=0.02)  # within the margin
    assert dominates([0.91, 1.0], [0.90, 1.0], objs, margin=0.0)
    assert not dominates([0.99, 1.1], [0.90, 1.0], objs, margin=0.02)  # slower: a trade-off
    assert not dominates([0.90, 1.0], [0.90, 1.0], objs, margin=0.0)  # equal: not dominated
    assert dominates([0.90, 0.5], [0.90, 1.0], objs, margin=0.0)


def test_the_pick_rule_takes_constraints_then_the_ranking_objective():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in ([0.97, 3.0], [0.95, 1.5], [0.90, 0.4], [0.96, 0.3]):
        study.add_trial(optuna.trial.create_trial(values=values))
    front = study.best_trials  # trial 0 (most accurate), 3 (fast and accurate)
    assert sorted(t.number for t in front) == [0, 3]
    picked, rule = pick_trial(front, [ACC, LAT], None)
    assert picked.number == 0 and rule == "the best val.accuracy on the front"
    picked, rule = pick_trial(front, [ACC, LAT], ["latency_ms<=1"])
    assert picked.number == 3 and "among latency_ms<=1" in rule
    picked, _ = pick_trial(front, [ACC, LAT], ["latency_ms"])  # rank by latency instead
    assert picked.number == 3
    assert pick_trial(front, [ACC, LAT], ["latency_ms<0.1"])[0] is None


def _spec(name: str, **tune) -> dict:
    return {
        "name": name,
        "seed": 0,
        "data": {"source": "digits"},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": 6, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}},
        "tune": {
            "objectives": ["val.accuracy", "params"],
            "sampler": "random",
            "stop_dominated": {"margin": 0.05, "n_startup_trials": 1, "n_warmup_steps": 1},
            "space": {"model.hidden": [[32], [4]], "train.optimizer.lr": [0.02, 1.0e-6]},
        }
        | tune,
    }


def _planted(folder, name: str, configs: list[dict]) -> None:
    """The study created beforehand with these trials enqueued (run in this order)."""
    folder.mkdir(parents=True)
    storage, _ = open_storage(folder)
    study = optuna.create_study(
        study_name=name, storage=storage, directions=["maximize", "minimize"]
    )
    for config in configs:
        study.enqueue_trial(
            {"model.hidden": json.dumps(config["hidden"]), "train.optimizer.lr": config["lr"]}
        )


def test_a_planted_dominated_trial_is_stopped_with_its_reason(tmp_path):
    folder = tmp_path / "s"
    # trial 0 learns; trial 1, the same size, barely moves from its initial weights (lr 1e-6)
    _planted(folder, "front_stop", [{"hidden": [32], "lr": 0.02}, {"hidden": [32], "lr": 1e-6}])
    result = tunelab.tune_study(_spec("front_stop"), out=folder, trials=2, quiet=True)
    study = optuna.load_study(study_name="front_stop", storage=open_storage(folder)[0])
    good, bad = study.get_trials()
    assert good.state.name == "COMPLETE" and bad.state.name == "PRUNED"
    stopped = bad.user_attrs["stopped"]
    assert stopped["by"] == 0 and stopped["step"] == 2  # the first step after the warm-up
    assert stopped["by_values"][0] >= stopped["values"][0] + 0.05  # by the margin
    assert stopped["values"][1] == stopped["by_values"][1]  # same size: no worse
    assert bad.user_attrs["result"]["reason"].startswith("dominated at step 2 by trial 0")
    trial_json = json.loads((folder / "trials" / "1" / "trial.json").read_text())
    assert trial_json["state"] == "PRUNED" and "dominated" in trial_json["reason"]
    epochs = (folder / "trials" / "1" / "history.jsonl").read_text().splitlines()
    assert len(epochs) == 2  # stopped after its second epoch, of six
    assert [f["number"] for f in result.front] == [0] and result.best_number == 0


def test_a_trial_that_trades_accuracy_for_size_is_not_stopped(tmp_path):
    folder = tmp_path / "s"
    # trial 1 is far smaller (4 units): worse accuracy but fewer parameters, never dominated
    _planted(folder, "front_keep", [{"hidden": [32], "lr": 0.02}, {"hidden": [4], "lr": 0.02}])
    result = tunelab.tune_study(_spec("front_keep"), out=folder, trials=2, quiet=True)
    study = optuna.load_study(study_name="front_keep", storage=open_storage(folder)[0])
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE"]
    assert "stopped" not in study.trials[1].user_attrs
    stored = json.loads((folder / "result.json").read_text())
    assert stored["objectives"] == {"val.accuracy": "maximize", "params": "minimize"}
    front = {f["number"]: f["values"] for f in stored["front"]}
    assert set(front) == {0, 1}
    assert front[0]["params"] == 64 * 32 + 32 + 32 * 10 + 10 and front[1]["params"] < 400
    # the pick: the most accurate front trial, refit and tested once
    assert stored["pick"]["trial"] == stored["best_trial"] == result.best_number
    assert front[result.best_number]["val.accuracy"] == max(
        v["val.accuracy"] for v in front.values()
    )
    seal = json.loads((folder / "seal.json").read_text())
    assert len(seal["evaluations"]) == 1 and seal["evaluations"][0]["trial"] == result.best_number
    assert (folder / "best" / "metrics.json").is_file()
    html = write_report(folder).read_text()  # the study's page: the front, its figure, the pick
    assert 'id="fig-front"' in html and "2 trial(s) on the front of" in html


def test_latency_and_size_are_measured_per_trial(tmp_path):
    spec = _spec("front_costs", objectives=["val.accuracy", "latency_ms", "size_mb"],
                 stop_dominated=None, pick="size_mb", refit=False)  # fmt: skip
    spec["tune"]["space"] = {"model.hidden": [[4], [256]]}
    spec["train"]["epochs"] = 2
    folder = tmp_path / "s"
    _planted_sizes(folder, "front_costs")
    result = tunelab.tune_study(spec, out=folder, trials=2, quiet=True)
    values = {f["number"]: f["values"] for f in result.front}
    study = optuna.load_study(study_name="front_costs", storage=open_storage(folder)[0])
    small, large = (t.user_attrs["result"]["costs"] for t in study.get_trials())
    assert small["size_mb"] < large["size_mb"]  # 64*4 weights against 64*256 + 256*256
    assert large["size_mb"] * 1e6 > 4 * (64 * 256 + 256 * 10)
    assert all(c["latency_ms"] > 0 for c in (small, large))
    assert result.pick["trial"] == 0 and values  # ranked by size: the small one
    assert not (folder / "trials" / "0" / "cost_weights.safetensors").exists()


def _planted_sizes(folder, name: str) -> None:
    folder.mkdir(parents=True)
    study = optuna.create_study(
        study_name=name, storage=open_storage(folder)[0],
        directions=["maximize", "minimize", "minimize"],
    )  # fmt: skip
    for hidden in ([4], [256]):
        study.enqueue_trial({"model.hidden": json.dumps(hidden)})


@pytest.mark.parametrize(
    ("tune", "message"),
    [
        ({"objectives": ["val.accuracy", "latncy_ms"]}, "did you mean `latency_ms`"),
        ({"objectives": ["val.acuracy", "latency_ms"]}, "did you mean `accuracy`"),
        ({"objectives": ["val.accuracy", "latency_ms"], "pruner": "median"},
         "tune.pruner median: Optuna's pruners are single-objective; a multi-objective study "
         "stops a trial once a completed trial dominates it"),
        ({"objectives": ["val.accuracy", "latency_ms"], "sampler": "cmaes"},
         "tune.sampler cmaes handles one objective"),
        ({"objectives": ["val.accuracy", "latency_ms"], "pick": "latency<=2"},
         "did you mean `latency_ms`"),
        ({"objectives": ["val.accuracy", "latency_ms"], "objective": "val.loss"},
         "not both"),
        ({"objectives": ["test.accuracy", "latency_ms"]}, "the test part is sealed"),
        ({"objectives": ["val.rmse", "latency_ms"]}, "rmse is a regression metric"),
    ],
)  # fmt: skip
def test_bad_multi_objective_specs_are_refused_before_anything_is_written(tmp_path, tune, message):
    spec = _spec("bad")
    spec["tune"] |= tune
    with pytest.raises(SpecError) as info:
        tunelab.tune_study(spec, out=tmp_path / "s", quiet=True)
    assert message in str(info.value)
    assert not (tmp_path / "s" / "study.json").exists()


def test_nested_cv_refuses_a_front(tmp_path):
    with pytest.raises(SpecError, match="a multi-objective study"):
        tunelab.tune_study(_spec("nest"), out=tmp_path / "s", nested=2, quiet=True)


def test_the_cli_takes_objectives_and_names_a_wrong_one(cli, root, tmp_path):
    spec = root / "examples" / "digits_front.yaml"
    result = cli("tune", str(spec), "--objectives", "val.accuracy,latncy", "--out", "s")
    assert result.returncode == 2
    assert "unknown objective 'latncy' (did you mean `latency_ms`?)" in result.stderr
    assert not (tmp_path / "s").exists()


def test_the_grid_takes_objectives_and_an_unmet_pick_leaves_the_test_unseen(tmp_path):
    spec = _spec("front_grid", sampler="grid", stop_dominated=None, pick=["params<=10"])
    spec["tune"]["space"] = {"model.hidden": [[32], [4]]}
    spec["train"]["epochs"] = 2
    folder = tmp_path / "s"
    result = tunelab.tune_study(spec, out=folder, quiet=True)
    assert result.counts["COMPLETE"] == 2 and len(result.front) == 2  # size against accuracy
    assert result.pick == {"rule": "the best val.accuracy on the front among params<=10",
                           "trial": None}  # fmt: skip
    assert result.best_number is None and result.best_run is None
    assert not (folder / "best").exists() and not (folder / "best.yaml").exists()
    assert json.loads((folder / "seal.json").read_text())["evaluations"] == []
    assert json.loads((folder / "result.json").read_text())["test"] is None
