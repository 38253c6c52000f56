"""Training: the loop, optimizers and schedules by name, callbacks, and runs from a spec."""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "Callback": "_callbacks",
    "EarlyStopping": "_callbacks",
    "Prune": "_callbacks",
    "Stop": "_callbacks",
    "CHECKPOINT_FILE": "_checkpoint",
    "Checkpoint": "_checkpoint",
    "save_checkpoint": "_checkpoint",
    "load_checkpoint": "_checkpoint",
    "discard_temporaries": "_checkpoint",
    "Console": "_console",
    "format_epoch": "_console",
    "History": "_fit",
    "EpochChoice": "_fit",
    "choose_epoch": "_fit",
    "fit": "_fit",
    "predict": "_fit",
    "build_loss": "_losses",
    "to_scores": "_losses",
    "Schedule": "_schedules",
    "build_optimizer": "_optimizers",
    "Plan": "_plan",
    "Watch": "_fit",
    "resolve": "_plan",
    "DataShape": "_plan",
    "Prepared": "_plan",
    "prepare": "_plan",
    "resolve_device": "_plan",
    "train_fold": "_fold",
    "evaluate_part": "_fold",
    "train": "_record",
    "resume": "_record",
    "evaluate_run": "_evaluate_run",
    "evaluate": "_evaluate_run",  # the older name of evaluate_run (the same function)
    "train_seeds": "_seeds",
    "seed_summary": "_seeds",
    "learning_curve": "_curves",
    "validation_curve": "_curves",
    "diagnose": "_diagnosis",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
