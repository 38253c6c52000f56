"""A run from a spec: train its folds (and a refit), record everything in the run folder;
and resume an interrupted holdout run from its checkpoint."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab.data import (
    LOSS_SCALE,
    TARGET_SCALE_FILE,
    Schema,
    Standardizer,
    TargetScale,
    fingerprint,
)
from tunelab.errors import RunError
from tunelab.runs import (
    Run,
    append_jsonl,
    atomic_write,
    command_line,
    ensure_writable,
    environment,
    prepare_out_dir,
    save_weights,
    write_json,
)
from tunelab.spec import Spec, dump_spec, load_spec
from tunelab.train._baseline import diagnose_run
from tunelab.train._checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    discard_temporaries,
    load_checkpoint,
    save_checkpoint,
)
from tunelab.train._console import Console
from tunelab.train._evaluate_run import before_test_look, log_test_look
from tunelab.train._fit import History, choose_epoch
from tunelab.train._fold import evaluate_part, part_metrics, slots, train_fold
from tunelab.train._plan import Prepared, prepare
from tunelab.train._ranks import ranks
from tunelab.train._results import affine_summary, calibration, mean_std

__all__ = ["train", "resume"]


def train(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    quiet: bool = False,
    console: Console | None = None,
    refit_epochs: int | None = None,
    reuse: Prepared | None = None,
) -> Run:
    """Train the model a spec describes and write a run directory.

    With holdout splits the model is trained once; with ``split.cv`` it is trained on every
    fold (validation metrics come from the out-of-fold predictions), then refit on all
    non-test data. The sealed test part is evaluated once at the end when
    ``evaluate.test`` is true; when a study's seal covers it (a spec the study wrote names
    it in ``evaluate.seal``) the look is logged in that ``seal.json``. With ``refit_epochs``
    (the refit of a study's best) one model is trained on all non-test data for that many
    epochs, with no validation part, and the study logs its look itself. ``reuse``
    keeps the data and splits of an earlier :class:`Prepared` (a study's, e.g. an outer fold).

    A holdout run writes ``checkpoint.safetensors`` after every epoch while it trains and
    removes it when the run is finished: a killed run continues with :func:`resume`.

    Example:
        >>> run = tunelab.train("examples/linear_gd.yaml", out="runs/linear")  # doctest: +SKIP
        >>> run.metrics["val"]["mse"]["value"]                                 # doctest: +SKIP
    """
    spec = load_spec(spec, overrides=overrides)
    console = console or Console(quiet=quiet)
    started = time.perf_counter()
    # spec and data errors first: a failed start leaves `out` untouched
    prep = prepare(spec, reuse=reuse)
    path = prepare_out_dir(Path(out) if out is not None else Path("runs") / spec.name)
    (path / CHECKPOINT_FILE).unlink(missing_ok=True)  # an earlier, unfinished run's
    discard_temporaries(path / CHECKPOINT_FILE)

    # --- record what is needed to re-run, before the first epoch
    (path / "spec.yaml").write_text(dump_spec(spec), encoding="utf-8")
    write_json(path / "env.json", environment(device=str(prep.device), seed=spec.seed))
    write_json(path / "splits.json", prep.splits.to_json(prep.ds))
    write_json(path / "schema.json", schema_of(prep).to_json())
    console.header(spec, prep.ds, prep.splits, prep.device, path)
    return _train_and_record(prep, Run(path), console, refit_epochs=refit_epochs, started=started)


def resume(run: Run | str | Path, *, quiet: bool = False, console: Console | None = None) -> Run:
    """Continue a holdout run that was interrupted (killed, out of time) from its checkpoint.

    The run reads its own ``spec.yaml`` and ``splits.json``, continues after the last
    finished epoch with the model, optimizer, schedule, early stopping and every RNG state
    restored, and ends as the uninterrupted run would have: on the same device kind and
    torch version the weights are bit-identical, and ``history.jsonl`` holds the same rows
    (rows written after the checkpoint are dropped and trained again; only ``seconds``
    differs). ``env.json`` gains a ``resumed`` entry per resumption. The checkpoint is
    removed once the run is finished, so a finished run cannot be resumed.

    Example:
        >>> run = tunelab.resume("runs/mnist_cnn")  # doctest: +SKIP
    """
    run = run if isinstance(run, Run) else Run(run)
    started = time.perf_counter()
    ckpt = run.path / CHECKPOINT_FILE
    if not ckpt.is_file():
        raise RunError(_why_no_checkpoint(run))
    state = load_checkpoint(ckpt)
    if state.extra.get("spec_sha256") != _spec_digest(run.path):
        raise RunError(
            f"{run.path / 'spec.yaml'} changed since {ckpt} was written; resuming needs the "
            "spec the run started with. Put it back, or start a new run with tunelab train"
        )
    spec = run.spec
    prep = prepare(spec, splits=run.splits)
    ensure_writable(run.path, what="run folder")
    discard_temporaries(ckpt)

    # --- the record up to the checkpoint: history rows of its epochs, one more env entry
    with atomic_write(run.path / "history.jsonl") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in state.rows)
    env = run.env
    env.setdefault("resumed", []).append(
        {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "after_epoch": state.epoch,
            "command": command_line(),
        }
    )
    write_json(run.path / "env.json", env)
    console = console or Console(quiet=quiet)
    console.header(spec, prep.ds, prep.splits, prep.device, run.path)
    torch_then = env.get("packages", {}).get("torch")
    if torch_then and torch_then != torch.__version__:
        console.print(
            f"warning: the run started with torch {torch_then}, this is {torch.__version__}; "
            "the result may differ from an uninterrupted run",
            markup=False,
        )
    console.note(f"resuming after epoch {state.epoch} of {spec.train.epochs}")
    return _train_and_record(prep, run, console, started=started, resume=state)


def schema_of(prep: Prepared) -> Schema:
    """What new data must look like for this run's model (``schema.json``)."""
    data = prep.spec.data
    return Schema.of(
        prep.ds,
        target=getattr(data, "target", None),
        resize=getattr(data, "size", None) is not None,
        text=getattr(data, "text", None),
    )


def _why_no_checkpoint(run: Run) -> str:
    """The message for a run that cannot be resumed: finished, cross-validated or too early."""
    again = f"tunelab train {run.path / 'spec.yaml'} --out {run.path}"
    if (run.path / "metrics.json").is_file():
        return f"{run.path} is already finished (it has metrics.json); there is nothing to resume"
    if len(run.splits.get("folds", [])) > 1:
        return (
            f"{run.path} is a cross-validated run; only holdout runs write checkpoints. "
            f"Start it again: {again}"
        )
    return (
        f"{run.path} has no {CHECKPOINT_FILE}: it stopped before its first epoch ended. "
        f"Start it again: {again}"
    )


def _spec_digest(path: Path) -> str:
    return hashlib.sha256((path / "spec.yaml").read_bytes()).hexdigest()


def _checkpointer(path: Path) -> Callable[[Checkpoint], None]:
    """Saves a training state into the run folder, marked with the spec it belongs to."""
    digest = _spec_digest(path)

    def save(state: Checkpoint) -> None:
        state.extra["spec_sha256"] = digest
        save_checkpoint(path / CHECKPOINT_FILE, state)

    return save


@dataclass
class _Trained:
    """What the folds (and the refit) leave: the final model and what the record needs."""

    model: torch.nn.Module | None = None
    history: History | None = None
    stats: Standardizer | None = None
    fold_rows: list[dict] = field(default_factory=list)  # each CV fold's val metrics
    oof_scores: dict[int, np.ndarray] = field(default_factory=dict)  # out-of-fold, by row
    histories: list[list[dict]] = field(default_factory=list)
    refit_rule: str | None = None  # why the refit trains as many epochs as it does


def _train_folds(
    prep: Prepared, run: Run, console: Console, *, resume: Checkpoint | None
) -> _Trained:
    """Every fold of the splits (one for a holdout run, which checkpoints every epoch)."""
    spec, path, folds = prep.spec, run.path, prep.splits.folds
    n_folds, done = len(folds), _Trained()
    checkpoint = _checkpointer(path) if n_folds == 1 else None  # a holdout run is resumable
    for k, fold in enumerate(folds):
        tag = {"fold": k} if n_folds > 1 else {}
        done.model, done.history, done.stats = train_fold(
            prep,
            fold.train,
            fold.val,
            seed=spec.seed + k,
            on_epoch=lambda row, tag=tag, k=k: (
                append_jsonl(path / "history.jsonl", tag | row),
                console.epoch(row, spec.train.epochs, fold=(k, n_folds) if n_folds > 1 else None),
            ),
            progress=console.progress_hook(),
            checkpoint=checkpoint,
            resume=resume,
        )
        if done.history.failure:
            raise RunError(f"training failed: {done.history.failure}")
        if done.history.stop_reason:
            console.note(done.history.stop_reason)
        done.histories.append(done.history.rows)
        if n_folds > 1:
            scores, values = evaluate_part(prep, done.model, fold.val, stats=done.stats)
            done.oof_scores.update(zip(fold.val.tolist(), scores, strict=True))
            done.fold_rows.append(values)
    return done


def _refit(
    prep: Prepared, run: Run, console: Console, done: _Trained, *, epochs: int | None
) -> None:
    """One model on all non-test data, for ``epochs`` (the study's rule) or the epoch count
    the refit rule picks from the folds' curves."""
    spec, n_folds = prep.spec, len(prep.splits.folds)
    if epochs is None:  # the refit rule on what the folds' best epochs are chosen by
        key, up = prep.plan.best
        choice = choose_epoch(done.histories, key, maximize=up)
        epochs = choice.epoch if choice else spec.train.epochs
        done.refit_rule = f"the best epoch of the mean {key} over {n_folds} folds"
    else:
        done.refit_rule = "the refit rule of the study"
    console.note(f"refit on all {len(prep.splits.dev)} non-test samples for {epochs} epochs")
    done.model, done.history, done.stats = train_fold(
        prep,
        prep.splits.dev,
        None,
        seed=spec.seed + n_folds,
        epochs=epochs,
        on_epoch=lambda row: (
            append_jsonl(run.path / "history.jsonl", {"fold": "refit"} | row),
            console.epoch(row, epochs, fold=("refit", n_folds)),
        ),
        progress=console.progress_hook(),
    )
    if done.history.failure:
        raise RunError(f"refit failed: {done.history.failure}")


def _evaluate(prep: Prepared, run: Run, done: _Trained, *, refit_only: bool) -> dict:
    """Validation (holdout or out-of-fold), then the sealed test part once; the files."""
    spec, splits, path, model = prep.spec, prep.splits, run.path, done.model
    metrics: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    if not refit_only:
        if len(splits.folds) == 1:
            val_idx = splits.folds[0].val
            out = done.history.val_output if done.history else None
            val_scores, val_values = evaluate_part(prep, model, val_idx, out=out, stats=done.stats)
        else:  # pooled out-of-fold predictions: an honest estimate, without one model's loss
            val_idx = np.array(sorted(done.oof_scores))
            val_scores = np.stack([done.oof_scores[i] for i in val_idx.tolist()])
            val_values = part_metrics(prep, val_idx, val_scores)
            write_json(path / "folds.json", {"folds": done.fold_rows, **mean_std(done.fold_rows)})
        metrics["val"] = slots(prep, val_idx, val_scores, val_values)
        arrays = {"val_index": val_idx, "val_y": prep.ds.y[val_idx], "val_score": val_scores}
    if spec.evaluate.test and len(splits.test) and _looks_at_test():
        # a refit's look is logged by its study, with the trial it refits
        sealed = None if refit_only else before_test_look(run, spec)
        test_scores, test_values = evaluate_part(prep, model, splits.test, stats=done.stats)
        if sealed is not None:
            log_test_look(run, spec, sealed, test_values, fingerprint(prep.ds, splits.test))
        metrics["test"] = slots(prep, splits.test, test_scores, test_values)
        arrays |= {
            "test_index": splits.test,
            "test_y": prep.ds.y[splits.test],
            "test_score": test_scores,
        }
    write_json(path / "metrics.json", metrics)
    run.write_predictions(arrays)
    if prep.ds.task == "classification" and arrays:
        write_json(path / "calibration.json", calibration(prep, arrays))
    return metrics


def _looks_at_test() -> bool:
    """Data-parallel: only rank 0 evaluates the test part (its one look); the others train
    into a scratch folder (see :mod:`tunelab.train._ddp`)."""
    dist = ranks()
    return dist is None or dist.rank == 0


def _train_and_record(
    prep: Prepared,
    run: Run,
    console: Console,
    *,
    started: float,
    refit_epochs: int | None = None,
    resume: Checkpoint | None = None,
) -> Run:
    """Train (folds, refit), then save the model, evaluate and write every result file."""
    # --- train: one holdout fold, or every CV fold then a refit on all non-test data
    refit_only = refit_epochs is not None
    if prep.ds.task == "regression" and prep.spec.data.target_scale == "auto":
        console.note(f"the target is standardised on each training part: {LOSS_SCALE}")
    done = _Trained() if refit_only else _train_folds(prep, run, console, resume=resume)
    if len(prep.splits.folds) > 1 or refit_only:
        _refit(prep, run, console, done, epochs=refit_epochs)

    # --- save the model and its preprocessing, evaluate
    save_weights(run.path / "model.safetensors", done.model.state_dict())
    write_json(run.path / "preprocess.json", done.stats.to_json())
    target = _target_scale(done.model)
    if target is not None:  # the model's output layer; the loss was on the standardised scale
        write_json(run.path / TARGET_SCALE_FILE, target.to_json())
    metrics = _evaluate(prep, run, done, refit_only=refit_only)
    diagnosis = None
    if not refit_only:  # over/under-fitting, from the folds' validation histories
        diagnosis = diagnose_run(prep, done.histories)
        if diagnosis:
            write_json(run.path / "diagnosis.json", diagnosis)
    (run.path / CHECKPOINT_FILE).unlink(missing_ok=True)  # finished: nothing left to resume

    history, rule = done.history, done.refit_rule
    console.summary(
        run,
        metrics,
        history,
        done.fold_rows,
        affine_summary(prep.spec, prep.ds, done.model),
        seconds=time.perf_counter() - started,
        best=None if rule else _best_label(prep, history),
        refit=f"refit: trained {len(history.rows)} epochs ({rule})" if rule else None,
    )
    if diagnosis and not console.quiet:
        console.print(f"diagnosis: {diagnosis['verdict']}", markup=False)
    return run


def _target_scale(model: torch.nn.Module) -> TargetScale | None:
    """The target scale the model's ``unscale`` layer holds (None: an unscaled target)."""
    unscale = getattr(model, "unscale", None)
    if unscale is None:
        return None
    return TargetScale(unscale.mean.cpu().numpy(), unscale.std.cpu().numpy())


def _best_label(prep: Prepared, history: History) -> str | None:
    """``best epoch 7 by val_loss of 10 trained`` (the refit rule on one curve), or None."""
    if history.best_epoch is None or prep.plan.best is None:
        return None
    return f"best epoch {history.best_epoch} by {prep.plan.best.key} of {len(history.rows)} trained"
