"""The same spec trained with several seeds: mean ± std and a t-interval per metric.

One seed's result is an anecdote; the spread over seeds says how much of a difference between
two configurations could be luck. Each seed's run is kept in ``<out>/seed_<s>/``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from tunelab.errors import SpecError
from tunelab.runs import prepare_out_dir, write_json
from tunelab.spec import Spec, load_spec
from tunelab.train._console import Console

__all__ = ["train_seeds", "seed_summary"]


def seed_summary(values: Sequence[float], *, level: float = 0.95) -> dict[str, float]:
    """Mean, sample std and the Student-t interval of the mean over seeds."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = len(arr)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    mean = float(arr.mean())
    if n == 1:
        return {"mean": mean, "std": 0.0, "low": math.nan, "high": math.nan, "n": 1}
    std = float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, df=n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "low": mean - half, "high": mean + half, "n": n}


def train_seeds(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    seeds: int,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    quiet: bool = False,
) -> dict[str, Any]:
    """Train ``seeds`` times (seed, seed+1, ...); write ``seeds.json``; return the summary."""
    from tunelab.train._record import train

    if seeds < 2:
        raise SpecError(f"--seeds: expected at least 2 seeds to measure a spread; got {seeds}")
    spec = load_spec(spec, overrides=overrides)
    root = prepare_out_dir(Path(out) if out is not None else Path("runs") / f"{spec.name}-seeds")
    console = Console(quiet=quiet)
    per_seed: list[dict[str, Any]] = []
    for i in range(seeds):
        seed = spec.seed + i
        console.note(f"seed {seed} ({i + 1}/{seeds})")
        run = train(
            spec,
            out=root / f"seed_{seed}",
            overrides=[f"seed={seed}"],
            console=Console(quiet=True, file=_Null()),
        )
        per_seed.append(
            {
                "seed": seed,
                "run": str(run.path),
                "metrics": {
                    s: {k: v["value"] for k, v in m.items()} for s, m in run.metrics.items()
                },
            }
        )
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for split in per_seed[0]["metrics"]:
        summary[split] = {
            name: seed_summary([r["metrics"][split].get(name) for r in per_seed])
            for name in per_seed[0]["metrics"][split]
        }
    result = {
        "seeds": [r["seed"] for r in per_seed],
        "runs": per_seed,
        "summary": summary,
        "level": 0.95,
    }
    write_json(root / "seeds.json", result)
    _table(console, summary, level=0.95)
    console.print(f"{seeds} seeds; each run in {root}/seed_<s>/; summary in {root / 'seeds.json'}")
    return result


def _table(console: Console, summary: dict, *, level: float) -> None:
    from rich.table import Table

    for split, metrics in summary.items():
        table = Table(
            title=f"{split}: mean ± std over seeds, {level:.0%} t-interval",
            show_edge=False,
            header_style="bold",
        )
        for col in ("metric", "mean ± std", "interval"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for name, s in metrics.items():
            table.add_row(
                name, f"{s['mean']:.4f} ± {s['std']:.4f}", f"[{s['low']:.4f}, {s['high']:.4f}]"
            )
        console.rich.print(table)


class _Null:
    """A write-only sink for the per-seed runs' own output."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
