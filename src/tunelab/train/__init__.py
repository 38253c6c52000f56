"""Training: runs from a spec, the loop, callbacks, curves and diagnosis.

``resolve(spec, data) -> Plan`` checks a spec against the data's shape once, before any
training (``DataShape.of(X, y, task=...)`` describes your own tensors), and
``fit(model, train, val, plan)`` trains on them.

Also importable, as plumbing outside ``__all__`` (used by tune, the benchmarks and the tests):
``prepare``, ``Prepared``, ``resolve_device``, ``train_fold``, ``evaluate_part``, ``Watch``,
``choose_epoch``, ``EpochChoice``, ``seed_summary``, ``Console``, ``format_epoch``,
``build_loss``, ``to_scores``, ``build_optimizer``, ``Schedule``, ``Checkpoint``,
``CHECKPOINT_FILE``, ``save_checkpoint``, ``load_checkpoint``, ``discard_temporaries``,
``train_packed``, ``fit_packed``, ``Member``, ``unpackable`` (packed trials), ``free_port``,
``stop_processes`` (data-parallel processes: tune's ``trial_nproc`` starts its own), and
``evaluate`` (the older name of ``evaluate_run``).
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "train": "_record",
    "resume": "_record",
    "evaluate_run": "_evaluate_run",
    "train_seeds": "_seeds",
    "learning_curve": "_curves",
    "validation_curve": "_curves",
    "fit": "_fit",
    "predict": "_fit",
    "History": "_fit",
    "Callback": "_callbacks",
    "EarlyStopping": "_callbacks",
    "Stop": "_callbacks",
    "Prune": "_callbacks",
    "diagnose": "_diagnosis",
    "resolve": "_plan",
    "Plan": "_plan",
    "DataShape": "_plan",
    "predict_run": "_predict",
    "Predictor": "_predict",
    "Predictions": "_predict",
}
_PLUMBING = {
    "prepare": "_plan",
    "Prepared": "_plan",
    "resolve_device": "_plan",
    "train_fold": "_fold",
    "evaluate_part": "_fold",
    "Watch": "_fit",
    "choose_epoch": "_fit",
    "EpochChoice": "_fit",
    "seed_summary": "_seeds",
    "Console": "_console",
    "format_epoch": "_console",
    "build_loss": "_losses",
    "to_scores": "_losses",
    "build_optimizer": "_optimizers",
    "Schedule": "_schedules",
    "Checkpoint": "_checkpoint",
    "CHECKPOINT_FILE": "_checkpoint",
    "save_checkpoint": "_checkpoint",
    "load_checkpoint": "_checkpoint",
    "discard_temporaries": "_checkpoint",
    "train_packed": "_packed",
    "fit_packed": "_packed",
    "Member": "_packed",
    "unpackable": "_packed",
    "free_port": "_ddp",
    "stop_processes": "_ddp",
    "evaluate": "_evaluate_run",  # the older name of evaluate_run (the same function)
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)
