"""Log-scale axes whose tick labels can be read: a few round values written short (``1e-4``,
``3e-3``, ``0.01``), thinned in the figure's own layout until no two labels touch.

matplotlib's default log ticks label minor ticks as ``2×10⁻³ 3×10⁻³ 4×10⁻³`` when a range is
under a decade or two, which run into each other on a narrow axis (a slice-plot panel).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

__all__ = ["fit_log_ticks", "fit_category_labels", "label_overlaps"]

MANTISSAS = [(1, 2, 3, 5), (1, 2, 5), (1, 3), (1,)]
STRIDES = (2, 3, 4, 5, 10, 20)  # decades between labelled ticks once one per decade is too many
MOST = 7  # labels on one axis at most, however long it is
GAP = 0.35  # the least space between two labels, in units of the labels' font size


def _candidates(lo: float, hi: float) -> Iterator[list[float]]:
    """Sets of round ticks inside ``[lo, hi]``, densest first; the last has two ticks at most."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    inside = [lo * (1 - 1e-9), hi * (1 + 1e-9)]

    def keep(values):
        return [float(f"{v:.3g}") for v in values if inside[0] <= v <= inside[1]]

    for subs in MANTISSAS:
        yield keep(m * 10.0**e for e in range(first, last + 1) for m in subs)
    for stride in STRIDES:
        yield keep(10.0**e for e in range(first, last + 1) if e % stride == 0)
    # under a decade with no round value twice inside: both ends at two significant digits
    yield sorted({float(f"{lo * 1.01:.2g}"), float(f"{hi * 0.99:.2g}")})


def _short(value: float, plain: bool) -> str:
    if plain:
        return f"{value:g}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{float(mantissa):g}" + (f"e{int(exponent)}" if int(exponent) else "")


def _labels(ticks: list[float]) -> list[str]:
    """One style per axis: plain numbers when every tick is in [0.01, 1000], else ``2e-5``."""
    plain = all(1e-2 <= t < 1e3 for t in ticks)
    return [_short(t, plain) for t in ticks]


def label_overlaps(boxes, gap: float = 0.0) -> int:
    """How many neighbouring pairs of label boxes (matplotlib ``Bbox``) come closer than ``gap``
    pixels, on the axis they are spread along."""
    if len(boxes) < 2:
        return 0
    wide = max(b.x1 for b in boxes) - min(b.x0 for b in boxes)
    tall = max(b.y1 for b in boxes) - min(b.y0 for b in boxes)
    ends = [(b.x0, b.x1) for b in boxes] if wide >= tall else [(b.y0, b.y1) for b in boxes]
    ends.sort()
    return sum(1 for a, b in zip(ends, ends[1:], strict=False) if b[0] - a[1] < gap)


def _fits(fig, axis) -> bool:
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in axis.get_majorticklabels() if t.get_visible() and t.get_text()]
    if not texts:
        return True
    gap = GAP * texts[0].get_fontsize() * fig.dpi / 72
    return label_overlaps([t.get_window_extent(renderer) for t in texts], gap) == 0


def fit_log_ticks(fig) -> None:
    """Give every log-scale axis of ``fig`` round, short tick labels that do not touch."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    axes = [a for ax in fig.axes for a in (ax.xaxis, ax.yaxis) if a.get_scale() == "log"]
    for axis in axes:
        lo, hi = sorted(axis.get_view_interval())
        if not (lo > 0 and math.isfinite(hi)):
            continue
        axis.set_minor_formatter(NullFormatter())
        candidates = list(_candidates(lo, hi))
        for ticks in [c for c in candidates[:-1] if 2 <= len(c) <= MOST] + candidates[-1:]:
            axis.set_major_locator(FixedLocator(ticks))
            axis.set_major_formatter(FixedFormatter(_labels(ticks)))
            if _fits(fig, axis):
                break


def fit_category_labels(fig, axis) -> None:
    """Stand the tick labels of a category axis (class names) upright when two level ones
    would touch in the figure's layout."""
    if not _fits(fig, axis):
        for label in axis.get_majorticklabels():
            label.set_rotation(90)
