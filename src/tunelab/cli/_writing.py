"""The commands that help write a spec: its JSON Schema for editors, and a starting spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli._app import app


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="JSON file to write (default: print it)"),
    ] = None,
) -> None:
    """Write the JSON Schema of a spec file, for editor completion, hover help and checks."""
    import json

    from tunelab.spec import spec_schema, write_schema

    if output is None:
        typer.echo(json.dumps(spec_schema(), indent=2))
        return
    typer.echo(f"schema: {write_schema(output)}")


@app.command()
def init(
    data: Annotated[
        Path,
        typer.Argument(help="a .csv or .parquet table, or a folder with a sub-folder per class"),
    ],
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="the table's column to predict")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="spec file to write")] = Path(
        "spec.yaml"
    ),
    force: Annotated[bool, typer.Option("--force", help="overwrite OUTPUT if it exists")] = False,
) -> None:
    """Write a commented starting spec from a data file: task, columns, split, model."""
    import sys

    from tunelab.errors import TunelabError
    from tunelab.spec import starter_spec

    if output.exists() and not force:
        raise TunelabError(f"{output} exists; choose another --output or pass --force")
    starter = starter_spec(data, target=target)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(starter.text)
    for note in starter.notes:
        print(f"note: {note}", file=sys.stderr)
    facts = starter.facts
    classes = f", {len(facts.classes)} classes" if getattr(facts, "classes", None) else ""
    typer.echo(f"spec: {output} ({facts.kind}: {facts.rows} samples, {facts.task}{classes})")
    typer.echo(f"next: tunelab train {output}")
