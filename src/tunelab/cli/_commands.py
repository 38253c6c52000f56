"""The commands that train, tune, evaluate, report and compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli._app import (
    QuietOption,
    SetOption,
    app,
    interrupted_study,
    report_folder,
    results_stay,
)
from tunelab.cli._track import MlflowOption, TensorboardOption, check_trackers, track_folder
from tunelab.errors import TunelabError


@app.command()
def train(
    ctx: typer.Context,
    spec: Annotated[Path | None, typer.Argument(help="spec file (YAML)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="run folder (default runs/<name>)")
    ] = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
    seeds: Annotated[
        int | None,
        typer.Option("--seeds", help="train K times (seed, seed+1, ...): mean ± std, t-interval"),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="continue the interrupted run in this folder (no SPEC)"),
    ] = None,
    nproc: Annotated[
        int | None,
        typer.Option("--nproc", help="data-parallel processes (DDP: gloo on CPU, nccl on CUDA)"),
    ] = None,
    mlflow: MlflowOption = None,
    tensorboard: TensorboardOption = None,
) -> None:
    """Train the model a spec describes; print one line per epoch; write a run folder."""
    results_stay(ctx)
    import tunelab

    check_trackers(mlflow, tensorboard)
    if seeds and (mlflow or tensorboard):
        raise TunelabError(
            "--seeds trains K runs: log each afterwards with tunelab track RUN --mlflow/--tensorboard"
        )
    if nproc is not None or _under_torchrun():
        path = _train_parallel(spec, out, set_ or [], quiet, resume, nproc, seeds)
        if path is not None:
            track_folder(path, mlflow, tensorboard)
        return
    if resume is not None:
        if spec is not None or out is not None or set_ or seeds:
            raise TunelabError(
                "--resume R continues the run in R with its own R/spec.yaml; give no SPEC, "
                "--out, --set or --seeds with it"
            )
        run = tunelab.resume(resume, quiet=quiet)
        report_folder(run.path, quiet=quiet)
        track_folder(run.path, mlflow, tensorboard)
        return
    if spec is None:
        raise TunelabError(
            "missing SPEC: tunelab train SPEC [--out R], or tunelab train --resume R"
        )
    if seeds:
        from tunelab.train import train_seeds

        train_seeds(spec, seeds=seeds, out=out, overrides=set_ or [], quiet=quiet)
        return
    run = tunelab.train(spec, out=out, overrides=set_ or [], quiet=quiet)
    report_folder(run.path, quiet=quiet)
    track_folder(run.path, mlflow, tensorboard)


def _under_torchrun() -> bool:
    from tunelab.train._ranks import from_torchrun

    return from_torchrun()


def _train_parallel(spec, out, overrides, quiet, resume, nproc, seeds) -> Path | None:
    """`tunelab train --nproc N` (or under torchrun): one model, data-parallel. The run
    folder, in the process that writes it (None in the other ranks under torchrun)."""
    from tunelab.train._ddp import launch, run_rank

    if seeds:
        raise TunelabError("--seeds trains K separate runs; data-parallel training is one run")
    if resume is None and spec is None:
        raise TunelabError("missing SPEC: tunelab train SPEC --nproc N [--out R]")
    if resume is not None and (spec is not None or out is not None or overrides):
        raise TunelabError("--resume R continues the run in R; give no SPEC, --out or --set")
    if resume is None and out is None:
        import tunelab

        out = Path("runs") / tunelab.load_spec(spec, overrides=overrides).name
    job = {"spec": spec and str(spec), "out": str(resume or out), "overrides": overrides,
           "quiet": quiet, "resume": resume and str(resume)}  # fmt: skip
    if _under_torchrun():  # torchrun started this process as one rank of several
        import os

        path = run_rank(job)
        if os.environ.get("RANK") != "0":
            return None
        report_folder(path, quiet=quiet)
        return path
    path = launch(job, nproc)
    report_folder(path, quiet=quiet)
    return path


@app.command()
def tune(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="spec file (YAML) with a tune section")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="study folder (default studies/<name>)")
    ] = None,
    set_: SetOption = None,
    trials: Annotated[
        int | None, typer.Option("--trials", help="total trials (failed and pruned count)")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="seconds for the search")
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            "--objectives",
            help="multi-objective: e.g. val.accuracy,latency_ms (also size_mb, params)",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="worker processes on this machine")
    ] = 1,
    storage: Annotated[
        str | None, typer.Option("--storage", help="SQLAlchemy URL, e.g. postgresql://host/db")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the study in --out")] = False,
    nested: Annotated[int | None, typer.Option("--nested", help="outer folds of nested CV")] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="local (processes here) or ray (trials as Ray tasks)")
    ] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster (auto, ray://host:10001)")
    ] = None,
    trial_cpus: Annotated[float, typer.Option("--trial-cpus", help="Ray CPUs per trial")] = 1,
    trial_gpus: Annotated[float, typer.Option("--trial-gpus", help="Ray GPUs per trial")] = 0,
    quiet: QuietOption = False,
    mlflow: MlflowOption = None,
    tensorboard: TensorboardOption = None,
) -> None:
    """Search hyperparameters; refit the best on all non-test data; evaluate the test part once."""
    results_stay(ctx)
    import tunelab
    from tunelab.errors import Interrupted, raise_on_sigterm

    raise_on_sigterm()
    check_trackers(mlflow, tensorboard)
    try:
        result = tunelab.tune_study(
            spec,
            out=out,
            overrides=[*(set_ or []), *_objectives_override(objectives)],
            trials=trials,
            timeout=timeout,
            workers=workers,
            storage=storage,
            resume=resume,
            nested=nested,
            quiet=quiet,
            executor=executor,
            address=address,
            trial_cpus=trial_cpus,
            trial_gpus=trial_gpus,
        )
    except KeyboardInterrupt as stop:
        code = stop.exit_code if isinstance(stop, Interrupted) else 130
        interrupted_study(spec, out, set_ or [], storage)
        raise typer.Exit(code) from None
    _record_study(result, quiet=quiet, storage=storage, trackers=(mlflow, tensorboard))


def _record_study(result, *, quiet: bool, storage: str | None, trackers: tuple) -> None:
    """The reports of a finished study (or of each outer study of nested CV), then the
    trackers asked for (``--mlflow``, ``--tensorboard``)."""
    if result.nested is not None:  # a study per outer fold; the folder itself is not a study
        for k in range(result.nested["outer_folds"]):
            report_folder(result.path / f"outer_{k}" / "best", quiet=True)
            report_folder(result.path / f"outer_{k}", quiet=True)
        if not quiet:
            typer.echo(f"reports: {result.path / 'outer_*' / 'report.html'}")
        for k in range(result.nested["outer_folds"]):  # each outer study: a parent run
            track_folder(result.path / f"outer_{k}", *trackers)
        return
    if result.best_run is not None:
        report_folder(result.best_run.path, quiet=True)
    report_folder(result.path, quiet=quiet, storage=storage)
    track_folder(result.path, *trackers)


def _objectives_override(text: str | None) -> list[str]:
    """``--objectives a,b`` as the override ``tune.objectives=[a, b]`` (validated with the spec)."""
    if text is None:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    return [f"tune.objectives=[{', '.join(names)}]"]


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(help="a run folder or a study folder")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file (default FOLDER/report.html)")
    ] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="the study's storage URL, if it has a password")
    ] = None,
) -> None:
    """Write one self-contained HTML report (figures, tables, numbers) of a run or a study."""
    from tunelab.report import write_report

    typer.echo(f"report: {write_report(folder, output, storage=storage)}")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="run folder")],
    split: Annotated[str, typer.Option("--split", help="test, val or train")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON")] = False,
) -> None:
    """Evaluate a saved run on one of its parts and update its metrics.json."""
    import tunelab

    values = tunelab.evaluate_run(run, split=split, quiet=as_json)
    if (run / "report.html").is_file():  # the report shows the new numbers too
        report_folder(run, quiet=True)
    if as_json:
        typer.echo(json.dumps({split: values}, indent=2))


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="run folder A")],
    run_b: Annotated[Path, typer.Argument(help="run folder B")],
    split: Annotated[str, typer.Option("--split", help="test or val")] = "test",
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="metric to compare (repeatable)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """Is B really better than A? Paired tests on the same samples, in one sentence each."""
    from tunelab.report import compare_runs

    result = compare_runs(run_a, run_b, split=split, metrics=metric or None)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    typer.echo(
        f"A = {result.run_a}\nB = {result.run_b}\n{result.split}: {result.n} samples, same "
        "split fingerprint"
    )
    for m in result.metrics:
        typer.echo(
            f"{m.metric}: A {m.value_a:.4f}, B {m.value_b:.4f}; B - A = {m.diff:+.4f} "
            f"[{m.low:+.4f}, {m.high:+.4f}], {m.test} p = {m.p_value:.3g}"
        )
        typer.echo(f"  {m.verdict}")
    if result.folds:
        typer.echo(f"over {result.folds['folds']} folds: {result.folds['verdict']}")
    for look in result.looks:
        typer.echo(
            f"logged as look {look['evaluations']} at the sealed test part of study "
            f"{look['study']}; every look after the first makes the test estimate less honest"
        )


@app.command()
def dashboard(
    study: Annotated[Path, typer.Argument(help="study folder (written by tunelab tune)")],
    host: Annotated[
        str, typer.Option("--host", help="address to bind; any but 127.0.0.1 exposes the study")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port; 0 picks a free one")] = 8080,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="storage URL with its password, when study.json hides it"),
    ] = None,
) -> None:
    """Serve optuna-dashboard for a study, and the study folder's files under /files/."""
    from tunelab.report import dashboard as serve

    serve(study, host=host, port=port, storage=storage)


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="run folder (a study's best/ is one too)")],
    data: Annotated[
        Path, typer.Argument(help="new data: .csv, .parquet, .jsonl, .npz, .npy or an image folder")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="predictions: .csv, .parquet, .jsonl or .npz")
    ],
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="samples per batch (default the run's)")
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Predict with a saved run on new data: class and probability per class, or the value."""
    from tunelab.data import write_table
    from tunelab.runs import Run
    from tunelab.train import Predictor

    predictor = Predictor(Run(run))
    result = predictor.predict(data, batch_size=batch_size)
    columns = result.arrays() if out.suffix.lower() == ".npz" else result.columns()
    write_table(out, columns)
    if not quiet:
        typer.echo(f"{len(result)} predictions ({result.task}) -> {out}")
