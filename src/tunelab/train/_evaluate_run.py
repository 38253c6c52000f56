"""Evaluating a saved run, and every look at a sealed test part (logged in its seal)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from tunelab.data import Standardizer, fingerprint, read_target_scale
from tunelab.errors import RunError, SpecError
from tunelab.runs import (
    Run,
    log_test_evaluation,
    log_unsealed_look,
    missing_seal,
    read_json,
    seal_of_run,
    test_evaluations,
    write_json,
)
from tunelab.spec import Spec
from tunelab.train._console import Console
from tunelab.train._fold import evaluate_part, fold_model, load_saved_weights, slots
from tunelab.train._plan import Prepared, prepare

__all__ = ["evaluate_run", "evaluate", "before_test_look", "log_test_look", "load_model"]


def evaluate_run(
    run: Run | str | Path,
    *,
    split: str = "test",
    quiet: bool = False,
    console: Console | None = None,
) -> dict[str, float]:
    """Evaluate a saved run's model on one of its parts and update ``metrics.json``.

    The data is re-read and checked against the fingerprints in ``splits.json``; the weights
    come from ``model.safetensors``. A look at a sealed test part is logged in its study's
    ``seal.json`` (or in the run when that seal is missing).

    Example:
        >>> tunelab.train.evaluate_run("runs/mnist_cnn", split="test")  # doctest: +SKIP
    """
    run = run if isinstance(run, Run) else Run(run)
    if split not in ("test", "val", "train"):
        raise SpecError(f"--split: expected test, val or train; got {split!r}")
    spec = run.spec
    prep = prepare(spec, splits=run.splits)
    splits = prep.splits
    if split == "test":
        idx = splits.test
        if not len(idx):
            raise RunError(f"{run.path} has no test part (split.test was 0)")
    elif split == "val":
        if len(splits.folds) > 1:
            raise RunError(
                "a cross-validated run has no single val part: its val metrics are the "
                "out-of-fold ones already in metrics.json"
            )
        idx = splits.folds[0].val
    else:
        idx = splits.dev if len(splits.folds) > 1 else splits.folds[0].train
    model, stats = load_model(run, prep)
    sealed = before_test_look(run, spec) if split == "test" else None
    if split == "val" and any(row.get("fold") == "refit" for row in run.history):
        print(
            f"warning: {run.path} is a refit on all non-test data: its model was trained on "
            "these val rows, so this val score is not an honest estimate (the study's trial "
            "values are; so is one look at the sealed test part)",
            file=sys.stderr,
        )
    scores, values = evaluate_part(prep, model, idx, stats=stats)
    metrics = run.metrics
    metrics[split] = slots(prep, idx, scores, values)
    write_json(run.path / "metrics.json", metrics)
    run.write_predictions(
        {f"{split}_index": idx, f"{split}_y": prep.ds.y[idx], f"{split}_score": scores}
    )
    console = console or Console(quiet=quiet)
    if not console.quiet:
        console.metrics_table({split: metrics[split]})
    if sealed is not None:
        log_test_look(run, spec, sealed, values, fingerprint(prep.ds, idx))
    return values


evaluate = evaluate_run  # the older name, kept for now (same function)


def before_test_look(run: Run, spec: Spec) -> tuple[Path | None, str | None] | None:
    """Before a look at the test part: the study whose seal covers it, warned about when it
    has been looked at already; or why the seal the spec names cannot be found (warned).
    None when no seal covers it."""
    folder = seal_of_run(run.path, spec)
    ref = spec.evaluate.seal
    if folder is None and ref is None:
        return None
    why = missing_seal(ref) if folder is None else None
    if why is not None:
        print(
            f"warning: this test part is sealed by study {ref.study}, but {why}; this look is "
            f"recorded in {run.path / 'env.json'} only",
            file=sys.stderr,
        )
    elif used := test_evaluations(folder):
        print(
            f"warning: the sealed test part of study {folder} has been evaluated {used} time(s) "
            "already; every further look makes the test estimate less honest",
            file=sys.stderr,
        )
    return folder, why


def log_test_look(
    run: Run, spec: Spec, sealed: tuple[Path | None, str | None], values: dict, fp: str
) -> None:
    """Log a look at a sealed test part in the study's seal, or in the run if it is missing."""
    folder, why = sealed
    if folder is not None:
        log_test_evaluation(folder, run=run.path.resolve(), metrics=values, fingerprint=fp)
    elif why is not None and spec.evaluate.seal is not None:
        log_unsealed_look(run.path, spec.evaluate.seal, why=why, metrics=values)


def load_model(run: Run, prep: Prepared) -> tuple[torch.nn.Module, Standardizer]:
    """The run's model with its saved weights, on the plan's device, and its preprocessing."""
    stats = Standardizer.from_json(read_json(run.path / "preprocess.json"))
    model = fold_model(prep, stats, target=read_target_scale(run.path))
    model = load_saved_weights(model, run.path / "model.safetensors")
    return model.to(prep.device), stats
