"""From a spec to a run directory: data, splits, folds, fit, evaluation, files."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab.data import (
    Dataset,
    Splits,
    Standardizer,
    fingerprint,
    fit_standardizer,
    load_dataset,
    make_splits,
)
from tunelab.errors import RunError, SpecError, did_you_mean
from tunelab.evaluate import (
    DEFAULT_METRICS,
    METRICS,
    apply_temperature,
    bootstrap_ci,
    brier_score,
    compute_metrics,
    expected_calibration_error,
    fit_temperature,
    get_metric,
    greater_is_better,
    reliability_diagram,
)
from tunelab.models import build_model
from tunelab.plugins import LOSSES
from tunelab.runs import (
    Run,
    append_jsonl,
    atomic_write,
    command_line,
    ensure_writable,
    environment,
    load_weights,
    log_test_evaluation,
    log_unsealed_look,
    missing_seal,
    prepare_out_dir,
    read_json,
    save_weights,
    seal_of_run,
    test_evaluations,
    write_json,
)
from tunelab.spec import LinearModel, Spec, dump_spec, load_spec
from tunelab.train._callbacks import Callback, EarlyStopping
from tunelab.train._checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    discard_temporaries,
    load_checkpoint,
    save_checkpoint,
)
from tunelab.train._console import Console
from tunelab.train._diagnosis import diagnose
from tunelab.train._fit import TRAIN_SIDE_METRICS, History, choose_epoch, fit, monitored, predict
from tunelab.train._losses import build_loss, default_loss, outputs_for, to_scores

__all__ = ["train", "resume", "evaluate", "resolve_device", "Prepared", "prepare", "train_fold"]


def resolve_device(name: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(
            f"train.device is {name!r} but this machine has no CUDA device; use auto or cpu"
        )
    return device


@dataclass
class Prepared:
    """Everything a fold needs, built once: the data on the device and the resolved settings."""

    spec: Spec
    ds: Dataset
    splits: Splits
    X: torch.Tensor
    y: torch.Tensor
    device: torch.device
    bf16: bool
    loss: Any
    metrics: list[str]


def check_spec(spec: Spec) -> None:
    """Checks that need the metric registry, done before any data is loaded."""
    for name in (spec.train.metrics or []) + (spec.evaluate.metrics or []):
        get_metric(name)
    monitors = [("train.early_stopping.monitor", spec.train.early_stopping)]
    monitors.append(("train.schedule.monitor", spec.train.schedule))
    for where, section in monitors:
        monitor = getattr(section, "monitor", None)
        if monitor is None:
            continue
        base = monitor.removeprefix("val_").removeprefix("train_")
        if base != "loss" and base not in METRICS:
            valid = ["val_loss", "train_loss"] + [f"val_{m}" for m in METRICS]
            raise SpecError(
                f"{where}: unknown value {monitor!r}{did_you_mean(monitor, valid)}; "
                "use val_loss, train_loss or val_<metric>"
            )


def prepare(
    spec: Spec,
    *,
    reuse: Prepared | None = None,
    extra_metrics: Sequence[str] = (),
    splits: Splits | dict | None = None,
) -> Prepared:
    """Validate, load the data, make the splits and put the data on the device.

    With ``reuse`` the data, splits and device of an earlier :class:`Prepared` are kept and
    only the training settings come from ``spec`` (a tuning trial: data is loaded once per
    worker, not once per trial). ``extra_metrics`` are logged per epoch as well. ``splits``
    gives the parts instead of making them: a :class:`Splits`, or a run's ``splits.json``
    content, checked against the data's fingerprints.
    """
    check_spec(spec)
    if reuse is None:
        device = resolve_device(spec.train.device)
        ds = load_dataset(spec.data, seed=spec.seed)
        if isinstance(splits, dict):
            splits = Splits.from_json(splits, ds)
        elif splits is None:
            splits = make_splits(ds, spec.split, seed=spec.seed)
        # a copy: built-in sources are read-only
        X = torch.tensor(np.asarray(ds.X, dtype=np.float32), device=device)
        y = torch.tensor(np.asarray(ds.y), device=device)
    else:
        device, ds, splits, X, y = reuse.device, reuse.ds, reuse.splits, reuse.X, reuse.y
    bf16 = spec.train.precision == "bf16" or (
        spec.train.precision == "auto" and device.type == "cuda"
    )
    loss = spec.train.loss or default_loss(ds.task)
    _check_loss(loss, ds)
    logged = spec.train.metrics or [("accuracy" if ds.task == "classification" else "rmse")]
    logged = list(dict.fromkeys([*logged, *extra_metrics]))
    for name in logged:
        if get_metric(name).task != ds.task:
            raise SpecError(
                f"train.metrics: {name!r} is a {get_metric(name).task} metric but "
                f"{ds.name} is a {ds.task} task"
            )
    _check_monitors(spec, ds.task, logged)
    if spec.train.augment:
        from tunelab.data import Augment

        Augment([s.model_dump() for s in spec.train.augment]).check(ds.in_shape)
    return Prepared(spec, ds, splits, X, y, device, bf16, loss, logged)


def _check_monitors(spec: Spec, task: str, logged: list[str]) -> None:
    """Early stopping and plateau schedules can only watch values that every epoch logs."""
    values = ["val_loss", "train_loss", *(f"val_{m}" for m in logged)]
    values += [f"train_{m}" for m in logged if m in TRAIN_SIDE_METRICS[task]]
    for where, section in (
        ("train.early_stopping.monitor", spec.train.early_stopping),
        ("train.schedule.monitor", spec.train.schedule),
    ):
        monitor = getattr(section, "monitor", None)
        if monitor is not None and monitor not in values:
            raise SpecError(
                f"{where}: {monitor!r} is not logged{did_you_mean(monitor, values)}; logged: "
                f"{', '.join(values)}. Add the metric to train.metrics to watch it"
            )


def _check_loss(loss, ds: Dataset) -> None:
    facts = LOSSES.for_options(type(loss)).extra  # task, outputs
    if facts.get("task", ds.task) != ds.task:
        fitting = [p.name for p in LOSSES if p.extra.get("task", ds.task) == ds.task]
        listed = ", ".join(fitting[:-1]) + (" or " if len(fitting) > 1 else "") + fitting[-1]
        raise SpecError(
            f"train.loss is {loss.name} but {ds.name} is a {ds.task} task; use {listed}"
        )
    if facts.get("outputs") == 1 and ds.num_classes != 2:
        raise SpecError(
            f"train.loss {loss.name} is for two classes; {ds.name} has {ds.num_classes}. "
            "Use cross_entropy"
        )


def train_fold(
    prep: Prepared,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    *,
    seed: int,
    epochs: int | None = None,
    callbacks: Sequence[Callback] = (),
    on_epoch=None,
    progress=None,
    checkpoint=None,
    resume: Checkpoint | None = None,
) -> tuple[torch.nn.Module, History, Standardizer]:
    """Fit preprocessing on ``train_idx`` alone, build a fresh model and train it.

    ``checkpoint`` and ``resume`` go to :func:`fit`: the state after each epoch, and a state
    of this same fold to continue from.
    """
    spec, ds = prep.spec, prep.ds
    stats = fit_standardizer(ds.X[train_idx], spec.data.preprocess)
    torch.manual_seed(seed)
    norm = {}
    if stats.kind != "none":
        shape = stats.broadcast_shape(ds.in_shape)
        norm = {"mean": stats.mean.reshape(shape), "std": stats.std.reshape(shape)}
    model = build_model(
        spec.model,
        in_shape=ds.in_shape,
        out_features=outputs_for(prep.loss, task=ds.task, out_features=ds.out_features),
        num_classes=ds.num_classes,
        **norm,
    ).to(prep.device)
    augment = None
    if spec.train.augment:
        from tunelab.data import Augment

        augment = Augment([s.model_dump() for s in spec.train.augment])
    stopper = []
    if spec.train.early_stopping and val_idx is not None:
        es = spec.train.early_stopping
        from tunelab.evaluate import greater_is_better

        higher = es.mode == "max" or (es.mode == "auto" and greater_is_better(es.monitor))
        stopper = [
            EarlyStopping(
                monitor=es.monitor,
                greater_is_better=higher,
                patience=es.patience,
                min_delta=es.min_delta,
                restore_best=es.restore_best,
            )
        ]
    t_idx = torch.as_tensor(train_idx, device=prep.device)
    val = None
    if val_idx is not None:
        v_idx = torch.as_tensor(val_idx, device=prep.device)
        val = (prep.X[v_idx], prep.y[v_idx])
    history = fit(
        model,
        (prep.X[t_idx], prep.y[t_idx]),
        val,
        spec.train,
        task=ds.task,
        loss=prep.loss,
        metrics=prep.metrics,
        seed=seed,
        augment=augment,
        callbacks=[*stopper, *callbacks],
        bf16=prep.bf16,
        epochs=epochs,
        on_epoch=on_epoch,
        progress=progress,
        checkpoint=checkpoint,
        resume=resume,
    )
    return model, history, stats


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
    spec, ds, splits, path = prep.spec, prep.ds, prep.splits, run.path

    # --- train: one holdout fold, or every CV fold then a refit on all non-test data
    refit_only = refit_epochs is not None
    n_folds = len(splits.folds)
    fold_rows: list[dict] = []
    oof_scores: dict[int, np.ndarray] = {}
    fold_histories: list[list[dict]] = []
    history: History | None = None
    refit_rule: str | None = None  # why the refit trains as many epochs as it does
    # a holdout run is resumable: its training state is saved after every epoch
    checkpoint = _checkpointer(path) if n_folds == 1 and not refit_only else None
    for k, fold in enumerate(splits.folds if refit_epochs is None else []):
        tag = {"fold": k} if n_folds > 1 else {}
        model, history, stats = train_fold(
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
        if history.failure:
            raise RunError(f"training failed: {history.failure}")
        if history.stop_reason:
            console.note(history.stop_reason)
        fold_histories.append(history.rows)
        if n_folds > 1:
            scores, values = evaluate_part(prep, model, fold.val)
            oof_scores.update(zip(fold.val.tolist(), scores, strict=True))
            fold_rows.append(values)
    if n_folds > 1 or refit_epochs is not None:
        if refit_epochs is None:  # the refit rule on what the folds' best epochs are chosen by
            key, maximize = monitored(spec.train, has_val=True)
            choice = choose_epoch(fold_histories, key, maximize=maximize)
            refit_epochs = choice.epoch if choice else spec.train.epochs
            refit_rule = f"the best epoch of the mean {key} over {n_folds} folds"
        else:
            refit_rule = "the refit rule of the study"
        console.note(f"refit on all {len(splits.dev)} non-test samples for {refit_epochs} epochs")
        model, history, stats = train_fold(
            prep,
            splits.dev,
            None,
            seed=spec.seed + n_folds,
            epochs=refit_epochs,
            on_epoch=lambda row: (
                append_jsonl(path / "history.jsonl", {"fold": "refit"} | row),
                console.epoch(row, refit_epochs, fold=("refit", n_folds)),
            ),
            progress=console.progress_hook(),
        )
        if history.failure:
            raise RunError(f"refit failed: {history.failure}")

    # --- save the model and its preprocessing
    save_weights(path / "model.safetensors", model.state_dict())
    write_json(path / "preprocess.json", stats.to_json())

    # --- evaluate: validation (holdout or out-of-fold), then the sealed test part once
    metrics: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    if not refit_only:
        if n_folds == 1:
            val_idx = splits.folds[0].val
            val_scores, val_values = evaluate_part(prep, model, val_idx)
        else:  # pooled out-of-fold predictions: an honest estimate, without one model's loss
            val_idx = np.array(sorted(oof_scores))
            val_scores = np.stack([oof_scores[i] for i in val_idx.tolist()])
            val_values = _metrics(prep, val_idx, val_scores)
            write_json(path / "folds.json", {"folds": fold_rows, **_mean_std(fold_rows)})
        metrics["val"] = _slots(prep, val_idx, val_scores, val_values)
        arrays = {"val_index": val_idx, "val_y": prep.ds.y[val_idx], "val_score": val_scores}
    if spec.evaluate.test and len(splits.test):
        # a refit's look is logged by its study, with the trial it refits
        sealed = None if refit_only else _before_test_look(run, spec)
        test_scores, test_values = evaluate_part(prep, model, splits.test)
        if sealed is not None:
            _log_test_look(run, spec, sealed, test_values, fingerprint(ds, splits.test))
        metrics["test"] = _slots(prep, splits.test, test_scores, test_values)
        arrays |= {
            "test_index": splits.test,
            "test_y": prep.ds.y[splits.test],
            "test_score": test_scores,
        }
    write_json(path / "metrics.json", metrics)
    run.write_predictions(arrays)
    if prep.ds.task == "classification" and arrays:
        write_json(path / "calibration.json", _calibration(prep, arrays))
    diagnosis = None
    if not refit_only:  # over/under-fitting, from the (first) fold's validation history
        rows = [r for r in run.history if r.get("fold", 0) == 0]
        main = prep.metrics[0] if prep.metrics else None
        diagnosis = diagnose(rows, metric=main, higher_is_better=greater_is_better(main or "loss"))
        if diagnosis:
            write_json(path / "diagnosis.json", diagnosis)
    (path / CHECKPOINT_FILE).unlink(missing_ok=True)  # finished: nothing left to resume

    console.summary(
        run,
        metrics,
        history,
        fold_rows,
        _affine_summary(spec, ds, model),
        seconds=time.perf_counter() - started,
        best=None if refit_rule else _best_label(spec, history),
        refit=f"refit: trained {len(history.rows)} epochs ({refit_rule})" if refit_rule else None,
    )
    if diagnosis and not console.quiet:
        console.print(f"diagnosis: {diagnosis['verdict']}", markup=False)
    return run


def _best_label(spec: Spec, history: History) -> str | None:
    """``best epoch 7 by val_loss of 10 trained`` (the refit rule on one curve), or None."""
    watched = monitored(spec.train, has_val=True)
    if history.best_epoch is None or watched is None:
        return None
    return f"best epoch {history.best_epoch} by {watched[0]} of {len(history.rows)} trained"


def evaluate(
    run: Run | str | Path,
    *,
    split: str = "test",
    quiet: bool = False,
    console: Console | None = None,
) -> dict[str, float]:
    """Evaluate a saved run's model on one of its parts and update ``metrics.json``.

    The data is re-read and checked against the fingerprints in ``splits.json``; the weights
    come from ``model.safetensors``.
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
    model = _load_model(run, prep)
    sealed = _before_test_look(run, spec) if split == "test" else None
    if split == "val" and any(row.get("fold") == "refit" for row in run.history):
        print(
            f"warning: {run.path} is a refit on all non-test data: its model was trained on "
            "these val rows, so this val score is not an honest estimate (the study's trial "
            "values are; so is one look at the sealed test part)",
            file=sys.stderr,
        )
    scores, values = evaluate_part(prep, model, idx)
    metrics = run.metrics
    metrics[split] = _slots(prep, idx, scores, values)
    write_json(run.path / "metrics.json", metrics)
    run.write_predictions(
        {f"{split}_index": idx, f"{split}_y": prep.ds.y[idx], f"{split}_score": scores}
    )
    console = console or Console(quiet=quiet)
    if not console.quiet:
        console.metrics_table({split: metrics[split]})
    if sealed is not None:
        _log_test_look(run, spec, sealed, values, fingerprint(prep.ds, idx))
    return values


