"""The Typer apps, the options several commands share, and the helpers of the commands."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated

import typer

from tunelab._version import __version__
from tunelab.errors import RunError, TunelabError

app = typer.Typer(
    name="tunelab",
    help="Train, evaluate and tune PyTorch models, honestly.",
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Download and inspect data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
curve_app = typer.Typer(
    help="Learning and validation curves with cross-validation.", no_args_is_help=True
)
app.add_typer(curve_app, name="curve")


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


def results_stay(ctx: typer.Context) -> None:
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


def report_folder(folder: Path, *, quiet: bool, storage: str | None = None) -> None:
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


def console():
    """Rich output for tables: the terminal's width on a terminal; piped or redirected, wide
    enough that no cell is wrapped or cut (rich would fit the table into 80 columns)."""
    from rich.console import Console

    width = None if sys.stdout.isatty() else 10_000
    return Console(highlight=False, soft_wrap=True, width=width)


def cells(*values: object) -> list:
    """Table cells as plain text: a description's ``[y == c]`` is not rich markup."""
    from rich.text import Text

    return [Text(str(v)) for v in values]


def floats(text: str, what: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise TunelabError(
            f"{what}: expected comma-separated numbers, e.g. 0.1,0.5,1.0; got {text!r}"
        ) from None


def whole_descriptions(*apps: typer.Typer) -> None:
    """Give each command's --help line its docstring's first paragraph, whole: by default
    click cuts it at the first full stop or at about 45 characters, ending in "..."."""
    for each in apps:
        for info in each.registered_commands:
            if info.short_help is None and info.callback is not None and info.callback.__doc__:
                first = inspect.cleandoc(info.callback.__doc__).split("\n\n")[0]
                info.short_help = " ".join(first.split())


def interrupted_study(spec: Path, out: Path | None, overrides: list[str], storage: str | None):
    """After Ctrl-C or SIGTERM: how many trials the study keeps, and the command that goes on."""
    import tunelab
    from tunelab.tune import open_storage, redact

    try:
        name = tunelab.load_spec(spec, overrides=overrides).name
        folder = out if out is not None else Path("studies") / name
        if not (folder / "study.json").is_file():
            raise RunError(f"{folder} holds no study yet")
        import optuna

        study = optuna.load_study(study_name=name, storage=open_storage(folder, storage)[0])
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        kept = sum(s in ("COMPLETE", "PRUNED") for s in states)
        what = f"{kept} finished trial(s) kept in {folder}"
    except Exception:  # noqa: BLE001 - the study may not have started: say what can be said
        folder, what = out or Path("studies"), "the study is kept as far as it got"
    again = f"tunelab tune {spec} --out {folder} --resume"
    if storage:
        again += f" --storage {redact(storage)}"
    print(f"interrupted: {what}; continue with: {again}", file=sys.stderr)
