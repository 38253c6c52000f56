"""The page of a compression folder (``compression.json``): every variant against the original,
and the Pareto fronts of accuracy against latency and against size."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.errors import RunError

__all__ = ["CompressionInfo", "compression_info", "pareto", "compression_figures"]


@dataclass
class VariantRow:
    label: str
    size_kb: float
    nonzero: int
    latency: dict[str, float]
    throughput: float
    metric: str
    value: float | None
    low: float | None
    high: float | None
    p_value: float | None
    verdict: str
    front_latency: bool = False
    front_size: bool = False


@dataclass
class CompressionInfo:
    path: str
    run: str
    threads: int
    batches: list[int]
    metric: str
    rows: list[VariantRow] = field(default_factory=list)


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """Which points no other point dominates, for (higher-is-better, lower-is-better) pairs:
    another is at least as good on both and better on one."""
    front = []
    for i, (v, c) in enumerate(points):
        dominated = any(
            (v2 >= v and c2 <= c) and (v2 > v or c2 < c)
            for j, (v2, c2) in enumerate(points)
            if j != i
        )
        front.append(not dominated)
    return front


def compression_info(folder: Path) -> CompressionInfo:
    path = Path(folder) / "compression.json"
    if not path.is_file():
        raise RunError(f"{folder} holds no compression.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    variants = doc["variants"]
    metric = next((m for m in variants[-1]["test"] if m != "loss"), "loss")
    rows = []
    for v in variants:
        slot = v["test"].get(metric) or {}
        ci = slot.get("ci") or {}
        rows.append(
            VariantRow(
                label=v["label"],
                size_kb=v["size_bytes"] / 1024,
                nonzero=v["nonzero_parameters"],
                latency=v["latency_ms"],
                throughput=v["throughput"],
                metric=metric,
                value=slot.get("value"),
                low=ci.get("low"),
                high=ci.get("high"),
                p_value=(v.get("comparison") or {}).get("p_value"),
                verdict=v.get("verdict", ""),
            )
        )
    first = str(doc["batches"][0])
    scored = [r for r in rows if r.value is not None]
    for flag, cost in (
        ("front_latency", lambda r: r.latency[first]),
        ("front_size", lambda r: r.size_kb),
    ):
        for r, on in zip(scored, pareto([(r.value, cost(r)) for r in scored]), strict=True):
            setattr(r, flag, on)
    return CompressionInfo(str(folder), doc["run"], doc["threads"], doc["batches"], metric, rows)


def compression_figures(info: CompressionInfo) -> dict[str, str]:
    """``latency`` and ``size``: the metric against each cost, the front joined by a line."""
    from tunelab.report._figures import _draw

    first = str(info.batches[0])
    rows = [r for r in info.rows if r.value is not None]

    def scatter(cost, label: str, flag: str):
        def make():
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5.2, 3.6))
            xs, ys = [cost(r) for r in rows], [r.value for r in rows]
            on = [getattr(r, flag) for r in rows]
            ax.scatter([x for x, o in zip(xs, on, strict=True) if not o],
                       [y for y, o in zip(ys, on, strict=True) if not o],
                       color="#9aa4ae", label="dominated")  # fmt: skip
            front = sorted((x, y) for x, y, o in zip(xs, ys, on, strict=True) if o)
            ax.plot([x for x, _ in front], [y for _, y in front], "o-", color="#1f77b4",
                    label="Pareto front")  # fmt: skip
            for r, x, y in zip(rows, xs, ys, strict=True):
                if r.low is not None:
                    ax.vlines(x, r.low, r.high, color="#c0c6cc", linewidth=1, zorder=0)
                ax.annotate(r.label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
            if flag == "front_latency":
                ax.set_xscale("log")  # latencies differ by orders of magnitude
            ax.set_xlabel(label)
            ax.set_ylabel(f"test {info.metric}")
            ax.legend(loc="lower right")
            return fig

        return make

    out = {}
    for name, cost, label, flag in (
        ("latency", lambda r: r.latency[first], f"latency at batch {first} (ms)", "front_latency"),
        ("size", lambda r: r.size_kb, "size on disk (KB)", "front_size"),
    ):
        svg = _draw(scatter(cost, label, flag))
        if svg is not None:
            out[name] = svg
    return out
