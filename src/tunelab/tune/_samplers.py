"""Optuna's samplers and pruners, registered by name (they stay Optuna's classes).

A sampler registered with ``single_objective=True`` is refused for ``tune.objectives``
(every other built-in handles several objectives). A sampler plug-in's builder is ``build(options, params, *, seed) -> optuna sampler``; a
pruner's is ``build(options) -> optuna pruner``. ``options`` is the spec's ``tune.sampler`` /
``tune.pruner`` node; Optuna is imported when a study is built, not when a spec is read.
"""

from __future__ import annotations

import warnings

from tunelab.errors import SpecError
from tunelab.plugins import PRUNERS, SAMPLERS

__all__ = ["build_sampler", "build_pruner"]


def build_sampler(spec, params, *, seed: int):
    """Optuna's sampler for ``spec.name``; ``grid`` gets the finite space of every entry."""
    return SAMPLERS.get(spec.name).build(spec, params, seed=seed)


def build_pruner(spec):
    """Optuna's pruner for ``spec.name``."""
    return PRUNERS.get(spec.name).build(spec)


def _grid(spec, params, *, seed):
    import optuna

    from tunelab.tune._space import grid_space

    return optuna.samplers.GridSampler(grid_space(params), seed=seed)


def _random(spec, params, *, seed):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _tpe(spec, params, *, seed):
    import optuna

    with warnings.catch_warnings():  # multivariate, group and constant_liar are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=spec.n_startup_trials,
            multivariate=spec.multivariate,
            group=spec.multivariate,
            constant_liar=True,
        )


def _nsga2(spec, params, *, seed):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=spec.population_size)


def _qmc(spec, params, *, seed):
    import optuna

    return optuna.samplers.QMCSampler(seed=seed)


def _gp(spec, params, *, seed):
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=spec.n_startup_trials)


def _cmaes(spec, params, *, seed):
    import optuna

    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise SpecError(
            "tune.sampler cmaes needs the `cmaes` package: pip install cmaes (or use tpe)"
        ) from None
    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=spec.n_startup_trials)


SAMPLERS.register("grid", None, _grid, summary="every combination of a finite space, in order")
SAMPLERS.register("random", None, _random, summary="independent uniform draws")
SAMPLERS.register("tpe", None, _tpe, summary="Tree-structured Parzen Estimator (default)")
SAMPLERS.register(
    "nsga2", None, _nsga2, summary="NSGA-II genetic search (for tune.objectives: a Pareto front)"
)
SAMPLERS.register(
    "cmaes",
    None,
    _cmaes,
    summary="CMA-ES over continuous ranges (needs cmaes; one objective only)",
    single_objective=True,
)
SAMPLERS.register("qmc", None, _qmc, summary="quasi-Monte Carlo (Sobol) draws")
SAMPLERS.register("gp", None, _gp, summary="Gaussian-process Bayesian optimisation")


def _none(spec):
    import optuna

    return optuna.pruners.NopPruner()


def _median(spec):
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
    )


def _percentile(spec):
    import optuna

    return optuna.pruners.PercentilePruner(
        spec.percentile, n_startup_trials=spec.n_startup_trials, n_warmup_steps=spec.n_warmup_steps
    )


def _asha(spec):
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=spec.min_resource, reduction_factor=spec.reduction_factor
    )


def _hyperband(spec):
    import optuna

    return optuna.pruners.HyperbandPruner(
        min_resource=spec.min_resource, reduction_factor=spec.reduction_factor
    )


def _wilcoxon(spec):
    import optuna

    return optuna.pruners.WilcoxonPruner(
        p_threshold=spec.p_threshold, n_startup_steps=spec.n_startup_steps
    )


PRUNERS.register("none", None, _none, summary="run every trial to the end")
PRUNERS.register(
    "median", None, _median, summary="stop below the median of earlier trials at a step"
)
PRUNERS.register("percentile", None, _percentile, summary="stop below a percentile at a step")
PRUNERS.register("asha", None, _asha, summary="asynchronous successive halving")
PRUNERS.register(
    "hyperband", None, _hyperband, summary="Hyperband over successive-halving brackets"
)
PRUNERS.register(
    "wilcoxon", None, _wilcoxon, summary="paired Wilcoxon test over finished folds (CV)"
)


def _noise(spec):
    from tunelab.tune._noise import build

    return build(spec)


PRUNERS.register(
    "noise",
    None,
    _noise,
    summary="stop only when the val metric's interval lies below the best at that step",
    needs_samples=True,
)
