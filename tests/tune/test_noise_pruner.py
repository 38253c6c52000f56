"""`tune.pruner: noise`: a trial is stopped only when its val metric's exact interval lies
wholly below the best completed trial's value at the same step."""

from __future__ import annotations

import json

import optuna
import pytest
from statsmodels.stats.proportion import proportion_confint

import tunelab
from tunelab.errors import SpecError
from tunelab.spec import load_spec
from tunelab.tune._noise import SAMPLES_ATTR, build, noise_interval


@pytest.mark.parametrize(("k", "n"), [(0, 20), (7, 20), (20, 20), (360, 400), (1, 1000)])
def test_the_interval_is_clopper_pearson(k, n):
    low, high = noise_interval(k / n, n, 0.95)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="beta")
    assert low == pytest.approx(ref_low, abs=1e-12) and high == pytest.approx(ref_high, abs=1e-12)


def _pruner(**kwargs):
    spec = load_spec(
        {"name": "p", "data": {"source": "iris"}, "model": {"name": "mlp"},
         "tune": {"pruner": {"name": "noise", "n_startup_trials": 1, "n_warmup_steps": 0} | kwargs,
                  "space": {"train.optimizer.lr": [0.1]}}}
    )  # fmt: skip
    return build(spec.tune.pruner)


def _decide(pruner, value: float, *, n: int, best: float = 0.92, proportion: bool = True):
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.add_trial(optuna.trial.create_trial(value=best, intermediate_values={0: best, 1: best}))
    trial = study.ask()
    trial.set_user_attr(SAMPLES_ATTR, {"n": [n], "epochs": 5, "proportion": proportion})
    trial.report(value, 1)
    return trial.should_prune(), pruner.reasons.get(trial.number), trial


def test_a_small_val_part_keeps_a_trial_the_median_would_stop():
    pruner = _pruner()
    # 0.90 of 400: interval about [0.867, 0.927] holds the best 0.92: not confidently worse
    pruned, why, _ = _decide(pruner, 0.90, n=400)
    assert not pruned and why is None
    # 0.80 of 400: [0.758, 0.838], wholly below 0.92: pruned, the interval in the reason
    pruned, why, trial = _decide(pruner, 0.80, n=400)
    assert pruned
    assert why.startswith("noise: 0.8 at step 1, 95% interval [0.75") and "400 validation" in why
    assert "below the best 0.92" in why
    # the same 0.80 on 20 samples is 16 of 20, [0.563, 0.943]: not shown worse
    assert not _decide(pruner, 0.80, n=20)[0]
    # a metric that is not a share of the samples is never judged this way
    assert not _decide(pruner, 0.10, n=400, proportion=False)[0]


def test_a_higher_level_prunes_less():
    strict, loose = _pruner(level=0.999), _pruner(level=0.6)
    assert not _decide(strict, 0.88, n=400)[0]
    assert _decide(loose, 0.88, n=400)[0]


def test_the_noise_pruner_needs_a_share_of_the_samples_as_objective(tmp_path):
    spec = {
        "name": "noise_loss",
        "data": {"source": "iris"},
        "model": {"name": "mlp"},
        "tune": {"pruner": "noise", "objective": "val.loss", "trials": 1,
                 "space": {"train.optimizer.lr": [0.1]}},
    }  # fmt: skip
    with pytest.raises(SpecError, match="tune.pruner noise: it needs an objective that is a share"):
        tunelab.tune_study(spec, out=tmp_path / "s", quiet=True)


def test_a_hopeless_trial_is_stopped_with_its_interval_and_a_good_one_is_not(tmp_path):
    spec = {
        "name": "noise_study",
        "seed": 0,
        "data": {"source": "digits"},
        "split": {"test": 0.2, "val": 0.25},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"epochs": 4, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}},
        "tune": {
            "sampler": "grid",
            "pruner": {"name": "noise", "n_startup_trials": 1, "n_warmup_steps": 1},
            "trials": 3,
            # in order: a good rate, one too small to learn anything in 4 epochs, a good one
            "space": {"train.optimizer.lr": [0.01, 1e-7, 0.02]},
        },
    }
    tunelab.tune_study(spec, out=tmp_path / "s", quiet=True)
    trials = {}
    for path in sorted((tmp_path / "s" / "trials").glob("*/trial.json")):
        record = json.loads(path.read_text())
        trials[record["params"]["train.optimizer.lr"]] = record
    assert trials[0.01]["state"] == "COMPLETE" and trials[0.02]["state"] == "COMPLETE"
    hopeless = trials[1e-7]
    assert hopeless["state"] == "PRUNED"
    assert hopeless["reason"].startswith("noise: ") and "interval [" in hopeless["reason"]
    assert "validation samples" in hopeless["reason"]
