"""`tunelab worker`: join a study started by `tunelab tune --storage URL`, from any machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli._app import app


@app.command()
def worker(
    storage: Annotated[
        str, typer.Option("--storage", help="the study's SQLAlchemy URL, e.g. postgresql://host/db")
    ],
    study: Annotated[
        str | None,
        typer.Option("--study", help="the study's name (left out: the studies there are listed)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="folder of this machine's trial files (studies/<name>)"),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", help="worker processes on this machine")
    ] = 1,
) -> None:
    """Run trials of a study in a shared storage until its total is met; needs only the data."""
    from tunelab.errors import raise_on_sigterm
    from tunelab.tune import join_study, redact, studies_in

    if study is None:
        names = studies_in(storage)
        typer.echo(f"studies in {redact(storage)} (join one with --study NAME):")
        for name, trials in names:
            typer.echo(f"  {name}  ({trials} trials)")
        if not names:
            typer.echo("  none: start one with tunelab tune SPEC --storage URL")
        return
    raise_on_sigterm()
    typer.echo(f"worker: joining study {study} in {redact(storage)}")
    name, held, folder = join_study(storage, study, out=out, workers=workers)
    typer.echo(f"worker done: study {name} holds {held} trial(s); this machine's files: {folder}")
