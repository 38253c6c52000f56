"""Tuning: a search space over any spec path, Optuna underneath, folds inside trials,
parallel workers, resumable studies, and a sealed test part evaluated once.

``tune_study(spec)`` runs a study (``tune`` is the same function, its earlier name). Readers
of a study folder (the report, the dashboard, the CLI) use ``open_storage``, ``redact`` and
``disk_trouble`` from here, never the private modules.
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "tune_study": "_tune",
    "tune": "_tune",
    "StudyResult": "_finish",
    "metric_values": "_console",
    "objective_of": "_open",
    "run_worker": "_search",
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
    "redact": "_study",
    "disk_trouble": "_study",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
