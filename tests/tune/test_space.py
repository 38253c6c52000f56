"""The search space: parsed and checked against the spec before any trial, then sampled."""

from __future__ import annotations

import math

import optuna
import pytest

from tunelab.errors import SpecError
from tunelab.spec import parse_spec
from tunelab.tune import grid_space, parse_space, sample, trial_spec

BASE = {
    "name": "space",
    "data": {"source": "iris"},
    "model": {"name": "mlp", "hidden": [8]},
    "train": {"epochs": 2, "optimizer": {"name": "adam", "lr": 0.01, "betas": [0.8, 0.9]}},
}


def spec_with(space: dict, **tune):
    return parse_spec(BASE | {"tune": {"trials": 2, "space": space, **tune}})


def sampled(space: dict, n: int = 30, **tune) -> list[tuple[dict, object]]:
    """(values, trial spec) of ``n`` random trials of an in-memory study."""
    spec = spec_with(space, **tune)
    params = parse_space(spec.tune, spec)
    base = spec.model_dump(mode="json")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    out = []
    for _ in range(n):
        trial = study.ask()
        values = sample(trial, params, base)
        out.append((values, trial_spec(base, values)))
        study.tell(trial, 0.0)
    return out


def test_list_is_categorical_and_list_valued_choices_round_trip():
    runs = sampled({"model.hidden": [[64], [128, 64]], "train.batch_size": [16, 32]})
    seen = {tuple(values["model.hidden"]) for values, _ in runs}
    assert seen == {(64,), (128, 64)}
    for values, spec in runs:
        assert isinstance(values["model.hidden"], list)
        assert spec.model.hidden == values["model.hidden"]
        assert spec.train.batch_size in (16, 32)
        assert type(spec.train.batch_size) is int


def test_int_range_gives_ints_on_the_step():
    runs = sampled({"train.batch_size": {"low": 8, "high": 64, "step": 8}})
    for values, spec in runs:
        value = values["train.batch_size"]
        assert type(value) is int and 8 <= value <= 64 and value % 8 == 0
        assert spec.train.batch_size == value
    assert len({v["train.batch_size"] for v, _ in runs}) > 3


def test_log_float_range_spans_decades():
    runs = sampled({"train.optimizer.lr": {"low": 1e-5, "high": 1e-1, "log": True}}, n=60)
    lrs = [values["train.optimizer.lr"] for values, _ in runs]
    assert all(isinstance(v, float) and 1e-5 <= v <= 1e-1 for v in lrs)
    # log-uniform: a fair share below 1e-3 (uniform would put ~1% there)
    assert sum(v < 1e-3 for v in lrs) >= 15
    assert {math.floor(math.log10(v)) for v in lrs} >= {-5, -4, -3, -2}


def test_when_samples_momentum_only_for_sgd_and_switching_drops_adam_keys():
    space = {
        "train.optimizer.name": ["adam", "sgd"],
        "train.optimizer.momentum": {
            "low": 0.5,
            "high": 0.99,
            "when": {"train.optimizer.name": "sgd"},
        },
    }
    runs = sampled(space, n=30)
    names = {values["train.optimizer.name"] for values, _ in runs}
    assert names == {"adam", "sgd"}
    for values, spec in runs:
        opt = spec.train.optimizer
        if values["train.optimizer.name"] == "sgd":
            assert 0.5 <= values["train.optimizer.momentum"] <= 0.99
            assert opt.name == "sgd" and opt.momentum == values["train.optimizer.momentum"]
            assert not hasattr(opt, "betas")  # adam-only key of the base dropped
        else:
            assert "train.optimizer.momentum" not in values
            assert opt.name == "adam" and list(opt.betas) == [0.8, 0.9]


def test_when_on_a_base_value_never_samples_when_it_does_not_hold():
    space = {
        "train.optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True},
        "train.optimizer.weight_decay": {
            "low": 1e-6,
            "high": 1e-2,
            "log": True,
            "when": {"train.optimizer.name": ["sgd", "rmsprop"]},
        },
    }
    for values, _ in sampled(space, n=5):
        assert set(values) == {"train.optimizer.lr"}


