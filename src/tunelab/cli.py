"""The `tunelab` command: a thin Typer app over the public library API.

Usage errors and :class:`TunelabError` print one message and exit 2; a traceback appears only
with ``--debug`` (accepted anywhere on the command line).
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tunelab._version import __version__
from tunelab.errors import TunelabError, did_you_mean

app = typer.Typer(
    name="tunelab",
    help="Train, evaluate and tune PyTorch models, honestly.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Download and inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="override a spec value: dotted.path=value (repeatable)"),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="no progress lines (per epoch, per trial); the results stay"
    ),
]


def _results_stay(ctx: typer.Context) -> None:
    """``--quiet`` drops the progress lines, not the results (the metrics table, the summary,
    the best trials); ``quiet=True`` in Python prints nothing at all."""
    from tunelab.train._console import results_when_quiet

    ctx.with_resource(results_when_quiet())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tunelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")
    ] = False,
    debug: Annotated[  # read by main() wherever it stands; declared here for --help
        bool,
        typer.Option("--debug", help="show tracebacks (accepted anywhere on the command line)"),
    ] = False,
) -> None:
    """Train, evaluate and tune PyTorch models, honestly."""


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
) -> None:
    """Train the model a spec describes; print one line per epoch; write a run folder."""
    _results_stay(ctx)
    import tunelab

    if resume is not None:
        if spec is not None or out is not None or set_ or seeds:
            raise TunelabError(
                "--resume R continues the run in R with its own R/spec.yaml; give no SPEC, "
                "--out, --set or --seeds with it"
            )
        run = tunelab.resume(resume, quiet=quiet)
        _report(run.path, quiet=quiet)
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
    _report(run.path, quiet=quiet)


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
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="worker processes on this machine")
    ] = 1,
    storage: Annotated[
        str | None, typer.Option("--storage", help="SQLAlchemy URL, e.g. postgresql://host/db")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the study in --out")] = False,
    nested: Annotated[int | None, typer.Option("--nested", help="outer folds of nested CV")] = None,
    quiet: QuietOption = False,
) -> None:
    """Search hyperparameters; refit the best on all non-test data; evaluate the test part once."""
    _results_stay(ctx)
    import tunelab

    result = tunelab.tune_study(
        spec,
        out=out,
        overrides=set_ or [],
        trials=trials,
        timeout=timeout,
        workers=workers,
        storage=storage,
        resume=resume,
        nested=nested,
        quiet=quiet,
    )
    if result.nested is not None:  # a study per outer fold; the folder itself is not a study
        for k in range(result.nested["outer_folds"]):
            _report(result.path / f"outer_{k}" / "best", quiet=True)
            _report(result.path / f"outer_{k}", quiet=True)
        if not quiet:
            typer.echo(f"reports: {result.path / 'outer_*' / 'report.html'}")
        return
    if result.best_run is not None:
        _report(result.best_run.path, quiet=True)
    _report(result.path, quiet=quiet, storage=storage)


def _report(folder: Path, *, quiet: bool, storage: str | None = None) -> None:
    """The HTML report at the end of train and tune. The results are already saved, so a
    report that cannot be drawn is a warning with its reason, not a failed command."""
    from tunelab.report import write_report

    try:
        path = write_report(folder, storage=storage)
    except Exception as exc:  # noqa: BLE001 - any failure here must not hide the saved results
        print(
            f"warning: no report written for {folder}: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return
    if not quiet:
        typer.echo(f"report: {path}")


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
        _report(run, quiet=True)
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
def datasets() -> None:
    """List the data sets that need no files, and the file sources a spec can name."""
    from rich.table import Table

    from tunelab.data import BUILTINS

    table = Table(show_edge=False, header_style="bold")
    for col in ("source", "task", "samples", "sample shape", "classes", "from"):
        table.add_column(col)
    for info in BUILTINS:
        table.add_row(
            *_cells(info.name, info.task, info.samples, info.shape, info.classes, info.origin)
        )
    console = _console()
    console.print(table)
    console.print(
        "Full MNIST: tunelab data download mnist --dir data/mnist, then "
        "data: {source: mnist, path: data/mnist}",
        markup=False,
    )
    console.print(
        "Your own files: data: {source: csv|parquet|npz|images, path: P, target: COL, "
        "features: [...]}  (npz holds arrays X and y; images: one sub-folder per class)",
        markup=False,
    )


@app.command()
def plugins(
    name: Annotated[
        str | None,
        typer.Argument(help="a kind (model, optimizer, ...) or one plug-in as kind.name"),
    ] = None,
) -> None:
    """List every registered plug-in with its options and defaults, or one plug-in in full."""
    from rich.table import Table

    from tunelab.plugins._describe import failed_plugins, find_plugin, list_plugins

    console = _console()
    if name is not None and "." in name:
        plugin = find_plugin(name)
        console.print(f"{plugin.kind} {plugin.name}: {plugin.summary}", markup=False)
        console.print(f"from: {plugin.origin} ({plugin.module})", markup=False)
        table = Table(show_edge=False, header_style="bold")
        for col in ("option", "type", "default", "description"):
            table.add_column(col, overflow="fold")
        for row in plugin.option_fields():
            table.add_row(*_cells(*row))
        if plugin.option_fields():
            console.print(table)
        else:
            console.print("no options", markup=False)
        return
    rows = list_plugins(name)
    for kind in dict.fromkeys(r.kind for r in rows):
        table = Table(title=kind, title_justify="left", show_edge=False, header_style="bold")
        for col in ("name", "description", "options (defaults)", "from"):
            table.add_column(col, overflow="fold")
        for r in rows:
            if r.kind == kind:
                table.add_row(*_cells(r.name, r.summary, r.options, r.origin))
        console.print(table)
    for where, error in failed_plugins():
        console.print(f"failed to load: {where}: {error}", markup=False)
    if name is None:
        console.print(
            "your own model: model: {name: ./file.py:Class, ...} or pkg.module:Class; "
            "one plug-in in full: tunelab plugins model.cnn",
            markup=False,
        )


curve_app = typer.Typer(
    help="Learning and validation curves with cross-validation.", no_args_is_help=True
)
app.add_typer(curve_app, name="curve")


def _console():
    """Rich output for tables: the terminal's width on a terminal; piped or redirected, wide
    enough that no cell is wrapped or cut (rich would fit the table into 80 columns)."""
    from rich.console import Console

    width = None if sys.stdout.isatty() else 10_000
    return Console(highlight=False, soft_wrap=True, width=width)


def _cells(*values: object) -> list:
    """Table cells as plain text: a description's ``[y == c]`` is not rich markup."""
    from rich.text import Text

    return [Text(str(v)) for v in values]


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise TunelabError(
            f"{what}: expected comma-separated numbers, e.g. 0.1,0.5,1.0; got {text!r}"
        ) from None


