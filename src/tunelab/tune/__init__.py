"""Tuning: a search space over any spec path, Optuna underneath, folds inside trials,
parallel workers, resumable studies, and a sealed test part evaluated once."""

from tunelab.tune._objective import Outcome, TrialContext, run_trial
from tunelab.tune._run import StudyResult, objective_of, run_worker, tune
from tunelab.tune._seal import log_test_evaluation, seal, seal_of_run, test_evaluations
from tunelab.tune._space import Param, grid_space, lookup, parse_space, sample, trial_spec
from tunelab.tune._study import build_pruner, build_sampler, fail_interrupted, open_storage

__all__ = [
    "tune",
    "StudyResult",
    "objective_of",
    "run_worker",
    "run_trial",
    "Outcome",
    "TrialContext",
    "seal",
    "log_test_evaluation",
    "seal_of_run",
    "test_evaluations",
    "Param",
    "parse_space",
    "sample",
    "grid_space",
    "lookup",
    "trial_spec",
    "build_sampler",
    "build_pruner",
    "fail_interrupted",
    "open_storage",
]