def test_grid_space_lists_values_and_keeps_ints():
    spec = spec_with(
        {
            "train.optimizer.lr": [0.01, 0.1],
            "model.hidden": [[8], [16, 8]],
            "train.batch_size": {"low": 8, "high": 24, "step": 16},
            "model.dropout": {"low": 0.0, "high": 0.5, "step": 0.25},
        },
        sampler="grid",
    )
    grid = grid_space(parse_space(spec.tune, spec))
    assert grid["train.batch_size"] == [8, 24]
    assert all(type(v) is int for v in grid["train.batch_size"])
    assert grid["model.dropout"] == [0.0, 0.25, 0.5]
    assert grid["train.optimizer.lr"] == [0.01, 0.1]
    assert len(grid["model.hidden"]) == 2


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"model.dropuot": [0.1, 0.2]}, ["`model.dropuot`", "did you mean `model.dropout`"]),
        ({"model.dropout": {"low": 0.0, "high": 1.5}}, ["`model.dropout`", "1.5"]),
        ({"train.optimizer.lr": {"low": -1, "high": 0.1}}, ["`train.optimizer.lr`", "-1"]),
        ({"split.seed": [1, 2]}, ["`split.seed`", "cannot be searched"]),
        ({"split.val": [0.1, 0.2]}, ["`split.val`", "cannot be searched"]),
        ({"data.source": ["iris", "wine"]}, ["`data.source`", "cannot be searched"]),
        ({"tune.trials": [1, 2]}, ["`tune.trials`", "cannot be searched"]),
        (
            {
                "train.optimizer.momentum": {
                    "low": 0.5,
                    "high": 0.9,
                    "when": {"train.optimzer.name": "sgd"},
                }
            },
            ["`train.optimizer.momentum`", "`train.optimzer.name`"],
        ),
        ({"model.hidden": []}, ["model.hidden", "empty"]),
        ({"train.optimizer.lr": {"low": 0.1, "high": 0.1}}, ["train.optimizer.lr", "low must"]),
        (
            {"train.optimizer.lr": {"low": 0.0, "high": 0.1, "log": True}},
            ["train.optimizer.lr", "log range needs low > 0"],
        ),
    ],
    ids=[
        "typo",
        "dropout-high",
        "lr-negative",
        "split",
        "split-val",
        "data-source",
        "tune",
        "when-unknown",
        "empty",
        "low-eq-high",
        "log-zero",
    ],
)
def test_space_errors_name_the_entry(space, expected):
    with pytest.raises(SpecError) as info:
        spec = spec_with(space)
        parse_space(spec.tune, spec)
    for text in expected:
        assert text in str(info.value)


def test_when_naming_an_unknown_path_says_so():
    space = {
        "train.optimizer.momentum": {
            "low": 0.5,
            "high": 0.9,
            "when": {"train.optimzer.name": "sgd"},
        }
    }
    spec = spec_with(space)
    with pytest.raises(SpecError, match="its `when` names `train.optimzer.name`"):
        parse_space(spec.tune, spec)


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"train.optimizer.lr": {"low": 1e-3, "high": 1e-1}}, "continuous range"),
        (
            {
                "train.optimizer.name": ["adam", "sgd"],
                "train.optimizer.momentum": {
                    "low": 0.5,
                    "high": 0.9,
                    "step": 0.2,
                    "when": {"train.optimizer.name": "sgd"},
                },
            },
            "conditional entry",
        ),
    ],
    ids=["continuous", "conditional"],
)
def test_grid_rejects_what_it_cannot_enumerate(space, expected):
    spec = spec_with(space, sampler="grid")
    with pytest.raises(SpecError, match=expected):
        grid_space(parse_space(spec.tune, spec))


def test_grid_errors_come_from_tune_before_any_trial(tmp_path):
    from tunelab.tune import tune

    tree = BASE | {
        "tune": {
            "trials": 2,
            "sampler": "grid",
            "space": {"train.optimizer.lr": {"low": 0.01, "high": 0.1}},
        }
    }
    with pytest.raises(SpecError, match="`train.optimizer.lr`"):
        tune(tree, out=tmp_path / "s", quiet=True)
    assert not (tmp_path / "s").exists()