def _before_test_look(run: Run, spec: Spec) -> tuple[Path | None, str | None] | None:
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


def _log_test_look(
    run: Run, spec: Spec, sealed: tuple[Path | None, str | None], values: dict, fp: str
) -> None:
    """Log a look at a sealed test part in the study's seal, or in the run if it is missing."""
    folder, why = sealed
    if folder is not None:
        log_test_evaluation(folder, run=run.path.resolve(), metrics=values, fingerprint=fp)
    elif why is not None and spec.evaluate.seal is not None:
        log_unsealed_look(run.path, spec.evaluate.seal, why=why, metrics=values)


def _load_model(run: Run, prep: Prepared) -> torch.nn.Module:
    stats = Standardizer.from_json(read_json(run.path / "preprocess.json"))
    norm = {}
    if stats.kind != "none":
        shape = stats.broadcast_shape(prep.ds.in_shape)
        norm = {"mean": stats.mean.reshape(shape), "std": stats.std.reshape(shape)}
    model = build_model(
        prep.spec.model,
        in_shape=prep.ds.in_shape,
        out_features=outputs_for(prep.loss, task=prep.ds.task, out_features=prep.ds.out_features),
        num_classes=prep.ds.num_classes,
        **norm,
    )
    state = load_weights(run.path / "model.safetensors")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunError(
            f"{run.path / 'model.safetensors'} does not fit the model in spec.yaml: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return model.to(prep.device)


def evaluate_part(
    prep: Prepared, model: torch.nn.Module, idx: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """One pass of the model over a part: its scores, and every metric with the loss."""
    t_idx = torch.as_tensor(idx, device=prep.device)
    out = predict(model, prep.X[t_idx], batch_size=prep.spec.train.eval_batch_size, bf16=prep.bf16)
    loss = float(build_loss(prep.loss, device=prep.device)(out, prep.y[t_idx]))
    scores = to_scores(out, prep.loss, task=prep.ds.task).cpu().numpy()
    return scores, _metrics(prep, idx, scores, loss=loss)


def _metrics(
    prep: Prepared, idx: np.ndarray, scores: np.ndarray, *, loss: float | None = None
) -> dict[str, float]:
    """Every evaluation metric of the task (or the spec's list), after the loss if given."""
    names = prep.spec.evaluate.metrics or list(DEFAULT_METRICS[prep.ds.task])
    values = {"loss": loss} if loss is not None else {}
    return values | compute_metrics(prep.ds.task, prep.ds.y[idx], scores, names=names)


def _slots(prep: Prepared, idx: np.ndarray, scores: np.ndarray, values: dict[str, float]) -> dict:
    """``metric -> {"value": v, "ci": {low, high, level, method, n_resamples} | None}``.

    Intervals are bootstrap intervals over the part's samples (``evaluate.ci``); the loss has
    none (it is reported for reading the training curves, not for comparing models).
    """
    cfg = prep.spec.evaluate.ci
    cis = {}
    names = [k for k in values if k != "loss"]
    if cfg.resamples and names and len(idx) > 1:
        cis = bootstrap_ci(
            prep.ds.task,
            prep.ds.y[idx],
            scores,
            names=names,
            n_resamples=cfg.resamples,
            level=cfg.level,
            method=cfg.method,
            seed=prep.spec.seed,
            stratified=cfg.stratified,
        )
    return {
        k: {"value": v, "ci": cis[k].to_json() if k in cis else None} for k, v in values.items()
    }


def _calibration(prep: Prepared, arrays: dict[str, np.ndarray]) -> dict:
    """ECE (equal-width and equal-mass bins), Brier score and reliability-diagram data per
    part; with ``evaluate.temperature``, a temperature fitted on the validation part alone and
    the test part's calibration after it."""
    out: dict = {}
    for part in ("val", "test"):
        if f"{part}_score" not in arrays:
            continue
        y, score = arrays[f"{part}_y"], arrays[f"{part}_score"]
        out[part] = {
            "ece": expected_calibration_error(y, score, strategy="uniform"),
            "ece_equal_mass": expected_calibration_error(y, score, strategy="quantile"),
            "brier": brier_score(y, score),
            "reliability": reliability_diagram(y, score),
        }
    if prep.spec.evaluate.temperature and "val_score" in arrays:
        t = fit_temperature(arrays["val_y"], arrays["val_score"])
        out["temperature"] = t
        if "test_score" in arrays:
            y, calibrated = arrays["test_y"], apply_temperature(arrays["test_score"], t)
            out["test_calibrated"] = {
                "ece": expected_calibration_error(y, calibrated, strategy="uniform"),
                "brier": brier_score(y, calibrated),
                "log_loss": compute_metrics("classification", y, calibrated, names=["log_loss"])[
                    "log_loss"
                ],
                "reliability": reliability_diagram(y, calibrated),
            }
    return out


def _mean_std(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = rows[0].keys() if rows else []
    arr = {k: np.array([r[k] for r in rows], dtype=float) for k in keys}
    return {
        "mean": {k: float(np.nanmean(v)) for k, v in arr.items()},
        "std": {k: float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in arr.items()},
    }


def _affine_summary(spec: Spec, ds: Dataset, model: torch.nn.Module) -> str | None:
    """For a linear regression on few features: the learned line in the data's own units."""
    if not isinstance(spec.model, LinearModel) or ds.task != "regression" or ds.in_features > 3:
        return None
    device = next(model.parameters()).device
    with torch.no_grad():
        model.eval()
        probe = torch.cat([torch.zeros(1, ds.in_features), torch.eye(ds.in_features)]).to(device)
        out = model(probe.reshape(-1, *ds.in_shape)).reshape(len(probe), -1)[:, 0].cpu()
    intercept = float(out[0])
    slopes = (out[1:] - out[0]).tolist()
    names = ds.feature_names or [f"x{i}" for i in range(ds.in_features)]
    terms = " + ".join(f"{w:.4f} * {n}" for w, n in zip(slopes, names, strict=True))
    sign = "+" if intercept >= 0 else "-"
    return f"learned: y = {terms} {sign} {abs(intercept):.4f}"
