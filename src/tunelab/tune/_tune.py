"""`tunelab tune`: a study from a spec, or nested CV around it; a full disk stops it cleanly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunelab.errors import SpecError, TunelabError, did_you_mean
from tunelab.spec import Spec
from tunelab.tune._finish import StudyResult
from tunelab.tune._nested import nested_cv
from tunelab.tune._open import study_spec
from tunelab.tune._ray import require_ray
from tunelab.tune._run import run_study
from tunelab.tune._study import disk_stopped, disk_trouble

__all__ = ["tune_study", "tune"]


def tune_study(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    nested: int | None = None,
    quiet: bool = False,
    executor: str = "local",
    address: str | None = None,
    trial_cpus: float = 1,
    trial_gpus: float = 0,
) -> StudyResult:
    """Search the spec's ``tune.space``; refit the best on all non-test data; test it once.

    Args:
        spec: a spec with a ``tune`` section (path, mapping or Spec).
        out: the study folder (default ``studies/<name>``).
        overrides: ``dotted.path=value`` applied to the base spec before the search.
        trials: total number of trials (overrides ``tune.trials``); failed and pruned count.
        timeout: seconds for the search (overrides ``tune.timeout``).
        workers: processes on this machine sharing the study's storage.
        storage: an SQLAlchemy URL (e.g. ``postgresql://...``); default SQLite in the folder.
        resume: continue the study in ``out``; finished trials are kept, never re-run.
        nested: wrap the whole procedure in this many outer folds (nested cross-validation).
        quiet: no per-trial lines.
        executor: ``local`` (worker processes on this machine) or ``ray`` (each trial a Ray
            task, ``workers`` at a time, on the cluster at ``address``; a local one when None).
        address: the Ray cluster (``auto``, ``ray://host:10001``); only with ``executor="ray"``.
        trial_cpus, trial_gpus: the Ray resources of each trial.

    Returns:
        A :class:`StudyResult`; its ``test_metrics`` are ``{name: {"value", "ci"}}`` like a
        run's metrics.
    """
    spec, params = study_spec(
        spec, overrides=overrides, trials=trials, timeout=timeout, workers=workers
    )
    folder = Path(out) if out is not None else Path("studies") / spec.name
    ray = _executor(executor, address, trial_cpus, trial_gpus, nested=nested)
    if nested and spec.tune.objectives:
        raise SpecError(
            "--nested scores each outer fold by one best trial; a multi-objective study "
            "(tune.objectives) has a front: drop one of them"
        )
    if nested and not spec.tune.refit:
        raise SpecError(
            "--nested scores each outer fold by the refit of its best: remove tune.refit: false"
        )
    try:
        if nested:
            return nested_cv(spec, params, folder, outer=nested, workers=workers, quiet=quiet)
        return run_study(
            spec, params, folder, workers=workers, storage=storage, resume=resume, quiet=quiet,
            executor=ray,
        )  # fmt: skip
    except TunelabError:
        raise
    except Exception as exc:  # a full or read-only disk after the checks (the refit, a report)
        why = disk_trouble(exc)
        if why is None:
            raise
        raise disk_stopped(why, folder) from None


def _executor(
    name: str, address: str | None, cpus: float, gpus: float, *, nested: int | None
) -> dict | None:
    """The executor's options, checked before any data is loaded; None for ``local``."""
    if name not in ("local", "ray"):
        raise SpecError(
            f"--executor: expected local or ray; got {name!r}{did_you_mean(name, ['local', 'ray'])}"
        )
    if name == "local":
        if address is not None:
            raise SpecError("--address names a Ray cluster: use it with --executor ray")
        return None
    if nested:
        raise SpecError("--executor ray runs one study; --nested runs one per outer fold: drop one")
    if not cpus > 0 or not gpus >= 0:
        raise SpecError(
            f"--trial-cpus must be above 0 and --trial-gpus at least 0; got {cpus}, {gpus}"
        )
    require_ray()  # before any data is loaded or a folder made
    return {"name": "ray", "address": address, "cpus": cpus, "gpus": gpus}


tune = tune_study  # the earlier name, kept (``tunelab.tune.tune``)
