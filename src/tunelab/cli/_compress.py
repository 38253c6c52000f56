"""`tunelab compress`: variants of a trained run, measured against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tunelab.cli._app import app, cells, report_folder
from tunelab.cli._app import console as rich_console


@app.command()
def compress(
    run: Annotated[Path, typer.Argument(help="run folder (a study's best/ is one too)")],
    method: Annotated[
        list[str],
        typer.Option(
            "--method",
            "-m",
            help="onnx, onnx-int8, onnx-int8-static, torch-int8, prune:0.5[+finetune:2], "
            "prune-channels:0.25, fp16, bf16, or all (repeatable)",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="folder of the variants (default RUN-compressed)"),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU threads for the latency (default torch's)")
    ] = None,
    repeats: Annotated[
        int, typer.Option("--repeats", help="timed passes per latency (the median is kept)")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print compression.json")] = False,
) -> None:
    """Shrink a trained run several ways; each variant's accuracy, size and latency against it."""
    from tunelab.compress import compress_run

    result = compress_run(run, method, out=out, n_threads=threads, repeats=repeats)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        report_folder(result.out, quiet=True)
        return
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    batches = [str(b) for b in result.batches]
    metric = next((m for m in result.rows[-1].test if m != "loss"), None)
    heads = ["variant", "size KB", "non-zero params", *[f"ms @{b}" for b in batches]]
    for col in [*heads, "samples/s", f"test {metric}" if metric else "test"]:
        table.add_column(col, justify="left" if col == "variant" else "right")
    for row in result.rows:
        slot = row.test.get(metric, {}) if metric else {}
        ci = slot.get("ci") or {}
        value = f"{slot['value']:.4f}" if "value" in slot else "-"
        if ci:
            value += f" [{ci['low']:.3f}, {ci['high']:.3f}]"
        table.add_row(
            *cells(
                row.label,
                f"{row.size_bytes / 1024:.1f}",
                f"{row.nonzero_parameters:,}",
                *[f"{row.latency_ms[b]:.3f}" for b in batches],
                f"{row.throughput:,.0f}",
                value,
            )
        )
    console = rich_console()
    console.print(table)
    console.print(
        f"latency: median of {repeats} warm passes, {result.threads} CPU thread(s)", markup=False
    )
    for row in result.rows[1:]:
        console.print(row.verdict, markup=False)
    console.print(f"variants: {result.out} (compression.json)", markup=False)
    report_folder(result.out, quiet=False)
