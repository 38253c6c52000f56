"""A pruner that knows the validation part is small: ``tune.pruner: noise``.

A validation accuracy of 0.90 on 400 images is 360 of 400, and its 95% Clopper-Pearson
interval is about [0.867, 0.927]: a trial at 0.90 is not shown worse than the best trial's
0.92 at the same step, however often the median pruner would stop it. This pruner stops a
trial at a step only when its interval there lies wholly on the wrong side of the best value
any completed trial reported at that same step (the interval of a share of ``n`` samples,
the exact one the reports use), so a trial is pruned only when it is confidently worse.

The objective tells it the samples behind each step once per trial (the user attribute
``noise``: validation sizes per fold, epochs per fold, whether the metric is a share of the
samples); every decision to prune is kept with its interval, for the trial's reason.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

__all__ = ["NoisePruner", "noise_interval", "SAMPLES_ATTR"]

SAMPLES_ATTR = "noise"


def noise_interval(value: float, n: int, level: float) -> tuple[float, float]:
    """Clopper-Pearson interval of a share ``value`` of ``n`` samples."""
    from scipy.stats import beta

    k = int(round(value * n))
    alpha = 1.0 - level
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


class NoisePruner(optuna.pruners.BasePruner):
    """Stop a trial when it is confidently worse than the best completed trial at the same
    step."""

    def __init__(self, *, level: float, n_startup_trials: int, n_warmup_steps: int):
        self.level, self.startup, self.warmup = level, max(1, n_startup_trials), n_warmup_steps
        self.reasons: dict[int, str] = {}  # trial number -> why it was pruned

    def prune(self, study: Any, trial: Any) -> bool:
        step = trial.last_step
        info = trial.user_attrs.get(SAMPLES_ATTR)
        if step is None or step < self.warmup or not info or not info.get("proportion"):
            return False
        value = trial.intermediate_values[step]
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        at_step = [t.intermediate_values[step] for t in complete if step in t.intermediate_values]
        at_step = [v for v in at_step if math.isfinite(v)]
        if len(complete) < self.startup or not at_step or not math.isfinite(value):
            return False
        fold = min(step // max(1, info["epochs"]), len(info["n"]) - 1)
        n = int(info["n"][fold])
        low, high = noise_interval(value, n, self.level)
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        best = max(at_step) if maximize else min(at_step)
        worse = high < best if maximize else low > best
        if worse:
            self.reasons[trial.number] = (
                f"noise: {value:.4g} at step {step}, {round(100 * self.level)}% interval "
                f"[{low:.4g}, {high:.4g}] on {n} validation samples, "
                f"{'below' if maximize else 'above'} the best {best:.4g} at that step"
            )
        return worse


def build(spec) -> NoisePruner:
    """The pruner of a ``tune.pruner`` node."""
    return NoisePruner(
        level=spec.level, n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
    )
