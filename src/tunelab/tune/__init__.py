"""Tuning: a search space over any spec path, Optuna underneath, folds inside trials,
parallel workers, resumable studies, and a sealed test part evaluated once."""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "tune": "_run",
    "StudyResult": "_run",
    "objective_of": "_run",
    "run_worker": "_run",
    "run_trial": "_objective",
    "Outcome": "_objective",
    "TrialContext": "_objective",
    "seal": "_seal",
    "log_test_evaluation": "_seal",
    "seal_of_run": "_seal",
    "test_evaluations": "_seal",
    "Param": "_space",
    "parse_space": "_space",
    "sample": "_space",
    "grid_space": "_space",
    "lookup": "_space",
    "trial_spec": "_space",
    "build_sampler": "_samplers",
    "build_pruner": "_samplers",
    "fail_interrupted": "_study",
    "open_storage": "_study",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
