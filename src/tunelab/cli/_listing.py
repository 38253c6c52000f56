"""The commands that list: data sets, plug-ins; and the data download."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli._app import app, cells, data_app
from tunelab.cli._app import console as rich_console
from tunelab.errors import TunelabError, did_you_mean


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
            *cells(info.name, info.task, info.samples, info.shape, info.classes, info.origin)
        )
    console = rich_console()
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

    console = rich_console()
    if name is not None and "." in name:
        plugin = find_plugin(name)
        console.print(f"{plugin.kind} {plugin.name}: {plugin.summary}", markup=False)
        console.print(f"from: {plugin.origin} ({plugin.module})", markup=False)
        table = Table(show_edge=False, header_style="bold")
        for col in ("option", "type", "default", "description"):
            table.add_column(col, overflow="fold")
        for row in plugin.option_fields():
            table.add_row(*cells(*row))
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
                table.add_row(*cells(r.name, r.summary, r.options, r.origin))
        console.print(table)
    for where, error in failed_plugins():
        console.print(f"failed to load: {where}: {error}", markup=False)
    if name is None:
        console.print(
            "your own model: model: {name: ./file.py:Class, ...} or pkg.module:Class; "
            "one plug-in in full: tunelab plugins model.cnn",
            markup=False,
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