CurveMetric = Annotated[str | None, typer.Option("--metric", help="default accuracy or rmse")]
CurveFolds = Annotated[int, typer.Option("--folds", help="CV folds when the spec has none")]
CurveOut = Annotated[Path | None, typer.Option("--out", "-o", help="JSON file")]


@curve_app.command("learning")
def curve_learning(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="spec file (YAML)")],
    sizes: Annotated[
        str, typer.Option("--sizes", help="fractions of each fold's training part")
    ] = "0.1,0.25,0.5,1.0",
    metric: CurveMetric = None,
    folds: CurveFolds = 5,
    out: CurveOut = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train/val score against training-set size (mean ± std over folds)."""
    _results_stay(ctx)
    from tunelab.train import learning_curve

    learning_curve(
        spec,
        sizes=_floats(sizes, "--sizes"),
        metric=metric,
        folds=folds,
        out=out,
        overrides=set_ or [],
        quiet=quiet,
    )


@curve_app.command("validation")
def curve_validation(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="spec file (YAML)")],
    param: Annotated[
        str, typer.Option("--param", help="dotted spec path, e.g. train.optimizer.lr")
    ],
    values: Annotated[str, typer.Option("--values", help="comma-separated values (YAML scalars)")],
    metric: CurveMetric = None,
    folds: CurveFolds = 5,
    out: CurveOut = None,
    set_: SetOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train/val score against the values of one spec path (mean ± std over folds)."""
    _results_stay(ctx)
    import yaml

    from tunelab.train import validation_curve

    parsed = [yaml.safe_load(v) for v in values.split(",") if v.strip()]
    validation_curve(
        spec,
        param=param,
        values=parsed,
        metric=metric,
        folds=folds,
        out=out,
        overrides=set_ or [],
        quiet=quiet,
    )


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="data set to download (mnist)")],
    directory: Annotated[Path, typer.Option("--dir", help="target folder")] = Path("data/mnist"),
    url_base: Annotated[
        str | None, typer.Option("--url-base", help="mirror URL the files sit under")
    ] = None,
    checksums: Annotated[
        Path | None,
        typer.Option("--checksums", help="JSON {file: md5} for a mirror with other files"),
    ] = None,
) -> None:
    """Download a data set's files with checksum verification."""
    from tunelab.data import MNIST_URL_BASE, download_mnist, load_checksums

    if name != "mnist":
        raise TunelabError(
            f"cannot download {name!r}{did_you_mean(name, ['mnist'])}; downloadable: mnist"
        )
    paths = download_mnist(
        directory,
        url_base=url_base or MNIST_URL_BASE,
        checksums=load_checksums(checksums) if checksums else None,
        progress=True,
    )
    for path in paths:
        typer.echo(f"ok  {path}")
    typer.echo(f"use it with: data: {{source: mnist, path: {directory}}}")


def _whole_descriptions(*apps: typer.Typer) -> None:
    """Give each command's --help line its docstring's first paragraph, whole: by default
    click cuts it at the first full stop or at about 45 characters, ending in "..."."""
    for each in apps:
        for info in each.registered_commands:
            if info.short_help is None and info.callback is not None and info.callback.__doc__:
                first = inspect.cleandoc(info.callback.__doc__).split("\n\n")[0]
                info.short_help = " ".join(first.split())


_whole_descriptions(app, data_app, curve_app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m tunelab``."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        # standalone mode: typer prints usage errors itself and exits 2
        app(args=args, prog_name="tunelab")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except TunelabError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug, or the user's own code: one line unless --debug
        if debug:
            raise
        from tunelab.tune import disk_trouble

        why = disk_trouble(exc)
        if why is not None:  # a disk that filled (or turned read-only) during the work
            print(
                f"error: {why}. What was written before is kept; free some space (or make the "
                "folder writable) and run again (`--resume` continues a run or a study)",
                file=sys.stderr,
            )
            sys.exit(2)
        print(
            f"error: {type(exc).__name__}: {exc}\n"
            "(unexpected; rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
