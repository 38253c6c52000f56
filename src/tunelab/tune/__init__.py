"""Tuning: a search space over any spec path, Optuna underneath, folds inside trials,
parallel workers, resumable studies, and a sealed test part evaluated once.

``tune_study(spec)`` runs a study; ``join_study(storage, name)`` runs trials of a study
started elsewhere (``tunelab worker``). Readers of a study folder (the report, the dashboard, the
CLI) use ``open_storage``, ``redact``, ``disk_trouble``, ``metric_values`` and
``test_evaluations`` from here, never the private modules.

Also importable, as plumbing outside ``__all__`` (used by the benchmarks and the tests):
``tune`` (the earlier name of ``tune_study``), ``objective_of``, ``run_worker``, ``run_trial``,
``Outcome``, ``TrialContext``, ``seal``, ``log_test_evaluation``, ``seal_of_run``, ``sample``,
``lookup``, ``trial_spec``, ``build_sampler``, ``build_pruner``, ``fail_interrupted``.
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "tune_study": "_tune",
    "join_study": "_workers",
    "studies_in": "_join",
    "StudyResult": "_finish",
    "parse_space": "_space",
    "Param": "_space",
    "grid_space": "_space",
    "test_evaluations": "_seal",
    "open_storage": "_study",
    "redact": "_study",
    "disk_trouble": "_study",
    "metric_values": "_console",
}
_PLUMBING = {
    "tune": "_tune",
    "objective_of": "_open",
    "run_worker": "_search",
    "run_trial": "_objective",
    "Outcome": "_objective",
    "TrialContext": "_objective",
    "seal": "_seal",
    "log_test_evaluation": "_seal",
    "seal_of_run": "_seal",
    "sample": "_space",
    "lookup": "_space",
    "trial_spec": "_space",
    "build_sampler": "_samplers",
    "build_pruner": "_samplers",
    "fail_interrupted": "_study",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)
