"""Training: the loop, optimizers and schedules by name, callbacks, and runs from a spec."""

from tunelab.train._callbacks import Callback, EarlyStopping, Prune, Stop
from tunelab.train._checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    discard_temporaries,
    load_checkpoint,
    save_checkpoint,
)
from tunelab.train._console import Console, format_epoch
from tunelab.train._curves import learning_curve, validation_curve
from tunelab.train._diagnosis import diagnose
from tunelab.train._fit import EpochChoice, History, choose_epoch, fit, predict
from tunelab.train._losses import build_loss, to_scores
from tunelab.train._optim import Schedule, build_optimizer
from tunelab.train._run import (
    Prepared,
    evaluate,
    evaluate_part,
    prepare,
    resolve_device,
    resume,
    train,
    train_fold,
)
from tunelab.train._seeds import seed_summary, train_seeds

__all__ = [
    "Callback",
    "EarlyStopping",
    "Prune",
    "Stop",
    "CHECKPOINT_FILE",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "discard_temporaries",
    "Console",
    "format_epoch",
    "History",
    "EpochChoice",
    "choose_epoch",
    "fit",
    "predict",
    "build_loss",
    "to_scores",
    "Schedule",
    "build_optimizer",
    "Prepared",
    "evaluate",
    "evaluate_part",
    "prepare",
    "resolve_device",
    "train",
    "resume",
    "train_fold",
    "train_seeds",
    "seed_summary",
    "learning_curve",
    "validation_curve",
    "diagnose",
]
