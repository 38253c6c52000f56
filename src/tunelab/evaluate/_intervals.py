"""Intervals from bootstrap replicates: percentile, BCa (Efron's bias-corrected and accelerated),
and the exact Clopper-Pearson interval of a proportion estimated at 0 or 1; the warning an
interval carries when it is a single point or excludes its own estimate."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats
from scipy.special import ndtr, ndtri

from tunelab.errors import TunelabError, did_you_mean

Method = Literal["percentile", "bca"]
METHODS: tuple[Method, ...] = ("percentile", "bca")

_MAX_NAN_FRACTION = 0.1  # more NaN resamples than this and the interval is NaN


def _check_options(n_resamples: int, level: float, method: str | None = None) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer):
        raise TunelabError(f"n_resamples must be an integer >= 1; got {n_resamples!r}.")
    if n_resamples < 1:
        raise TunelabError(f"n_resamples must be an integer >= 1; got {n_resamples}.")
    if not 0 < level < 1:
        raise TunelabError(f"level must be in (0, 1), e.g. 0.95; got {level!r}.")
    if method is not None and method not in METHODS:
        raise TunelabError(
            f"method must be one of: {', '.join(METHODS)}; got `{method}`"
            f"{did_you_mean(str(method), METHODS)}."
        )


def _interval(
    replicates: np.ndarray,
    level: float,
    method: str,
    estimate: float,
    jackknife: np.ndarray | None = None,
) -> tuple[float, float, int]:
    """(low, high, n_nan) from the bootstrap replicates of one statistic (and, for BCa, its
    jackknife replicates)."""
    finite = np.isfinite(replicates)
    n_nan = int(len(replicates) - finite.sum())
    nan = (float("nan"), float("nan"), n_nan)
    if n_nan > _MAX_NAN_FRACTION * len(replicates) or not np.isfinite(estimate):
        return nan
    replicates = replicates[finite]
    if replicates.min() == replicates.max():
        return float(replicates[0]), float(replicates[0]), n_nan
    tail = (1 - level) / 2
    if method == "percentile":
        low, high = np.percentile(replicates, [100 * tail, 100 * (1 - tail)])
        return float(low), float(high), n_nan
    # BCa (Efron 1987) as scipy.stats.bootstrap: a replicate equal to the estimate counts 1/2 in
    # the bias correction, which matters for discrete statistics such as accuracy
    z0 = ndtri(
        (np.sum(replicates < estimate) + np.sum(replicates <= estimate)) / (2 * len(replicates))
    )
    theta = jackknife[np.isfinite(jackknife)]
    deviation = theta.mean() - theta if len(theta) > 1 else np.zeros(1)
    spread = np.sum(deviation**2)
    accel = np.sum(deviation**3) / (6 * spread**1.5) if spread > 0 else 0.0
    z = ndtri(np.array([tail, 1 - tail]))
    quantiles = ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))
    if not np.isfinite(quantiles).all():
        return nan
    low, high = np.percentile(replicates, 100 * quantiles)
    return float(low), float(high), n_nan


def _clopper_pearson(successes: int, n: int, level: float) -> tuple[float, float]:
    """Exact binomial interval (Clopper & Pearson 1934), ``level`` two-sided."""
    tail = (1 - level) / 2
    low = float(stats.beta.ppf(tail, successes, n - successes + 1)) if successes > 0 else 0.0
    high = float(stats.beta.ppf(1 - tail, successes + 1, n - successes)) if successes < n else 1.0
    return low, high


def _warning(estimate: float, low: float, high: float) -> str | None:
    """What is wrong with reading ``[low, high]`` as an interval around ``estimate``, if anything."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if low == high:
        return (
            f"every resample gave {low:.4g}, so the bootstrap cannot measure this metric's "
            "uncertainty here; the point interval is not a certainty"
        )
    if not low <= estimate <= high:
        return (
            f"the interval excludes the estimate {estimate:.4g}: the metric is biased under "
            "resampling (as ECE is), so the interval is not a range around the estimate"
        )
    return None
